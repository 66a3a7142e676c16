# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Attach rules: a version's target group on a load balancer without any traffic.

An ALB health-checks only the target groups that a listener default action or a listener rule
forwards to (the targets of any other group report ``unused``). Before the first release of a
stack, the serving action is not a forward (a fixed-response 503, a redirect), and a forward
needs a weight above 0 somewhere - so there is no way to put the new version into it at weight 0.

An attach rule fills that gap: a rule on the same listener that forwards to the version's target
group, whose only condition is an ``http-header`` ``X-Cattle-Attach`` equal to 64 random hex
characters (no request carries it: the value is never sent anywhere), at the lowest free
priority (from 50000 down), tagged with the ownership tags of the version plus
``cattle:role = attach-rule``. It never routes a request, but it makes the load balancer
health-check the group, so the health gate sees real target health before any traffic moves.

- traffic_shift creates it for ``to_version`` + ``percent=0`` on a non-forward action, removes it
  once the version is in the forward action (after the write and its read-back), and removes it
  on request (``detach``).
- Everything that deletes a target group (immutable_fleet state=absent, fleet_gc) deletes the
  attach rules of that group first: AWS refuses to delete a target group a rule uses.
- Only rules carrying our tags (`discovery.is_attach_rule`) are ever modified or deleted.
"""

from __future__ import annotations

import secrets

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import is_ansible_aws_error_code

from .discovery import ATTACH_HEADER
from .discovery import add_attach_rule_tags
from .discovery import attach_rule_view
from .discovery import is_attach_rule
from .errors import FleetError
from .naming import fleet_names
from .tags import ROLE_ATTACH_RULE
from .tags import TAG_NAME
from .tags import TAG_ROLE
from .tags import dict_to_tag_list
from .tags import ownership_tags
from . import traffic_api as api

MAX_PRIORITY = 50000  # ELBv2 listener rule priorities are 1 to 50000
PRIORITY_ATTEMPTS = 3  # another writer may take the free priority between the look-up and the create


def free_priority(rules):
    """The highest priority (50000 down) no rule of the listener uses; FleetError when full. Pure."""
    used = {int(r["Priority"]) for r in rules or [] if str(r.get("Priority", "")).isdigit()}
    for priority in range(MAX_PRIORITY, 0, -1):
        if priority not in used:
            return priority
    raise FleetError("The listener has no free rule priority left for an attach rule (1 to 50000 all used).")


def attach_rule_tags(app, environment, version):
    """Tags of a version's attach rule: the ownership tags plus cattle:role = attach-rule. Pure."""
    tags = ownership_tags(app, environment, version)
    tags[TAG_NAME] = fleet_names(app, environment, version)["name_tag"] + "-attach"
    tags[TAG_ROLE] = ROLE_ATTACH_RULE
    return tags


def attach_rule_request(target_group_arn, secret=None):
    """(Conditions, Actions) of an attach rule: a header no request carries, forward to the group."""
    conditions = [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": ATTACH_HEADER, "Values": [secret or secrets.token_hex(32)]}}]
    actions = [{"Type": "forward", "TargetGroupArn": target_group_arn}]
    return conditions, actions


def listener_rules(elbv2, listener_arn):
    """Every rule of the listener, with ``Tags`` read for the ones that look like attach rules."""
    rules = api.describe_listener_rules(elbv2, listener_arn)
    if rules is None:
        raise FleetError(f"Listener {listener_arn} not found: check listener_arn (or rule_arn).")
    for rule in rules:
        rule["ListenerArn"] = listener_arn
    return add_attach_rule_tags(elbv2, rules)


def owned_attach_rules(rules, app, environment):
    """The views (`discovery.attach_rule_view`) of the stack's attach rules among rules. Pure."""
    return [attach_rule_view(r) for r in rules or [] if is_attach_rule(r, app, environment)]


def create_attach_rule(elbv2, app, environment, action):
    """Create the attach rule of action (``create_attach_rule``); returns its view.

    Retries with the next free priority when another writer took the planned one (PriorityInUse).
    """
    conditions, actions = attach_rule_request(action["target_group_arn"])
    tags = dict_to_tag_list(attach_rule_tags(app, environment, action["version"]))
    priority = action["priority"]
    for attempt in range(PRIORITY_ATTEMPTS):
        try:
            rule = api.create_rule(elbv2, action["listener_arn"], int(priority), conditions, actions, tags)
            break
        except is_ansible_aws_error_code("PriorityInUse"):
            if attempt + 1 == PRIORITY_ATTEMPTS:
                raise
            priority = free_priority(listener_rules(elbv2, action["listener_arn"]))
    return {"rule_arn": rule["RuleArn"], "listener_arn": action["listener_arn"], "priority": str(rule.get("Priority", priority)),
            "version": action["version"], "target_group_arn": action["target_group_arn"]}


def delete_attach_rules(elbv2, app, environment, rule_arns):
    """Delete the given attach rules, each only after checking again that it is ours (tags).

    A rule that is gone already is skipped; a rule that is not an attach rule of the stack is
    refused (FleetError) - nothing we do not own is ever deleted.
    """
    deleted = []
    for arn in rule_arns:
        rule = api.describe_rule(elbv2, arn)
        if rule is None:
            continue
        rule["Tags"] = api.describe_tags(elbv2, [arn]).get(arn, [])
        if not is_attach_rule(rule, app, environment):
            raise FleetError(
                f"Refusing to delete listener rule {arn}: it is not an attach rule of this stack "
                "(ownership tags and cattle:role = attach-rule missing)."
            )
        if api.delete_rule(elbv2, arn):
            deleted.append(arn)
    return deleted
