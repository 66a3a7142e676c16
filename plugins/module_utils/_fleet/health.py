# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Health gate of a fleet: observe -> evaluate (pure) -> loop, inside one module call.

- `observe(clients, spec, http_get, http_state)` makes the calls of one poll and returns plain
  data (an ``Observation`` dict): the auto scaling group, its recent scaling activities, the
  health of its targets in each target group, the state of the watched CloudWatch alarms and
  the result of each HTTP check.
- `evaluate(observation, spec)` is pure: it returns ``(status, checks, summary)`` where status
  is ``healthy``, ``waiting`` or ``failed`` (a failure that waiting will not fix: a failed
  scaling activity, instances replaced for failing health checks, an alarm in ALARM, a watched
  alarm that does not exist, a group with desired capacity 0).
- `wait_healthy(...)` polls until healthy, failed, or the deadline: it decides within one
  ``poll_interval`` of the fact.

Calls per poll: autoscaling DescribeAutoScalingGroups (1), DescribeScalingActivities (1),
elbv2 DescribeTargetHealth (1 per target group), cloudwatch DescribeAlarms (0-2), one HTTP
request per HTTP check.
"""

from __future__ import annotations

import datetime
import math
import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .connection import THROTTLING_CODES
from .errors import FleetAWSErrorHandler
from .errors import FleetError
from .naming import validate_version
from .tags import autoscaling_filters

STATUS_HEALTHY = "healthy"
STATUS_WAITING = "waiting"
STATUS_FAILED = "failed"

# Scaling activity causes that mean "an instance was replaced because it failed its health checks".
_HEALTH_REPLACEMENT = re.compile(
    r"health[- ]check|unhealthy|status check failure", re.IGNORECASE
)
_FAILED_ACTIVITY = ("Failed", "Cancelled")
MAX_ACTIVITIES = 20
BODY_EXCERPT = 200


# --------------------------------------------------------------------------------------------
# AWS calls
# --------------------------------------------------------------------------------------------


@FleetAWSErrorHandler.common_error_handler("describe the auto scaling group")
@AWSRetry.jittered_backoff(retries=10, catch_extra_error_codes=THROTTLING_CODES)
def describe_group(client, name=None, filters=None):
    params = {"AutoScalingGroupNames": [name]} if name else {"Filters": filters}
    return client.describe_auto_scaling_groups(**params).get("AutoScalingGroups", [])


@FleetAWSErrorHandler.common_error_handler("describe the scaling activities")
@AWSRetry.jittered_backoff(retries=10, catch_extra_error_codes=THROTTLING_CODES)
def describe_activities(client, name):
    return client.describe_scaling_activities(AutoScalingGroupName=name, MaxRecords=MAX_ACTIVITIES).get("Activities", [])


@FleetAWSErrorHandler.common_error_handler("describe target health")
@AWSRetry.jittered_backoff(retries=10, catch_extra_error_codes=THROTTLING_CODES)
def describe_target_health(client, target_group_arn):
    return client.describe_target_health(TargetGroupArn=target_group_arn).get("TargetHealthDescriptions", [])


@FleetAWSErrorHandler.common_error_handler("describe CloudWatch alarms")
@AWSRetry.jittered_backoff(retries=10, catch_extra_error_codes=THROTTLING_CODES)
def describe_alarms(client, names=None, prefix=None):
    params = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    if names:
        params["AlarmNames"] = list(names)
    if prefix:
        params["AlarmNamePrefix"] = prefix
    alarms = []
    while True:
        page = client.describe_alarms(**params)
        alarms.extend(page.get("MetricAlarms", []))
        alarms.extend(page.get("CompositeAlarms", []))
        if not page.get("NextToken"):
            return alarms
        params["NextToken"] = page["NextToken"]


def _client(clients, service):
    return clients(service) if callable(clients) else clients[service]


# --------------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------------


def build_spec(app=None, environment=None, version=None, auto_scaling_group_name=None, target_group_arns=None,
               min_healthy_percent=100, http_checks=None, alarm_names=None, alarm_name_prefix=None):
    """Validate the gate's inputs; return the spec dict used by observe/evaluate."""
    if not auto_scaling_group_name and not (app and version):
        raise FleetError("Give auto_scaling_group_name, or app (with environment) and version, to find the fleet to gate.")
    if version is not None:
        version = validate_version(version)
    if not 0 <= int(min_healthy_percent) <= 100:
        raise FleetError(f"min_healthy_percent must be between 0 and 100; got {min_healthy_percent}.")
    checks = []
    for index, check in enumerate(http_checks or []):
        check = dict(check)
        if not check.get("url"):
            raise FleetError(f"http_checks[{index}] needs a url.")
        pattern = check.get("body_regex")
        if pattern:
            try:
                re.compile(pattern)
            except re.error as e:
                raise FleetError(f"http_checks[{index}].body_regex is not a valid regular expression: {e}.") from None
        check.setdefault("status", 200)
        check.setdefault("consecutive_successes", 1)
        check.setdefault("request_timeout", 5)
        checks.append(check)
    return {
        "app": app,
        "environment": environment,
        "version": version,
        "auto_scaling_group_name": auto_scaling_group_name,
        "target_group_arns": list(target_group_arns or []),
        "min_healthy_percent": int(min_healthy_percent),
        "http_checks": checks,
        "alarm_names": list(alarm_names or []),
        "alarm_name_prefix": alarm_name_prefix or None,
    }


# --------------------------------------------------------------------------------------------
# Observe
# --------------------------------------------------------------------------------------------


def http_probe(check, http_get):
    """One request of an HTTP check: {ok, status, detail}. http_get(url, timeout) -> (status, body)."""
    try:
        status, body = http_get(check["url"], float(check["request_timeout"]))
    except Exception as e:  # pylint: disable=broad-exception-caught
        # Timeouts, refused connections, TLS errors: a failed probe, never a crash of the gate.
        return {"ok": False, "status": None, "detail": f"request failed: {e}"}
    if status != int(check["status"]):
        return {"ok": False, "status": status, "detail": f"status {status}, expected {check['status']}"}
    pattern = check.get("body_regex")
    if pattern and not re.search(pattern, body or ""):
        excerpt = (body or "")[:BODY_EXCERPT]
        return {"ok": False, "status": status, "detail": f"body does not match {pattern!r}: {excerpt!r}"}
    return {"ok": True, "status": status, "detail": f"status {status}"}


def observe(clients, spec, http_get=None, http_state=None):
    """One poll: the raw state the gate evaluates (plain data, see module docstring)."""
    autoscaling = _client(clients, "autoscaling")
    if spec["auto_scaling_group_name"]:
        groups = describe_group(autoscaling, name=spec["auto_scaling_group_name"])
    else:
        groups = describe_group(
            autoscaling, filters=autoscaling_filters(spec["app"], spec["environment"], spec["version"])
        )
    observation = {"groups": groups, "activities": [], "target_health": {}, "alarms": None, "http": []}
    if len(groups) == 1:
        group = groups[0]
        observation["activities"] = describe_activities(autoscaling, group["AutoScalingGroupName"])
        arns = spec["target_group_arns"] or group.get("TargetGroupARNs", [])
        elbv2 = _client(clients, "elbv2") if arns else None
        for arn in arns:
            observation["target_health"][arn] = describe_target_health(elbv2, arn)
    if spec["alarm_names"] or spec["alarm_name_prefix"]:
        cloudwatch = _client(clients, "cloudwatch")
        alarms = {}
        if spec["alarm_names"]:
            for alarm in describe_alarms(cloudwatch, names=spec["alarm_names"]):
                alarms[alarm["AlarmName"]] = alarm
        if spec["alarm_name_prefix"]:
            for alarm in describe_alarms(cloudwatch, prefix=spec["alarm_name_prefix"]):
                alarms[alarm["AlarmName"]] = alarm
        observation["alarms"] = alarms
    if http_state is None:
        http_state = {}
    for index, check in enumerate(spec["http_checks"]):
        probe = http_probe(check, http_get)
        streak = http_state.get(index, 0) + 1 if probe["ok"] else 0
        http_state[index] = streak
        probe.update({"url": check["url"], "consecutive_successes": streak, "required": int(check["consecutive_successes"])})
        observation["http"].append(probe)
    return observation


# --------------------------------------------------------------------------------------------
# Evaluate (pure)
# --------------------------------------------------------------------------------------------


def required_healthy(desired, min_healthy_percent):
    """Healthy targets needed: ceil(desired * percent / 100), at least 1 when desired > 0."""
    if desired <= 0:
        return 0
    return max(1, int(math.ceil(desired * min_healthy_percent / 100.0)))


def _check(name, status, detail):
    return {"name": name, "status": status, "detail": detail}


def _activity_text(activity):
    parts = [activity.get("Description"), activity.get("StatusMessage"), activity.get("Cause")]
    return " ".join(p.strip() for p in parts if p and p.strip())


def _evaluate_activities(activities):
    """The latest scaling activity failed, or any replacement for failing health: failed.

    Only the latest activity (finished or not) counts for a failed launch: a fleet scaled up
    again after a failed attempt (a retried version) has a newer activity in progress, and the
    old failure is history. While AWS keeps failing a launch, its retries fail too.
    """
    ordered = sorted(activities, key=lambda a: str(a.get("StartTime", "")), reverse=True)
    for activity in ordered:
        cause = activity.get("Cause") or ""
        if activity.get("Description", "").startswith("Terminating") and _HEALTH_REPLACEMENT.search(cause):
            return _check("scaling_activities", STATUS_FAILED, "an instance is being replaced for failing health checks: " + _activity_text(activity))
    if ordered and ordered[0].get("StatusCode") in _FAILED_ACTIVITY:
        activity = ordered[0]
        return _check("scaling_activities", STATUS_FAILED, f"scaling activity {activity['StatusCode']}: " + _activity_text(activity))
    return _check("scaling_activities", STATUS_HEALTHY, "no failed scaling activity")


def instance_summary(group, target_health):
    """Per instance: id, lifecycle state, ASG health, target state/reason in each target group."""
    rows = {}
    for instance in group.get("Instances", []):
        rows[instance["InstanceId"]] = {
            "instance_id": instance["InstanceId"],
            "lifecycle_state": instance.get("LifecycleState"),
            "health_status": instance.get("HealthStatus"),
            "availability_zone": instance.get("AvailabilityZone"),
            "targets": [],
        }
    for arn, descriptions in sorted(target_health.items()):
        for desc in descriptions:
            target_id = desc["Target"]["Id"]
            health = desc.get("TargetHealth", {})
            row = rows.setdefault(target_id, {"instance_id": target_id, "lifecycle_state": None, "health_status": None,
                                              "availability_zone": None, "targets": []})
            row["targets"].append({
                "target_group_arn": arn,
                "state": health.get("State"),
                "reason": health.get("Reason"),
                "description": health.get("Description"),
            })
    return [rows[k] for k in sorted(rows)]


def evaluate(observation, spec):
    """(status, checks, summary): pure decision on one observation."""
    groups = observation["groups"]
    if not groups:
        what = spec["auto_scaling_group_name"] or f"app={spec['app']} environment={spec['environment']} version={spec['version']}"
        check = _check("auto_scaling_group", STATUS_FAILED, f"no auto scaling group found for {what}")
        return STATUS_FAILED, [check], check["detail"]
    if len(groups) > 1:
        names = ", ".join(sorted(g["AutoScalingGroupName"] for g in groups))
        check = _check("auto_scaling_group", STATUS_FAILED, f"several auto scaling groups match ({names}); give auto_scaling_group_name")
        return STATUS_FAILED, [check], check["detail"]
    group = groups[0]
    desired = int(group.get("DesiredCapacity", 0))
    checks = []

    if desired <= 0:
        checks.append(_check("auto_scaling_group", STATUS_FAILED, f"{group['AutoScalingGroupName']} has desired capacity 0: nothing can become healthy"))
    else:
        in_service = [i for i in group.get("Instances", []) if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"]
        unhealthy = [i["InstanceId"] for i in group.get("Instances", []) if i.get("HealthStatus") == "Unhealthy"]
        if unhealthy:
            checks.append(_check("auto_scaling_group", STATUS_FAILED,
                                 f"instances marked Unhealthy by the auto scaling group (being replaced): {', '.join(sorted(unhealthy))}"))
        else:
            status = STATUS_HEALTHY if len(in_service) >= desired else STATUS_WAITING
            checks.append(_check("auto_scaling_group", status, f"{len(in_service)}/{desired} desired instances InService"))
    checks.append(_evaluate_activities(observation["activities"]))

    members = {i["InstanceId"] for i in group.get("Instances", []) if i.get("LifecycleState") == "InService"}
    need = required_healthy(desired, spec["min_healthy_percent"])
    target_health = observation["target_health"]
    if not target_health:
        checks.append(_check("target_health", STATUS_HEALTHY, "no target group attached: target health not checked"))
    for arn, descriptions in sorted(target_health.items()):
        healthy = [d["Target"]["Id"] for d in descriptions
                   if d.get("TargetHealth", {}).get("State") == "healthy" and d["Target"]["Id"] in members]
        others = sorted(
            f"{d['Target']['Id']} {d.get('TargetHealth', {}).get('State')}"
            + (f" ({d['TargetHealth']['Reason']})" if d.get("TargetHealth", {}).get("Reason") else "")
            for d in descriptions if d["Target"]["Id"] not in healthy
        )
        status = STATUS_HEALTHY if len(healthy) >= need and desired > 0 else STATUS_WAITING
        detail = f"{len(healthy)}/{desired} healthy (need {need}, min_healthy_percent={spec['min_healthy_percent']}) in {arn.rsplit(':', 1)[-1]}"
        if others:
            detail += "; not healthy: " + ", ".join(others)
        checks.append(_check("target_health", status, detail))

    alarms = observation.get("alarms")
    if alarms is not None:
        missing = sorted(set(spec["alarm_names"]) - set(alarms))
        firing = sorted(name for name, alarm in alarms.items() if alarm.get("StateValue") == "ALARM")
        if missing:
            checks.append(_check("alarms", STATUS_FAILED, f"alarms not found: {', '.join(missing)} (check alarm_names)"))
        if firing:
            reasons = "; ".join(f"{name}: {alarms[name].get('StateReason') or 'ALARM'}" for name in firing)
            checks.append(_check("alarms", STATUS_FAILED, f"alarms in ALARM: {reasons}"))
        if not missing and not firing:
            checks.append(_check("alarms", STATUS_HEALTHY, f"{len(alarms)} alarm(s) not in ALARM"))

    for probe in observation.get("http", []):
        status = STATUS_HEALTHY if probe["consecutive_successes"] >= probe["required"] else STATUS_WAITING
        checks.append(_check("http", status,
                             f"{probe['url']}: {probe['detail']} ({probe['consecutive_successes']}/{probe['required']} consecutive successes)"))

    if any(c["status"] == STATUS_FAILED for c in checks):
        overall = STATUS_FAILED
    elif all(c["status"] == STATUS_HEALTHY for c in checks):
        overall = STATUS_HEALTHY
    else:
        overall = STATUS_WAITING
    relevant = [c for c in checks if c["status"] == overall] if overall != STATUS_HEALTHY else checks
    summary = "; ".join(f"{c['name']}: {c['detail']}" for c in relevant)
    return overall, checks, summary


# --------------------------------------------------------------------------------------------
# Loop
# --------------------------------------------------------------------------------------------


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wait_healthy(clients, spec, timeout=600, poll_interval=5, wait=True, http_get=None, clock=time.monotonic, sleep=time.sleep,
                 watch_seconds=0, utc_now=_utc_now):
    """Poll until healthy, failed or timed out; return a result dict (``status`` says which).

    The first poll that finds the group's desired instances InService gives ``time_to_in_service``
    and ``in_service_at`` (UTC), so a caller can tell the instances' initialization from the
    target health that follows it, and a failure before it (a failed launch) from one after.

    With ``watch_seconds`` > 0, a fleet seen healthy is then watched: polled every
    ``poll_interval`` for ``watch_seconds`` more seconds, and the first poll that is not healthy
    (an alarm in ALARM, healthy targets below the threshold, an instance being replaced...) ends
    the call with status ``failed``, ``watch_failed`` true and that poll's summary.
    """
    start = clock()
    deadline = start + float(timeout)
    http_state = {}
    polls = 0
    watch_end = None
    time_to_healthy = None
    in_service = None  # (seconds from the start, UTC time) of the first poll with every instance InService
    while True:
        observation = observe(clients, spec, http_get=http_get, http_state=http_state)
        polls += 1
        status, checks, summary = evaluate(observation, spec)
        now = clock()
        if in_service is None and any(c["name"] == "auto_scaling_group" and c["status"] == STATUS_HEALTHY for c in checks):
            in_service = (round(now - start, 3), utc_now())
        if watch_end is not None and status != STATUS_HEALTHY:
            # Watching: anything but healthy is a failure, at once.
            status = STATUS_FAILED
            summary = f"after {round(now - watch_start, 1)} s of the {watch_seconds} s watch: {summary}"
        group = observation["groups"][0] if len(observation["groups"]) == 1 else {}
        result = {
            "status": status,
            "healthy": status == STATUS_HEALTHY,
            "checks": checks,
            "summary": summary,
            "polls": polls,
            "elapsed": round(now - start, 3),
            "auto_scaling_group_name": group.get("AutoScalingGroupName"),
            "desired_capacity": group.get("DesiredCapacity"),
            "target_group_arns": sorted(observation["target_health"]),
            "instances": instance_summary(group, observation["target_health"]) if group else [],
            "time_to_healthy": round(now - start, 3) if status == STATUS_HEALTHY else None,
            "time_to_in_service": in_service[0] if in_service else None,
            "in_service_at": in_service[1] if in_service else None,
            "timed_out": False,
            "watched": 0.0,
            "watch_failed": False,
        }
        if watch_end is not None:
            result["time_to_healthy"] = time_to_healthy
            result["watched"] = round(now - watch_start, 3)
            result["watch_failed"] = status != STATUS_HEALTHY
            if status != STATUS_HEALTHY or now >= watch_end:
                return result
            sleep(max(0.0, min(float(poll_interval), watch_end - now)))
            continue
        if status == STATUS_HEALTHY and watch_seconds and float(watch_seconds) > 0 and wait:
            time_to_healthy = result["time_to_healthy"]
            watch_start = now
            watch_end = now + float(watch_seconds)
            sleep(max(0.0, min(float(poll_interval), watch_end - now)))
            continue
        if status != STATUS_WAITING:
            return result
        if not wait or now >= deadline:
            result["timed_out"] = wait
            return result
        sleep(max(0.0, min(float(poll_interval), deadline - now)))
