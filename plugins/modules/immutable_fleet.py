#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: immutable_fleet
version_added: 0.1.0
short_description: Create or remove one immutable, versioned fleet (launch template, target group, auto scaling group)
description:
  - Creates or removes the fleet of one release O(version) of a stack (O(app), O(environment)) - one launch
    template with a single version, one target group and one auto scaling group, all built from one AMI and
    all tagged with the cattle.aws ownership tags (C(cattle:app), C(cattle:environment), C(cattle:version),
    C(cattle:managed-by), C(cattle:created-at)).
  - Fleets are immutable. Running again with the same options changes nothing. Running with the same
    O(version) but another AMI, instance type, user data, network, volumes, metadata options, target group
    or health check settings fails, naming the options that differ - release a new version instead.
    Only O(capacity) (and O(status)) may change on an existing fleet.
  - Without O(ami_id), O(instance_type) and O(subnet_ids) (all three omitted), the module only scales
    (O(capacity), O(capacity_from_live)) or sets the O(status) of an existing, complete fleet; its spec is
    neither compared nor changed, so a caller that does not know the spec (a rollback, a release's rescue)
    can scale a version to zero and back. A missing or half-built fleet is then an error, before any change,
    naming the options needed to create it.
  - A fleet left half-built (for example the launch template created, the auto scaling group not) is
    completed by the next run.
  - Resources with the fleet's names that do not carry this stack's ownership tags are never adopted,
    changed or deleted; O(state=present) fails naming them, O(state=absent) leaves them alone and
    reports them in RV(foreign).
  - With O(state=absent), the target group is detached from the auto scaling group, then the auto scaling
    group (and its instances), the version's attach rules (listener rules of cattle.aws that attach the
    target group without traffic, see M(cattle.aws.traffic_shift); only rules with the stack's ownership
    tags), the target group and the launch template are deleted. The module refuses while any other load
    balancer listener or rule forwards to the target group.
author:
  - cattle.aws developers (@cattle-aws)
options:
  version:
    description:
      - The release version of the fleet - 1 to 64 letters, digits, V(.), V(_) and V(-), starting and ending
        with a letter or digit. Quote it in YAML (V('1.4')); a number (V(1.10) is read as V(1.1)) is refused.
    type: raw
    required: true
  state:
    description:
      - V(present) creates the fleet (or completes a half-built one, or applies a new O(capacity) or O(status)).
      - V(absent) deletes the fleet's auto scaling group, target group and launch template.
    type: str
    choices: [present, absent]
    default: present
  ami_id:
    description:
      - The AMI the instances boot.
      - O(ami_id), O(instance_type) and O(subnet_ids) go together. With O(state=present) they are required to
        create (or complete) a fleet; when all three are omitted, only O(capacity), O(capacity_from_live) and
        O(status) apply, to an existing fleet.
    type: str
  instance_type:
    description:
      - The EC2 instance type, for example V(t3.micro). Goes with O(ami_id) and O(subnet_ids).
    type: str
  subnet_ids:
    description:
      - The subnets the auto scaling group launches instances in (all in one VPC). Goes with O(ami_id) and
        O(instance_type).
    type: list
    elements: str
  security_group_ids:
    description:
      - The security groups of the instances.
    type: list
    elements: str
  key_name:
    description:
      - The EC2 key pair name for SSH access. Omit for none.
    type: str
  iam_instance_profile:
    description:
      - The IAM instance profile of the instances, by name or ARN.
    type: str
  user_data:
    description:
      - The user data of the instances, as text (templated by the caller); it is base64-encoded for AWS.
      - It is never returned; the launch template carries its sha256 in the tag C(cattle:user-data-sha256),
        which is how a re-run tells whether it changed.
    type: str
  volumes:
    description:
      - The EBS volumes of the instances.
      - When omitted, the AMI's root device is mapped as an encrypted V(gp3) volume of the AMI's size. In that
        case the volumes are not compared on later runs (the AMI is).
    type: list
    elements: dict
    suboptions:
      device_name:
        description: The device name, for example V(/dev/xvda).
        type: str
        required: true
      volume_size:
        description: The size in GiB; the snapshot's size when omitted.
        type: int
      volume_type:
        description: The EBS volume type.
        type: str
        choices: [gp2, gp3, io1, io2, st1, sc1, standard]
        default: gp3
      iops:
        description: Provisioned IOPS (V(gp3), V(io1), V(io2)).
        type: int
      throughput:
        description: Throughput in MiB/s (V(gp3)).
        type: int
      encrypted:
        description: Whether the volume is encrypted.
        type: bool
        default: true
      kms_key_id:
        description: The KMS key that encrypts the volume; the account's default EBS key when omitted.
        type: str
      delete_on_termination:
        description: Whether the volume is deleted with its instance.
        type: bool
        default: true
  metadata_options:
    description:
      - The instance metadata service options. IMDSv2 (session tokens) is required by default.
    type: dict
    suboptions:
      http_tokens:
        description: V(required) enforces IMDSv2.
        type: str
        choices: [required, optional]
        default: required
      http_endpoint:
        description: Whether the metadata service is reachable.
        type: str
        choices: [enabled, disabled]
        default: enabled
      http_put_response_hop_limit:
        description: The hop limit of metadata PUT responses (2 lets containers reach IMDSv2).
        type: int
        default: 1
      instance_metadata_tags:
        description: Whether instance tags are visible in the metadata.
        type: str
        choices: [enabled, disabled]
        default: disabled
  capacity:
    description:
      - The auto scaling group's size. O(capacity.min) and O(capacity.max) are required to create a fleet
        (unless O(capacity_from_live) finds a live fleet); O(capacity.desired) defaults to O(capacity.min).
      - On an existing fleet, the sizes given replace the current ones; this is the one change of the fleet
        itself allowed on an existing fleet (with or without the spec options).
      - V(0) is allowed for each size, so min, max and desired of V(0) scale a fleet to zero while keeping it
        for a rollback.
    type: dict
    suboptions:
      min:
        description: The minimum number of instances.
        type: int
      max:
        description: The maximum number of instances.
        type: int
      desired:
        description: The desired number of instances, within O(capacity.min) and O(capacity.max).
        type: int
  capacity_from_live:
    description:
      - Copy min, max and desired from the stack's live fleet (the version with the most traffic weight) when
        there is one, instead of O(capacity).
    type: bool
    default: false
  status:
    description:
      - The release status of the version. V(failed) tags the fleet's auto scaling group, target group and
        launch template with C(cattle:status=failed), which M(cattle.aws.fleet_info) reports as the fleet's
        C(status) and C(failed), and which rollbacks skip. V(active) removes that tag.
      - The AMI is not tagged (several versions may share it); a C(cattle:status) tag put on the AMI by hand is
        left alone and still marks the version failed for discovery.
      - Omit to leave the status as it is. Changing the status is not a change of the spec, so it is allowed on an
        existing fleet, with or without O(ami_id), O(instance_type) and O(subnet_ids).
    type: str
    choices: [active, failed]
  target_group:
    description:
      - The fleet's target group.
    type: dict
    suboptions:
      port:
        description: The port the instances serve on.
        type: int
        default: 8080
      protocol:
        description: The protocol of the targets and of the health check.
        type: str
        choices: [HTTP, HTTPS]
        default: HTTP
      vpc_id:
        description: The VPC of the target group; the VPC of O(subnet_ids) when omitted.
        type: str
      deregistration_delay:
        description: Seconds the load balancer drains a deregistering instance.
        type: int
        default: 30
      health_check:
        description: The load balancer health check.
        type: dict
        suboptions:
          path:
            description: The HTTP path checked.
            type: str
            default: /health
          interval:
            description: Seconds between checks.
            type: int
            default: 10
          timeout:
            description: Seconds before a check fails; less than O(target_group.health_check.interval).
            type: int
            default: 5
          healthy_threshold:
            description: Consecutive successes before a target is healthy.
            type: int
            default: 2
          unhealthy_threshold:
            description: Consecutive failures before a target is unhealthy.
            type: int
            default: 2
          matcher:
            description: The HTTP codes of a healthy answer, for example V(200) or V(200-299).
            type: str
            default: "200"
  health_check_type:
    description:
      - V(ELB) replaces instances the load balancer finds unhealthy; V(EC2) only those EC2 finds impaired.
    type: str
    choices: [ELB, EC2]
    default: ELB
  health_check_grace_period:
    description:
      - Seconds after launch before the auto scaling group acts on health checks.
    type: int
    default: 60
  tags:
    description:
      - Extra tags for every resource of the fleet and the instances it launches. Keys starting with
        C(cattle:) or C(aws:) are reserved. C(Name) defaults to the fleet name.
    type: dict
  wait:
    description:
      - Wait until the desired number of instances is InService. The wait stops at once, with AWS' reason,
        when a scaling activity fails (for example a missing AMI or no capacity).
      - With a desired capacity of V(0), wait until the auto scaling group lists no instance at all (they have
        left the target group, after its deregistration delay, and terminated), so the fleet costs nothing
        when the task ends. Set O(wait=false) not to wait for that.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for instances (O(wait)), for their termination after scaling to zero, and for the auto
        scaling group's deletion.
    type: int
    default: 600
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Returns the planned RV(actions) and the simulated RV(fleet); IDs and ARNs not yet known are null.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
notes:
  - Every AWS call that changes something comes after all reads and checks, so an invalid request fails
    before anything is created.
extends_documentation_fragment:
  - cattle.aws.direct_execution
  - cattle.aws.stack
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create the fleet of version 1.4.2 of shop/prod
  cattle.aws.immutable_fleet:
    app: shop
    environment: prod
    version: "1.4.2"
    ami_id: ami-0ca771e0000ba5e01
    instance_type: t3.micro
    subnet_ids: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]
    security_group_ids: [sg-0c1d2e3f4a5b60718]
    user_data: "{{ lookup('template', 'user-data.sh.j2') }}"
    capacity: {min: 2, max: 4, desired: 2}
    target_group:
      port: 8080
      health_check: {path: /health, interval: 10, healthy_threshold: 2}
  register: fleet

- name: Release the next version with the live fleet's capacity
  cattle.aws.immutable_fleet:
    app: shop
    environment: prod
    version: "1.4.3"
    ami_id: ami-0ca771e0000ba5e02
    instance_type: t3.micro
    subnet_ids: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]
    capacity_from_live: true

- name: Roll back to 1.4.1, which gc scaled to zero - scale it back up to the live capacity (spec not needed)
  cattle.aws.immutable_fleet:
    app: shop
    environment: prod
    version: "1.4.1"
    capacity_from_live: true

- name: Or give the capacity explicitly
  cattle.aws.immutable_fleet:
    app: shop
    environment: prod
    version: "1.4.1"
    capacity: {min: 2, max: 4, desired: 2}

- name: Rescue of a failed release - mark 1.4.3 failed and scale it to zero (kept for inspection)
  cattle.aws.immutable_fleet:
    app: shop
    environment: prod
    version: "1.4.3"
    status: failed
    capacity: {min: 0, max: 0, desired: 0}

- name: Clear the failed mark of 1.4.3 (for example after a false alarm)
  cattle.aws.immutable_fleet:
    app: shop
    environment: prod
    version: "1.4.3"
    status: active

- name: Remove version 1.4.1 (refused while a listener still forwards to it)
  cattle.aws.immutable_fleet:
    app: shop
    environment: prod
    version: "1.4.1"
    state: absent
"""

RETURN = r"""
fleet:
  description: The fleet after the run (in check mode, as it would be). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    app:
      description: The stack's application.
      type: str
      sample: shop
    environment:
      description: The stack's environment (null when none).
      type: str
      sample: prod
    version:
      description: The release version.
      type: str
      sample: 1.4.2
    ami_id:
      description: The AMI of the launch template.
      type: str
      sample: ami-0ca771e0000ba5e01
    instance_type:
      description: The instance type of the launch template.
      type: str
      sample: t3.micro
    launch_template:
      description: The launch template and the one version the fleet uses.
      type: dict
      sample: {"id": "lt-0d82c1bf53cc722be", "name": "shop-prod-1.4.2", "version": 1}
    target_group_arn:
      description: The target group's ARN (null in check mode before creation).
      type: str
      sample: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-prod-1-4-2-5b7e3f0a/49202
    target_group_name:
      description: The target group's name.
      type: str
      sample: shop-prod-1-4-2-5b7e3f0a
    auto_scaling_group_name:
      description: The auto scaling group's name.
      type: str
      sample: shop-prod-1.4.2
    capacity:
      description: The auto scaling group's min, max and desired sizes.
      type: dict
      sample: {"min": 2, "max": 4, "desired": 2}
    created_at:
      description: When the fleet was first created (the C(cattle:created-at) tag, UTC ISO 8601).
      type: str
      sample: "2024-05-01T12:00:00Z"
    complete:
      description: Whether launch template, target group and auto scaling group all exist and are attached.
      type: bool
      sample: true
    status:
      description:
        - V(failed) when the fleet's auto scaling group, target group or launch template carries
          C(cattle:status=failed) (see O(status)), else V(active).
        - M(cattle.aws.fleet_info) reports the same as V(failed) or V(ok), and also counts a C(cattle:status) tag
          on the AMI.
      type: str
      sample: failed
actions:
  description:
    - The planned (check mode) or applied actions, in order; empty when nothing had to change.
    - Each has an C(action) key, one of C(create_launch_template), C(create_target_group),
      C(create_auto_scaling_group), C(attach_target_group), C(tag_status), C(update_capacity),
      C(detach_target_group), C(delete_auto_scaling_group), C(delete_attach_rule), C(delete_target_group),
      C(delete_launch_template), and the names it acts on.
      - C(tag_status) has C(resource) (C(auto_scaling_group), C(target_group) or C(launch_template)), C(name) and
        C(status) (V(failed) adds C(cattle:status=failed), V(active) removes it).
  returned: always
  type: list
  elements: dict
  sample: [{"action": "update_capacity", "name": "shop-prod-1.4.2", "before": {"min": 2, "max": 4, "desired": 2},
            "after": {"min": 2, "max": 6, "desired": 4}}]
foreign:
  description: Resources with the fleet's names that are not this fleet's (no ownership tags); never touched.
  returned: when some exist
  type: list
  elements: dict
  sample: [{"resource": "target_group", "name": "shop-prod-1-4-2-5b7e3f0a", "id": "arn:aws:elasticloadbalancing:...",
            "reason": "it does not carry this stack's cattle.aws ownership tags"}]
missing_options:
  description: On failure because the fleet does not exist (or is half-built) and the spec options are omitted, those options.
  returned: on failure for a missing fleet without spec
  type: list
  elements: str
  sample: ["ami_id", "instance_type", "subnet_ids"]
differing_fields:
  description: On failure because the fleet exists with another spec, the options that differ.
  returned: on immutability failure
  type: list
  elements: str
  sample: ["ami_id", "instance_type"]
refused:
  description:
    - On a failure before any change to AWS (an invalid option, an option of an existing fleet changed, a
      foreign resource holding a name, a missing AMI, a broken fleet), V(true); the fleet, if it exists, is
      as it was, and there is nothing to undo. Absent on a failure after a change was requested from AWS.
  returned: on failure before any change
  type: bool
  sample: true
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.fleet import build_desired
from ansible_collections.cattle.aws.plugins.module_utils._fleet.fleet import ensure_fleet
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory

SERVICES = ("ec2", "autoscaling", "elbv2", "resourcegroupstaggingapi")


def argument_spec():
    volume = dict(
        device_name=dict(type="str", required=True),
        volume_size=dict(type="int"),
        volume_type=dict(type="str", default="gp3", choices=["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"]),
        iops=dict(type="int"),
        throughput=dict(type="int"),
        encrypted=dict(type="bool", default=True),
        kms_key_id=dict(type="str"),
        delete_on_termination=dict(type="bool", default=True),
    )
    metadata = dict(
        http_tokens=dict(type="str", default="required", choices=["required", "optional"]),
        http_endpoint=dict(type="str", default="enabled", choices=["enabled", "disabled"]),
        http_put_response_hop_limit=dict(type="int", default=1),
        instance_metadata_tags=dict(type="str", default="disabled", choices=["enabled", "disabled"]),
    )
    health_check = dict(
        path=dict(type="str", default="/health"),
        interval=dict(type="int", default=10),
        timeout=dict(type="int", default=5),
        healthy_threshold=dict(type="int", default=2),
        unhealthy_threshold=dict(type="int", default=2),
        matcher=dict(type="str", default="200"),
    )
    target_group = dict(
        port=dict(type="int", default=8080),
        protocol=dict(type="str", default="HTTP", choices=["HTTP", "HTTPS"]),
        vpc_id=dict(type="str"),
        deregistration_delay=dict(type="int", default=30),
        health_check=dict(type="dict", options=health_check),
    )
    return dict(
        app=dict(type="str", required=True),
        environment=dict(type="str"),
        version=dict(type="raw", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        ami_id=dict(type="str"),
        instance_type=dict(type="str"),
        subnet_ids=dict(type="list", elements="str"),
        security_group_ids=dict(type="list", elements="str"),
        key_name=dict(type="str", no_log=False),
        iam_instance_profile=dict(type="str"),
        user_data=dict(type="str", no_log=True),
        volumes=dict(type="list", elements="dict", options=volume),
        metadata_options=dict(type="dict", options=metadata),
        capacity=dict(type="dict", options=dict(min=dict(type="int"), max=dict(type="int"), desired=dict(type="int"))),
        capacity_from_live=dict(type="bool", default=False),
        status=dict(type="str", choices=["active", "failed"]),
        target_group=dict(type="dict", options=target_group),
        health_check_type=dict(type="str", default="ELB", choices=["ELB", "EC2"]),
        health_check_grace_period=dict(type="int", default=60),
        tags=dict(type="dict"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
    )
    try:
        # Every input check before any AWS call; whether the fleet exists (needed without the spec
        # options) is checked after the reads, before any change.
        try:
            desired = build_desired(module.params)
        except FleetError as e:
            e.details["refused"] = True
            raise
        client = client_factory(module, retry=False)
        clients = {service: client(service) for service in SERVICES}
        result = ensure_fleet(clients, desired, check_mode=module.check_mode)
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
