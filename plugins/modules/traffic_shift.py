#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: traffic_shift
version_added: 0.1.0
short_description: Move a cattle.aws stack's traffic between versions (ALB weights or Route53)
description:
  - Sets the weights with which one traffic point sends requests to the fleets (versions) of a
    stack - an ALB listener's default action (O(listener_arn)), one listener rule (O(rule_arn)),
    or the Route53 weighted record sets of one name (O(route53)).
  - Attach a new version at weight 0 (O(percent=0)) so that the load balancer starts
    health-checking its target group; switch instantly (O(percent=100)); shift in steps
    (for example 10, 50, 100); roll back (O(to_version) = the previous version, O(percent=100)).
  - B(Attach rule) - O(percent=0) on a listener or rule whose action is not a forward yet (a fixed
    response or a redirect, as before the first release) does not touch that action. It creates an
    I(attach rule) instead - a rule on the same listener that forwards to the version's target
    group, whose only condition is an C(http-header) C(X-Cattle-Attach) equal to 64 random hex
    characters that no request carries, at the lowest free priority (50000 down), tagged with the
    version's ownership tags and C(cattle:role=attach-rule). No request is routed by it, but the
    load balancer health-checks the target group from then on (targets of a group that no
    listener or rule uses stay C(unused)), so a health gate can run before any traffic moves. The
    listener keeps answering its fixed response untouched.
  - Once a version is in the forward action (the first real shift replaces the fixed response),
    its attach rules are deleted, after the write and its read-back. O(detach) deletes the attach
    rules of the given versions and changes nothing else (a first release that failed its gate).
    Only rules carrying the stack's ownership tags and C(cattle:role=attach-rule) are ever deleted.
  - The version that loses all its traffic stays in the forward action at weight 0, so that a
    rollback is one write too.
  - B(Guard) - right before the write, every target group whose share of the traffic grows must
    have at least one healthy target; otherwise the module fails with the target group's health
    (states and reasons) and changes nothing, unless O(force=true).
  - After the write the module reads the weights back and fails if AWS does not show them.
  - Target groups the stack does not own keep their weight unless O(weights) names them by ARN.
    Exception, the first release onto a listener that forwards to a target group the stack does
    not own - as long as no version of the stack in the action has an older version of the stack
    to roll back to, the foreign group with the largest weight is treated as the previous version
    (it gets the rest of O(percent), goes to 0 when the stack takes all the traffic, is returned as
    RV(previous_version) and can be rolled back to with O(to_version) = its ARN). It is never deleted.
  - A listener or rule whose action is a fixed response or a redirect (for example a 503 before
    the first release) gets a forward action instead; the replaced action is returned in
    RV(replaced_action) and shown in the diff's C(before).
  - Stickiness and every other setting of the action and of the rule (conditions, priority,
    authentication actions) are kept; only the forward's target groups and weights change.
  - B(Percent mapping) - O(to_version) gets V(floor(percent * T / 100 + 1/2)) (round half up) of a
    pool of T weight units and its counterpart (the live version, or the next serving or the
    previous version when O(to_version) is already live) exactly the rest; other versions of the
    stack get 0. T is 100, so weights equal percents, except when target groups the stack does not
    own carry traffic on the same action; then T is the current sum of the stack's weights (100 if
    0, at most 999) so that those groups keep their share.
  - Limits are checked before any API call - ALB weights 0 to 999, Route53 weights 0 to 255, at
    most 5 target groups in a forward action.
  - Needs C(elasticloadbalancing:DescribeListeners), C(DescribeRules), C(DescribeTargetHealth),
    C(ModifyListener) or C(ModifyRule), and for attach rules C(CreateRule), C(DeleteRule),
    C(AddTags) (tags on create) and C(DescribeTags); for Route53 C(route53:ListResourceRecordSets),
    C(ChangeResourceRecordSets) and C(GetChange); and the discovery permissions of
    M(cattle.aws.fleet_info).
author:
  - cattle.aws developers (@cattle-aws)
options:
  listener_arn:
    description: ARN of the listener whose default action forwards the traffic.
    type: str
  rule_arn:
    description: ARN of the listener rule whose actions forward the traffic.
    type: str
  route53:
    description:
      - The Route53 weighted record sets to switch instead of an ALB. One record set per
        version, with C(SetIdentifier) = the version; all changes go in one change batch, and the
        module waits until Route53 reports it C(INSYNC).
    type: dict
    suboptions:
      zone_id:
        description: ID of the hosted zone.
        type: str
        required: true
      record_name:
        description: Name of the record, for example V(www.example.com).
        type: str
        required: true
      record_type:
        description: Type of the record.
        type: str
        choices: [A, AAAA, CNAME]
        default: A
      ttl:
        description: TTL of records created from a plain DNS value.
        type: int
        default: 60
      targets:
        description:
          - Per version, what its record points at - a DNS value (string), or an alias
            (a dictionary with C(dns_name), C(hosted_zone_id) and optionally
            C(evaluate_target_health)).
          - Needed for versions that have no record yet; an existing record keeps its value when
            the version is not listed.
        type: dict
        default: {}
  to_version:
    description:
      - The version to give O(percent) of the traffic to; the live version gets the rest.
      - May be the ARN of a target group the stack does not own that the action forwards to
        (rollback to the application served before the first release).
      - Mutually exclusive with O(weights), O(detach) and O(restore_action).
      - A string. A YAML number is refused (V(1.10) would be read as V(1.1)), so quote it.
    type: raw
  percent:
    description:
      - Share of the traffic for O(to_version), 0 to 100. Defaults to 100 when O(to_version) is given.
      - V(0) on an action that is not a forward yet creates an attach rule (see the description)
        instead of refusing, since there is no other version to give the traffic to.
    type: float
  weights:
    description:
      - Explicit weights, version (or the ARN of a target group the stack does not own) to weight;
        every other version of the stack gets 0. Quote versions in YAML (V('1.10')).
    type: dict
  detach:
    description:
      - Versions whose attach rules to delete; the listener's actions and the weights are not
        changed. Mutually exclusive with O(to_version) and O(weights). ALB only.
      - Versions in the forward action have no attach rule (it is deleted by the shift that puts
        them there); a version without attach rule is no change.
      - Strings; YAML numbers are refused, quote them.
    type: list
    elements: raw
  restore_action:
    description:
      - Undo a first release - the fixed-response or redirect action that the first shift replaced
        becomes the listener's or rule's action again, in place of the forward action. ALB only.
      - Give it as the first shift returned it (RV(replaced_action)), or as M(cattle.aws.traffic_point_info)
        returned it before the shift (one item of its C(actions), snake_case).
      - Refused when the forward action also sends traffic to target groups the stack does not own.
      - No guard and no weights - the stack's versions lose all their traffic, their fleets are not
        touched. A point that does not forward (restored already) is no change.
      - Mutually exclusive with O(to_version), O(weights) and O(detach).
    type: dict
  prune_zero:
    description:
      - Remove the stack's weight-0 target groups (record sets) from the action, except the
        previously live version, the rollback target, O(to_version) and the versions named in O(weights).
    type: bool
    default: false
  force:
    description:
      - Skip the guard; give traffic to target groups without healthy targets (with a warning).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Observes, plans and runs the guard; makes no change and returns the planned result.
  diff_mode:
    support: full
    description: The diff shows the weights (and a replaced action) before and after.
  idempotent:
    support: full
    description: >-
      Reports a change only when the weights (or the action type) really change, or an attach
      rule is created or deleted; an existing attach rule of the version is reused.
extends_documentation_fragment:
  - cattle.aws.direct_execution
  - cattle.aws.stack
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Attach 1.5.0 at weight 0, so the load balancer health-checks it
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    listener_arn: "{{ listener_arn }}"
    to_version: "1.5.0"
    percent: 0

- name: First release - attach 1.0.0 without traffic (attach rule); the listener keeps its 503
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    listener_arn: "{{ listener_arn }}"
    to_version: "1.0.0"
    percent: 0

- name: First release failed its gate - delete 1.0.0's attach rule, the listener untouched
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    listener_arn: "{{ listener_arn }}"
    detach: ["1.0.0"]

- name: First release failed after its shift - the listener answers its fixed response again
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    listener_arn: "{{ listener_arn }}"
    restore_action: "{{ first_shift.replaced_action }}"

- name: Canary - 10 percent to 1.5.0
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    listener_arn: "{{ listener_arn }}"
    to_version: "1.5.0"
    percent: 10

- name: Roll back to the previous version in one write
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    listener_arn: "{{ listener_arn }}"
    to_version: "{{ shift.previous_version }}"
    percent: 100

- name: Explicit weights on a listener rule, dropping old weight-0 target groups
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    rule_arn: "{{ rule_arn }}"
    weights:
      "1.5.0": 90
      "1.4.2": 10
    prune_zero: true

- name: DNS switch with Route53 weighted records
  cattle.aws.traffic_shift:
    app: shop
    environment: prod
    route53:
      zone_id: Z0123456789ABC
      record_name: shop.example.com
      record_type: CNAME
      targets:
        "1.4.2": blue-lb.example.com
        "1.5.0": green-lb.example.com
    to_version: "1.5.0"
"""

RETURN = r"""
before:
  description:
    - Weights before, version to weight; target groups the stack does not own by ARN (record sets
      by set identifier). Empty when the action was not a forward yet.
  returned: always
  type: dict
  sample: {"1.4.2": 100, "1.5.0": 0}
after:
  description: Weights after the shift (planned ones in check mode), same keys as RV(before).
  returned: always
  type: dict
  sample: {"1.4.2": 0, "1.5.0": 100}
replaced_action:
  description: The fixed-response or redirect action that the first shift replaced by a forward.
  returned: always
  type: dict
  sample: {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}
live_version:
  description: The live version after the shift (highest weight); an ARN when a foreign target group is live.
  returned: always
  type: str
  sample: "1.5.0"
previous_version:
  description: The rollback target after the shift.
  returned: always
  type: str
  sample: "1.4.2"
actions:
  description:
    - The writes made (planned in check mode), in order; empty when nothing changes. Each item has
      C(action) (V(modify_listener), V(modify_rule), V(change_resource_record_sets),
      V(create_attach_rule) or V(delete_attach_rule)) and, for a forward write, C(arn) and
      C(target_groups) (C(key), C(target_group_arn), C(name), C(weight)), for Route53 C(zone_id),
      C(record_name), C(record_type) and C(changes), for an attach rule C(version),
      C(listener_arn), C(priority), C(target_group_arn) and C(rule_arn) (V(null) for a rule that
      check mode would create).
    - For O(restore_action), C(target_groups) is empty, C(restored_action) is the action put back and
      C(removed) lists the forward's target groups (C(key), C(target_group_arn), C(weight)).
  returned: always
  type: list
  elements: dict
attach_rules:
  description:
    - The stack's attach rules after the call (planned ones in check mode) - listener rules that
      attach a version's target group to the load balancer without any traffic.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The version whose target group the rule attaches.
      type: str
    rule_arn:
      description: ARN of the rule; V(null) for a rule that check mode would create.
      type: str
    listener_arn:
      description: The listener the rule belongs to.
      type: str
    priority:
      description: The rule's priority.
      type: str
    target_group_arn:
      description: The target group the rule forwards to.
      type: str
  sample: [{"version": "1.0.0", "priority": "50000",
            "rule_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/0123456789abcdef/0123456789abcdef/0123456789abcdef",
            "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef",
            "target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-prod-1-0-0-0a1b2c3d/0123456789abcdef"}]
health:
  description: Health of the target groups whose share of the traffic grows, checked before the write.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Version (or ARN) of the target group.
      type: str
    target_group_arn:
      description: ARN of the target group.
      type: str
    name:
      description: Name of the target group.
      type: str
    healthy:
      description: Number of healthy targets.
      type: int
    total:
      description: Number of registered targets.
      type: int
    states:
      description: Number of targets per state.
      type: dict
    targets:
      description: Each target's id, port, state, reason and description.
      type: list
      elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError

from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.traffic import shift_traffic
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory


def main():
    argument_spec = dict(
        app=dict(type="str", required=True),
        environment=dict(type="str"),
        listener_arn=dict(type="str"),
        rule_arn=dict(type="str"),
        route53=dict(type="dict", options=dict(
            zone_id=dict(type="str", required=True),
            record_name=dict(type="str", required=True),
            record_type=dict(type="str", choices=["A", "AAAA", "CNAME"], default="A"),
            ttl=dict(type="int", default=60),
            targets=dict(type="dict", default={}),
        )),
        to_version=dict(type="raw"),
        percent=dict(type="float"),
        weights=dict(type="dict"),
        detach=dict(type="list", elements="raw"),
        restore_action=dict(type="dict"),
        prune_zero=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[["listener_arn", "rule_arn", "route53"], ["to_version", "weights", "detach", "restore_action"]],
        mutually_exclusive=[["listener_arn", "rule_arn", "route53"], ["to_version", "weights", "detach", "restore_action"],
                            ["percent", "weights"]],
        required_by={"percent": "to_version"},
    )
    client = client_factory(module)
    params = module.params

    desired = {k: params[k] for k in ("to_version", "percent", "weights", "detach", "restore_action", "prune_zero")}
    try:
        result, warnings = shift_traffic(
            client, params["app"], params["environment"], listener_arn=params["listener_arn"],
            rule_arn=params["rule_arn"], route53=params["route53"], desired=desired,
            force=params["force"], check_mode=module.check_mode,
        )
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)

    for warning in warnings:
        module.warn(warning)
    attach_before = result.pop("attach_rules_before")
    before = {"weights": result["before"]}
    after = {"weights": result["after"]}
    if result["replaced_action"]:
        before["replaced_action"] = result["replaced_action"]
    restored = [a["restored_action"] for a in result["actions"] if a.get("restored_action")]
    if restored:
        after["restored_action"] = restored[0]
    if attach_before or result["attach_rules"]:
        before["attach_rules"] = {a["version"]: a["priority"] for a in attach_before}
        after["attach_rules"] = {a["version"]: a["priority"] for a in result["attach_rules"]}
    result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
