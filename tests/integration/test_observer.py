"""The zero-downtime observer (tests/helpers/observer.py) catches what it must, and only that.

Traffic is moved by hand with boto3 while the observer samples: forwarding to a group with a
healthy target is fine, to an empty group or one whose targets are unhealthy (moto's health patched
like AWS reports it, as the release tests do) is a violation, and so is a listener that forwarded
and then serves the fixed 503 again or gives every group weight 0.
"""

from __future__ import annotations

import time

import pytest

from helpers.observer import TrafficObserver
from helpers.release import AMI, make_stack, patch_unhealthy

pytestmark = pytest.mark.integration


def _group(aws, stack, name, instances=0):
    elbv2 = aws.client("elbv2")
    arn = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=stack["vpc_id"],
                                    TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    if instances:
        reservation = aws.client("ec2").run_instances(ImageId=AMI, MinCount=instances, MaxCount=instances,
                                                      SubnetId=stack["subnet_ids"][0])
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i["InstanceId"]} for i in reservation["Instances"]])
    return arn


def _forward(aws, stack, weights):
    aws.client("elbv2").modify_listener(ListenerArn=stack["listener_arn"], DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights.items()]}}])


def _fixed_503(aws, stack):
    aws.client("elbv2").modify_listener(ListenerArn=stack["listener_arn"], DefaultActions=[{
        "Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"}}])


def _until(observer, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate(observer):
        assert time.monotonic() < deadline, f"observer: {observer.summary()} {observer.violations} {observer.errors}"
        time.sleep(0.02)


def _samples_after(observer, count):
    start = observer.samples
    _until(observer, lambda o: o.samples >= start + count)


def test_a_healthy_release_shows_no_violation_and_the_observer_calls_are_not_recorded(aws, tmp_path):
    stack = make_stack(aws, tmp_path)
    blue = _group(aws, stack, "shop-test-1-0-0", instances=2)
    green = _group(aws, stack, "shop-test-1-1-0", instances=1)
    aws.clear_calls()
    with TrafficObserver(aws, listener_arn=stack["listener_arn"]) as observer:
        _samples_after(observer, 3)  # the first release's fixed 503: never forwarded, fine
        _forward(aws, stack, {blue: 100})
        _samples_after(observer, 3)
        _forward(aws, stack, {blue: 50, green: 50})
        _samples_after(observer, 3)
        _forward(aws, stack, {blue: 0, green: 100})
        _samples_after(observer, 3)
    observer.assert_zero_downtime(require_forward=True)
    assert observer.violations == [] and observer.forward_samples >= 9
    assert observer.weights_seen == [{"shop-test-1-0-0": 100}, {"shop-test-1-0-0": 50, "shop-test-1-1-0": 50},
                                     {"shop-test-1-0-0": 0, "shop-test-1-1-0": 100}]
    # The observer's reads are not calls of the code under test: only the test's 3 writes are listed.
    assert aws.calls() == [("elbv2", "ModifyListener")] * 3
    raw = aws._request("/_cattle/calls")
    assert sum(1 for c in raw if c["action"] == "DescribeTargetHealth") >= 9


def test_weight_to_an_empty_group_is_a_violation(aws, tmp_path):
    stack = make_stack(aws, tmp_path)
    blue = _group(aws, stack, "shop-test-1-0-0", instances=1)
    empty = _group(aws, stack, "shop-test-1-1-0")
    with TrafficObserver(aws, listener_arn=stack["listener_arn"]) as observer:
        _forward(aws, stack, {blue: 90, empty: 10})
        _until(observer, lambda o: o.violations)
    assert "weight 10 to shop-test-1-1-0 with no healthy target (0 target(s): none)" in observer.violations[0]
    assert observer.violations[0].startswith("t=+")
    with pytest.raises(AssertionError, match=r"violate zero downtime:\n  t=\+[0-9.]+s weights \{'shop-test-1-0-0': 90"):
        observer.assert_zero_downtime()


def test_weight_to_unhealthy_targets_is_a_violation(threaded_aws, tmp_path, monkeypatch):
    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    blue = _group(aws, stack, "shop-test-1-0-0", instances=1)
    green = _group(aws, stack, "shop-test-1-1-0", instances=2)
    patch_unhealthy(monkeypatch, "1-1-0")  # what the release tests do: the observer sees the gate's health
    with TrafficObserver(aws, listener_arn=stack["listener_arn"]) as observer:
        _forward(aws, stack, {blue: 100, green: 0})
        _samples_after(observer, 3)
        assert observer.violations == [], "weight 0 to an unhealthy group is fine"
        _forward(aws, stack, {green: 100})
        _until(observer, lambda o: o.violations)
    assert "weight 100 to shop-test-1-1-0 with no healthy target (2 target(s): unhealthy, unhealthy)" in \
        observer.violations[0]


@pytest.fixture(params=["http", "in-process"])
def either_endpoint(request):
    """Both ways a sample is read: over HTTP (the moto server process) and from the models (threaded_aws)."""
    return request.getfixturevalue("aws" if request.param == "http" else "threaded_aws")


@pytest.mark.parametrize("drop", ["fixed-503", "all-weights-0"])
def test_a_listener_that_forwarded_and_stops_is_a_violation(either_endpoint, tmp_path, drop):
    aws = either_endpoint
    stack = make_stack(aws, tmp_path)
    blue = _group(aws, stack, "shop-test-1-0-0", instances=1)
    with TrafficObserver(aws, listener_arn=stack["listener_arn"]) as observer:
        _forward(aws, stack, {blue: 100})
        _until(observer, lambda o: o.forward_samples >= 2)
        if drop == "fixed-503":
            _fixed_503(aws, stack)
        else:
            _forward(aws, stack, {blue: 0})
        _until(observer, lambda o: o.violations)
    expected = ("forwards to nothing (fixed-response 503)" if drop == "fixed-503"
                else "gives every target group weight 0")
    assert expected in observer.violations[0]


def test_a_rule_is_observed_and_the_observer_cannot_pass_vacuously(either_endpoint, tmp_path):
    aws = either_endpoint
    stack = make_stack(aws, tmp_path)
    empty = _group(aws, stack, "shop-test-1-1-0")
    blue = _group(aws, stack, "shop-test-1-0-0", instances=1)
    elbv2 = aws.client("elbv2")
    rule = elbv2.create_rule(ListenerArn=stack["listener_arn"], Priority=10, Conditions=[
        {"Field": "path-pattern", "Values": ["/shop/*"]}], Actions=[{
            "Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": blue, "Weight": 100}]}}])
    rule_arn = rule["Rules"][0]["RuleArn"]
    # Another rule of the listener sends traffic to an empty group: not the stack's, not observed.
    elbv2.create_rule(ListenerArn=stack["listener_arn"], Priority=20, Conditions=[
        {"Field": "path-pattern", "Values": ["/other/*"]}], Actions=[{"Type": "forward", "TargetGroupArn": empty}])
    with TrafficObserver(aws, rule_arn=rule_arn) as observer:
        _samples_after(observer, 3)
    observer.assert_zero_downtime(require_forward=True)

    never = TrafficObserver(aws, listener_arn=stack["listener_arn"])
    with pytest.raises(AssertionError, match=r"took 0 sample\(s\)"):
        never.assert_zero_downtime()  # never started
    with TrafficObserver(aws, listener_arn=stack["listener_arn"]) as unused:
        _samples_after(unused, 3)  # the fixed 503 only
    with pytest.raises(AssertionError, match="never saw .* forward traffic"):
        unused.assert_zero_downtime(require_forward=True)
