"""Fault matrix (issue #8), API faults: throttling on every service the collection uses and 5xx on
the traffic write and its read-back, one module run each (a whole playbook adds nothing here: the
retries are in the modules' AWS calls). The rest of the matrix: test_faults_release.py (a release
failing in each phase, rolled back, re-run) and test_faults_kill.py (SIGKILL in each phase, a
second release while one runs).

Each case injects its fault on the in-process endpoint (helpers.faults.HttpFaults: the error AWS
answers - RequestLimitExceeded 503 for EC2, Throttling 400 for ELBv2 / Auto Scaling / CloudWatch,
ThrottlingException for SSM, ThrottledException for the tagging API, InternalFailure 500,
ServiceUnavailable 503), asserts the fault happened, that the module still did its job, and that
the same run again converges (changes nothing). The SDK's own retries are cut to one
(AWS_MAX_ATTEMPTS=2, a user setting) so the collection's retries must absorb the rest of a burst.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from helpers.faults import SERVICE_UNAVAILABLE, HttpFaults, assert_converged, put_alarm, seed_fleet, seed_live
from helpers.observer import TrafficObserver
from helpers.release import lock_value, make_stack, weights

pytestmark = pytest.mark.integration

SDK_RETRIES_CUT = {"AWS_MAX_ATTEMPTS": "2"}
BURST = 3  # errors in a row: more than the SDK's own retries (cut to one) absorb


def _fleet_args(stack, version="1.1.0"):
    return dict(app="shop", environment="test", version=version, ami_id=stack["ami_id"],
                instance_type="t3.micro", subnet_ids=stack["subnet_ids"],
                security_group_ids=stack["security_group_ids"], capacity=stack["capacity"],
                target_group=dict(stack["target_group"], vpc_id=stack["vpc_id"]), wait_timeout=60)


def _shift_args(stack, percent=100):
    return dict(app="shop", environment="test", to_version="1.1.0", percent=percent, listener_arn=stack["listener_arn"])


@dataclass
class ApiCase:
    id: str
    inject: Callable[[HttpFaults], Any]
    module: str
    args: Callable[[dict], dict]
    setup: Callable[[Any, dict], None] = lambda aws, stack: None
    check: Callable[[Any, dict, dict], None] = lambda aws, stack, result: None
    then: tuple[str, Callable[[dict], dict]] | None = None  # a second module run in the same case


def _new_fleet_live(aws, stack, result):
    assert result["fleet"]["capacity"]["desired"] == 2 and result["changed"] is True


def _shifted(aws, stack, result):
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    assert_converged(aws, stack, "1.1.0")


def _lock_args(state):
    def args(result):
        extra = {"token": result["lock"]["token"]} if state == "released" else {"version": "1.1.0", "holder": "ci:1"}
        return dict(app="shop", environment="test", state=state, **extra)
    return args


CASES = [
    ApiCase("ec2-throttled-RequestLimitExceeded", lambda f: f.throttle("ec2", None, BURST),
            "cattle.aws.immutable_fleet", _fleet_args, check=_new_fleet_live),
    ApiCase("autoscaling-throttled-Throttling", lambda f: f.throttle("autoscaling", None, BURST),
            "cattle.aws.immutable_fleet", _fleet_args, check=_new_fleet_live),
    ApiCase("elbv2-throttled-Throttling", lambda f: f.throttle("elbv2", None, BURST),
            "cattle.aws.traffic_shift", _shift_args,
            setup=lambda aws, stack: seed_fleet(aws, stack, "1.1.0"), check=_shifted),
    ApiCase("ssm-throttled-ThrottlingException", lambda f: f.throttle("ssm", None, BURST),
            "cattle.aws.stack_lock", lambda stack: _lock_args("acquired")({}),
            check=lambda aws, stack, result: None, then=("cattle.aws.stack_lock", _lock_args("released"))),
    ApiCase("cloudwatch-throttled-Throttling", lambda f: f.throttle("cloudwatch", None, BURST),
            "cattle.aws.fleet_health",
            lambda stack: dict(app="shop", environment="test", version="1.0.0", alarm_names=["shop-test-5xx"],
                               timeout=30, poll_interval=1),
            setup=lambda aws, stack: put_alarm(aws),
            check=lambda aws, stack, result: None),
    ApiCase("tagging-api-throttled-ThrottledException", lambda f: f.throttle("tagging", None, BURST),
            "cattle.aws.fleet_info",
            lambda stack: dict(app="shop", environment="test", traffic_point=stack["listener_arn"]),
            check=lambda aws, stack, result: None),
    ApiCase("traffic-write-503-before-applied", lambda f: f.fail("elbv2", "ModifyListener", 3, error=SERVICE_UNAVAILABLE),
            "cattle.aws.traffic_shift", _shift_args,
            setup=lambda aws, stack: seed_fleet(aws, stack, "1.1.0"), check=_shifted),
    ApiCase("traffic-write-500-after-applied", lambda f: f.fail("elbv2", "ModifyListener", 2, after=True),
            "cattle.aws.traffic_shift", _shift_args,
            setup=lambda aws, stack: seed_fleet(aws, stack, "1.1.0"), check=_shifted),
    ApiCase("traffic-read-back-500", lambda f: f.fail("elbv2", "DescribeListeners", BURST, skip=1),
            "cattle.aws.traffic_shift", _shift_args,
            setup=lambda aws, stack: seed_fleet(aws, stack, "1.1.0"), check=_shifted),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_api_fault_is_absorbed_and_a_rerun_converges(case, threaded_aws, run_module, tmp_path, monkeypatch):
    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    seed_live(aws, stack)
    case.setup(aws, stack)
    faults = HttpFaults(aws, monkeypatch)
    rule = case.inject(faults)
    observer = TrafficObserver(aws, listener_arn=stack["listener_arn"], interval=0.2).start()

    result = run_module(aws, case.module, case.args(stack), extra_env=SDK_RETRIES_CUT)
    assert result.get("failed") is not True, f"{case.id}: {result.get('msg')}"
    assert rule.injected == rule.times, f"{case.id}: the fault was injected {rule.injected} of {rule.times} times"
    case.check(aws, stack, result)
    if case.then:
        module, args = case.then
        follow = run_module(aws, module, args(result), extra_env=SDK_RETRIES_CUT)
        assert follow.get("failed") is not True, f"{case.id}: {follow.get('msg')}"

    # The same run again converges: nothing left to change.
    again = run_module(aws, case.module, case.args(stack))
    assert again.get("failed") is not True, again.get("msg")
    if case.then:
        run_module(aws, case.then[0], case.then[1](again))
    else:
        assert again.get("changed") is False, f"{case.id}: a re-run changed {json.dumps(again.get('actions'))}"
    assert lock_value(aws) is None
    observer.assert_zero_downtime(min_samples=3, require_forward=True)
