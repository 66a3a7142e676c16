# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""fleet_gc: throw a stack's old fleets away safely, keep the last N for instant rollback.

- `plan_gc(stack, keep, protect, mode, prune_images)` is pure: the stack (discovery's
  `build_stack` result) -> ``(decisions, actions)``. Each version gets a decision (``keep``,
  ``delete`` or ``scale_to_zero``) and a reason; actions are ordered so that, per fleet, traffic
  is left first, then the target group is detached from the ASG (drains), draining is awaited,
  the ASG is deleted (and awaited), then the fleet's attach rules (cattle.aws listener rules that
  attach a target group without traffic; AWS refuses to delete a group a rule uses), the target
  group, the launch template and optionally the AMI and its snapshots.
- `simulate(stack, actions)` is pure: the stack the actions leave (check mode, tests).
- `apply_gc(clients, actions, ...)` runs the actions; every step is discovered again by its tags
  on the next run, so an interrupted run is completed by the next one.
- `run_gc(clients, ...)` observes, plans, applies (or simulates) and returns the module result.

Actions are JSON-friendly dicts ``{"action": ..., "version": ..., ...}``; see `ACTIONS`.
"""

from __future__ import annotations

import copy
import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from . import fleet_api
from . import traffic_api
from . import traffic_attach
from .discovery import build_stack
from .discovery import forward_targets
from .discovery import get_client
from .discovery import observe_stack
from .discovery import sort_fleets
from .errors import FleetAWSErrorHandler
from .errors import FleetError
from .fleet import wait_until_deleted
from .traffic import build_actions

MODES = ("delete", "scale_to_zero")

KEEP = "keep"
DELETE = "delete"
SCALE_TO_ZERO = "scale_to_zero"

REASON_LIVE = "live"
REASON_SERVING = "serving"
REASON_PROTECTED = "protected"
REASON_RETAINED = "retained"
REASON_NOT_OWNED = "not owned"
REASON_LAST_TARGET = "last target group of a forward action"
REASON_SHARED_ASG = "its auto scaling group is attached to other target groups"

ACTIONS = (
    "leave_traffic",
    "detach_target_group",
    "wait_for_drain",
    "delete_auto_scaling_group",
    "delete_attach_rule",
    "delete_target_group",
    "delete_launch_template",
    "deregister_image",
    "delete_snapshot",
    "scale_to_zero",
)

# The order of the delete phases; every fleet goes through them in this order.
_PHASES = ACTIONS[:-1]


# --------------------------------------------------------------------------------------------
# AWS calls gc needs that fleet_api / traffic_api do not offer
# --------------------------------------------------------------------------------------------


class _ImageErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"])


class _SnapshotErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["InvalidSnapshot.NotFound"])


_retry = AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=20)


@_ImageErrors.deletion_error_handler("deregister image")
@_retry
def deregister_image(client, image_id):
    client.deregister_image(ImageId=image_id)
    return True


@_SnapshotErrors.deletion_error_handler("delete snapshot")
@_retry
def delete_snapshot(client, snapshot_id):
    client.delete_snapshot(SnapshotId=snapshot_id)
    return True


# --------------------------------------------------------------------------------------------
# Planning (pure)
# --------------------------------------------------------------------------------------------


def _decision(record, decision, reason):
    return {
        "version": record["version"],
        "created_at": record.get("created_at"),
        "failed": bool(record.get("failed")),
        "decision": decision,
        "reason": reason,
    }


def _keep_reason(record, protect):
    if record.get("live"):
        return REASON_LIVE
    if record.get("serving") or any(t["weight"] > 0 for t in record.get("traffic", [])):
        return REASON_SERVING
    if record["version"] in protect:
        return REASON_PROTECTED
    return None


def _shares_asg(record):
    group = record.get("auto_scaling_group")
    if not group:
        return False
    own = (record.get("target_group") or {}).get("arn")
    return any(arn != own for arn in group.get("target_group_arns", []))


def _points_targets(stack):
    """{point arn: set of every target group ARN it forwards to (ours and foreign)}."""
    points = {p["arn"]: {tg["arn"] for tg in p.get("target_groups", [])} for p in stack.get("traffic_points", [])}
    for record in stack.get("fleets", []):
        for entry in record.get("traffic", []):
            points.setdefault(entry["point_arn"], set()).add(record["target_group"]["arn"])
    return points


def _reason_removed(record, keep):
    if record.get("failed"):
        return "failed release"
    if not record.get("complete"):
        return "incomplete fleet"
    return f"older than the {keep} retained previous version{'s' if keep != 1 else ''}"


def decide(stack, keep=2, protect=None, mode=DELETE):
    """Pure: one decision per version of the stack (newest first) plus one per foreign target group."""
    if keep is None or keep < 0:
        raise FleetError(f"keep must be 0 or more; got {keep!r}.")
    if mode not in MODES:
        raise FleetError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
    protect = {str(v) for v in (protect or [])}
    records = sort_fleets(stack.get("fleets", []))
    decisions = {}
    retained = 0
    for record in records:
        reason = _keep_reason(record, protect)
        if reason is None and not record.get("failed") and record.get("complete") and retained < keep:
            retained += 1
            reason = REASON_RETAINED
        if reason is None and mode == DELETE and _shares_asg(record):
            reason = REASON_SHARED_ASG
        if reason is not None:
            decisions[record["version"]] = _decision(record, KEEP, reason)
        else:
            decisions[record["version"]] = _decision(record, mode, _reason_removed(record, keep))

    if mode == DELETE:
        # A forward action needs at least one target group: when every target of a point would be
        # removed, the newest of ours there stays (untouched), and the check runs again.
        points = _points_targets(stack)
        by_version = {r["version"]: r for r in records}
        while True:
            removing = {
                by_version[v]["target_group"]["arn"]: by_version[v]
                for v, d in decisions.items()
                if d["decision"] == DELETE and by_version[v].get("target_group")
            }
            spared = None
            for point, targets in sorted(points.items()):
                if targets and targets <= set(removing):
                    spared = sort_fleets([removing[arn] for arn in targets])[0]
                    break
            if spared is None:
                break
            decisions[spared["version"]] = _decision(spared, KEEP, REASON_LAST_TARGET)

    ordered = [decisions[r["version"]] for r in records]
    seen = set()
    for foreign in stack.get("foreign_target_groups", []):
        if foreign["arn"] in seen:
            continue
        seen.add(foreign["arn"])
        ordered.append({
            "version": None,
            "target_group_arn": foreign["arn"],
            "target_group_name": foreign.get("name"),
            "decision": KEEP,
            "reason": REASON_NOT_OWNED,
        })
    return ordered


def _delete_actions(record):
    """The delete phases of one fleet, as {phase: [actions]} (only the parts that still exist)."""
    version = record["version"]
    template = record.get("launch_template")
    target_group = record.get("target_group")
    group = record.get("auto_scaling_group")
    out = {}
    if group and target_group and target_group["arn"] in group.get("target_group_arns", []):
        out["detach_target_group"] = [{
            "action": "detach_target_group", "version": version, "auto_scaling_group": group["name"],
            "target_group": target_group["name"], "target_group_arn": target_group["arn"],
        }]
    if group and target_group:
        out["wait_for_drain"] = [{
            "action": "wait_for_drain", "version": version, "target_group": target_group["name"],
            "target_group_arn": target_group["arn"], "auto_scaling_group": group["name"],
            "instance_ids": sorted(i["instance_id"] for i in group.get("instances", [])),
        }]
    if group:
        out["delete_auto_scaling_group"] = [
            {"action": "delete_auto_scaling_group", "version": version, "name": group["name"]}]
    if target_group and record.get("attach_rules"):
        out["delete_attach_rule"] = [
            {"action": "delete_attach_rule", "version": version, "rule_arn": rule["rule_arn"],
             "listener_arn": rule["listener_arn"], "priority": rule["priority"], "target_group_arn": target_group["arn"]}
            for rule in record["attach_rules"]]
    if target_group:
        out["delete_target_group"] = [
            {"action": "delete_target_group", "version": version, "name": target_group["name"],
             "arn": target_group["arn"]}]
    if template:
        out["delete_launch_template"] = [
            {"action": "delete_launch_template", "version": version, "name": template["name"], "id": template["id"]}]
    return out


def _leave_traffic_actions(records):
    """One leave_traffic action per listener/rule forwarding (at weight 0) to fleets to delete."""
    points = {}
    for record in records:
        for entry in record.get("traffic", []):
            point = points.setdefault(entry["point_arn"], {
                "action": "leave_traffic", "type": entry["type"], "arn": entry["point_arn"],
                "listener_arn": entry.get("listener_arn"), "rule_arn": entry.get("rule_arn"),
                "versions": [], "target_group_arns": [],
            })
            if record["target_group"]["arn"] not in point["target_group_arns"]:
                point["versions"].append(record["version"])
                point["target_group_arns"].append(record["target_group"]["arn"])
    return [points[arn] for arn in sorted(points)]


def _image_actions(records, remaining):
    """deregister_image + delete_snapshot for AMIs of deleted fleets that no remaining LT uses."""
    used_images = {
        r["launch_template"]["image_id"] for r in remaining if r.get("launch_template") and r["launch_template"].get("image_id")
    }
    # An AMI that is a kept version's own image stays even when no remaining launch template
    # uses it (for example a protected version that is only an AMI so far).
    used_images |= {r["ami"]["id"] for r in remaining if r.get("ami") and r["ami"].get("id")}
    kept_snapshots = {s for r in remaining if r.get("ami") and r["ami"].get("owned") for s in r["ami"].get("snapshot_ids", [])}
    images, snapshots = [], []
    seen = set()
    for record in records:
        image = record.get("ami")
        if not image or not image.get("owned") or image["id"] in used_images or image["id"] in seen:
            continue
        seen.add(image["id"])
        images.append({"action": "deregister_image", "version": record["version"], "id": image["id"],
                       "name": image.get("name")})
        for snapshot in image.get("snapshot_ids", []):
            if snapshot not in kept_snapshots:
                snapshots.append({"action": "delete_snapshot", "version": record["version"], "id": snapshot,
                                  "image_id": image["id"]})
    return images, snapshots


def plan_gc(stack, keep=2, protect=None, mode=DELETE, prune_images=False):
    """Pure: stack -> (decisions, actions). See the module docstring for the order of actions."""
    decisions = decide(stack, keep, protect, mode)
    by_version = {d["version"]: d for d in decisions if d["version"] is not None}
    # Oldest first, so that an interrupted run has removed the oldest fleets.
    records = list(reversed(sort_fleets(stack.get("fleets", []))))
    chosen = [r for r in records if by_version[r["version"]]["decision"] == mode]
    actions = []
    if mode == SCALE_TO_ZERO:
        for record in chosen:
            group = record.get("auto_scaling_group")
            if group and (group.get("min_size") or group.get("desired_capacity")):
                actions.append({
                    "action": "scale_to_zero", "version": record["version"], "name": group["name"],
                    "before": {"min": group.get("min_size"), "max": group.get("max_size"),
                               "desired": group.get("desired_capacity")},
                    "after": {"min": 0, "max": group.get("max_size"), "desired": 0},
                })
        return decisions, actions

    actions.extend(_leave_traffic_actions(chosen))
    phases = {}
    for record in chosen:
        for phase, items in _delete_actions(record).items():
            phases.setdefault(phase, []).extend(items)
    if prune_images:
        remaining = [r for r in records if by_version[r["version"]]["decision"] != DELETE]
        phases["deregister_image"], phases["delete_snapshot"] = _image_actions(chosen, remaining)
    for phase in _PHASES[1:]:
        actions.extend(phases.get(phase, []))
    return decisions, actions


# --------------------------------------------------------------------------------------------
# Simulation (pure)
# --------------------------------------------------------------------------------------------


def _gone(record):
    return not any(record.get(k) for k in ("launch_template", "target_group", "auto_scaling_group")) and not (
        record.get("ami") and record["ami"].get("owned")
    )


def simulate(stack, actions):
    """Pure: the stack as discovery would see it after `actions` (a deep copy)."""
    state = copy.deepcopy(stack)
    by_version = {r["version"]: r for r in state.get("fleets", [])}
    for action in actions:
        kind = action["action"]
        if kind == "leave_traffic":
            removed = set(action["target_group_arns"])
            for record in state.get("fleets", []):
                if record.get("target_group") and record["target_group"]["arn"] in removed:
                    record["traffic"] = [t for t in record.get("traffic", []) if t["point_arn"] != action["arn"]]
            for point in state.get("traffic_points", []):
                if point["arn"] == action["arn"]:
                    point["target_groups"] = [tg for tg in point["target_groups"] if tg["arn"] not in removed]
            continue
        record = by_version.get(action["version"])
        if record is None:
            continue
        if kind == "detach_target_group":
            group = record["auto_scaling_group"]
            group["target_group_arns"] = [a for a in group["target_group_arns"] if a != action["target_group_arn"]]
        elif kind == "delete_auto_scaling_group":
            record["auto_scaling_group"] = None
        elif kind == "delete_attach_rule":
            record["attach_rules"] = [r for r in record.get("attach_rules", []) if r["rule_arn"] != action["rule_arn"]]
        elif kind == "delete_target_group":
            record["target_group"] = None
        elif kind == "delete_launch_template":
            record["launch_template"] = None
        elif kind == "deregister_image":
            for other in state.get("fleets", []):
                if other.get("ami") and other["ami"]["id"] == action["id"]:
                    other["ami"] = None
        elif kind == "scale_to_zero":
            group = record["auto_scaling_group"]
            group["min_size"], group["desired_capacity"] = 0, 0
        record["complete"] = bool(record.get("launch_template") and record.get("target_group")
                                  and record.get("auto_scaling_group"))
    state["fleets"] = [r for r in state.get("fleets", []) if not _gone(r)]
    return state


# --------------------------------------------------------------------------------------------
# Traffic: take target groups out of a forward action, preserving everything else
# --------------------------------------------------------------------------------------------


def without_target_groups(actions, target_group_arns):
    """(new actions, changed): `actions` (listener DefaultActions or rule Actions) without the
    given target groups in their forward action. Everything else is kept as AWS described it
    (other and foreign target groups with their weights, stickiness, other actions, order):
    the new actions are built by traffic_shift's `build_actions`.

    Raises FleetError when a target group to remove now has weight > 0 (traffic moved since the
    plan) or when the forward action would have no target group left.
    """
    arns = set(target_group_arns)
    targets = forward_targets(actions)
    removed = [(arn, weight) for arn, weight in targets if arn in arns]
    if not removed:
        return copy.deepcopy(list(actions or [])), False
    serving = [arn for arn, weight in removed if weight > 0]
    if serving:
        raise FleetError(
            f"Refusing to take target group {', '.join(serving)} out of traffic: it now has weight > 0 "
            "(traffic changed since fleet_gc looked). Shift the traffic first (cattle.aws.traffic_shift), "
            "then run fleet_gc again."
        )
    kept = [(arn, weight) for arn, weight in targets if arn not in arns]
    if not kept:
        raise FleetError("Refusing to leave a forward action without any target group.")
    new_actions, dummy = build_actions(actions, kept)
    return new_actions, True


# --------------------------------------------------------------------------------------------
# Apply
# --------------------------------------------------------------------------------------------


def _leave_traffic(elbv2, action):
    if action["type"] == "listener":
        listener = traffic_api.describe_listener(elbv2, action["arn"])
        if listener is None:
            return False
        new, changed = without_target_groups(listener.get("DefaultActions"), action["target_group_arns"])
        if changed:
            traffic_api.modify_listener(elbv2, action["arn"], new)
        return changed
    rule = traffic_api.describe_rule(elbv2, action["arn"])
    if rule is None:
        return False
    new, changed = without_target_groups(rule.get("Actions"), action["target_group_arns"])
    if changed:
        traffic_api.modify_rule(elbv2, action["arn"], new)
    return changed


def drained(health, instance_ids):
    """True when no target is draining and none of the ASG's instances is still registered. Pure."""
    instance_ids = set(instance_ids or [])
    for description in health:
        state = (description.get("TargetHealth") or {}).get("State")
        if state == "draining" or description.get("Target", {}).get("Id") in instance_ids:
            return False
    return True


def wait_for_drain(elbv2, action, timeout, sleep=time.sleep, clock=time.monotonic):
    """Poll the target group's health until drained; False when `timeout` seconds passed first."""
    deadline = clock() + timeout
    delay = 1.0
    while True:
        if drained(traffic_api.describe_target_health(elbv2, action["target_group_arn"]), action["instance_ids"]):
            return True
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        sleep(min(delay, remaining))
        delay = min(delay * 2, 5.0)


def apply_gc(clients, actions, drain_timeout=300, wait_timeout=600, sleep=time.sleep, clock=time.monotonic,
             app=None, environment=None):
    """Run `actions` in order; return the versions whose draining timed out. app/environment:
    the stack, whose ownership tags a rule must carry to be deleted (delete_attach_rule)."""
    ec2 = get_client(clients, "ec2")
    autoscaling = get_client(clients, "autoscaling")
    elbv2 = get_client(clients, "elbv2")
    timed_out = []
    for action in actions:
        kind = action["action"]
        if kind == "leave_traffic":
            _leave_traffic(elbv2, action)
        elif kind == "detach_target_group":
            fleet_api.detach_target_groups(autoscaling, action["auto_scaling_group"], [action["target_group_arn"]])
        elif kind == "wait_for_drain":
            if not wait_for_drain(elbv2, action, drain_timeout, sleep=sleep, clock=clock):
                timed_out.append(action["version"])
        elif kind == "delete_auto_scaling_group":
            if fleet_api.delete_auto_scaling_group(autoscaling, action["name"]):
                wait_until_deleted(autoscaling, action["name"], wait_timeout, sleep=sleep, clock=clock)
        elif kind == "delete_attach_rule":
            traffic_attach.delete_attach_rules(elbv2, app, environment, [action["rule_arn"]])
        elif kind == "delete_target_group":
            fleet_api.delete_target_group(elbv2, action["arn"])
        elif kind == "delete_launch_template":
            fleet_api.delete_launch_template(ec2, action["id"])
        elif kind == "deregister_image":
            deregister_image(ec2, action["id"])
        elif kind == "delete_snapshot":
            delete_snapshot(ec2, action["id"])
        elif kind == "scale_to_zero":
            fleet_api.update_auto_scaling_group(autoscaling, action["name"], MinSize=0, DesiredCapacity=0)
        else:  # pragma: no cover - the planner only emits ACTIONS
            raise FleetError(f"Unknown action {kind!r}.")
    return timed_out


# --------------------------------------------------------------------------------------------
# The module's entry point
# --------------------------------------------------------------------------------------------


def _view(stack):
    """{version: parts} for the diff."""
    view = {}
    for record in stack.get("fleets", []):
        group = record.get("auto_scaling_group")
        view[record["version"]] = {
            "launch_template": (record.get("launch_template") or {}).get("name"),
            "target_group": (record.get("target_group") or {}).get("name"),
            "auto_scaling_group": group["name"] if group else None,
            "capacity": (
                {"min": group.get("min_size"), "max": group.get("max_size"), "desired": group.get("desired_capacity")}
                if group else None
            ),
            "ami": (record.get("ami") or {}).get("id") if (record.get("ami") or {}).get("owned") else None,
        }
    return view


def summarize(decisions, actions):
    """The deleted / scaled_to_zero / kept lists of the module result. Pure."""
    acted = {a.get("version") for a in actions if a["action"] != "leave_traffic"}
    acted |= {v for a in actions if a["action"] == "leave_traffic" for v in a["versions"]}
    deleted, scaled, kept = [], [], []
    for decision in decisions:
        entry = {k: v for k, v in decision.items() if k != "decision"}
        if decision["decision"] == KEEP:
            kept.append(entry)
        elif decision["version"] in acted:
            (deleted if decision["decision"] == DELETE else scaled).append(entry)
    return deleted, scaled, kept


def run_gc(clients, app, environment=None, keep=2, protect=None, mode=DELETE, prune_images=False,
           drain_timeout=300, wait_timeout=600, check_mode=False):
    """Observe, plan, apply (unless check mode); return the module result (without msg)."""
    if keep is None or keep < 0:
        raise FleetError(f"keep must be 0 or more; got {keep!r}.")
    if drain_timeout is not None and drain_timeout < 0:
        raise FleetError(f"drain_timeout must be 0 or more seconds; got {drain_timeout!r}.")
    # The launch templates' image ids (one DescribeLaunchTemplateVersions per version) only
    # decide which AMIs are still used: without prune_images they are not read.
    observed = observe_stack(clients, app, environment, include_launch_template_data=prune_images)
    stack = build_stack(observed, app, environment)
    decisions, actions = plan_gc(stack, keep, protect, mode, prune_images)
    after = simulate(stack, actions)
    timed_out = []
    if actions and not check_mode:
        timed_out = apply_gc(clients, actions, drain_timeout=drain_timeout, wait_timeout=wait_timeout,
                             app=stack["app"], environment=stack["environment"])
    deleted, scaled, kept = summarize(decisions, actions)
    result = {
        "changed": bool(actions),
        "app": stack["app"],
        "environment": stack["environment"],
        "live_version": stack.get("live_version"),
        "deleted": deleted,
        "scaled_to_zero": scaled,
        "kept": kept,
        "actions": actions,
        "diff": {"before": _view(stack), "after": _view(after)},
    }
    if timed_out:
        result["drain_timed_out"] = timed_out
    return result
