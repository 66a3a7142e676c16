"""cattle.aws.traffic_shift through ansible against the local AWS endpoint."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T

pytestmark = pytest.mark.integration

MODULE = "cattle.aws.traffic_shift"
AMI = "ami-0ca771e0000ba5e01"  # seeded by tools/local_aws_amis.json
FIXED_503 = {"Type": "fixed-response",
             "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "no release yet"}}


def _network(aws):
    ec2 = aws.client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnet_ids = sorted(s["SubnetId"] for s in subnets)[:2]
    lb = aws.client("elbv2").create_load_balancer(Name="web", Subnets=subnet_ids)["LoadBalancers"][0]
    return subnets[0]["VpcId"], subnet_ids, lb["LoadBalancerArn"]


def _fleet(aws, vpc, subnets, version, day, desired=1):
    """LT + TG + ASG of shop/prod `version`, tagged like immutable_fleet tags them; returns the TG ARN."""
    names = naming.fleet_names("shop", "prod", version)
    tags = T.ownership_tags("shop", "prod", version, created_at=datetime.datetime(2024, 5, day, tzinfo=datetime.timezone.utc))
    aws.client("ec2").create_launch_template(
        LaunchTemplateName=names["launch_template"],
        LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": T.dict_to_tag_list(tags)}])
    arn = aws.client("elbv2").create_target_group(
        Name=names["target_group"], Protocol="HTTP", Port=8080, VpcId=vpc, Tags=T.dict_to_tag_list(tags),
    )["TargetGroups"][0]["TargetGroupArn"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=names["auto_scaling_group"],
        LaunchTemplate={"LaunchTemplateName": names["launch_template"], "Version": "1"},
        MinSize=0, MaxSize=3, DesiredCapacity=desired, VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[arn],
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()])
    return arn


def _foreign_tg(aws, vpc, name):
    """A target group the stack does not own (no tags), with one registered instance."""
    arn = aws.client("elbv2").create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    instance = aws.client("ec2").run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    aws.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": instance}])
    return arn


def _listener(aws, lb, actions, port=80):
    return aws.client("elbv2").create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=actions)["Listeners"][0]["ListenerArn"]


def _forward(*targets, sticky=False):
    config = {"TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in targets]}
    if sticky:
        config["TargetGroupStickinessConfig"] = {"Enabled": True, "DurationSeconds": 600}
    return [{"Type": "forward", "ForwardConfig": config}]


def _weights(actions):
    for action in actions:
        if action["Type"] == "forward":
            return {t["TargetGroupArn"]: t["Weight"] for t in action["ForwardConfig"]["TargetGroups"]}
    return None


def _listener_actions(aws, arn):
    return aws.client("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"][0]["DefaultActions"]


@pytest.fixture
def stack(aws):
    """shop/prod 1.0 and 1.1 (one instance each) and a listener answering a fixed 503."""
    vpc, subnets, lb = _network(aws)
    out = {"vpc": vpc, "subnets": subnets, "lb": lb, "1.0": _fleet(aws, vpc, subnets, "1.0", 1), "1.1": _fleet(aws, vpc, subnets, "1.1", 2)}
    out["listener"] = _listener(aws, lb, [FIXED_503])
    aws.clear_calls()
    return out


def _shift(run_module, aws, stack, check=False, diff=False, **args):
    base = {"app": "shop", "environment": "prod", "listener_arn": stack["listener"]}
    base.update(args)
    return run_module(aws, MODULE, {k: v for k, v in base.items() if v is not None}, check=check, diff=diff)


def test_first_release_attach_steps_switch_rollback(aws, run_module, stack):
    listener, tg10, tg11 = stack["listener"], stack["1.0"], stack["1.1"]

    # Check mode: the planned result, no mutating call, the 503 still there.
    result = _shift(run_module, aws, stack, check=True, diff=True, to_version="1.0", percent=100)
    assert result["changed"] is True and result["after"] == {"1.0": 100}, result.get("msg")
    assert result["replaced_action"]["Type"] == "fixed-response"
    assert result["diff"]["before"]["replaced_action"]["FixedResponseConfig"]["StatusCode"] == "503"
    assert aws.mutating_calls() == []
    assert _listener_actions(aws, listener)[0]["Type"] == "fixed-response"

    # First release: the fixed 503 becomes a forward, read back from AWS.
    result = _shift(run_module, aws, stack, to_version="1.0", percent=100)
    assert result["changed"] is True and result["before"] == {} and result["after"] == {"1.0": 100}
    assert result["live_version"] == "1.0" and result["actions"][0]["action"] == "modify_listener"
    assert _weights(_listener_actions(aws, listener)) == {tg10: 100}

    # Idempotent: no change, no mutating call.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, to_version="1.0", percent=100)
    assert result["changed"] is False and result["actions"] == []
    assert aws.mutating_calls() == []

    # Attach 1.1 at weight 0 (the ALB health-checks it from now on).
    result = _shift(run_module, aws, stack, to_version="1.1", percent=0)
    assert result["after"] == {"1.0": 100, "1.1": 0} and result["live_version"] == "1.0"
    assert _weights(_listener_actions(aws, listener)) == {tg10: 100, tg11: 0}

    for percent, expected in ((10, {tg10: 90, tg11: 10}), (50, {tg10: 50, tg11: 50}), (100, {tg10: 0, tg11: 100})):
        result = _shift(run_module, aws, stack, to_version="1.1", percent=percent)
        assert result["changed"] is True, result.get("msg")
        assert _weights(_listener_actions(aws, listener)) == expected
    assert result["live_version"] == "1.1" and result["previous_version"] == "1.0"
    assert [h["key"] for h in result["health"]] == ["1.1"] and result["health"][0]["healthy"] == 1

    # Rollback: one write, everything back to the previous version, 1.1 kept at 0.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, diff=True, to_version=result["previous_version"])
    assert result["after"] == {"1.0": 100, "1.1": 0} and result["diff"]["before"]["weights"] == {"1.0": 0, "1.1": 100}
    assert aws.mutating_calls() == [("elbv2", "ModifyListener")]
    assert _weights(_listener_actions(aws, listener)) == {tg10: 100, tg11: 0}


def test_restore_action_undoes_a_first_release(aws, run_module, stack):
    listener, tg10 = stack["listener"], stack["1.0"]
    first = _shift(run_module, aws, stack, to_version="1.0", percent=100)
    assert _weights(_listener_actions(aws, listener)) == {tg10: 100}

    # Check mode: planned, no mutating call.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, check=True, diff=True, restore_action=first["replaced_action"])
    assert result["changed"] is True and result["before"] == {"1.0": 100} and result["after"] == {}
    assert result["diff"]["after"]["restored_action"]["Type"] == "fixed-response"
    assert result["actions"][0]["restored_action"]["FixedResponseConfig"]["StatusCode"] == "503"
    assert aws.mutating_calls() == []

    # The forward to 1.0 becomes the fixed 503 again, in one write, read back.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, restore_action=first["replaced_action"])
    assert result["changed"] is True and result["live_version"] is None, result.get("msg")
    assert aws.mutating_calls() == [("elbv2", "ModifyListener")]
    assert [{k: v for k, v in a.items() if k != "Order"} for a in _listener_actions(aws, listener)] == [FIXED_503]

    # Again: nothing forwards, no change. As traffic_point_info gives it (snake_case): the same.
    aws.clear_calls()
    point = run_module(aws, "cattle.aws.traffic_point_info", {"listener_arn": listener})["traffic_point"]
    result = _shift(run_module, aws, stack, restore_action=point["actions"][0])
    assert result["changed"] is False and aws.mutating_calls() == []

    # Never takes the traffic from a target group the stack does not own.
    foreign = _foreign_tg(aws, stack["vpc"], "legacy")
    aws.client("elbv2").modify_listener(ListenerArn=listener, DefaultActions=_forward((tg10, 50), (foreign, 50)))
    aws.clear_calls()
    result = _shift(run_module, aws, stack, restore_action=first["replaced_action"])
    assert result["failed"] and "target groups the stack does not own" in result["msg"]
    assert aws.mutating_calls() == []


def test_rule_keeps_conditions_priority_and_stickiness(aws, run_module, stack):
    elbv2 = aws.client("elbv2")
    conditions = [{"Field": "path-pattern", "Values": ["/api/*"]}]
    rule = elbv2.create_rule(ListenerArn=stack["listener"], Priority=7, Conditions=conditions,
                             Actions=_forward((stack["1.0"], 100), sticky=True))["Rules"][0]["RuleArn"]
    aws.clear_calls()

    result = run_module(aws, MODULE, {"app": "shop", "environment": "prod", "rule_arn": rule,
                                      "weights": {"1.0": 50, "1.1": 50}})
    assert result["changed"] is True and result["actions"][0]["action"] == "modify_rule", result.get("msg")
    assert aws.mutating_calls() == [("elbv2", "ModifyRule")]
    described = elbv2.describe_rules(RuleArns=[rule])["Rules"][0]
    assert described["Priority"] == "7" and described["Conditions"][0]["Values"] == ["/api/*"]
    assert _weights(described["Actions"]) == {stack["1.0"]: 50, stack["1.1"]: 50}
    assert described["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == {
        "Enabled": True, "DurationSeconds": 600}
    assert _listener_actions(aws, stack["listener"])[0]["Type"] == "fixed-response"  # default action untouched


def test_rule_not_found(aws, run_module, stack):
    missing = stack["listener"].replace(":listener/", ":listener-rule/") + "/0123456789abcdef"
    result = run_module(aws, MODULE, {"app": "shop", "environment": "prod", "rule_arn": missing, "to_version": "1.0"})
    assert result["failed"] is True and "not found: check rule_arn" in result["msg"]


def test_foreign_target_group_adopted_on_first_release_and_never_deleted(aws, run_module, stack):
    legacy = _foreign_tg(aws, stack["vpc"], "legacy-shop")
    listener = _listener(aws, stack["lb"], [{"Type": "forward", "TargetGroupArn": legacy}], port=8080)
    args = {"listener_arn": listener}

    result = _shift(run_module, aws, stack, to_version="1.0", percent=0, **args)
    assert result["live_version"] == legacy and result["after"] == {legacy: 100, "1.0": 0}, result.get("msg")
    result = _shift(run_module, aws, stack, to_version="1.0", percent=100, **args)
    assert result["after"] == {legacy: 0, "1.0": 100}
    assert result["live_version"] == "1.0" and result["previous_version"] == legacy
    assert _weights(_listener_actions(aws, listener)) == {legacy: 0, stack["1.0"]: 100}

    # prune_zero never drops it (it is the rollback target); rollback to it by ARN.
    result = _shift(run_module, aws, stack, to_version=legacy, percent=100, prune_zero=True, **args)
    assert result.get("after") == {legacy: 100, "1.0": 0}, result.get("msg")
    assert result["after"] == {legacy: 100, "1.0": 0}
    assert aws.client("elbv2").describe_target_groups(TargetGroupArns=[legacy])["TargetGroups"]


def test_foreign_target_group_keeps_its_weight_unless_named(aws, run_module, stack):
    other = _foreign_tg(aws, stack["vpc"], "other-team")
    listener = _listener(aws, stack["lb"], _forward((stack["1.0"], 0), (stack["1.1"], 100), (other, 50)), port=8081)

    result = _shift(run_module, aws, stack, to_version="1.0", percent=100, listener_arn=listener)
    assert result["after"] == {"1.0": 100, "1.1": 0, other: 50}, result.get("msg")
    assert _weights(_listener_actions(aws, listener)) == {stack["1.0"]: 100, stack["1.1"]: 0, other: 50}

    result = _shift(run_module, aws, stack, weights={"1.1": 100, other: 0}, listener_arn=listener)
    assert result["after"] == {"1.0": 0, "1.1": 100, other: 0}, result.get("msg")
    assert _weights(_listener_actions(aws, listener))[other] == 0


def test_limits_fail_before_any_call(aws, run_module, stack):
    result = _shift(run_module, aws, stack, weights={"1.0": 1000})
    assert result["failed"] is True and "must be an integer from 0 to 999" in result["msg"]
    assert aws.calls() == []

    extra = [_fleet(aws, stack["vpc"], stack["subnets"], v, 3 + i, desired=0) for i, v in enumerate(("1.2", "1.3", "1.4", "1.5"))]
    listener = _listener(aws, stack["lb"], _forward((stack["1.0"], 100), (stack["1.1"], 0), *[(a, 0) for a in extra[:3]]),
                         port=8082)
    aws.clear_calls()
    result = _shift(run_module, aws, stack, to_version="1.5", percent=0, listener_arn=listener)
    assert result["failed"] is True and "would hold 6 target groups" in result["msg"]
    assert aws.mutating_calls() == []
    result = _shift(run_module, aws, stack, to_version="1.5", percent=0, prune_zero=True, listener_arn=listener)
    assert result["after"] == {"1.0": 100, "1.5": 0}, result.get("msg")


def test_unknown_version(aws, run_module, stack):
    result = _shift(run_module, aws, stack, to_version="9.9")
    assert result["failed"] is True and result["msg"].startswith("Unknown version '9.9' in to_version: the stack has 1.1, 1.0")


def test_guard_refuses_a_target_group_without_healthy_targets(threaded_aws, run_module, monkeypatch):
    from moto.elbv2 import models

    aws = threaded_aws
    vpc, subnets, lb = _network(aws)
    tg10 = _fleet(aws, vpc, subnets, "1.0", 1)
    tg11 = _fleet(aws, vpc, subnets, "1.1", 2)
    listener = _listener(aws, lb, _forward((tg10, 100), (tg11, 0)))
    unhealthy_name = naming.fleet_names("shop", "prod", "1.1")["target_group"]
    original = models.FakeTargetGroup.health_for

    def health_for(self, target, ec2_backend):
        if self.name == unhealthy_name:
            return models.FakeHealthStatus(target["Id"], target.get("Port", self.port), self.health_check_port,
                                           "unhealthy", "Target.FailedHealthChecks", "Health checks failed")
        return original(self, target, ec2_backend)

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)
    aws.clear_calls()
    args = {"app": "shop", "environment": "prod", "listener_arn": listener, "to_version": "1.1", "percent": 10}

    result = run_module(aws, MODULE, args)
    assert result["failed"] is True
    assert result["msg"].startswith("Refusing to give traffic to version 1.1")
    assert ": no healthy targets (1 targets: 1 unhealthy (Target.FailedHealthChecks: Health checks failed))" in result["msg"]
    assert "force=true" in result["msg"] and result["health"][0]["states"] == {"unhealthy": 1}
    assert aws.mutating_calls() == []
    assert _weights(_listener_actions(aws, listener)) == {tg10: 100, tg11: 0}

    # force gives it traffic anyway, with a loud warning.
    result = run_module(aws, MODULE, dict(args, force=True))
    assert result["changed"] is True and any("FORCED" in w for w in result.get("warnings", [])), result
    assert _weights(_listener_actions(aws, listener)) == {tg10: 90, tg11: 10}

    # Taking traffic away from the sick version needs no force: only growing shares are guarded.
    result = run_module(aws, MODULE, dict(args, to_version="1.0", percent=100))
    assert result["changed"] is True and [h["key"] for h in result["health"]] == ["1.0"], result.get("msg")
    assert _weights(_listener_actions(aws, listener)) == {tg10: 100, tg11: 0}


def test_route53_weighted_switch(aws, run_module, stack):
    route53 = aws.client("route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference="traffic")["HostedZone"]["Id"].split("/")[-1]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "shop.example.com", "Type": "CNAME", "SetIdentifier": "1.0", "Weight": 100, "TTL": 60,
        "ResourceRecords": [{"Value": "blue.example.com"}]}}]})
    spec = {"zone_id": zone, "record_name": "shop.example.com", "record_type": "CNAME",
            "targets": {"1.1": "green.example.com"}}
    args = {"app": "shop", "environment": "prod", "route53": spec, "to_version": "1.1"}
    aws.clear_calls()

    result = run_module(aws, MODULE, args, check=True)
    assert result["changed"] is True and result["after"] == {"1.0": 0, "1.1": 100}, result.get("msg")
    assert aws.mutating_calls() == []

    result = run_module(aws, MODULE, args)
    assert result["changed"] is True and result["before"] == {"1.0": 100}
    assert [c["action"] for c in result["actions"][0]["changes"]] == ["UPSERT", "UPSERT"]
    assert aws.mutating_calls() == [("route53", "ChangeResourceRecordSets")]
    records = {r["SetIdentifier"]: r for r in route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
               if r.get("SetIdentifier")}
    assert {k: r["Weight"] for k, r in records.items()} == {"1.0": 0, "1.1": 100}
    assert records["1.1"]["ResourceRecords"] == [{"Value": "green.example.com"}]
    assert records["1.0"]["ResourceRecords"] == [{"Value": "blue.example.com"}]

    aws.clear_calls()
    result = run_module(aws, MODULE, args)
    assert result["changed"] is False and aws.mutating_calls() == []


# ---- attach rules (#7): a version health-checked by the ALB without any traffic -------------


def _rules(aws, listener):
    """The listener's non-default rules, each with its tags as a dict."""
    elbv2 = aws.client("elbv2")
    rules = [r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if not r["IsDefault"]]
    tags = {d["ResourceArn"]: {t["Key"]: t["Value"] for t in d["Tags"]}
            for d in elbv2.describe_tags(ResourceArns=[r["RuleArn"] for r in rules])["TagDescriptions"]} if rules else {}
    return [dict(r, tags=tags.get(r["RuleArn"], {})) for r in rules]


def _load_balancers_of(aws, tg):
    return aws.client("elbv2").describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]["LoadBalancerArns"]


def test_percent_zero_on_a_fixed_response_attaches_by_a_rule_then_the_shift_removes_it(aws, run_module, stack):
    listener, tg10 = stack["listener"], stack["1.0"]
    assert _load_balancers_of(aws, tg10) == []  # not used by the load balancer: AWS reports its targets `unused`

    # Check mode: the planned attach rule, no mutating call.
    result = _shift(run_module, aws, stack, check=True, diff=True, to_version="1.0", percent=0)
    assert result["changed"] is True, result.get("msg")
    assert [a["action"] for a in result["actions"]] == ["create_attach_rule"]
    assert result["attach_rules"][0]["rule_arn"] is None and result["attach_rules"][0]["priority"] == "50000"
    assert result["diff"]["after"]["attach_rules"] == {"1.0": "50000"}
    assert aws.mutating_calls() == [] and _rules(aws, listener) == []

    # Apply: one CreateRule; the listener's fixed 503 untouched; the ALB now uses the target group.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, to_version="1.0", percent=0)
    assert result["changed"] is True and result["before"] == {} and result["after"] == {}, result.get("msg")
    assert result["live_version"] is None and result["health"] == []
    assert aws.mutating_calls() == [("elbv2", "CreateRule")]
    assert _listener_actions(aws, listener) == [dict(FIXED_503, FixedResponseConfig=FIXED_503["FixedResponseConfig"])]
    [rule] = _rules(aws, listener)
    assert rule["RuleArn"] == result["attach_rules"][0]["rule_arn"] and rule["Priority"] == "50000"
    [condition] = rule["Conditions"]
    assert condition["Field"] == "http-header" and condition["HttpHeaderConfig"]["HttpHeaderName"] == "X-Cattle-Attach"
    [secret] = condition["HttpHeaderConfig"]["Values"]
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert rule["Actions"][0]["Type"] == "forward" and _load_balancers_of(aws, tg10) == [stack["lb"]]
    assert rule["tags"]["cattle:role"] == "attach-rule" and rule["tags"]["cattle:version"] == "1.0"
    assert (rule["tags"]["cattle:app"], rule["tags"]["cattle:environment"], rule["tags"]["cattle:managed-by"]) == (
        "shop", "prod", "cattle.aws")

    # Idempotent: the rule is reused, no mutating call.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, to_version="1.0", percent=0)
    assert result["changed"] is False and result["actions"] == [], result
    assert aws.mutating_calls() == []

    # fleet_info: attached, not serving, not live.
    info = run_module(aws, "cattle.aws.fleet_info", {"app": "shop", "environment": "prod", "health": False, "drift": False})
    fleet = {f["version"]: f for f in info["fleets"]}["1.0"]
    assert [a["rule_arn"] for a in fleet["attach_rules"]] == [rule["RuleArn"]] and info["attach_rules"][0]["version"] == "1.0"
    assert fleet["weight"] == 0 and fleet["serving"] is False and fleet["traffic"] == [] and info["live_version"] is None
    assert info["traffic_points"] == []

    # The first shift replaces the 503 in one write (guarded: 1.0 has a healthy target, no force),
    # then deletes the attach rule.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, diff=True, to_version="1.0", percent=100)
    assert [a["action"] for a in result["actions"]] == ["modify_listener", "delete_attach_rule"], result.get("msg")
    assert [h["key"] for h in result["health"]] == ["1.0"] and result["attach_rules"] == []
    assert result["diff"]["before"]["attach_rules"] == {"1.0": "50000"} and result["diff"]["after"]["attach_rules"] == {}
    assert aws.mutating_calls() == [("elbv2", "ModifyListener"), ("elbv2", "DeleteRule")]
    assert _weights(_listener_actions(aws, listener)) == {tg10: 100} and _rules(aws, listener) == []
    assert _load_balancers_of(aws, tg10) == [stack["lb"]]


def test_attach_rule_on_a_rule_stack_and_never_deleting_a_rule_we_do_not_own(aws, run_module, stack):
    elbv2 = aws.client("elbv2")
    listener, tg11 = stack["listener"], stack["1.1"]
    served = elbv2.create_rule(ListenerArn=listener, Priority=5, Conditions=[{"Field": "path-pattern", "Values": ["/shop/*"]}],
                               Actions=[FIXED_503])["Rules"][0]["RuleArn"]
    # A rule somebody else made, with our header but without our tags, at the top priority.
    foreign = elbv2.create_rule(ListenerArn=listener, Priority=50000, Actions=[{"Type": "forward", "TargetGroupArn": tg11}],
                                Conditions=[{"Field": "http-header", "HttpHeaderConfig": {
                                    "HttpHeaderName": "X-Cattle-Attach", "Values": ["guess"]}}])["Rules"][0]["RuleArn"]
    args = {"rule_arn": served, "listener_arn": None}

    result = _shift(run_module, aws, stack, to_version="1.1", percent=0, **args)
    assert [a["action"] for a in result["actions"]] == ["create_attach_rule"], result.get("msg")
    ours = result["attach_rules"][0]["rule_arn"]
    assert result["attach_rules"][0]["priority"] == "49999" and result["attach_rules"][0]["listener_arn"] == listener

    # detach deletes ours only; the listener rule's fixed response is untouched.
    aws.clear_calls()
    result = _shift(run_module, aws, stack, detach=["1.1"], **args)
    assert result["changed"] is True and [a["rule_arn"] for a in result["actions"]] == [ours], result.get("msg")
    assert aws.mutating_calls() == [("elbv2", "DeleteRule")]
    assert {r["RuleArn"] for r in _rules(aws, listener)} == {served, foreign}
    assert elbv2.describe_rules(RuleArns=[served])["Rules"][0]["Actions"][0]["Type"] == "fixed-response"
    assert _shift(run_module, aws, stack, detach=["1.1"], **args)["changed"] is False

    # immutable_fleet state=absent refuses while the foreign rule forwards to the group, and leaves it.
    absent = {"app": "shop", "environment": "prod", "version": "1.1", "state": "absent"}
    result = run_module(aws, "cattle.aws.immutable_fleet", absent)
    assert result["failed"] is True and foreign in result["msg"], result
    assert foreign in {r["RuleArn"] for r in _rules(aws, listener)}

    # Without it: absent deletes our attach rule first (AWS refuses to delete a target group in use).
    elbv2.delete_rule(RuleArn=foreign)
    result = _shift(run_module, aws, stack, to_version="1.1", percent=0, **args)
    assert result["changed"] is True, result.get("msg")
    result = run_module(aws, "cattle.aws.immutable_fleet", absent)
    assert result["changed"] is True, result.get("msg")
    kinds = [a["action"] for a in result["actions"]]
    assert kinds.index("delete_attach_rule") < kinds.index("delete_target_group")
    assert {r["RuleArn"] for r in _rules(aws, listener)} == {served}
    assert not [g for g in elbv2.describe_target_groups()["TargetGroups"] if g["TargetGroupArn"] == tg11]

    # The first shift of the rule replaces its fixed response, keeps its condition and priority.
    _shift(run_module, aws, stack, to_version="1.0", percent=0, **args)
    result = _shift(run_module, aws, stack, to_version="1.0", percent=100, **args)
    assert [a["action"] for a in result["actions"]] == ["modify_rule", "delete_attach_rule"], result.get("msg")
    described = elbv2.describe_rules(RuleArns=[served])["Rules"][0]
    assert described["Priority"] == "5" and _weights(described["Actions"]) == {stack["1.0"]: 100}
    assert {r["RuleArn"] for r in _rules(aws, listener)} == {served}


def test_fleet_gc_deletes_the_attach_rule_before_the_target_group(aws, run_module, stack):
    result = _shift(run_module, aws, stack, to_version="1.0", percent=0)
    rule = result["attach_rules"][0]["rule_arn"]
    check = run_module(aws, "cattle.aws.fleet_gc", {"app": "shop", "environment": "prod", "keep": 0}, check=True)
    kinds = [(a["action"], a.get("version")) for a in check["actions"]]
    assert ("delete_attach_rule", "1.0") in kinds, check
    assert kinds.index(("delete_attach_rule", "1.0")) < kinds.index(("delete_target_group", "1.0"))
    assert [r["RuleArn"] for r in _rules(aws, stack["listener"])] == [rule]

    result = run_module(aws, "cattle.aws.fleet_gc", {"app": "shop", "environment": "prod", "keep": 0, "drain_timeout": 0})
    assert result["changed"] is True and {d["version"] for d in result["deleted"]} == {"1.0", "1.1"}, result.get("msg")
    assert _rules(aws, stack["listener"]) == [] and aws.client("elbv2").describe_target_groups()["TargetGroups"] == []
