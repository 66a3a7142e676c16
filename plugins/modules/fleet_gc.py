#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_gc
version_added: 0.1.0
short_description: Remove the old fleets of a cattle.aws stack, keep the last N for rollback
description:
  - Finds every fleet (release version) of one stack by its ownership tags and decides, for each,
    whether it is kept or removed. Resources without the stack's ownership tags are never
    considered, whatever their names.
  - Kept are the live version, every serving version (weight greater than 0 on any listener
    default action or listener rule of any load balancer the stack's target groups are attached
    to, as read from AWS), the versions in O(protect), and the O(keep) most recent other versions,
    ordered by creation time (C(cattle:created-at)), not by version string. Failed releases
    (C(cattle:status=failed)) and incomplete fleets do not count toward O(keep).
  - With O(mode=delete), each removed fleet is taken out of every forward action it is still in at
    weight 0, its target group is detached from its auto scaling group (the instances drain), the
    module waits for draining up to O(drain_timeout), deletes the auto scaling group and waits until
    it is gone, then deletes the target group and the launch template, and with O(prune_images) the
    AMI and its snapshots. Other target groups of a forward action, foreign ones included, keep their
    weights; stickiness and other actions are preserved.
  - Each part is found by its tags on its own, so a run interrupted anywhere is completed by the
    next run.
  - With O(mode=scale_to_zero), each removed fleet keeps its launch template, target group and
    auto scaling group; the group's minimum and desired capacity are set to 0 (maximum kept).
  - A fleet that is the last target group of a forward action, or whose auto scaling group is also
    attached to other target groups, is kept and reported.
author:
  - cattle.aws developers (@cattle-aws)
options:
  keep:
    description:
      - How many previous versions to keep besides the live, serving and protected ones.
      - Only complete fleets that are not failed releases count.
    type: int
    default: 2
  protect:
    description:
      - Versions never touched, for example the version being released.
    type: list
    elements: str
    default: []
  mode:
    description:
      - V(delete) removes the fleets; V(scale_to_zero) keeps their definition with no instances.
    type: str
    default: delete
    choices: [delete, scale_to_zero]
  drain_timeout:
    description:
      - Seconds to wait, after detaching a target group from its auto scaling group, until none of
        its targets is draining. When they are not drained by then, the fleet is deleted anyway and
        its version is listed in RV(drain_timed_out).
    type: int
    default: 300
  prune_images:
    description:
      - Also deregister the AMIs (tagged for the stack) of deleted fleets and delete their snapshots,
        when no remaining launch template of the stack uses them.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for an auto scaling group to be deleted.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Lists exactly what would be removed and makes no change.
  diff_mode:
    support: full
    description: The fleets (parts and capacity) before and after.
  idempotent:
    support: full
    description: A second run reports no change.
extends_documentation_fragment:
  - cattle.aws.direct_execution
  - cattle.aws.stack
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Delete old fleets of shop in prod, keep two previous versions and the one being released
  cattle.aws.fleet_gc:
    app: shop
    environment: prod
    keep: 2
    protect: ["1.4.2"]

- name: Keep the definitions of old fleets but no instances, and show what would happen first
  cattle.aws.fleet_gc:
    app: shop
    environment: prod
    keep: 1
    mode: scale_to_zero
  check_mode: true
  register: gc_plan

- name: Also deregister the AMIs nobody uses any more
  cattle.aws.fleet_gc:
    app: shop
    environment: prod
    prune_images: true
    drain_timeout: 120
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
live_version:
  description: The live version, V(null) when no version receives traffic.
  returned: always
  type: str
  sample: 1.4.2
deleted:
  description: Versions removed (in check mode, that would be removed) with O(mode=delete).
  returned: always
  type: list
  elements: dict
  contains: &entry
    version:
      description: The version (C(cattle:version)); V(null) for a foreign target group.
      type: str
      sample: 1.2.0
    created_at:
      description: Creation time of the fleet, UTC ISO 8601.
      type: str
      sample: "2024-05-01T12:00:00Z"
    failed:
      description: Whether the version is a failed release.
      type: bool
    reason:
      description: >-
        Why: for kept versions V(live), V(serving), V(protected), V(retained), V(not owned) (a
        foreign target group in a forward action of the stack), V(last target group of a forward
        action) or V(its auto scaling group is attached to other target groups); for removed
        versions V(failed release), V(incomplete fleet) or why it is older than the retained ones.
      type: str
      sample: retained
    target_group_arn:
      description: ARN of a foreign target group (reason V(not owned) only).
      type: str
    target_group_name:
      description: Name of a foreign target group (reason V(not owned) only).
      type: str
scaled_to_zero:
  description: Versions scaled to zero (in check mode, that would be) with O(mode=scale_to_zero).
  returned: always
  type: list
  elements: dict
  contains: *entry
kept:
  description: Versions kept, and foreign target groups seen in the stack's forward actions, with the reason.
  returned: always
  type: list
  elements: dict
  contains: *entry
actions:
  description:
    - The plan, in the order it is (or would be) applied. Each action has C(action) and C(version),
      plus the identifiers of what it touches.
    - C(action) is one of V(leave_traffic), V(detach_target_group), V(wait_for_drain),
      V(delete_auto_scaling_group), V(delete_attach_rule), V(delete_target_group), V(delete_launch_template),
      V(deregister_image), V(delete_snapshot), V(scale_to_zero).
  returned: always
  type: list
  elements: dict
  sample: [{"action": "delete_launch_template", "version": "1.2.0", "name": "shop-prod-1.2.0", "id": "lt-0123"}]
drain_timed_out:
  description: Versions whose targets were still draining after O(drain_timeout) seconds.
  returned: when draining timed out
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.gc import run_gc
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory

SERVICES = ("ec2", "autoscaling", "elbv2", "resourcegroupstaggingapi")


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            app=dict(type="str", required=True),
            environment=dict(type="str"),
            keep=dict(type="int", default=2),
            protect=dict(type="list", elements="str", default=[]),
            mode=dict(type="str", default="delete", choices=["delete", "scale_to_zero"]),
            drain_timeout=dict(type="int", default=300),
            prune_images=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        client = client_factory(module, retry=False)
        clients = {service: client(service) for service in SERVICES}
        result = run_gc(
            clients, params["app"], params["environment"], keep=params["keep"], protect=params["protect"],
            mode=params["mode"], prune_images=params["prune_images"], drain_timeout=params["drain_timeout"],
            wait_timeout=params["wait_timeout"], check_mode=module.check_mode,
        )
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)
    for version in result.get("drain_timed_out", []):
        module.warn(f"Targets of version {version} were still draining after {params['drain_timeout']}s; deleted anyway.")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
