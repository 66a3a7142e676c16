"""playbooks/release.yml failing and rolling back, and playbooks/rollback.yml, against the local endpoint.

Faults are injected on the in-process endpoint (threaded_aws) by patching moto's target health;
alarms are fired with CloudWatch set_alarm_state while the release runs.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from helpers.faults import HttpFaults, body_has
from helpers.release import ROLLBACK, groups, lock_value, make_stack, ok, patch_unhealthy, release, report, weights

pytestmark = pytest.mark.integration


def test_failure_at_the_gate_rolls_back_and_a_rerun_converges(threaded_aws, run_playbook, tmp_path, monkeypatch,
                                                              observe_traffic):
    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    observe_traffic(aws, stack)  # zero downtime through every release, failure and rollback of the test
    ok(release(aws, run_playbook, stack, "1.0.0"))
    patch_unhealthy(monkeypatch, "1-1-0")

    stack["report_dir"] = str(tmp_path / "failed")
    rc, out = release(aws, run_playbook, stack, "1.1.0", health={"timeout": 3, "poll_interval": 1})
    assert rc != 0
    assert "Release of 1.1.0 FAILED in phase health (Gate the new fleet" in out
    assert "unhealthy (Target.ResponseCodeMismatch)" in out
    assert "traffic back on 1.0.0" in out and "1.1.0 tagged cattle:status=failed and scaled to zero" in out
    assert weights(aws, stack) == {"1.0.0": 100, "1.1.0": 0}
    asgs = groups(aws)
    assert asgs["1.1.0"]["DesiredCapacity"] == 0 and asgs["1.1.0"]["MinSize"] == 0
    assert asgs["1.1.0"]["tags"]["cattle:status"] == "failed"
    assert asgs["1.1.0"]["SuspendedProcesses"] == []
    assert asgs["1.0.0"]["DesiredCapacity"] == 2
    assert lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["result"] == "rolled_back" and failed["failed_phase"] == "health"
    assert "Target.ResponseCodeMismatch" in failed["failure_reason"]
    assert "rollback" in {p["name"] for p in failed["timeline"]["phases"]}

    # The cause is fixed: the same command releases the same version.
    monkeypatch.undo()
    out = ok(release(aws, run_playbook, stack, "1.1.0"))
    assert "it failed before: its failed mark is cleared" in out
    # Its report replaces the failed run's, which is kept under earlier/.
    assert report(stack)[0]["result"] == "success"
    [earlier] = (tmp_path / "failed" / "earlier").iterdir()
    assert json.loads((earlier / "release-report.json").read_text())["result"] == "rolled_back"
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    asgs = groups(aws)
    assert "cattle:status" not in asgs["1.1.0"]["tags"] and asgs["1.1.0"]["DesiredCapacity"] == 2

    # retry_failed=false refuses a version marked failed, before any change.
    patch_unhealthy(monkeypatch, "1-2-0")
    rc, out = release(aws, run_playbook, stack, "1.2.0", health={"timeout": 2, "poll_interval": 1})
    assert rc != 0 and groups(aws)["1.2.0"]["tags"]["cattle:status"] == "failed"
    aws.clear_calls()
    rc, out = release(aws, run_playbook, stack, "1.2.0", retry_failed=False)
    assert rc != 0 and "Version 1.2.0 failed before and retry_failed is false: release a new version" in out
    assert [c for c in aws.mutating_calls() if c[0] != "ssm"] == []
    assert lock_value(aws) is None


def test_a_live_version_failing_its_gate_when_released_again_stays_live_and_nothing_is_changed(
        threaded_aws, run_playbook, tmp_path, monkeypatch):
    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    ok(release(aws, run_playbook, stack, "1.1.0"))
    patch_unhealthy(monkeypatch, "1-1-0")  # 1.1.0's targets fail their health checks now

    stack["report_dir"] = str(tmp_path / "recheck")
    rc, out = release(aws, run_playbook, stack, "1.1.0", health={"timeout": 3, "poll_interval": 1})

    assert rc != 0
    assert "Release of 1.1.0 FAILED in phase health (Gate the new fleet" in out, out
    assert "1.1.0 was live already and stays live with all the traffic: a release run again rolls nothing back" in out, out
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    asgs = groups(aws)
    assert asgs["1.1.0"]["DesiredCapacity"] == 2 and asgs["1.1.0"]["tags"].get("cattle:status") != "failed"
    assert asgs["1.0.0"]["DesiredCapacity"] == 2 and lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["result"] == "failed" and failed["failed_phase"] == "health"


def test_a_kept_version_released_again_with_a_changed_option_is_refused_and_left_as_it_was(
        threaded_aws, run_playbook, tmp_path):
    # 1.0.0 is the kept previous version (the instant rollback target); releasing it again with an option
    # changed by mistake is refused before any change, and must not cost the rollback target.
    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    ok(release(aws, run_playbook, stack, "1.1.0"))
    before = groups(aws)["1.0.0"]

    stack["report_dir"] = str(tmp_path / "typo")
    rc, out = release(aws, run_playbook, stack, "1.0.0", instance_type="t3.large")

    assert rc != 0
    assert "Release of 1.0.0 FAILED in phase provision (Provision the fleet" in out, out
    assert "Cannot change version 1.0.0: these options differ" in out and "instance_type" in out, out
    assert "1.0.0 is left as it was: its provisioning was refused before any change" in out, out
    assert "tagged cattle:status=failed" not in out, out
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    after = groups(aws)["1.0.0"]
    assert (after["MinSize"], after["MaxSize"], after["DesiredCapacity"]) == (before["MinSize"], before["MaxSize"], 2)
    assert after["tags"] == before["tags"] and after["tags"].get("cattle:status") != "failed", after["tags"]
    assert lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["failed_phase"] == "provision"
    assert [f["version"] for f in failed["cost"]["fleets"]] == ["1.1.0"]  # 1.0.0 was not scaled, not costed

    # It is still the instant rollback target.
    rc, out = release(aws, run_playbook, stack, None, playbook=ROLLBACK)
    assert rc == 0, out
    assert weights(aws, stack) == {"1.0.0": 100, "1.1.0": 0}


def test_alarm_during_the_canary_rolls_back(threaded_aws, run_playbook, tmp_path, observe_traffic):
    aws = threaded_aws  # in process: the observer reads the models, not HTTP
    stack = make_stack(aws, tmp_path)
    observe_traffic(aws, stack)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="shop-test-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    stack["report_dir"] = str(tmp_path / "alarm")
    result = {}
    runner = threading.Thread(target=lambda: result.update(run=release(
        aws, run_playbook, stack, "1.1.0", strategy="canary", canary={"steps": [10, 100], "pause_seconds": 300},
        health={"timeout": 60, "poll_interval": 1, "alarm_names": ["shop-test-5xx"]})))
    started = time.monotonic()
    runner.start()
    while runner.is_alive() and weights(aws, stack).get("1.1.0") != 10:
        assert time.monotonic() - started < 300, "the canary never reached 10 %"
        time.sleep(0.3)
    cloudwatch.set_alarm_state(AlarmName="shop-test-5xx", StateValue="ALARM",
                               StateReason="Threshold Crossed: 42 5xx responses")
    alarm_at = time.monotonic()
    runner.join(timeout=300)
    # The rest of the run (rollback, report, unlock) takes seconds; the pause would take 300.
    assert time.monotonic() - alarm_at < 120, "the watch must stop at the first poll that sees the alarm"
    rc, out = result["run"]
    assert rc != 0
    assert "Release of 1.1.0 FAILED in phase shift" in out and "shop-test-5xx: Threshold Crossed: 42 5xx responses" in out
    assert weights(aws, stack) == {"1.0.0": 100, "1.1.0": 0}
    asgs = groups(aws)
    assert asgs["1.1.0"]["DesiredCapacity"] == 0 and asgs["1.1.0"]["tags"]["cattle:status"] == "failed"
    assert lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["result"] == "rolled_back" and failed["failed_phase"] == "shift"


def test_rollback_to_a_version_scaled_to_zero(threaded_aws, run_playbook, run_module, tmp_path, observe_traffic,
                                              monkeypatch):
    aws = threaded_aws  # in process: the observer reads the models, not HTTP
    stack = make_stack(aws, tmp_path)
    observe_traffic(aws, stack)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    ok(release(aws, run_playbook, stack, "1.1.0"))
    scaled = run_module(aws, "cattle.aws.immutable_fleet", dict(app="shop", environment="test", version="1.0.0",
                                                                capacity={"min": 0, "max": 0, "desired": 0}))
    assert scaled.get("failed") is not True, scaled
    assert groups(aws)["1.0.0"]["DesiredCapacity"] == 0

    # Check mode: what the rollback would do; no instances to wait for, nothing changed.
    aws.clear_calls()
    rc, out, err = run_playbook(aws, ROLLBACK, dict(stack), check=True)
    assert rc == 0, out + err
    assert ("[shop/test rollback to 1.0.0] check mode: it would scale 1.0.0 back to {" in out
            and "attach it without traffic, wait for its instances, gate them" in out), out
    assert "check mode done in" in out and "1.0.0 would be scaled up, gated and given all the traffic" in out
    assert aws.mutating_calls() == [] and "DescribeTargetHealth" not in {action for _service, action in aws.calls()}
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100} and groups(aws)["1.0.0"]["DesiredCapacity"] == 0
    assert lock_value(aws) is None

    # Its targets never get healthy: the rollback fails before the traffic moves and scales it back to zero.
    patch_unhealthy(monkeypatch, "1-0-0")
    stack["report_dir"] = str(tmp_path / "rollback-failed")
    rc, out = release(aws, run_playbook, stack, None, playbook=ROLLBACK, health={"timeout": 3, "poll_interval": 1})
    assert rc != 0
    assert "Rollback to 1.0.0 FAILED in phase health (Gate the target version" in out, out
    assert "The traffic was not changed and 1.0.0 is scaled back to zero; the lock is released." in out
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100} and groups(aws)["1.0.0"]["DesiredCapacity"] == 0
    assert lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["result"] == "failed" and failed["failed_phase"] == "health"
    assert {"initialization", "health"} <= {p["name"] for p in failed["timeline"]["phases"]}
    monkeypatch.undo()

    stack["report_dir"] = str(tmp_path / "rollback")
    out = ok(release(aws, run_playbook, stack, None, playbook=ROLLBACK))
    assert "rolling back from 1.1.0 to 1.0.0" in out and "it has no instances" in out
    assert re.search(r"\[shop/test rollback to 1\.0\.0\] initialization done in \d+ s", out), out
    assert weights(aws, stack) == {"1.0.0": 100, "1.1.0": 0}
    asgs = groups(aws)
    assert asgs["1.0.0"]["DesiredCapacity"] == 2 and asgs["1.0.0"]["MinSize"] == 2
    assert asgs["1.1.0"]["DesiredCapacity"] == 2
    assert lock_value(aws) is None
    rolled, _html = report(stack)
    assert rolled["version"] == "1.0.0" and rolled["previous_version"] == "1.1.0" and rolled["result"] == "success"
    assert {"initialization", "health", "shift"} <= {p["name"] for p in rolled["timeline"]["phases"]}

    # Forward again to a given version: nothing to scale, one write. The stack as one dict, as an importing
    # playbook passes it (here an extra variable, which nothing the rollback registers may shadow).
    rc, out, err = run_playbook(aws, ROLLBACK, {"cattle_release_stack": stack, "version": "1.1.0"})
    assert rc == 0, out + err
    # Its report_dir is the one of the rollback before, whose report is kept under earlier/.
    [earlier] = (tmp_path / "rollback" / "earlier").iterdir()
    assert json.loads((earlier / "release-report.json").read_text())["version"] == "1.0.0"
    assert f"(the report of the run before is kept in {earlier})" in out
    assert report(stack)[0]["version"] == "1.1.0"
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    # Check mode with instances there: gated for real, the shift only planned.
    aws.clear_calls()
    rc, out, err = run_playbook(aws, ROLLBACK, dict(stack), check=True)
    assert rc == 0 and "1.0.0 passed its gate and would get all the traffic" in out, out + err
    assert re.search(r"\] shift planned \(check mode: not written\) \(elapsed \d+ s\): weights \{", out), out
    assert aws.mutating_calls() == [] and weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    # An AWX workflow's variables (the release's version=1.1.0) reach its rollback node: rollback_to wins.
    out = ok(release(aws, run_playbook, stack, "1.1.0", playbook=ROLLBACK, rollback_to="previous"))
    assert "rolling back from 1.1.0 to 1.0.0" in out and weights(aws, stack) == {"1.0.0": 100, "1.1.0": 0}
    rc, out = release(aws, run_playbook, stack, "9.9.9", playbook=ROLLBACK)
    assert rc != 0 and "version: 9.9.9 has no complete fleet" in out
    assert lock_value(aws) is None
    # Rolled back to the oldest version: a second rollback has nowhere to go back to, and says where it can go.
    aws.clear_calls()
    rc, out = release(aws, run_playbook, stack, None, playbook=ROLLBACK)
    assert rc != 0 and ("Nothing to roll back to: the stack has no previous version (live: 1.0.0); its other complete "
                        'versions, [\\"1.1.0\\"], are newer: give version (or rollback_to) to go to one of them.') in out, out
    assert [c for c in aws.mutating_calls() if c[0] != "ssm"] == [] and lock_value(aws) is None


def test_a_rollback_whose_scale_up_fails_after_aws_made_it_scales_the_target_back_to_zero(
        threaded_aws, run_playbook, run_module, tmp_path, monkeypatch):
    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    ok(release(aws, run_playbook, stack, "1.1.0"))
    scaled = run_module(aws, "cattle.aws.immutable_fleet", dict(app="shop", environment="test", version="1.0.0",
                                                                capacity={"min": 0, "max": 0, "desired": 0}))
    assert scaled.get("failed") is not True, scaled
    # AWS scales 1.0.0 up, then the answer is an error (one that no retry repeats): the module fails.
    faults = HttpFaults(aws, monkeypatch)
    lost = faults.fail("autoscaling", "UpdateAutoScalingGroup", times=1, after=True, when=body_has("DesiredCapacity=2"),
                       error=("ScalingActivityInProgress", 400, "Scaling activities are in progress (injected)."))

    rc, out = release(aws, run_playbook, stack, None, playbook=ROLLBACK)

    assert rc != 0 and lost.injected == 1
    assert "Rollback to 1.0.0 FAILED in phase initialization (Scale the target version back" in out, out
    assert "The traffic was not changed and 1.0.0 is scaled back to zero; the lock is released." in out, out
    assert groups(aws)["1.0.0"]["DesiredCapacity"] == 0 and groups(aws)["1.0.0"]["MaxSize"] == 0
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100} and lock_value(aws) is None


def test_rollback_onto_a_listener_that_no_longer_forwards_attaches_by_a_rule_first(
        threaded_aws, run_playbook, tmp_path, monkeypatch):
    """An operator put a maintenance page (a fixed response) on the listener; rolling back to 1.0.0 attaches it by
    an attach rule (so the load balancer health-checks it), gates it, then replaces the page by a forward to it."""
    from helpers.release import listener_rules, patch_target_health_like_aws

    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    ok(release(aws, run_playbook, stack, "1.1.0"))
    maintenance = {"Type": "fixed-response", "FixedResponseConfig": {
        "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "maintenance"}}
    aws.client("elbv2").modify_listener(ListenerArn=stack["listener_arn"], DefaultActions=[maintenance])
    seen = patch_target_health_like_aws(monkeypatch, stack["listener_arn"])
    aws.clear_calls()
    out = ok(release(aws, run_playbook, stack, "1.0.0", playbook=ROLLBACK))
    assert "rolling back from nothing to 1.0.0" in out
    writes = [action for service, action in aws.mutating_calls() if service == "elbv2"]
    assert writes == ["CreateRule", "ModifyListener", "DeleteRule"], writes
    # The gate read healthy targets while the listener still answered the maintenance page.
    assert "fixed-response" in seen, seen
    assert weights(aws, stack) == {"1.0.0": 100}
    assert listener_rules(aws, stack["listener_arn"]) == [], "the shift deletes the attach rule"
    assert lock_value(aws) is None


def test_a_first_release_failing_its_gate_never_touches_the_listener(threaded_aws, run_playbook, tmp_path, monkeypatch):
    """#7: a first release attaches the new version by an attach rule, so the ALB health-checks it
    while the listener keeps its fixed 503; failing the gate deletes that rule and changes nothing else."""
    from helpers.release import listener_rules, patch_target_health_like_aws

    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    listener_before = aws.client("elbv2").describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"][0]
    seen = patch_target_health_like_aws(monkeypatch, stack["listener_arn"])
    patch_unhealthy(monkeypatch, "1-0-0")

    rc, out = release(aws, run_playbook, stack, "1.0.0", health={"timeout": 3, "poll_interval": 1})
    assert rc != 0
    assert "Release of 1.0.0 FAILED in phase health (Gate the new fleet" in out
    # unhealthy, not unused: the load balancer did health-check the group (through the attach rule).
    assert "unhealthy (Target.ResponseCodeMismatch)" in out and "unused" not in out
    assert seen and set(seen) == {"fixed-response"}, seen
    assert "first release: the listener was never changed" in out and "the attach rule of 1.0.0 is deleted" in out
    assert "forwards to the failed version" not in out
    listener = aws.client("elbv2").describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"][0]
    assert listener["DefaultActions"] == listener_before["DefaultActions"]
    assert listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "503"
    assert listener_rules(aws, stack["listener_arn"]) == []
    asgs = groups(aws)
    assert asgs["1.0.0"]["DesiredCapacity"] == 0 and asgs["1.0.0"]["tags"]["cattle:status"] == "failed"
    assert lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["result"] == "rolled_back" and failed["failed_phase"] == "health"


def test_a_first_release_failing_after_its_shift_gives_the_listener_its_fixed_response_back(
        threaded_aws, run_playbook, tmp_path):
    """The shift replaced the listener's fixed 503 by a forward to 1.0.0, then an alarm fired in the watch: the
    rollback puts the 503 back in one write (not a forward to a group scaled to zero) and deletes the fleet.
    No zero-downtime observer here: the stack's only version fails, so the listener rightly stops forwarding."""
    from helpers.release import listener_rules

    aws = threaded_aws
    stack = make_stack(aws, tmp_path, on_failure="delete")
    elbv2 = aws.client("elbv2")
    listener_before = elbv2.describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"][0]
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="shop-test-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    health = {"timeout": 60, "poll_interval": 1, "alarm_names": ["shop-test-5xx"]}
    result = {}
    runner = threading.Thread(target=lambda: result.update(run=release(
        aws, run_playbook, stack, "1.0.0", bake_seconds=300, health=health)))
    started = time.monotonic()
    runner.start()
    while runner.is_alive() and weights(aws, stack) != {"1.0.0": 100}:
        assert time.monotonic() - started < 300, "the shift never happened"
        time.sleep(0.3)
    cloudwatch.set_alarm_state(AlarmName="shop-test-5xx", StateValue="ALARM", StateReason="Threshold Crossed: 42 5xx responses")
    runner.join(timeout=300)
    rc, out = result["run"]
    assert rc != 0
    assert "Release of 1.0.0 FAILED in phase watch" in out and "Threshold Crossed: 42 5xx responses" in out
    assert "first release: the shift is undone: the listener answers its fixed response again" in out, out
    assert "its fleet deleted" in out and "forwards to the failed version" not in out
    listener = elbv2.describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"][0]
    assert listener["DefaultActions"] == listener_before["DefaultActions"]
    assert listener_rules(aws, stack["listener_arn"]) == []
    assert groups(aws) == {}
    assert lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["result"] == "rolled_back" and failed["failed_phase"] == "watch"
    assert failed["weights"][-1]["weights"] == {"1.0.0": 0}

    # The cause is fixed: the same command releases it again.
    cloudwatch.set_alarm_state(AlarmName="shop-test-5xx", StateValue="OK", StateReason="fixed")
    stack["report_dir"] = str(tmp_path / "retry")
    ok(release(aws, run_playbook, stack, "1.0.0", bake_seconds=1, health=health))
    assert weights(aws, stack) == {"1.0.0": 100}


def test_a_failed_cleanup_fails_the_release_without_rolling_back_and_a_rerun_finishes_it(
        threaded_aws, run_playbook, run_module, tmp_path, monkeypatch):
    """A release whose gate and shift passed is not rolled back when fleet_gc fails: the play fails
    naming phase cleanup (non-zero rc), the new version stays live, and the same command finishes it."""
    from moto.elbv2 import exceptions as elbv2_exceptions
    from moto.elbv2 import models as elbv2_models

    aws = threaded_aws
    stack = make_stack(aws, tmp_path, keep=0)
    old = run_module(aws, "cattle.aws.immutable_fleet", dict(
        app="shop", environment="test", version="0.9.0", ami_id=stack["ami_id"], instance_type="t3.micro",
        subnet_ids=stack["subnet_ids"], target_group=dict(stack["target_group"], vpc_id=stack["vpc_id"]),
        capacity={"min": 0, "max": 1, "desired": 0}))
    assert old.get("failed") is not True, old
    original = elbv2_models.ELBv2Backend.delete_target_group

    def delete_target_group(self, target_group_arn):
        if "0-9-0" in target_group_arn:
            raise elbv2_exceptions.ResourceInUseError("injected: the target group is in use")
        return original(self, target_group_arn)

    monkeypatch.setattr(elbv2_models.ELBv2Backend, "delete_target_group", delete_target_group)
    rc, out = release(aws, run_playbook, stack, "1.0.0")
    assert rc != 0
    assert "Release of 1.0.0 FAILED in phase cleanup (fleet_gc)" in out and "injected" in out
    assert "1.0.0 is live and stays live" in out and "Re-run the same command to finish the cleanup" in out
    assert weights(aws, stack) == {"1.0.0": 100}
    assert lock_value(aws) is None
    failed, _html = report(stack)
    assert failed["failed_phase"] == "cleanup" and failed["result"] == "success"

    monkeypatch.undo()
    stack["report_dir"] = str(tmp_path / "rerun")
    ok(release(aws, run_playbook, stack, "1.0.0"))
    assert "0.9.0" not in groups(aws) and weights(aws, stack) == {"1.0.0": 100}
    names = [g["TargetGroupName"] for g in aws.client("elbv2").describe_target_groups()["TargetGroups"]]
    assert not [n for n in names if "0-9-0" in n], names
