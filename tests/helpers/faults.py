"""Fault injection for the fault matrix (tests/integration/test_faults_*.py).

Everything here works on the in-process endpoint (the ``threaded_aws`` fixture): the moto backends
and the WSGI app live in the test process, so a test can make AWS misbehave the way it does in
production while ansible-playbook (a subprocess) talks to it over HTTP like to AWS.

- :class:`HttpFaults` answers chosen calls with the error AWS gives (throttling, 5xx) before they
  reach moto - or after (the write is done but the answer is lost) - per service and action.
- ``unhealthy_*`` / ``capacity_failure`` / ``hide_ami`` patch moto's models like AWS behaves.
- :func:`seed_live` puts a version live the way a finished release leaves it, in-process (fast).
- :func:`add_foreign_lookalikes` / :func:`foreign_snapshot` create resources that look like the
  stack's but are not its own, and read them back, so a case can assert nothing else changed.
- :func:`assert_converged` checks the end state every case must reach.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from helpers.release import AMI, groups, lock_value, weights


@dataclass
class Ctx:
    """One case's stack and what its fault needs: arm/fix/reached callbacks get it."""

    aws: Any
    stack: dict[str, Any]
    faults: "HttpFaults"
    watcher: "Watcher"
    monkeypatch: Any
    tmp_path: Any = None
    state: dict[str, Any] = field(default_factory=dict)


TOOLS = Path(__file__).resolve().parents[2] / "tools"

# ---------------------------------------------------------------------------------------------
# What AWS answers when it throttles or fails, per service (the error code and HTTP status the SDK
# sees). EC2 answers RequestLimitExceeded with 503; the query services (ELBv2, Auto Scaling,
# CloudWatch) Throttling with 400; the JSON ones ThrottlingException (SSM) / ThrottledException
# (Resource Groups Tagging API) with 400.
# ---------------------------------------------------------------------------------------------
THROTTLING = {
    "ec2": ("RequestLimitExceeded", 503, "Request limit exceeded."),
    "elbv2": ("Throttling", 400, "Rate exceeded"),
    "autoscaling": ("Throttling", 400, "Rate exceeded"),
    "cloudwatch": ("Throttling", 400, "Rate exceeded"),
    "ssm": ("ThrottlingException", 400, "Rate exceeded"),
    "tagging": ("ThrottledException", 400, "Rate exceeded"),
}
INTERNAL_FAILURE = ("InternalFailure", 500, "The request processing has failed because of an unknown error, exception or failure.")
SERVICE_UNAVAILABLE = ("ServiceUnavailable", 503, "The service is unavailable. Please try again later.")

_JSON_SERVICES = {"ssm": "AmazonSSM", "tagging": "ResourceGroupsTaggingAPI_20170126"}
_QUERY_NAMESPACES = {
    "elbv2": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
}


def _classify():
    sys.path.insert(0, str(TOOLS))
    try:
        from local_aws import classify
    finally:
        sys.path.remove(str(TOOLS))
    return classify


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    if len(data) < 24:
        return bytes([0x60 + len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    return bytes([0x79]) + len(data).to_bytes(2, "big") + data


def error_response(service: str, code: str, status: int, message: str,
                   request_type: str = "") -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of an AWS error answer in the protocol of the request (its
    Content-Type: JSON, CBOR, else the query / EC2 XML)."""
    request_id = str(uuid.uuid4())
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    sender = "Sender" if status < 500 else "Receiver"
    headers = [("x-amzn-RequestId", request_id)]
    if "json" in request_type or (service in _JSON_SERVICES and "cbor" not in request_type):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", request_type or "application/x-amz-json-1.1")]
        if service not in _JSON_SERVICES:  # a former query service (CloudWatch): AWS query compatible
            headers.append(("x-amzn-query-error", f"{code};{sender}"))
    elif "cbor" in request_type:  # smithy-rpc-v2-cbor, AWS query compatible
        body = bytes([0xA2]) + _cbor_text("__type") + _cbor_text(code) + _cbor_text("message") + _cbor_text(message)
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                    ("x-amzn-query-error", f"{code};{sender}")]
    elif service == "ec2":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>").encode()
        headers += [("Content-Type", "text/xml")]
    else:
        namespace = _QUERY_NAMESPACES.get(service, "")
        body = (f"<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{sender}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers += [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {reason}", headers, body


@dataclass
class Rule:
    """Answer the calls matching (service, action) with an error, ``times`` times from the ``skip``+1-th
    matching call on. ``after=True``: the call reaches moto first (the change is made) and only the
    answer is an error - the SDK cannot tell, like a lost response. ``when``: an extra predicate on
    the request body (bytes)."""

    service: str
    action: str | None  # None: every action of the service
    code: str
    status: int
    message: str
    times: int = 3
    skip: int = 0
    after: bool = False
    when: Callable[[bytes], bool] | None = None
    hold: threading.Event | None = None  # hold the call (after moto made it, with after=True) until set
    seen: int = 0
    injected: int = 0

    def matches(self, service: str, action: str, body: bytes) -> bool:
        if service != self.service or (self.action is not None and action != self.action):
            return False
        return self.when is None or self.when(body)


class HttpFaults:
    """Error answers injected in front of moto on the threaded endpoint (undone by ``monkeypatch``).

    ``faults = HttpFaults(aws, monkeypatch)``; ``faults.throttle("elbv2", "ModifyListener", 3)``;
    ``faults.fail("elbv2", "ModifyListener", 2, after=True)``. ``faults.injected`` counts the error
    answers given, per (service, action) - a case asserts its fault really happened.
    """

    def __init__(self, aws: Any, monkeypatch: Any, agents: tuple[str, ...] = ("Ansible", "ansible", "cattle.aws")) -> None:
        # Only the collection's calls (Ansible's / cattle.aws' user agents) get errors: the test's own
        # boto3 calls (setup, reads of the state) are served normally.
        self.agents = agents
        self._classify = _classify()
        self._lock = threading.Lock()
        self.rules: list[Rule] = []
        self.injected: dict[tuple[str, str], int] = {}
        recorder = aws.server.app
        inner = recorder.app
        monkeypatch.setattr(recorder, "app", self._wrap(inner))

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def throttle(self, service: str, action: str | None = None, times: int = 3, **kw: Any) -> Rule:
        code, status, message = THROTTLING[service]
        return self.add(Rule(service, action, code, status, message, times=times, **kw))

    def fail(self, service: str, action: str | None = None, times: int = 2, error=INTERNAL_FAILURE, **kw: Any) -> Rule:
        code, status, message = error
        return self.add(Rule(service, action, code, status, message, times=times, **kw))

    def hold(self, service: str, action: str, when: Callable[[bytes], bool], after: bool = True) -> Rule:
        """Hold the first matching call (made in moto first with ``after``) until ``rule.hold.set()``:
        the caller hangs there - a point to SIGKILL it at. ``rule.injected`` is 1 once it is held."""
        return self.add(Rule(service, action, "", 200, "", times=1, after=after, when=when, hold=threading.Event()))

    def release_holds(self) -> None:
        for rule in self.rules:
            if rule.hold is not None:
                rule.hold.set()

    def total(self) -> int:
        return sum(self.injected.values())

    def _pick(self, service: str, action: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.injected >= rule.times or not rule.matches(service, action, body):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                rule.injected += 1
                self.injected[(service, action)] = self.injected.get((service, action), 0) + 1
                return rule
        return None

    def _wrap(self, inner: Callable) -> Callable:
        def app(environ: dict[str, Any], start_response: Callable):
            stream = environ.get("wsgi.input")
            body = stream.read() if stream is not None else b""
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                found = self._classify(environ, body)
            except Exception:  # noqa: BLE001 - never break a request because of the injector
                found = None
            agent = environ.get("HTTP_USER_AGENT", "")
            ours = not self.agents or any(a in agent for a in self.agents)
            rule = self._pick(found[0], found[1], body) if found and ours else None
            if rule is None:
                return inner(environ, start_response)
            if rule.hold is not None:
                if not rule.after:
                    rule.hold.wait(300)
                    return inner(environ, start_response)
                answer: dict[str, Any] = {}
                chunks = list(inner(environ, lambda status, headers, exc_info=None: answer.update(
                    status=status, headers=headers) or (lambda data: None)))
                rule.hold.wait(300)
                start_response(answer["status"], answer["headers"])
                return chunks
            if rule.after:  # let moto make the change, throw its answer away
                for _chunk in inner(environ, lambda *a, **k: (lambda data: None)):
                    pass
            status, headers, payload = error_response(rule.service, rule.code, rule.status, rule.message,
                                                      environ.get("CONTENT_TYPE", ""))
            start_response(status, headers)
            return [payload]

        return app


# ---------------------------------------------------------------------------------------------
# Backend faults (moto models patched the way AWS behaves)
# ---------------------------------------------------------------------------------------------


def unhealthy_targets(monkeypatch: Any, tg_name_part: str, after_seconds: float = 0.0,
                      reason: str = "Target.ResponseCodeMismatch") -> Callable[[], None]:
    """Targets of the target groups whose name contains ``tg_name_part`` turn unhealthy (like AWS after
    ``unhealthy_threshold`` failed checks) ``after_seconds`` after :func:`start` is called (at once when
    started with 0). Returns ``start(after_seconds=None)``; call it when the countdown begins;
    ``start.stop()`` makes them healthy again (the patch stays, inactive)."""
    from moto.elbv2 import models

    original = models.FakeTargetGroup.health_for
    state = {"at": None}

    def start(delay: float | None = None) -> None:
        state["at"] = time.monotonic() + (after_seconds if delay is None else delay)

    def health_for(self, target, ec2_backend):
        status = original(self, target, ec2_backend)
        at = state["at"]
        if tg_name_part not in self.name or status.status != "healthy" or at is None or time.monotonic() < at:
            return status
        return models.FakeHealthStatus(target["Id"], status.port, self.health_check_port, "unhealthy", reason,
                                       "Health checks failed with these codes: [500]")

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)
    start.stop = lambda: state.update(at=None)  # the targets are healthy again
    return start


def _withhold_launches(monkeypatch: Any, asg_name_part: str) -> dict[str, bool]:
    """moto launches no instance for the groups whose name contains ``asg_name_part`` while the
    returned ``{"on": True}`` stays on (set it False to launch again)."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    original = FakeAutoScalingGroup.replace_autoscaling_group_instances
    active = {"on": True}

    def launch(self, count_needed, propagated_tags):
        if active["on"] and asg_name_part in self.name:
            return None
        return original(self, count_needed, propagated_tags)

    monkeypatch.setattr(FakeAutoScalingGroup, "replace_autoscaling_group_instances", launch)
    return active


CAPACITY_REASON = ("We currently do not have sufficient t3.micro capacity in the Availability Zone you requested "
                   "(us-east-1a). Our system will be working on provisioning additional capacity. Launching EC2 "
                   "instance failed.")


def capacity_failure(monkeypatch: Any, asg_name_part: str, reason: str = CAPACITY_REASON) -> Callable[[], None]:
    """AWS cannot launch instances for the auto scaling groups whose name contains ``asg_name_part``
    (InsufficientInstanceCapacity): no instance ever starts and DescribeScalingActivities reports a
    failed activity with AWS' status message. moto launches anyway and keeps no activity. Returns
    ``stop()``: capacity is back (the patch stays, inactive)."""
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    original_activities = AutoScalingResponse.describe_scaling_activities
    active = _withhold_launches(monkeypatch, asg_name_part)

    def activities(self):
        name = self._get_param("AutoScalingGroupName")
        if not active["on"] or not name or asg_name_part not in name:
            return original_activities(self)
        now = datetime.datetime.now(datetime.timezone.utc)
        return ActionResult({"Activities": [{
            "ActivityId": "5b1c6e4a-0000-4000-8000-00000000cafe", "AutoScalingGroupName": name,
            "Description": "Launching a new EC2 instance.  Status Reason: " + reason,
            "Cause": "At 2024-05-01T12:00:00Z an instance was started in response to a difference between desired "
                     "and actual capacity, increasing the capacity from 0 to 2.",
            "StartTime": now, "EndTime": now, "StatusCode": "Failed", "StatusMessage": reason, "Progress": 100}]})

    monkeypatch.setattr(AutoScalingResponse, "describe_scaling_activities", activities)
    return lambda: active.update(on=False)


def instances_never_in_service(monkeypatch: Any, asg_name_part: str) -> Callable[[], None]:
    """The instances of the groups whose name contains ``asg_name_part`` are slow to start: none is
    launched yet (no failed activity either - they are coming). Returns ``stop()``: they start,
    as AWS launches what a group is short of."""
    from moto.autoscaling.models import autoscaling_backends

    active = _withhold_launches(monkeypatch, asg_name_part)

    def stop() -> None:
        active["on"] = False
        for regions in autoscaling_backends.values():
            for backend in regions.values():
                for group in list(backend.autoscaling_groups.values()):
                    if asg_name_part in group.name:
                        group.set_desired_capacity(group.desired_capacity)

    return stop


def targets_initial(monkeypatch: Any, tg_name_part: str) -> Callable[[], None]:
    """The targets of the target groups whose name contains ``tg_name_part`` stay ``initial``
    (registration in progress) until ``stop()``."""
    from moto.elbv2 import models

    original = models.FakeTargetGroup.health_for
    active = {"on": True}

    def health_for(self, target, ec2_backend):
        status = original(self, target, ec2_backend)
        if not active["on"] or tg_name_part not in self.name or status.status != "healthy":
            return status
        return models.FakeHealthStatus(target["Id"], status.port, self.health_check_port, "initial",
                                       "Elb.RegistrationInProgress", "Target registration is in progress")

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)
    return lambda: active.update(on=False)


def hide_ami(monkeypatch: Any, ami_id: str = AMI) -> Callable[[], None]:
    """``ami_id`` is not visible to the account (deregistered, not shared yet, other region):
    DescribeImages does not list it, as AWS. Returns ``stop()``: it is visible again."""
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.describe_images
    active = {"on": True}

    def describe_images(self, ami_ids=(), *args, **kwargs):
        if not active["on"]:
            return original(self, ami_ids, *args, **kwargs)
        if ami_ids and ami_id in ami_ids:
            from moto.ec2.exceptions import InvalidAMIIdError

            raise InvalidAMIIdError([ami_id])
        return [image for image in original(self, ami_ids, *args, **kwargs) if image.id != ami_id]

    monkeypatch.setattr(AmiBackend, "describe_images", describe_images)
    return lambda: active.update(on=False)


def put_alarm(aws: Any, name: str = "shop-test-5xx") -> str:
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    return name


def fire_alarm(aws: Any, name: str = "shop-test-5xx", reason: str = "Threshold Crossed: 42 5xx responses") -> None:
    aws.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)


# ---------------------------------------------------------------------------------------------
# Seeding and foreign look-alikes
# ---------------------------------------------------------------------------------------------


def _collection_imports():
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible_collections.cattle.aws.plugins.module_utils._fleet.fleet import build_desired, ensure_fleet
    from ansible_collections.cattle.aws.plugins.modules.immutable_fleet import argument_spec

    return ArgumentSpecValidator, build_desired, ensure_fleet, argument_spec


def seed_fleet(aws: Any, stack: dict[str, Any], version: str, status: str = "active") -> dict[str, Any]:
    """The fleet of ``version`` made with the collection's own code (immutable_fleet's ensure_fleet,
    in-process, waiting for its instances), not attached to the traffic point. Returns its ``fleet``."""
    validator_cls, build_desired, ensure_fleet, argument_spec = _collection_imports()
    params = {
        "app": stack["app"], "environment": stack["environment"], "version": version, "ami_id": stack["ami_id"],
        "instance_type": stack["instance_type"], "subnet_ids": stack["subnet_ids"],
        "security_group_ids": stack["security_group_ids"], "capacity": stack["capacity"],
        "target_group": dict(stack["target_group"], vpc_id=stack["vpc_id"]), "status": status,
        "wait": True, "wait_timeout": 60,
    }
    validated = validator_cls(argument_spec()).validate(params)
    assert not validated.error_messages, validated.error_messages
    clients = {s: aws.client(s) for s in ("ec2", "autoscaling", "elbv2", "resourcegroupstaggingapi")}
    return ensure_fleet(clients, build_desired(validated.validated_parameters))["fleet"]


def seed_live(aws: Any, stack: dict[str, Any], version: str = "1.0.0") -> dict[str, Any]:
    """Put ``version`` live as a finished release leaves it - its fleet and the listener forwarding to
    its target group at 100 - in about a second instead of a whole playbook run."""
    fleet = seed_fleet(aws, stack, version)
    aws.client("elbv2").modify_listener(ListenerArn=stack["listener_arn"], DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": fleet["target_group_arn"], "Weight": 100}]}}])
    assert weights(aws, stack) == {version: 100}
    return fleet


def add_foreign_lookalikes(aws: Any, stack: dict[str, Any]) -> None:
    """Resources beside the stack that look like its own and are not: an auto scaling group, a launch
    template and a target group named like the next version's but without (or with other) cattle
    tags, and another team's target group forwarded to by a second listener of the same load balancer."""
    ec2, elbv2, autoscaling = aws.client("ec2"), aws.client("elbv2"), aws.client("autoscaling")
    foreign_tags = [{"Key": "team", "Value": "payments"}, {"Key": "cattle:app", "Value": "shopfront"}]
    prefix = f"{stack['app']}-{stack['environment']}"
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{prefix}-1.1.0-lookalike",
        LaunchTemplateData={"ImageId": stack["ami_id"], "InstanceType": "t3.nano"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": foreign_tags}])["LaunchTemplate"]
    for name, port in ((f"{prefix}-1-1-0-x", 9090), (f"{prefix}-other", 9091)):
        tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=port, VpcId=stack["vpc_id"],
                                       TargetType="instance", Tags=foreign_tags)["TargetGroups"][0]
        if name.endswith("-other"):
            [listener] = elbv2.describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"]
            elbv2.create_listener(LoadBalancerArn=listener["LoadBalancerArn"], Protocol="HTTP", Port=8081,
                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=f"{prefix}-1.1.0-lookalike", MinSize=1, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        VPCZoneIdentifier=",".join(stack["subnet_ids"]),
        Tags=[{"Key": t["Key"], "Value": t["Value"], "PropagateAtLaunch": False} for t in foreign_tags])


def foreign_snapshot(aws: Any, own_apps: tuple[str, ...] = ("shop",)) -> dict[str, Any]:
    """Everything that is not the stacks' own (cattle:app in ``own_apps``), as comparable data (states, sizes, tags,
    listeners' actions): equal before and after a case when nothing owned by others changed."""
    ec2, elbv2, autoscaling = aws.client("ec2"), aws.client("elbv2"), aws.client("autoscaling")

    def tags(items):
        return {t["Key"]: t["Value"] for t in items or []}

    snapshot: dict[str, Any] = {"asgs": {}, "templates": {}, "target_groups": {}, "listeners": {}}
    for group in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]:
        if tags(group.get("Tags")).get("cattle:app") in own_apps:
            continue
        snapshot["asgs"][group["AutoScalingGroupName"]] = (
            group["MinSize"], group["MaxSize"], group["DesiredCapacity"], sorted(p["ProcessName"] for p in group["SuspendedProcesses"]),
            sorted(tags(group.get("Tags")).items()), len(group.get("Instances", [])))
    for template in ec2.describe_launch_templates()["LaunchTemplates"]:
        if tags(template.get("Tags")).get("cattle:app") in own_apps:
            continue
        snapshot["templates"][template["LaunchTemplateName"]] = (template["LatestVersionNumber"], sorted(tags(template.get("Tags")).items()))
    target_groups = elbv2.describe_target_groups()["TargetGroups"]
    described = elbv2.describe_tags(ResourceArns=[t["TargetGroupArn"] for t in target_groups])["TagDescriptions"] if target_groups else []
    tg_tags = {d["ResourceArn"]: tags(d["Tags"]) for d in described}
    for tg in target_groups:
        if tg_tags[tg["TargetGroupArn"]].get("cattle:app") in own_apps:
            continue
        snapshot["target_groups"][tg["TargetGroupName"]] = (tg["Port"], sorted(tg_tags[tg["TargetGroupArn"]].items()))
    for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
        for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
            if listener["Port"] != 80:  # port 80 is the stack's traffic point
                snapshot["listeners"][(lb["LoadBalancerName"], listener["Port"])] = json.dumps(listener["DefaultActions"], sort_keys=True)
    return snapshot


# ---------------------------------------------------------------------------------------------
# The end state every case must reach
# ---------------------------------------------------------------------------------------------


def healthy_versions(aws: Any, app: str = "shop") -> set[str]:
    """Versions whose target group has at least one healthy target and only healthy registered ones."""
    elbv2 = aws.client("elbv2")
    result = set()
    for version, group in groups(aws, app).items():
        arns = group.get("TargetGroupARNs") or []
        states = [d["TargetHealth"]["State"] for arn in arns
                  for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]
        if states and all(s == "healthy" for s in states):
            result.add(version)
    return result


def assert_converged(aws: Any, stack: dict[str, Any], live: str, foreign_before: dict[str, Any] | None = None,
                     capacity: tuple[int, int, int] = (2, 4, 2), own_apps: tuple[str, ...] = ("shop",)) -> None:
    """The state every case ends in: all the traffic on ``live``, a version with healthy targets; the
    lock released; no auto scaling group of the stack with suspended processes, nor any fleet holding
    instances other than the live and (kept for a rollback) previous ones at their capacity or zero;
    the resources of others unchanged."""
    traffic = weights(aws, stack)
    assert {v for v, w in traffic.items() if w} == {live} and traffic[live] == 100, traffic
    app = stack["app"]
    assert live in healthy_versions(aws, app), f"{live} is live but its targets are not all healthy"
    lock = f"/cattle/locks/{app}/{stack['environment']}"
    assert lock_value(aws, lock) is None, f"the stack lock was left behind: {lock_value(aws, lock)}"
    assert lock_value(aws, lock + ".takeover") is None, "a lock takeover guard was left behind"
    for version, group in groups(aws, app).items():
        assert group["SuspendedProcesses"] == [], f"{version}: processes left suspended {group['SuspendedProcesses']}"
        sizes = (group["MinSize"], group["MaxSize"], group["DesiredCapacity"])
        if version == live:
            assert sizes == capacity, f"live {version} has capacity {sizes}, expected {capacity}"
        elif group["tags"].get("cattle:status") == "failed":
            assert sizes == (0, 0, 0), f"failed {version} still holds capacity {sizes}"
    if foreign_before is not None:
        assert foreign_snapshot(aws, own_apps) == foreign_before, "a resource the stack does not own was changed"


FAILED_RE = re.compile(r"Release of (\S+) FAILED in phase (\w+) \(([^)]*)\): (.*)")


def failure(out: str) -> tuple[str, str, str] | None:
    """(phase, task, reason) of a failed release's message, or None."""
    match = FAILED_RE.search(out)
    return (match.group(2), match.group(3), match.group(4)) if match else None


def stale_read_back(monkeypatch: Any, listener_arn: str, write_number: int = 2) -> dict[str, int]:
    """The read after the ``write_number``-th ModifyListener of ``listener_arn`` still shows the
    actions from before that write (AWS' eventual consistency, once); later reads are fresh.
    Returns a dict whose ``served`` counts the stale answers given."""
    import copy

    from moto.elbv2.models import ELBv2Backend

    modify, describe = ELBv2Backend.modify_listener, ELBv2Backend.describe_listeners
    state = {"writes": 0, "served": 0, "stale": None}

    def modify_listener(self, arn, *args, **kwargs):
        if arn != listener_arn:
            return modify(self, arn, *args, **kwargs)
        before = copy.deepcopy(describe(self, None, [arn])[0].default_actions)
        result = modify(self, arn, *args, **kwargs)
        state["writes"] += 1
        if state["writes"] == write_number:
            state["stale"] = before
        return result

    def describe_listeners(self, load_balancer_arn, listener_arns):
        result = describe(self, load_balancer_arn, listener_arns)
        if state["stale"] is not None and list(listener_arns or []) == [listener_arn]:
            stale = copy.copy(result[0])
            stale.default_actions, state["stale"] = state["stale"], None
            state["served"] += 1
            return [stale]
        return result

    monkeypatch.setattr(ELBv2Backend, "modify_listener", modify_listener)
    monkeypatch.setattr(ELBv2Backend, "describe_listeners", describe_listeners)
    return state


def body_has(value: str) -> Callable[[bytes], bool]:
    """A Rule.when matching the requests whose (form-encoded) body names ``value`` (an ARN, a name)."""
    from urllib.parse import quote

    needles = (quote(value, safe="-_.~").encode(), value.encode())
    return lambda body: any(n in body for n in needles)


class Watcher:
    """A daemon thread calling ``action()`` once ``condition()`` holds (each trigger fires once), so a
    fault can start at a point of a running release (a canary step, the post-shift watch)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.triggers: list[list[Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-watcher")
        self.interval = interval

    def when(self, condition: Callable[[], bool], action: Callable[[], None], name: str = "") -> None:
        self.triggers.append([condition, action, name, False])

    def fired(self, name: str) -> bool:
        return any(t[3] for t in self.triggers if t[2] == name)

    def _run(self) -> None:
        while not self._stop.is_set():
            for trigger in self.triggers:
                if trigger[3]:
                    continue
                try:
                    if trigger[0]():
                        trigger[1]()
                        trigger[3] = True
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(f"{trigger[2]}: {exc!r}")
            self._stop.wait(self.interval)

    def __enter__(self) -> "Watcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# Many stacks (one per case) released by one ansible-playbook run
# ---------------------------------------------------------------------------------------------


def run_release_hosts(aws: Any, stacks: dict[str, dict[str, Any]], version: str, tmp_path: Path,
                      extra_env: dict[str, str] | None = None, timeout: float = 1500,
                      popen: bool = False):
    """``ansible-playbook cattle.aws.release -i <inventory of stacks-as-hosts> -e cattle_release_hosts=all
    -f N -e version=...``: one release per stack, in parallel. Returns (rc, output); with ``popen`` the
    started process (own process group, output to ``tmp_path/ansible.out``) and the output's path."""
    import subprocess

    import yaml

    from helpers.ansible import BIN_DIR, ansible_env
    from helpers.release import RELEASE

    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "hosts": stacks}}))
    cmd = [str(BIN_DIR / "ansible-playbook"), RELEASE, "-i", str(inventory), "-f", str(len(stacks)),
           "-e", "cattle_release_hosts=all", "-e", f"version={version}"]
    env = ansible_env(aws, extra_env)
    if popen:
        env["PYTHONUNBUFFERED"] = "1"  # the output file shows each task as it happens
        out_path = tmp_path / "ansible.out"
        handle = open(out_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller's kill/wait
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                start_new_session=True)
        handle.close()
        return proc, out_path
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=tmp_path)
    return proc.returncode, proc.stdout + proc.stderr


def host_failures(out: str, host: str) -> list[str]:
    """The messages of the tasks that failed (not ignored) on ``host``."""
    messages = []
    for match in re.finditer(r"^fatal: \[" + re.escape(host) + r"\]: FAILED! => (\{.*\})$", out, re.M):
        tail = out[match.end():match.end() + 40]
        if tail.lstrip().startswith("...ignoring"):
            continue
        try:
            messages.append(str(json.loads(match.group(1)).get("msg")))
        except ValueError:
            messages.append(match.group(1))
    return messages


def recap(out: str) -> dict[str, dict[str, int]]:
    """host -> {ok, changed, unreachable, failed, ...} from the PLAY RECAP."""
    text = out.split("PLAY RECAP")[-1]
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", text, re.M)}
