#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_info
version_added: 0.1.0
short_description: Describe the fleets (versions) of a cattle.aws stack
description:
  - Lists every fleet (release version) of one stack, newest first. A stack is one O(app) in one
    O(environment); a fleet is the AMI, launch template, target group and auto scaling group
    carrying the stack's ownership tags and one C(cattle:version) tag.
  - Resources are found by their tags (C(cattle:app), C(cattle:environment), C(cattle:version),
    C(cattle:managed-by=cattle.aws)), never by their names; look-alike resources without those
    tags are ignored.
  - For each target group of the stack, reports which listener default actions and listener
    rules forward to it and with which weight, and derives the live, serving and previous
    versions.
  - Counts each fleet's instances (total and InService from the auto scaling group; healthy,
    unhealthy, initial, unused, draining and unavailable from the target group's target health,
    see O(health)).
  - Reports drift (see O(drift)) - instances of a fleet running another AMI or launched from
    another launch template or launch template version than the fleet's; fleets whose launch
    template has more than one version (it was edited); running or pending instances tagged for
    the stack that are in none of its auto scaling groups.
  - API calls grow with the stack (its versions, load balancers and instances), never with the
    account - every list call is filtered server-side by the ownership tags.
  - Read-only; makes no change in AWS.
  - Needs the IAM permissions C(ec2:DescribeImages), C(ec2:DescribeLaunchTemplates),
    C(ec2:DescribeLaunchTemplateVersions), C(autoscaling:DescribeAutoScalingGroups),
    C(tag:GetResources), C(elasticloadbalancing:DescribeTags),
    C(elasticloadbalancing:DescribeTargetGroups), C(elasticloadbalancing:DescribeListeners)
    and C(elasticloadbalancing:DescribeRules); with O(health) also
    C(elasticloadbalancing:DescribeTargetHealth); with O(drift) also C(ec2:DescribeInstances).
author:
  - cattle.aws developers (@cattle-aws)
options:
  traffic_point:
    description:
      - ARN of the listener or listener rule whose weights decide the live version.
      - By default, the listener default action or rule forwarding to the most target groups of
        the stack.
    type: str
  health:
    description:
      - Read the target health of each fleet's target group (one C(DescribeTargetHealth) call per
        target group) and return RV(fleets[].target_health) and the target health counts of
        RV(fleets[].instance_counts).
      - AWS reports the targets of a target group no listener forwards to as V(unused) (no health
        checks run), new targets as V(initial) and deregistering ones as V(draining); they are
        counted apart, never as healthy or unhealthy.
      - When V(false), those counts are V(null).
    type: bool
    default: true
  drift:
    description:
      - Look for drift and return RV(drift) and RV(fleets[].drift).
      - Costs one C(DescribeInstances) call (per page) for the instances tagged for the stack, one
        more for the instances of the stack's auto scaling groups that call did not return (for
        example instances attached without the stack's tags), and one
        C(DescribeLaunchTemplateVersions) call per launch template with more than one version.
    type: bool
    default: true
  include_images:
    description:
      - Read the stack's AMIs (one C(DescribeImages) call per page) for RV(fleets[].ami).
      - When V(false), RV(fleets[].ami) only has the image ID of the launch template (O(include_launch_template_data)),
        or is V(null). O(drift=true) needs it.
    type: bool
    default: true
  include_launch_template_data:
    description:
      - Read the default version of each fleet's launch template (one C(DescribeLaunchTemplateVersions) call per
        fleet) for the image and instance type of RV(fleets[].launch_template).
      - When V(false), those are V(null); a caller that needs only the versions, their traffic, capacity and status
        (as the release playbook) saves one call per version. O(drift=true) needs it.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module never changes anything; check mode returns the same result.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  idempotent:
    support: full
    description: Read-only.
extends_documentation_fragment:
  - cattle.aws.direct_execution
  - cattle.aws.stack
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Describe the fleets of shop in prod
  cattle.aws.fleet_info:
    app: shop
    environment: prod
  register: shop

- name: Show the live and the previous version
  ansible.builtin.debug:
    msg: "live {{ shop.live_version }}, rollback target {{ shop.previous_version }}"

- name: Against a local endpoint, through the group defaults (cattle.aws.aws extends amazon.aws.aws)
  module_defaults:
    group/cattle.aws.aws:
      region: us-east-1
      endpoint_url: http://127.0.0.1:5000
  cattle.aws.fleet_info:
    app: shop

- name: Fail when the stack drifted from its immutable fleets
  cattle.aws.fleet_info:
    app: shop
    environment: prod
  register: shop
  failed_when: shop.drift.detected

- name: Fleets and weights only, without target health and drift (fewer API calls)
  cattle.aws.fleet_info:
    app: shop
    environment: prod
    health: false
    drift: false
  register: shop

- name: Wait until every instance of the live version is healthy in its target group
  cattle.aws.fleet_info:
    app: shop
    environment: prod
    drift: false
  register: shop
  until: >-
    (shop.fleets | selectattr('live') | map(attribute='instance_counts') | first).healthy
    == (shop.fleets | selectattr('live') | map(attribute='instance_counts') | first).total
  retries: 30
  delay: 10
"""

RETURN = r"""
app:
  description: The application.
  returned: always
  type: str
  sample: shop
environment:
  description: The environment, V(null) for a stack without environment.
  returned: always
  type: str
  sample: prod
fleets:
  description: The fleets of the stack, newest first. Missing parts of a half-built fleet are V(null).
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The release version (C(cattle:version) tag).
      type: str
      sample: 1.4.2
    created_at:
      description: >-
        When the fleet was created, UTC ISO 8601: the oldest C(cattle:created-at) tag of its
        parts, else the oldest creation time of its parts.
      type: str
      sample: "2024-05-01T12:00:00Z"
    status:
      description: V(failed) when a part is tagged C(cattle:status=failed), else V(ok).
      type: str
      sample: ok
    failed:
      description: Whether the release of this version failed.
      type: bool
    complete:
      description: Whether the launch template, the target group and the auto scaling group all exist.
      type: bool
    names:
      description: The names cattle.aws gives this version's launch template, auto scaling group and target group.
      type: dict
      sample: {"launch_template": "shop-prod-1.4.2", "auto_scaling_group": "shop-prod-1.4.2",
               "target_group": "shop-prod-1-4-2-3f2a9c1d"}
    ami:
      description: >-
        The AMI: the one tagged for this version (with C(owned=true)), else the image of
        the launch template.
      type: dict
      sample: {"id": "ami-0123456789abcdef0", "name": "shop-1.4.2", "state": "available",
               "creation_date": "2024-05-01T11:50:00.000Z", "snapshot_ids": ["snap-0123456789abcdef0"],
               "owned": true}
    launch_template:
      description: The launch template (id, name, latest/default version, image and instance type of the default version).
      type: dict
      sample: {"id": "lt-0123456789abcdef0", "name": "shop-prod-1.4.2", "latest_version": 1,
               "default_version": 1, "created_at": "2024-05-01T12:00:00Z",
               "image_id": "ami-0123456789abcdef0", "instance_type": "t3.micro"}
    target_group:
      description: The target group.
      type: dict
      sample: {"arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-prod-1-4-2-3f2a9c1d/0123456789abcdef",
               "name": "shop-prod-1-4-2-3f2a9c1d", "port": 8080, "protocol": "HTTP",
               "vpc_id": "vpc-0123456789abcdef0", "target_type": "instance", "load_balancer_arns": []}
    auto_scaling_group:
      description: >-
        The auto scaling group: name, arn, min_size, max_size, desired_capacity, created_at,
        launch_template, target_group_arns, suspended_processes, instances (instance_id,
        lifecycle_state, health_status (the ASG's view), availability_zone, instance_type,
        launch_template_id, launch_template_version, protected_from_scale_in, plus target_health
        (the target state in the fleet's target group, V(null) when not registered) with
        O(health) and image_id with O(drift)) and instance_counts (total, in_service, and
        healthy/unhealthy by the ASG's health status; see RV(fleets[].instance_counts) for the
        load balancer's view).
      type: dict
    instance_counts:
      description: >-
        The fleet's instances - RV(fleets[].instance_counts.total) and
        RV(fleets[].instance_counts.in_service) from the auto scaling group, the other counts from
        the target health of the fleet's target group (V(null) when O(health=false); V(0) for a
        fleet without target group). A target in no listener's forward is V(unused), not healthy.
      type: dict
      contains:
        total:
          description: Instances in the auto scaling group, in any lifecycle state.
          type: int
        in_service:
          description: Instances in lifecycle state InService.
          type: int
        registered:
          description: Targets registered in the target group.
          type: int
        healthy:
          description: Targets in state V(healthy).
          type: int
        unhealthy:
          description: Targets in state V(unhealthy).
          type: int
        initial:
          description: Targets in state V(initial) (registration or first health checks in progress).
          type: int
        unused:
          description: Targets in state V(unused) (no listener forwards to the target group, or the target is stopped).
          type: int
        draining:
          description: Targets in state V(draining) (deregistration in progress).
          type: int
        unhealthy_draining:
          description: Targets in state V(unhealthy.draining).
          type: int
        unavailable:
          description: Targets in state V(unavailable) (health checks disabled).
          type: int
      sample: {"total": 2, "in_service": 2, "registered": 2, "healthy": 2, "unhealthy": 0, "initial": 0,
               "unused": 0, "draining": 0, "unhealthy_draining": 0, "unavailable": 0}
    target_health:
      description: The targets of the fleet's target group as DescribeTargetHealth reports them.
      returned: when O(health=true)
      type: list
      elements: dict
      contains:
        target_id:
          description: The instance ID.
          type: str
        port:
          description: The port the target receives traffic on.
          type: int
        availability_zone:
          description: The Availability Zone, when AWS reports one.
          type: str
        state:
          description: V(initial), V(healthy), V(unhealthy), V(unhealthy.draining), V(unused), V(draining) or V(unavailable).
          type: str
        reason:
          description: The AWS reason code, for example V(Target.NotInUse) or V(Target.FailedHealthChecks).
          type: str
        description:
          description: The AWS description of the reason.
          type: str
      sample: [{"target_id": "i-0123456789abcdef0", "port": 8080, "availability_zone": "us-east-1a",
                "state": "healthy", "reason": null, "description": null}]
    drift:
      description: How this fleet differs from what it was built as.
      returned: when O(drift=true)
      type: dict
      contains:
        detected:
          description: Whether RV(fleets[].drift.instances) or RV(fleets[].drift.launch_template) is set.
          type: bool
        instances:
          description: >-
            The fleet's instances running another AMI or launched from another launch template or
            version than the fleet's, each with instance_id, reasons (a list of V(ami),
            V(launch_template), V(launch_template_version)), image_id, expected_image_id,
            launch_template_id, expected_launch_template_id, launch_template_version and
            expected_launch_template_version.
          type: list
          elements: dict
        launch_template:
          description: >-
            V(null), or the fleet's launch template when it has more than one version (it was
            edited) - id, name, latest_version, default_version, expected_version (the one the
            auto scaling group uses) and versions (version_number, default, image_id,
            instance_type, created_at, created_by).
          type: dict
    traffic:
      description: >-
        The traffic weight of this version per listener or rule - one entry per listener default
        action or listener rule that forwards to this version's target group.
      type: list
      elements: dict
      contains:
        type:
          description: V(listener) for a listener default action, V(rule) for a listener rule.
          type: str
        listener_arn:
          description: The listener.
          type: str
        rule_arn:
          description: The rule, V(null) for a listener default action.
          type: str
        load_balancer_arn:
          description: The load balancer.
          type: str
        priority:
          description: The rule priority, V(default) for a listener default action.
          type: str
        point_arn:
          description: The ARN of the listener (default action) or rule.
          type: str
        weight:
          description: The weight of this version's target group in that forward action (0-999).
          type: int
        total_weight:
          description: The sum of the weights of every target group of that forward action.
          type: int
        percent:
          description: The share of that listener's or rule's traffic (0-100) this version gets.
          type: float
      sample: [{"type": "listener", "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef",
                "rule_arn": null, "load_balancer_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef",
                "priority": "default",
                "point_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef",
                "weight": 100, "total_weight": 100, "percent": 100.0}]
    weight:
      description: The highest weight the target group has on any listener or rule.
      type: int
    traffic_percent:
      description: The highest share of traffic (0-100) the target group has on any listener or rule.
      type: float
    serving:
      description: Whether the target group has a weight above 0 anywhere.
      type: bool
    live:
      description: Whether this is the live version.
      type: bool
    attach_rules:
      description:
        - The cattle.aws attach rules of this version - listener rules that attach its target group to
          the load balancer without any traffic (a first release before its shift, see
          M(cattle.aws.traffic_shift)). They are not traffic points - the version's RV(fleets[].weight)
          stays 0 and RV(fleets[].serving) false - but the load balancer health-checks the target group.
        - Each has rule_arn, listener_arn, priority, version and target_group_arn.
      type: list
      elements: dict
      sample: [{"version": "1.0.0", "priority": "50000",
                "rule_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/0123456789abcdef/0123456789abcdef/0123456789abcdef",
                "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef",
                "target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-prod-1-0-0-0a1b2c3d/0123456789abcdef"}]
live_version:
  description: >-
    The version with the highest weight above 0 on the deciding traffic point (ties go to the
    newest); V(null) when no version gets traffic.
  returned: always
  type: str
  sample: 1.4.2
previous_version:
  description: >-
    The newest version older than the live one that did not fail and still has its launch
    template, target group and auto scaling group (the rollback target); V(null) if none.
  returned: always
  type: str
  sample: 1.4.1
traffic_point:
  description: ARN of the listener or rule whose weights decided RV(live_version).
  returned: always
  type: str
traffic_points:
  description: >-
    Every listener default action and rule forwarding to a target group of the stack, with all
    the target groups it forwards to (arn, name, version or V(null) when not the stack's, weight,
    percent).
  returned: always
  type: list
  elements: dict
foreign_target_groups:
  description: >-
    Target groups that are not the stack's but share a listener default action or rule with the
    stack's target groups (arn, name, weight, percent, and where: type, listener_arn, rule_arn,
    load_balancer_arn, priority, point_arn, total_weight).
  returned: always
  type: list
  elements: dict
attach_rules:
  description: >-
    Every attach rule of the stack (see RV(fleets[].attach_rules)); found on the load balancers the
    stack's target groups are attached to.
  returned: always
  type: list
  elements: dict
conflicts:
  description: Warnings about several resources of one kind carrying the same version's tags.
  returned: always
  type: list
  elements: str
drift:
  description: The stack's drift, all fleets together.
  returned: when O(drift=true)
  type: dict
  contains:
    detected:
      description: Whether any drift was found.
      type: bool
    instances:
      description: >-
        Every RV(fleets[].drift.instances) entry, with the fleet's version added.
      type: list
      elements: dict
    launch_templates:
      description: >-
        Every edited launch template (RV(fleets[].drift.launch_template)), with the fleet's version
        added.
      type: list
      elements: dict
    stray_instances:
      description: >-
        Running or pending instances tagged for the stack (C(cattle:app) and
        C(cattle:environment), with or without C(cattle:managed-by)) that are in none of the
        stack's auto scaling groups - instance_id, state, image_id, instance_type, launch_time,
        version (its C(cattle:version) tag), managed (tagged C(cattle:managed-by=cattle.aws)),
        auto_scaling_group (the group it belongs to, if any), launch_template_id,
        launch_template_version and name.
      type: list
      elements: dict
    messages:
      description: One human-readable line per drift found.
      type: list
      elements: str
  sample: {"detected": true, "instances": [], "launch_templates": [],
           "stray_instances": [{"instance_id": "i-0123456789abcdef0", "state": "running", "image_id": "ami-0123456789abcdef0",
                                "instance_type": "t3.micro", "launch_time": "2024-05-01T12:00:00Z", "version": "1.4.1",
                                "managed": false, "auto_scaling_group": null, "launch_template_id": null,
                                "launch_template_version": null, "name": "debug"}],
           "messages": ["instance i-0123456789abcdef0 is tagged for the stack (version 1.4.1) but is in none of its auto scaling groups"]}
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.info_api import describe_fleets
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory


def main():
    argument_spec = dict(
        app=dict(type="str", required=True),
        environment=dict(type="str"),
        traffic_point=dict(type="str"),
        health=dict(type="bool", default=True),
        drift=dict(type="bool", default=True),
        include_images=dict(type="bool", default=True),
        include_launch_template_data=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    client = client_factory(module)

    try:
        stack = describe_fleets(
            client, module.params["app"], module.params["environment"], traffic_point=module.params["traffic_point"],
            health=module.params["health"], drift=module.params["drift"], include_images=module.params["include_images"],
            include_launch_template_data=module.params["include_launch_template_data"],
        )
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)

    for warning in stack["conflicts"]:
        module.warn(warning)
    module.exit_json(changed=False, **stack)


if __name__ == "__main__":
    main()
