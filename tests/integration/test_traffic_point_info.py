"""cattle.aws.traffic_point_info through ansible against the local AWS endpoint."""

from __future__ import annotations

import pytest

from helpers.release import make_stack

pytestmark = pytest.mark.integration

MODULE = "cattle.aws.traffic_point_info"


def _target_group(aws, stack, name):
    return aws.client("elbv2").create_target_group(
        Name=name, Protocol="HTTP", Port=8080, VpcId=stack["vpc_id"], TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]


def test_a_listener_answering_a_fixed_response(aws, run_module, tmp_path):
    stack = make_stack(aws, tmp_path)
    listener = aws.client("elbv2").describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"][0]
    aws.clear_calls()

    for check in (False, True):
        result = run_module(aws, MODULE, {"listener_arn": stack["listener_arn"]}, check=check)

        assert result.get("failed") is not True, result.get("msg")
        point = result["traffic_point"]
        assert result["changed"] is False
        assert point["type"] == "listener" and point["arn"] == point["listener_arn"] == stack["listener_arn"]
        assert point["load_balancer_arn"] == listener["LoadBalancerArn"] and point["priority"] is None
        assert point["forward"] == []
        assert point["fixed_response"] == {"status_code": "503", "content_type": "text/plain", "message_body": "No release yet"}
        assert point["actions"][0]["type"] == "fixed-response"
    # One read per run, nothing else.
    assert aws.calls() == [("elbv2", "DescribeListeners")] * 2


def test_a_rule_forwarding_to_weighted_target_groups(aws, run_module, tmp_path):
    stack = make_stack(aws, tmp_path)
    blue, green = _target_group(aws, stack, "shop-blue"), _target_group(aws, stack, "shop-green")
    rule = aws.client("elbv2").create_rule(
        ListenerArn=stack["listener_arn"], Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/shop/*"]}],
        Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": blue, "Weight": 90}, {"TargetGroupArn": green, "Weight": 10}]}}],
    )["Rules"][0]
    aws.clear_calls()

    result = run_module(aws, MODULE, {"rule_arn": rule["RuleArn"]})

    assert result.get("failed") is not True, result.get("msg")
    point = result["traffic_point"]
    assert point["type"] == "rule" and point["arn"] == rule["RuleArn"] and point["priority"] == "10"
    assert point["listener_arn"] == stack["listener_arn"]
    assert point["forward"] == [{"target_group_arn": blue, "weight": 90}, {"target_group_arn": green, "weight": 10}]
    assert point["fixed_response"] is None
    assert aws.calls() == [("elbv2", "DescribeRules")]


@pytest.mark.parametrize("option", ["listener_arn", "rule_arn"])
def test_a_missing_listener_or_rule_fails_naming_the_option(aws, run_module, tmp_path, option):
    stack = make_stack(aws, tmp_path)
    arn = stack["listener_arn"][:-4] + "0000"
    if option == "rule_arn":
        arn = arn.replace(":listener/", ":listener-rule/") + "/0123456789abcdef"
    aws.clear_calls()

    result = run_module(aws, MODULE, {option: arn})

    assert result["failed"] is True
    assert result["msg"] == f"{'Listener' if option == 'listener_arn' else 'Listener rule'} {arn} not found: check {option}."
    assert aws.mutating_calls() == []


def test_listener_and_rule_together_are_refused_before_any_call(aws, run_module, tmp_path):
    stack = make_stack(aws, tmp_path)
    aws.clear_calls()

    result = run_module(aws, MODULE, {"listener_arn": stack["listener_arn"], "rule_arn": stack["listener_arn"]})

    assert result["failed"] is True and "mutually exclusive: listener_arn|rule_arn" in result["msg"]
    assert aws.calls() == []
