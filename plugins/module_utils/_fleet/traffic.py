# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Traffic: move a stack's traffic between versions (ALB forward weights, or Route53 weights).

Three steps, the middle one pure:

- `observe(clients, app, environment, point)`: the traffic point (a listener's default actions,
  one listener rule, or the Route53 weighted record sets of one name and type) and the stack's
  fleets (`discovery.discover_stack`).
- `plan_shift(observed, desired)`: the weights after the shift, the ``before``/``after`` maps
  (version -> weight; target groups or record sets that the stack does not own by ARN / set
  identifier), the live and previous versions after the shift, and the actions (at most one write).
- `check_health` (the guard, right before the write) and `apply_plan` (one modify_listener /
  modify_rule / change_resource_record_sets call, then a read-back).

Percent mapping (``to_version`` + ``percent``): a pool of ``T`` weight units is split between
``to_version`` and its counterpart (the live version, or when ``to_version`` is already live the
next serving version, else the previous one). ``to_version`` gets
``floor(percent * T / 100 + 1/2)`` (round half up), the counterpart exactly the rest, so the two
always sum to ``T``. ``T`` is 100 (weights then equal percents), except when target groups the
stack does not own carry traffic on the same action: then ``T`` is the current sum of the stack's
weights (100 if that is 0, at most 999), so those foreign groups keep their share of the traffic.

Attach rules (ALB only, see traffic_attach.py): ``to_version`` + ``percent=0`` on a point whose action
is not a forward yet (the 503 before the first release) creates an attach rule for the version
instead of touching the action, so the load balancer health-checks it without any traffic. Once a
version is in the forward action, its attach rules are deleted (after the write and its
read-back); ``detach`` deletes the attach rules of the given versions and nothing else.

Restore (ALB only): ``restore_action`` undoes a first release - the forward action, whose target
groups must all be the stack's, becomes again the fixed-response or redirect action that the first
shift replaced (its ``replaced_action``).

Foreign keys (target groups / record sets the stack does not own) keep their weight unless named,
except the one a first release adopts (see `_adopted`): it is shifted like a previous version.
The live key is the largest weight among the stack's versions and the adopted key (ties: the
newest version). The guard checks every key whose share of the traffic grows.
"""

from __future__ import annotations

import copy
import math
import time
from fractions import Fraction

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible.module_utils.common.dict_transformations import snake_dict_to_camel_dict

from .discovery import forward_targets
from .discovery import listener_arn_of_rule
from .discovery import previous_version as stack_previous_version
from .discovery import discover_stack
from .discovery import get_client
from .discovery import sort_fleets
from .discovery import target_group_name_from_arn
from .errors import FleetError
from . import traffic_api as api
from . import traffic_attach

ALB_MAX_WEIGHT = 999
ALB_MAX_TARGET_GROUPS = 5
ROUTE53_MAX_WEIGHT = 255
DEFAULT_POOL = 100
ROUTE53_WAIT_SECONDS = 300
ROUTE53_POLL_SECONDS = 2
ROUTE53_RECORD_TYPES = ("A", "AAAA", "CNAME")

# Terminal actions that a first shift replaces with a forward.
_REPLACEABLE = ("fixed-response", "redirect")


# --------------------------------------------------------------------------------------------
# Validation (before any call)
# --------------------------------------------------------------------------------------------


def max_weight(backend):
    return ROUTE53_MAX_WEIGHT if backend == "route53" else ALB_MAX_WEIGHT


def validate_desired(desired, backend="alb"):
    """Check to_version/percent/weights against the limits; return a normalised copy. Pure."""
    desired = dict(desired)
    limit = max_weight(backend)
    to_version = desired.get("to_version")
    weights = desired.get("weights")
    detach = desired.get("detach")
    restore = desired.get("restore_action")
    if sum(x is not None for x in (to_version, weights, detach, restore)) != 1:
        raise FleetError("Give either to_version (with percent), weights, detach or restore_action: exactly one of them.")
    desired["prune_zero"] = bool(desired.get("prune_zero"))
    if restore is not None:
        if isinstance(restore, dict) and "type" in restore and "Type" not in restore:
            # As cattle.aws.traffic_point_info returns the point's actions (snake_case).
            restore = snake_dict_to_camel_dict(restore, capitalize_first=True)
        if backend == "route53":
            raise FleetError("restore_action puts back a listener or rule action; Route53 has none: give listener_arn or rule_arn.")
        if not isinstance(restore, dict) or restore.get("Type") not in _REPLACEABLE:
            raise FleetError(
                "restore_action must be the fixed-response or redirect action that the first shift replaced (its "
                f"replaced_action, with Type {' or '.join(_REPLACEABLE)}); got {restore!r}."
            )
        desired.update(restore_action=dict(restore), to_version=None, percent=None, weights=None, detach=None)
        return desired
    if detach is not None:
        if backend == "route53":
            raise FleetError("detach removes attach rules of an ALB listener; Route53 has none: give listener_arn or rule_arn.")
        if not isinstance(detach, (list, tuple)) or not detach:
            raise FleetError("detach must be a non-empty list of versions whose attach rules to delete.")
        for version in detach:
            if not isinstance(version, str):
                raise FleetError(f"detach must list versions as strings; got {version!r}. Quote it in YAML.")
        desired.update(detach=list(detach), to_version=None, percent=None, weights=None, restore_action=None)
        return desired
    if to_version is not None:
        if isinstance(to_version, (int, float)) and not isinstance(to_version, bool):
            # YAML turns `to_version: 1.10` into the float 1.1: refuse rather than shift to another version.
            raise FleetError(
                f"to_version must be a version string or a target group ARN; got the number {to_version!r}. "
                f"Quote it in YAML (to_version: '{to_version}')."
            )
        to_version = str(to_version)
        percent = desired.get("percent")
        percent = 100 if percent is None else percent
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
            raise FleetError(f"percent must be a number from 0 to 100; got {percent!r}.")
        desired.update(to_version=to_version, percent=percent, weights=None)
    else:
        if not isinstance(weights, dict) or not weights:
            raise FleetError("weights must be a non-empty dictionary of version (or foreign target group ARN) to weight.")
        clean = {}
        for key, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= limit:
                raise FleetError(
                    f"weights[{key!r}] must be an integer from 0 to {limit} "
                    f"({'Route53 record weights' if backend == 'route53' else 'ALB forward weights'}); got {weight!r}."
                )
            clean[str(key)] = weight
        if not any(clean.values()):
            raise FleetError(
                "weights gives every version weight 0: name at least one version with a weight above 0 "
                "(to attach a version without traffic, give to_version with percent=0)."
            )
        desired.update(weights=clean, to_version=None, percent=None)
    desired["detach"] = None
    desired["restore_action"] = None
    return desired


def percent_split(percent, pool):
    """(weight of to_version, weight of the counterpart): round half up, summing to pool. Pure."""
    share = Fraction(str(percent)) * pool / 100
    mine = int(math.floor(share + Fraction(1, 2)))
    mine = max(0, min(pool, mine))
    return mine, pool - mine


# --------------------------------------------------------------------------------------------
# Observe
# --------------------------------------------------------------------------------------------


def _record_key(name):
    name = (name or "").lower()
    return name if name.endswith(".") else name + "."


ROUTE53_DEFAULT_TTL = 60
ROUTE53_MAX_TTL = 2147483647  # Route53's limit for a record's TTL


def _route53_point(spec):
    record_type = (spec.get("record_type") or "A").upper()
    if record_type not in ROUTE53_RECORD_TYPES:
        raise FleetError(f"route53.record_type must be one of {', '.join(ROUTE53_RECORD_TYPES)}; got {record_type!r}.")
    for option in ("zone_id", "record_name"):
        if not spec.get(option):
            raise FleetError(f"route53.{option} is required.")
    ttl = spec.get("ttl")
    ttl = ROUTE53_DEFAULT_TTL if ttl is None else ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= ROUTE53_MAX_TTL:
        raise FleetError(f"route53.ttl must be a whole number of seconds from 0 to {ROUTE53_MAX_TTL}; got {ttl!r}.")
    return {
        "type": "route53",
        "zone_id": spec["zone_id"],
        "record_name": _record_key(spec["record_name"]),
        "record_type": record_type,
        "ttl": ttl,
        "targets": dict(spec.get("targets") or {}),
    }


def observe_point(clients, listener_arn=None, rule_arn=None, route53=None):
    """The traffic point as a dict (see module docstring); FleetError when it does not exist."""
    if route53:
        point = _route53_point(route53)
        client = get_client(clients, "route53")
        records = api.list_record_sets(
            client, point["zone_id"], point["record_name"], point["record_type"],
            lambda r: _record_key(r.get("Name")) == point["record_name"] and r.get("Type") == point["record_type"],
        )
        if records is None:
            raise FleetError(f"Route53 hosted zone {point['zone_id']} not found: check route53.zone_id.")
        point["records"] = records
        return point
    elbv2 = get_client(clients, "elbv2")
    if rule_arn:
        rule = api.describe_rule(elbv2, rule_arn)
        if rule is None:
            raise FleetError(f"Listener rule {rule_arn} not found: check rule_arn.")
        return {"type": "rule", "arn": rule_arn, "actions": rule.get("Actions", []), "priority": rule.get("Priority")}
    listener = api.describe_listener(elbv2, listener_arn)
    if listener is None:
        raise FleetError(f"Listener {listener_arn} not found: check listener_arn.")
    return {"type": "listener", "arn": listener_arn, "actions": listener.get("DefaultActions", [])}


def load_balancer_arn_of_listener(listener_arn):
    """The load balancer ARN of a listener ARN (``...:listener/app/lb/id/listener-id``)."""
    return listener_arn.replace(":listener/", ":loadbalancer/", 1).rsplit("/", 1)[0]


def describe_point(clients, listener_arn=None, rule_arn=None):
    """The ALB listener or rule as cattle.aws.traffic_point_info returns it; FleetError when it does not exist."""
    point = observe_point(clients, listener_arn=listener_arn, rule_arn=rule_arn)
    listener = point["arn"] if point["type"] == "listener" else listener_arn_of_rule(point["arn"])
    actions = sorted(point["actions"], key=lambda a: a.get("Order", 0))
    fixed = next((a.get("FixedResponseConfig") for a in actions if a.get("Type") == "fixed-response"), None)
    return {
        "type": point["type"],
        "arn": point["arn"],
        "listener_arn": listener,
        "load_balancer_arn": load_balancer_arn_of_listener(listener),
        "priority": point.get("priority"),
        "forward": [{"target_group_arn": arn, "weight": weight} for arn, weight in forward_targets(actions)],
        "fixed_response": None if fixed is None else {
            "status_code": fixed.get("StatusCode"), "content_type": fixed.get("ContentType"),
            "message_body": fixed.get("MessageBody")},
        "actions": [camel_dict_to_snake_dict(action) for action in actions],
    }


def observe(clients, app, environment=None, listener_arn=None, rule_arn=None, route53=None):
    """The traffic point and the stack's fleets: {"backend", "point", "fleets"}."""
    point = observe_point(clients, listener_arn=listener_arn, rule_arn=rule_arn, route53=route53)
    # The fleets' parts only: the weights are the point's, the attach rules that matter are on its listener.
    stack = discover_stack(clients, app, environment, include_launch_template_data=False, include_images=False,
                           include_listeners=False)
    observed = {
        "app": app,
        "environment": environment,
        "backend": "route53" if point["type"] == "route53" else "alb",
        "point": point,
        "fleets": stack["fleets"],
        "attach_rules": [],
    }
    if point["type"] == "route53":
        return observed
    point["listener_arn"] = point["arn"] if point["type"] == "listener" else listener_arn_of_rule(point["arn"])
    # The stack's attach rules on the point's listener (deleted once their version is in the forward
    # action), and its rules' priorities (a first release's attach rule needs a free one).
    rules = traffic_attach.listener_rules(get_client(clients, "elbv2"), point["listener_arn"])
    observed["listener_rules"] = rules
    observed["attach_rules"] = traffic_attach.owned_attach_rules(rules, app, environment)
    return observed


# --------------------------------------------------------------------------------------------
# Plan (pure)
# --------------------------------------------------------------------------------------------


def _adopted(entries, stack_order, fleets):
    """The target group (record set) the stack does not own that a first release adopts, or None.

    While no version of the stack at the point has an older version of the stack to roll back
    to, the foreign key with the largest weight (ties: the first) is treated as the stack's
    previous version: it gets the rest of percent, goes to 0 when the stack takes
    all the traffic and is the rollback target. Once the stack has a version of its own to roll
    back to, foreign keys keep their weight unless named.
    """
    stack = set(stack_order)
    foreign = [(w, -i, k) for i, (k, w) in enumerate(entries) if k not in stack]
    if not foreign:
        return None
    if any(stack_previous_version(fleets, k) for k, dummy in entries if k in stack):
        return None
    return max(foreign)[2]


def _live(entries, stack_order, adopted=None):
    """The live key of [(key, weight)]: the largest weight among the stack's versions and the
    adopted key (ties: the newest version, the adopted key last); None when none has weight."""
    rank = {v: i for i, v in enumerate(stack_order)}
    members = [(w, -rank.get(k, len(rank)), k) for k, w in entries if (k in rank or k == adopted) and w > 0]
    return max(members)[2] if members else None


def _previous(live, fleets, stack_order, adopted=None):
    """Rollback target when live is live: the newest older complete, non-failed version of the
    stack, else the adopted key."""
    if live is not None and live in stack_order:
        previous = stack_previous_version(fleets, live)
        if previous is not None:
            return previous
    return adopted if adopted != live else None


def _current_entries(observed):
    """[(key, weight)] of the point now, {key: ref}, stack keys newest first, and the forward flag."""
    fleets = sort_fleets(observed["fleets"])
    point = observed["point"]
    if observed["backend"] == "route53":
        order = [f["version"] for f in fleets]
        order += sorted(k for k in point["targets"] if k not in order)
        entries = [(r["SetIdentifier"], int(r.get("Weight", 0))) for r in point["records"] if "SetIdentifier" in r]
        return entries, {k: k for k, dummy in entries}, {v: v for v in order}, order, True
    version_of_arn = {f["target_group"]["arn"]: f["version"] for f in fleets if f.get("target_group")}
    order = [f["version"] for f in fleets if f.get("target_group")]
    targets = forward_targets(point["actions"])
    entries = [(version_of_arn.get(arn, arn), weight) for arn, weight in targets]
    refs = {version_of_arn.get(arn, arn): arn for arn, dummy in targets}
    stack_refs = {v: a for a, v in version_of_arn.items()}
    return entries, refs, stack_refs, order, bool(targets)


def _resolve(key, observed, current_keys, stack_refs, order, option):
    """Check that key names something that can take traffic; FleetError otherwise."""
    if key in stack_refs or key in current_keys:
        return key
    if observed["backend"] == "alb" and key.startswith("arn:") and ":targetgroup/" in key:
        return key  # a target group the stack does not own, named by ARN
    fleets = observed["fleets"]
    known = [v for v in order if v in stack_refs]
    without_tg = [f["version"] for f in fleets if f["version"] == key]
    if without_tg and observed["backend"] == "alb":
        raise FleetError(
            f"Version {key} of {option} has no target group: it cannot take traffic. Provision it first "
            "(cattle.aws.immutable_fleet)."
        )
    raise FleetError(
        f"Unknown version {key!r} in {option}: the stack has "
        f"{', '.join(known) if known else 'no version that can take traffic'}"
        + ("" if observed["backend"] == "route53" else "; name a target group the stack does not own by its ARN")
        + "."
    )


def _desired_weights(observed, desired, entries, stack_refs, order):
    """{key: weight} after the shift, the keys named (directly or as counterpart), the adopted key
    and the live key before."""
    fleets = observed["fleets"]
    weights = dict(entries)
    current_keys = list(weights)
    limit = max_weight(observed["backend"])
    after = dict(weights)
    to_version = desired.get("to_version")
    if to_version is not None:
        to_version = _resolve(to_version, observed, current_keys, stack_refs, order, "to_version")
    adopted = _adopted(entries, order, fleets)
    live_before = _live(entries, order, adopted)
    members = set(stack_refs) | ({adopted} if adopted else set())
    if to_version is None:
        resolved = {
            _resolve(k, observed, current_keys, stack_refs, order, "weights"): w for k, w in desired["weights"].items()
        }
        for key in current_keys:
            if key in members:
                after[key] = 0
        after.update(resolved)
        return after, list(resolved), adopted, live_before

    percent = desired["percent"]
    if live_before is not None and live_before != to_version:
        counterpart = live_before
    else:
        others = sorted(((w, k) for k, w in entries if k != to_version and w > 0 and k in members), reverse=True)
        counterpart = others[0][1] if others else _previous(to_version, fleets, order, adopted)
    participants = {k for k in current_keys if k in members} | {to_version}
    if counterpart is not None:
        participants.add(counterpart)
    foreign_serving = [k for k in current_keys if k not in participants and weights[k] > 0]
    pool = DEFAULT_POOL
    if foreign_serving:
        pool = min(sum(weights.get(k, 0) for k in participants) or DEFAULT_POOL, limit)
    mine, rest = percent_split(percent, pool)
    if rest and counterpart is None:
        raise FleetError(
            f"No other version serves traffic here, so the remaining {100 - percent}% has nowhere to go: "
            f"shift to_version {to_version} with percent 100, or give explicit weights."
        )
    for key in participants:
        after[key] = 0
    after[to_version] = mine
    named = [to_version]
    if counterpart is not None and (rest or counterpart in weights):
        after[counterpart] = rest
        named.append(counterpart)
    return after, named, adopted, live_before


def _ordered(entries, after, named):
    keys = [k for k, dummy in entries]
    keys += [k for k in named if k not in keys]
    return [(k, after[k]) for k in keys if k in after]


def _shares(entries):
    total = sum(w for dummy, w in entries)
    return {k: Fraction(w, total) if total else Fraction(0) for k, w in entries}


def plan_shift(observed, desired):
    """observed (see `observe`) + desired (see `validate_desired`) -> the plan. Pure.

    Returns a dict: ``before``/``after`` (key -> weight; key = version, or the ARN / set
    identifier of what the stack does not own), ``replaced_action`` (a non-forward action the
    first shift replaces), ``live_version``/``previous_version`` after the shift,
    ``live_version_before``, ``changed``, ``actions`` (the user-facing plan: empty or one write),
    ``raised`` (keys whose share of the traffic grows: the guard checks them), ``refs`` (key ->
    target group ARN or set identifier) and ``request`` (the boto3 parameters of the write).
    """
    backend = observed["backend"]
    desired = validate_desired(desired, backend)
    entries, refs, stack_refs, order, is_forward = _current_entries(observed)
    if desired["detach"] is not None:
        return _plan_detach(observed, desired, entries, stack_refs, order)
    if desired["restore_action"] is not None:
        return _plan_restore(observed, desired, entries, stack_refs, order, is_forward)
    if backend == "alb" and not is_forward and desired["to_version"] is not None and desired["percent"] == 0:
        return _plan_attach(observed, desired, entries, stack_refs, order)
    after_map, named, adopted, live_before = _desired_weights(observed, desired, entries, stack_refs, order)
    after = _ordered(entries, after_map, named)

    live_after = _live(after, order, adopted)
    previous_after = _previous(live_after, observed["fleets"], order, adopted)
    if desired["prune_zero"]:
        keep = set(named) | {live_before, live_after, previous_after}
        after = [(k, w) for k, w in after if w > 0 or k not in stack_refs or k in keep]

    for key, weight in after:
        if weight > max_weight(backend):
            raise FleetError(f"Weight {weight} for {key} is above the maximum {max_weight(backend)}.")
    for key in (k for k, dummy in after):
        refs.setdefault(key, stack_refs.get(key, key))

    before_shares = _shares(entries) if is_forward else {}
    after_shares = _shares(after)
    raised = [k for k, w in after if w > 0 and after_shares[k] > before_shares.get(k, Fraction(0))]

    plan = {
        "backend": backend,
        "before": dict(entries),
        "after": dict(after),
        "replaced_action": None,
        "live_version_before": live_before,
        "live_version": live_after,
        "previous_version": previous_after,
        "raised": raised,
        "refs": {k: refs[k] for k, dummy in after},
        "actions": [],
        "request": None,
        "attach_rules_before": list(observed.get("attach_rules") or []),
        "attach_rules": list(observed.get("attach_rules") or []),
    }
    if backend == "route53":
        _plan_route53(observed["point"], entries, after, plan)
    else:
        _plan_alb(observed["point"], entries, after, is_forward, plan)
        # A version in the forward action is health-checked through it: its attach rules go.
        in_forward = {plan["refs"][k] for k, dummy in after}
        _plan_delete_attach_rules(plan, [a for a in plan["attach_rules"] if a["target_group_arn"] in in_forward])
    plan["changed"] = bool(plan["actions"])
    return plan


def _plan_delete_attach_rules(plan, rules):
    for rule in rules:
        plan["actions"].append({"action": "delete_attach_rule", "version": rule["version"], "rule_arn": rule["rule_arn"],
                                "listener_arn": rule["listener_arn"], "priority": rule["priority"],
                                "target_group_arn": rule["target_group_arn"]})
    gone = {r["rule_arn"] for r in rules}
    plan["attach_rules"] = [a for a in plan["attach_rules"] if a["rule_arn"] not in gone]


def _base_plan(observed, entries, stack_refs, order):
    """A plan that leaves the weights as they are (attach / detach). Pure."""
    adopted = _adopted(entries, order, observed["fleets"])
    live = _live(entries, order, adopted)
    refs = dict(stack_refs)
    refs.update({k: k for k, dummy in entries if k not in refs})
    return {
        "backend": observed["backend"],
        "before": dict(entries),
        "after": dict(entries),
        "replaced_action": None,
        "live_version_before": live,
        "live_version": live,
        "previous_version": _previous(live, observed["fleets"], order, adopted),
        "raised": [],
        "refs": {k: refs[k] for k, dummy in entries},
        "actions": [],
        "request": None,
        "attach_rules_before": list(observed.get("attach_rules") or []),
        "attach_rules": list(observed.get("attach_rules") or []),
    }


def _plan_attach(observed, desired, entries, stack_refs, order):
    """percent=0 on a point that does not forward yet: an attach rule for to_version. Pure."""
    version = desired["to_version"]
    if version not in stack_refs:
        _resolve(version, observed, [k for k, dummy in entries], stack_refs, order, "to_version")
        raise FleetError(
            f"to_version {version} with percent=0 attaches a version of the stack through an attach rule; "
            f"{version} is not a version of the stack with a target group."
        )
    plan = _base_plan(observed, entries, stack_refs, order)
    point = observed["point"]
    target_group_arn = stack_refs[version]
    mine = [a for a in plan["attach_rules"] if a["version"] == version and a["listener_arn"] == point["listener_arn"]]
    good = [a for a in mine if a["target_group_arn"] == target_group_arn]
    _plan_delete_attach_rules(plan, [a for a in mine if a not in good[:1]])
    if not good:
        priority = traffic_attach.free_priority(observed.get("listener_rules") or [])
        action = {"action": "create_attach_rule", "version": version, "listener_arn": point["listener_arn"],
                  "priority": str(priority), "target_group_arn": target_group_arn,
                  "name": target_group_name_from_arn(target_group_arn)}
        plan["actions"].append(action)
        plan["attach_rules"].append({"rule_arn": None, "listener_arn": point["listener_arn"], "priority": str(priority),
                                     "version": version, "target_group_arn": target_group_arn})
    plan["changed"] = bool(plan["actions"])
    return plan


def _plan_detach(observed, desired, entries, stack_refs, order):
    """detach: delete the attach rules of the given versions; the traffic point is not touched. Pure."""
    known = set(stack_refs) | {f["version"] for f in observed["fleets"]} | {a["version"] for a in observed.get("attach_rules") or []}
    unknown = [v for v in desired["detach"] if v not in known]
    if unknown:
        raise FleetError(f"Unknown version {', '.join(unknown)} in detach: the stack has {', '.join(order) or 'no version'}.")
    plan = _base_plan(observed, entries, stack_refs, order)
    _plan_delete_attach_rules(plan, [a for a in plan["attach_rules"] if a["version"] in desired["detach"]])
    plan["changed"] = bool(plan["actions"])
    return plan


def _plan_restore(observed, desired, entries, stack_refs, order, is_forward):
    """restore_action: the forward action becomes the action the first shift replaced. Pure.

    Only the stack's own target groups may lose their traffic this way; a point that does not
    forward (restored already) is left as it is.
    """
    plan = _base_plan(observed, entries, stack_refs, order)
    if not is_forward:
        return dict(plan, changed=False)
    foreign = [k for k, dummy in entries if k not in stack_refs]
    if foreign:
        raise FleetError(
            f"restore_action would take the traffic from target groups the stack does not own ({', '.join(foreign)}): "
            "it only undoes a first release, whose forward action holds the stack's versions only. "
            "Shift with to_version or weights instead."
        )
    point = observed["point"]
    restored = copy.deepcopy(desired["restore_action"])
    actions = []
    for action in copy.deepcopy(list(point["actions"])):
        if action.get("Type") == "forward":
            restored.pop("Order", None)
            if "Order" in action:
                restored["Order"] = action["Order"]
            action = restored
        actions.append(_writable(action))
    plan.update(after={}, live_version=None, previous_version=None, request={"actions": actions, "targets": []})
    plan["actions"].append({
        "action": "modify_listener" if point["type"] == "listener" else "modify_rule",
        "arn": point["arn"],
        "target_groups": [],
        "restored_action": desired["restore_action"],
        "removed": [{"key": k, "target_group_arn": stack_refs[k], "weight": w} for k, w in entries],
    })
    plan["changed"] = True
    return plan


def _plan_alb(point, entries, after, is_forward, plan):
    if len(after) > ALB_MAX_TARGET_GROUPS:
        raise FleetError(
            f"The forward action would hold {len(after)} target groups ({', '.join(k for k, dummy in after)}); "
            f"an ALB forward action holds at most {ALB_MAX_TARGET_GROUPS}. Set prune_zero=true to drop the "
            "stack's weight-0 target groups, or remove old versions (cattle.aws.fleet_gc)."
        )
    if is_forward and dict(entries) == dict(after) and len(entries) == len(after):
        return
    targets = [(plan["refs"][k], w) for k, w in after]
    actions, replaced = build_actions(point["actions"], targets)
    plan["replaced_action"] = replaced
    plan["request"] = {"actions": actions, "targets": targets}
    action = {
        "action": "modify_listener" if point["type"] == "listener" else "modify_rule",
        "arn": point["arn"],
        "target_groups": [
            {"key": k, "target_group_arn": plan["refs"][k], "name": target_group_name_from_arn(plan["refs"][k]),
             "weight": w}
            for k, w in after
        ],
    }
    if replaced is not None:
        action["replaced_action"] = replaced
    plan["actions"].append(action)


def _writable(action):
    """action as it can be written back: describe never returns an authenticate-oidc client secret."""
    if action.get("Type") == "authenticate-oidc":
        config = action.get("AuthenticateOidcConfig") or {}
        if "ClientSecret" not in config:
            config["UseExistingClientSecret"] = True
    return action


def build_actions(actions, targets):
    """The point's actions with the forward's target groups set to targets [(arn, weight)]. Pure.

    Everything else is kept: the other actions (authenticate-*), their order and the forward's
    stickiness. A fixed-response or redirect action becomes a forward (same Order); it is
    returned as the replaced action. Returns (new actions, replaced action or None).
    """
    new_actions = []
    replaced = None
    forward_config = {"TargetGroups": [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in targets]}
    has_forward = any(a.get("Type") == "forward" for a in actions or [])
    for action in copy.deepcopy(list(actions or [])):
        if action.get("Type") == "forward":
            action.pop("TargetGroupArn", None)
            config = action.get("ForwardConfig") or {}
            config.update(forward_config)
            action["ForwardConfig"] = config
        elif action.get("Type") in _REPLACEABLE and not has_forward and replaced is None:
            replaced = action
            action = {"Type": "forward", "ForwardConfig": dict(forward_config)}
            if "Order" in replaced:
                action["Order"] = replaced["Order"]
        new_actions.append(_writable(action))
    if not any(a.get("Type") == "forward" for a in new_actions):
        new_actions.append({"Type": "forward", "ForwardConfig": forward_config})
    return new_actions, replaced


def _record_body(point, key):
    """ResourceRecords/TTL or AliasTarget for version key from route53.targets; None if not given."""
    target = point["targets"].get(key)
    if target is None:
        return None
    if isinstance(target, dict):
        for option in ("dns_name", "hosted_zone_id"):
            if not target.get(option):
                raise FleetError(f"route53.targets[{key!r}] is an alias and needs {option}.")
        return {"AliasTarget": {
            "DNSName": target["dns_name"],
            "HostedZoneId": target["hosted_zone_id"],
            "EvaluateTargetHealth": bool(target.get("evaluate_target_health", False)),
        }}
    return {"TTL": point["ttl"], "ResourceRecords": [{"Value": str(target)}]}


def _same_body(record, body):
    if "AliasTarget" in body:
        alias = record.get("AliasTarget") or {}
        return (_record_key(alias.get("DNSName")) == _record_key(body["AliasTarget"]["DNSName"])
                and alias.get("HostedZoneId") == body["AliasTarget"]["HostedZoneId"]
                and bool(alias.get("EvaluateTargetHealth")) == body["AliasTarget"]["EvaluateTargetHealth"])
    return (record.get("TTL") == body["TTL"]
            and [r.get("Value") for r in record.get("ResourceRecords", [])] == [r["Value"] for r in body["ResourceRecords"]])


def _plan_route53(point, entries, after, plan):
    existing = {r["SetIdentifier"]: r for r in point["records"] if "SetIdentifier" in r}
    before = dict(entries)
    changes = []
    for key, weight in after:
        body = _record_body(point, key)
        record = existing.get(key)
        if record is None and body is None:
            raise FleetError(f"route53.targets has no DNS target for version {key}: add route53.targets[{key!r}].")
        if record is not None and before.get(key) == weight and (body is None or _same_body(record, body)):
            continue
        new = {"Name": point["record_name"], "Type": point["record_type"], "SetIdentifier": key, "Weight": weight}
        if body is not None:
            new.update(body)
        else:
            new.update({k: v for k, v in record.items() if k in ("TTL", "ResourceRecords", "AliasTarget", "HealthCheckId")})
        if record is not None and body is None and "HealthCheckId" in record:
            new["HealthCheckId"] = record["HealthCheckId"]
        changes.append({"Action": "UPSERT", "ResourceRecordSet": new})
    kept = {k for k, dummy in after}
    for key, record in existing.items():
        if key not in kept:
            changes.append({"Action": "DELETE", "ResourceRecordSet": record})
    if not changes:
        return
    plan["request"] = {"changes": changes}
    plan["actions"].append({
        "action": "change_resource_record_sets",
        "zone_id": point["zone_id"],
        "record_name": point["record_name"],
        "record_type": point["record_type"],
        "changes": [
            {"action": c["Action"], "set_identifier": c["ResourceRecordSet"]["SetIdentifier"],
             "weight": c["ResourceRecordSet"].get("Weight")}
            for c in changes
        ],
    })


# --------------------------------------------------------------------------------------------
# Guard and apply
# --------------------------------------------------------------------------------------------


def health_summary(target_group_arn, descriptions):
    """{healthy, total, states: {state: n}, targets: [...]} of describe_target_health output. Pure."""
    states = {}
    targets = []
    for description in descriptions:
        health = description.get("TargetHealth") or {}
        state = health.get("State", "unknown")
        states[state] = states.get(state, 0) + 1
        target = description.get("Target") or {}
        targets.append({
            "id": target.get("Id"), "port": target.get("Port"), "state": state,
            "reason": health.get("Reason"), "description": health.get("Description"),
        })
    return {
        "target_group_arn": target_group_arn,
        "name": target_group_name_from_arn(target_group_arn),
        "healthy": states.get("healthy", 0),
        "total": len(descriptions),
        "states": states,
        "targets": targets,
    }


def _describe_health_text(summary):
    if not summary["total"]:
        return "no registered targets"
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items()))
    reasons = sorted({f"{t['reason']}: {t['description']}" if t["description"] else t["reason"]
                      for t in summary["targets"] if t["reason"]})
    return f"{summary['total']} targets: {states}" + (f" ({'; '.join(reasons)})" if reasons else "")


def check_health(clients, observed, plan, force=False):
    """The guard: every key whose share of the traffic grows must have a healthy target.

    Returns (health summaries, warnings). Raises FleetError with the summary of the first
    target group without a healthy target, unless force (then it becomes a loud warning).
    Route53 versions are checked through their target group when the stack has one.
    """
    if not plan["changed"] or not plan["raised"]:
        return [], []
    tg_of = {f["version"]: f["target_group"]["arn"] for f in observed["fleets"] if f.get("target_group")}
    elbv2 = None
    summaries = []
    warnings = []
    for key in plan["raised"]:
        arn = plan["refs"][key] if observed["backend"] == "alb" else tg_of.get(key)
        if arn is None:
            continue
        elbv2 = elbv2 or get_client(clients, "elbv2")
        summary = dict(health_summary(arn, api.describe_target_health(elbv2, arn)), key=key)
        summaries.append(summary)
        if summary["healthy"]:
            continue
        what = f"version {key} (target group {summary['name']})" if key in tg_of else f"target group {arn}"
        text = f"{what}: no healthy targets ({_describe_health_text(summary)})"
        if not force:
            raise FleetError(
                f"Refusing to give traffic to {text}. Wait until its targets pass the health checks "
                "(cattle.aws.health_gate), or set force=true to shift anyway.",
                health=summaries,
            )
        warnings.append(f"FORCED: giving traffic to {text}. Requests routed there will fail.")
    return summaries, warnings


def apply_plan(clients, observed, plan, sleep=time.sleep, wait_seconds=ROUTE53_WAIT_SECONDS):
    """Make the plan's one write, then read back; FleetError if AWS does not show the weights."""
    if not plan["changed"]:
        return
    if plan["request"] is not None:
        _apply_write(clients, observed, plan, sleep=sleep, wait_seconds=wait_seconds)
    _apply_attach_rules(clients, observed, plan)


def _apply_attach_rules(clients, observed, plan):
    """Create / delete the plan's attach rules (after the write and its read-back); fills in the
    ARN of a created rule in plan["attach_rules"]."""
    elbv2 = None
    for action in plan["actions"]:
        if action["action"] not in ("create_attach_rule", "delete_attach_rule"):
            continue
        elbv2 = elbv2 or get_client(clients, "elbv2")
        if action["action"] == "delete_attach_rule":
            traffic_attach.delete_attach_rules(elbv2, observed["app"], observed["environment"], [action["rule_arn"]])
            continue
        created = traffic_attach.create_attach_rule(elbv2, observed["app"], observed["environment"], action)
        action["rule_arn"] = created["rule_arn"]
        action["priority"] = created["priority"]
        plan["attach_rules"] = [a for a in plan["attach_rules"] if not (a["rule_arn"] is None and a["version"] == created["version"])]
        plan["attach_rules"].append(created)


def _apply_write(clients, observed, plan, sleep=time.sleep, wait_seconds=ROUTE53_WAIT_SECONDS):
    point = observed["point"]
    intended = dict((plan["refs"][k], w) for k, w in plan["after"].items())
    if observed["backend"] == "route53":
        client = get_client(clients, "route53")
        change = api.change_record_sets(client, point["zone_id"], plan["request"]["changes"], "cattle.aws traffic_shift")
        deadline = time.monotonic() + wait_seconds
        while change.get("Status") != "INSYNC":
            if time.monotonic() > deadline:
                raise FleetError(
                    f"Route53 change {change.get('Id')} is still {change.get('Status')} after {wait_seconds}s."
                )
            sleep(ROUTE53_POLL_SECONDS)
            change = api.get_change(client, change["Id"])
        records = observe_point(clients, route53=_spec(point))["records"]
        shown = dict((r["SetIdentifier"], r.get("Weight")) for r in records if "SetIdentifier" in r)
    else:
        elbv2 = get_client(clients, "elbv2")
        if point["type"] == "listener":
            api.modify_listener(elbv2, point["arn"], plan["request"]["actions"])
        else:
            api.modify_rule(elbv2, point["arn"], plan["request"]["actions"])
        again = observe_point(clients, listener_arn=point["arn"] if point["type"] == "listener" else None,
                              rule_arn=point["arn"] if point["type"] == "rule" else None)
        shown = dict(forward_targets(again["actions"]))
        restored = plan["actions"][0].get("restored_action") if plan["actions"] else None
        if restored and not any(a.get("Type") == restored["Type"] for a in again["actions"]):
            raise FleetError(
                f"After the write, AWS does not show the restored {restored['Type']} action on {point['arn']}: "
                f"it shows {again['actions']}.", shown=again["actions"],
            )
    if shown != intended:
        raise FleetError(
            f"After the write, AWS does not show the intended weights on {point.get('arn') or point['record_name']}: "
            f"intended {intended}, AWS shows {shown}.",
            intended=intended, shown=shown,
        )


def _spec(point):
    return {"zone_id": point["zone_id"], "record_name": point["record_name"], "record_type": point["record_type"],
            "ttl": point["ttl"], "targets": point["targets"]}


def shift_traffic(clients, app, environment=None, listener_arn=None, rule_arn=None, route53=None,
                  desired=None, force=False, check_mode=False, sleep=time.sleep):
    """Observe, plan, guard, apply (unless check_mode). Returns (result dict, warnings)."""
    backend = "route53" if route53 else "alb"
    desired = validate_desired(desired or {}, backend)  # limits: before any call
    if route53:
        _route53_point(route53)
    observed = observe(clients, app, environment, listener_arn=listener_arn, rule_arn=rule_arn, route53=route53)
    plan = plan_shift(observed, desired)
    health, warnings = check_health(clients, observed, plan, force=force)
    if not check_mode:
        apply_plan(clients, observed, plan, sleep=sleep)
    result = {
        "changed": plan["changed"],
        "before": plan["before"],
        "after": plan["after"],
        "replaced_action": plan["replaced_action"],
        "live_version": plan["live_version"],
        "previous_version": plan["previous_version"],
        "actions": plan["actions"],
        "health": health,
        "attach_rules": plan.get("attach_rules", []),
        "attach_rules_before": plan.get("attach_rules_before", []),
    }
    return result, warnings
