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
  - Read-only; makes no change in AWS.
  - Needs the IAM permissions C(ec2:DescribeImages), C(ec2:DescribeLaunchTemplates),
    C(ec2:DescribeLaunchTemplateVersions), C(autoscaling:DescribeAutoScalingGroups),
    C(tag:GetResources), C(elasticloadbalancing:DescribeTags),
    C(elasticloadbalancing:DescribeTargetGroups), C(elasticloadbalancing:DescribeListeners)
    and C(elasticloadbalancing:DescribeRules).
author:
  - cattle.aws developers (@cattle-aws)
options:
  app:
    description:
      - Name of the application.
      - 1 to 32 lowercase letters, digits and single hyphens, starting with a letter and not
        ending with a hyphen.
    type: str
    required: true
  environment:
    description:
      - Environment of the application, for example V(prod).
      - Same characters as O(app), 1 to 24 characters. Omit it for a stack without environment;
        fleets of the same O(app) in an environment are then not reported.
    type: str
  traffic_point:
    description:
      - ARN of the listener or listener rule whose weights decide the live version.
      - By default, the listener default action or rule forwarding to the most target groups of
        the stack.
    type: str
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
        lifecycle_state, health_status, availability_zone, instance_type, launch_template_id,
        launch_template_version, protected_from_scale_in) and instance_counts (total,
        in_service, healthy, unhealthy).
      type: dict
    traffic:
      description: >-
        The listener default actions and rules forwarding to this version's target group, with
        type (V(listener) or V(rule)), listener_arn, rule_arn, load_balancer_arn, priority,
        point_arn, weight, total_weight (of that action) and percent.
      type: list
      elements: dict
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
conflicts:
  description: Warnings about several resources of one kind carrying the same version's tags.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.cattle.aws.plugins.module_utils._fleet.discovery import discover_stack
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError


def main():
    argument_spec = dict(
        app=dict(type="str", required=True),
        environment=dict(type="str"),
        traffic_point=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)

    clients = {}

    def client(service):
        # Created on first use: a stack without target groups never needs elbv2.
        if service not in clients:
            clients[service] = module.client(service, retry_decorator=AWSRetry.jittered_backoff())
        return clients[service]

    try:
        stack = discover_stack(
            client, module.params["app"], module.params["environment"], traffic_point=module.params["traffic_point"]
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
