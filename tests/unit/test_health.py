"""Pure tests of the health gate's decision (module_utils/_fleet/health.py) and of the AMI tag plan."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import ami
from ansible_collections.cattle.aws.plugins.module_utils._fleet import health
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-test-1-0-0-abcdef12/0123456789abcdef"


def spec(**kw):
    return health.build_spec(app="shop", environment="test", version="1.0.0", **kw)


def instance(iid, state="InService", health_status="Healthy"):
    return {"InstanceId": iid, "LifecycleState": state, "HealthStatus": health_status, "AvailabilityZone": "us-east-1a"}


def target(iid, state="healthy", reason=None):
    th = {"State": state}
    if reason:
        th["Reason"] = reason
    return {"Target": {"Id": iid, "Port": 8080}, "TargetHealth": th}


def observation(desired=2, instances=None, targets=None, activities=None, alarms=None, http=None):
    instances = [instance("i-1"), instance("i-2")] if instances is None else instances
    targets = [target("i-1"), target("i-2")] if targets is None else targets
    return {
        "groups": [{"AutoScalingGroupName": "shop-test-1.0.0", "DesiredCapacity": desired, "Instances": instances,
                    "TargetGroupARNs": [TG]}],
        "activities": activities or [],
        "target_health": {TG: targets},
        "alarms": alarms,
        "http": http or [],
    }


def test_all_healthy():
    status, checks, summary = health.evaluate(observation(), spec())
    assert status == "healthy"
    assert {c["name"] for c in checks} == {"auto_scaling_group", "scaling_activities", "target_health"}
    assert "2/2 healthy" in summary


@pytest.mark.parametrize("state,reason", [("initial", "Elb.RegistrationInProgress"), ("unhealthy", "Target.Timeout"),
                                          ("unused", "Target.NotInUse")])
def test_targets_not_healthy_wait_with_reason(state, reason):
    status, checks, summary = health.evaluate(observation(targets=[target("i-1"), target("i-2", state, reason)]), spec())
    assert status == "waiting"
    assert f"i-2 {state} ({reason})" in summary
    assert "1/2 healthy (need 2" in summary


@pytest.mark.parametrize("desired,percent,need", [(2, 100, 2), (2, 50, 1), (3, 50, 2), (4, 0, 1), (1, 1, 1), (10, 75, 8)])
def test_required_healthy(desired, percent, need):
    assert health.required_healthy(desired, percent) == need


def test_min_healthy_percent_passes_with_fewer_targets():
    obs = observation(targets=[target("i-1"), target("i-2", "unhealthy", "Target.Timeout")])
    assert health.evaluate(obs, spec(min_healthy_percent=50))[0] == "healthy"


def test_healthy_targets_that_are_not_in_service_instances_do_not_count():
    obs = observation(instances=[instance("i-1"), instance("i-2", state="Pending")],
                      targets=[target("i-1"), target("i-9")])
    status, _checks, summary = health.evaluate(obs, spec())
    assert status == "waiting"
    assert "1/2 desired instances InService" in summary


def test_missing_instances_wait():
    status, _checks, summary = health.evaluate(observation(instances=[instance("i-1")]), spec())
    assert status == "waiting" and "1/2 desired instances InService" in summary


def test_unhealthy_instance_fails_at_once():
    obs = observation(instances=[instance("i-1"), instance("i-2", health_status="Unhealthy")])
    status, _checks, summary = health.evaluate(obs, spec())
    assert status == "failed" and "i-2" in summary and "being replaced" in summary


def _activity(code, minutes, description="Launching a new EC2 instance: i-1", cause="", message=None):
    start = datetime.datetime(2024, 5, 1, 12, minutes, tzinfo=datetime.timezone.utc)
    act = {"StatusCode": code, "StartTime": start, "Description": description, "Cause": cause}
    if message:
        act["StatusMessage"] = message
    return act


def test_latest_failed_activity_fails_with_aws_reason():
    acts = [_activity("Successful", 1), _activity("Failed", 2, message="Instance type t3.micro is not supported")]
    status, _checks, summary = health.evaluate(observation(activities=acts), spec())
    assert status == "failed"
    assert "scaling activity Failed" in summary and "t3.micro is not supported" in summary


def test_older_failed_activity_followed_by_success_is_ok():
    acts = [_activity("Failed", 1, message="capacity"), _activity("Successful", 2)]
    assert health.evaluate(observation(activities=acts), spec())[0] == "healthy"


def test_newer_activity_in_progress_makes_an_older_failure_history():
    # A failed version released again: scaled up from 0, its new launch is in progress; the failure
    # of the earlier attempt must not fail the gate at once.
    acts = [_activity("Failed", 1, message="boom"), _activity("InProgress", 2)]
    status, checks, _summary = health.evaluate(observation(activities=acts), spec())
    assert [c["status"] for c in checks if c["name"] == "scaling_activities"] == ["healthy"]


def test_a_retry_that_fails_again_fails():
    # AWS retries a failed launch: once the retry failed too, it is the latest activity.
    acts = [_activity("Failed", 1, message="boom"), _activity("InProgress", 2), _activity("Failed", 3, message="boom again")]
    acts[1]["StatusCode"] = "Failed"
    status, _checks, summary = health.evaluate(observation(activities=acts), spec())
    assert status == "failed" and "boom again" in summary


def test_replacement_for_failing_health_fails():
    acts = [_activity("InProgress", 3, description="Terminating EC2 instance: i-2",
                      cause="an instance was taken out of service in response to an ELB system health check failure.")]
    status, _checks, summary = health.evaluate(observation(activities=acts), spec())
    assert status == "failed" and "replaced for failing health checks" in summary and "i-2" in summary


def test_scale_in_termination_is_not_a_health_replacement():
    acts = [_activity("Successful", 3, description="Terminating EC2 instance: i-3",
                      cause="an instance was taken out of service in response to a difference between desired and "
                            "actual capacity, shrinking the capacity from 3 to 2.")]
    assert health.evaluate(observation(activities=acts), spec())[0] == "healthy"


def test_alarms():
    ok = {"a": {"AlarmName": "a", "StateValue": "OK"}, "b": {"AlarmName": "b", "StateValue": "INSUFFICIENT_DATA"}}
    assert health.evaluate(observation(alarms=ok), spec(alarm_names=["a", "b"]))[0] == "healthy"
    firing = dict(ok, b={"AlarmName": "b", "StateValue": "ALARM", "StateReason": "Threshold crossed"})
    status, _c, summary = health.evaluate(observation(alarms=firing), spec(alarm_names=["a", "b"]))
    assert status == "failed" and "alarms in ALARM: b: Threshold crossed" in summary
    status, _c, summary = health.evaluate(observation(alarms=ok), spec(alarm_names=["a", "c"]))
    assert status == "failed" and "alarms not found: c" in summary


def test_desired_zero_and_missing_group_fail():
    assert health.evaluate(observation(desired=0, instances=[], targets=[]), spec())[0] == "failed"
    obs = observation()
    obs["groups"] = []
    status, _c, summary = health.evaluate(obs, spec())
    assert status == "failed" and "no auto scaling group found" in summary


def test_spec_validation():
    with pytest.raises(FleetError, match="auto_scaling_group_name"):
        health.build_spec()
    with pytest.raises(FleetError, match="between 0 and 100"):
        spec(min_healthy_percent=101)
    with pytest.raises(FleetError, match="body_regex"):
        spec(http_checks=[{"url": "http://x", "body_regex": "("}])


def test_http_probe():
    check = spec(http_checks=[{"url": "http://x/h", "body_regex": "ok"}])["http_checks"][0]
    assert health.http_probe(check, lambda url, timeout: (200, "all ok"))["ok"]
    assert "status 500" in health.http_probe(check, lambda url, timeout: (500, "x"))["detail"]
    assert "body does not match" in health.http_probe(check, lambda url, timeout: (200, "nope"))["detail"]

    def boom(url, timeout):
        raise TimeoutError("timed out")

    assert health.http_probe(check, boom) == {"ok": False, "status": None, "detail": "request failed: timed out"}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_loop_decides_within_one_poll(monkeypatch):
    clock = FakeClock()
    healthy_from = 7.2
    monkeypatch.setattr(health, "observe", lambda clients, s, http_get=None, http_state=None: observation(
        targets=[target("i-1"), target("i-2", "healthy" if clock.now >= healthy_from else "initial")]))
    result = health.wait_healthy(None, spec(), timeout=60, poll_interval=2, clock=clock, sleep=clock.sleep)
    assert result["healthy"] and result["polls"] == 5  # t = 0, 2, 4, 6, 8
    assert healthy_from <= result["time_to_healthy"] <= healthy_from + 2


def test_wait_loop_times_out_at_the_deadline(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(health, "observe", lambda clients, s, http_get=None, http_state=None: observation(
        targets=[target("i-1", "unhealthy", "Target.Timeout"), target("i-2")]))
    result = health.wait_healthy(None, spec(), timeout=5, poll_interval=2, clock=clock, sleep=clock.sleep)
    assert result["timed_out"] and result["status"] == "waiting"
    assert result["elapsed"] == 5  # the last poll is at the deadline, not a poll later
    assert result["instances"][0]["targets"][0]["reason"] == "Target.Timeout"


def test_wait_false_observes_once(monkeypatch):
    monkeypatch.setattr(health, "observe", lambda clients, s, http_get=None, http_state=None: observation(
        targets=[target("i-1", "initial"), target("i-2")]))
    result = health.wait_healthy(None, spec(), wait=False)
    assert result["polls"] == 1 and result["status"] == "waiting" and not result["timed_out"]


def test_watch_keeps_polling_a_healthy_fleet_for_watch_seconds(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(health, "observe", lambda clients, s, http_get=None, http_state=None: observation())
    result = health.wait_healthy(None, spec(), timeout=60, poll_interval=2, clock=clock, sleep=clock.sleep,
                                 watch_seconds=5)
    assert result["healthy"] and not result["watch_failed"]
    assert result["polls"] == 4  # healthy at t=0, watched at 2, 4, 5
    assert result["watched"] == 5 and result["time_to_healthy"] == 0 and result["elapsed"] == 5


def test_watch_fails_at_the_first_poll_with_an_alarm(monkeypatch):
    clock = FakeClock()

    def observe(clients, s, http_get=None, http_state=None):
        state = "ALARM" if clock.now >= 3 else "OK"
        return observation(alarms={"shop-5xx": {"StateValue": state, "StateReason": "Threshold Crossed: 5xx > 10"}})

    monkeypatch.setattr(health, "observe", observe)
    result = health.wait_healthy(None, spec(alarm_names=["shop-5xx"]), timeout=60, poll_interval=1, clock=clock,
                                 sleep=clock.sleep, watch_seconds=30)
    assert result["status"] == "failed" and result["watch_failed"] and not result["healthy"]
    assert result["elapsed"] == 3 and result["watched"] == 3 and result["polls"] == 4
    assert result["summary"].startswith("after 3.0 s of the 30 s watch: alarms: alarms in ALARM: shop-5xx: Threshold Crossed")


def test_watch_fails_when_healthy_targets_drop_below_the_threshold(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(health, "observe", lambda clients, s, http_get=None, http_state=None: observation(
        targets=[target("i-1"), target("i-2", "unhealthy" if clock.now >= 4 else "healthy", "Target.Timeout")]))
    result = health.wait_healthy(None, spec(), timeout=60, poll_interval=2, clock=clock, sleep=clock.sleep,
                                 watch_seconds=10)
    assert result["watch_failed"] and result["status"] == "failed" and result["watched"] == 4
    assert "i-2 unhealthy (Target.Timeout)" in result["summary"]


def test_watch_waits_for_healthy_first_and_is_ignored_without_wait(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(health, "observe", lambda clients, s, http_get=None, http_state=None: observation(
        targets=[target("i-1"), target("i-2", "healthy" if clock.now >= 3 else "initial")]))
    result = health.wait_healthy(None, spec(), timeout=60, poll_interval=2, clock=clock, sleep=clock.sleep,
                                 watch_seconds=4)
    assert result["healthy"] and result["time_to_healthy"] == 4 and result["watched"] == 4 and result["elapsed"] == 8
    once = health.wait_healthy(None, spec(), wait=False, watch_seconds=4)
    assert once["polls"] == 1 and once["watched"] == 0


# ---------------------------------------------------------------------------------------- ami


def image(tags=None):
    return {"ImageId": "ami-1", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1"}}]}


DESIRED = {"Name": "shop-test-1.0.0", "cattle:app": "shop", "cattle:environment": "test", "cattle:version": "1.0.0",
           "cattle:managed-by": "cattle.aws", "cattle:created-at": "2024-05-01T12:00:00Z"}


def test_plan_tags_untagged_image_and_snapshot():
    plan = ami.plan_tags(image(), {"snap-1": {}}, DESIRED)
    assert plan == {"ami-1": DESIRED, "snap-1": DESIRED}


def test_plan_tags_already_tagged_is_empty_and_keeps_created_at():
    tagged = dict(DESIRED, **{"cattle:created-at": "2020-01-01T00:00:00Z"})
    assert ami.plan_tags(image(tagged), {"snap-1": tagged}, DESIRED) == {}


def test_plan_tags_refuses_an_image_of_another_release():
    with pytest.raises(FleetError, match="already tagged for another release .*cattle:version=0.9.0"):
        ami.plan_tags(image(dict(DESIRED, **{"cattle:version": "0.9.0"})), {}, DESIRED)
    no_env = {k: v for k, v in DESIRED.items() if k != "cattle:environment"}
    with pytest.raises(FleetError, match="cattle:environment=test"):
        ami.plan_tags(image(DESIRED), {}, no_env)


def test_tagging_failure_deregisters_the_ami():
    from unittest.mock import MagicMock

    import botocore.exceptions

    ec2 = MagicMock()
    ec2.describe_snapshots.return_value = {"Snapshots": [{"SnapshotId": "snap-1", "Tags": []}]}
    ec2.create_tags.side_effect = botocore.exceptions.ClientError(
        {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "CreateTags")
    with pytest.raises(FleetError, match="the AMI was deregistered and its snapshots deleted"):
        ami.tag_image(ec2, image(), DESIRED)
    ec2.create_tags.assert_called_once()
    assert sorted(ec2.create_tags.call_args.kwargs["Resources"]) == ["ami-1", "snap-1"]
    ec2.deregister_image.assert_called_once_with(ImageId="ami-1")
    ec2.delete_snapshot.assert_called_once_with(SnapshotId="snap-1")


def test_tagging_in_check_mode_makes_no_call():
    from unittest.mock import MagicMock

    ec2 = MagicMock()
    ec2.describe_snapshots.return_value = {"Snapshots": [{"SnapshotId": "snap-1", "Tags": []}]}
    changed, plan = ami.tag_image(ec2, image(), DESIRED, check_mode=True)
    assert changed and set(plan) == {"ami-1", "snap-1"}
    ec2.create_tags.assert_not_called()


def test_wait_loop_tells_the_initialization_from_the_target_health(monkeypatch):
    # Instances InService from t=4, their targets healthy from t=8: the first is the end of the
    # initialization, with its UTC time, the second the time to healthy.
    clock = FakeClock()

    def observe(clients, s, http_get=None, http_state=None):
        state = "InService" if clock.now >= 4 else "Pending"
        return observation(instances=[instance("i-1", state), instance("i-2", state)],
                           targets=[target("i-1", "healthy" if clock.now >= 8 else "initial"), target("i-2")])

    monkeypatch.setattr(health, "observe", observe)
    stamps = iter(["2024-05-01T12:00:04.000000Z", "never read"])
    result = health.wait_healthy(None, spec(), timeout=60, poll_interval=2, clock=clock, sleep=clock.sleep,
                                 utc_now=lambda: next(stamps))
    assert result["healthy"] and result["time_to_in_service"] == 4 and result["time_to_healthy"] == 8
    assert result["in_service_at"] == "2024-05-01T12:00:04.000000Z"


def test_a_launch_that_never_gets_in_service_has_no_in_service_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(health, "observe", lambda clients, s, http_get=None, http_state=None: observation(
        instances=[], targets=[]))
    result = health.wait_healthy(None, spec(), timeout=4, poll_interval=2, clock=clock, sleep=clock.sleep)
    assert result["timed_out"] and result["time_to_in_service"] is None and result["in_service_at"] is None
    assert "0/2 desired instances InService" in result["summary"]
