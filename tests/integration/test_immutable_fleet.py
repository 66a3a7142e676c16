"""cattle.aws.immutable_fleet through ansible against the local AWS endpoint."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

pytestmark = pytest.mark.integration

MODULE = "cattle.aws.immutable_fleet"
AMI = "ami-0ca771e0000ba5e01"  # seeded by tools/local_aws_amis.json
NAME = "shop-prod-1.4.2"
USER_DATA = "#!/bin/sh\necho db-password-hunter2\n"
OWNERSHIP = {"cattle:app": "shop", "cattle:environment": "prod", "cattle:version": "1.4.2",
             "cattle:managed-by": "cattle.aws"}


def _subnets(aws):
    subnets = aws.client("ec2").describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return sorted(s["SubnetId"] for s in subnets)[:2], subnets[0]["VpcId"]


def _args(aws, **overrides):
    subnets, _vpc = _subnets(aws)
    args = dict(app="shop", environment="prod", version="1.4.2", ami_id=AMI, instance_type="t3.micro",
                subnet_ids=subnets, user_data=USER_DATA, capacity=dict(min=1, max=3, desired=2),
                tags=dict(team="web"), wait_timeout=60)
    args.update(overrides)
    return args


def _tags(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def _group(aws, name=NAME):
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0] if groups else None


def _template(aws, name=NAME):
    templates = aws.client("ec2").describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [name]}])["LaunchTemplates"]
    return templates[0] if templates else None


def _target_groups(aws):
    return aws.client("elbv2").describe_target_groups()["TargetGroups"]


@pytest.fixture
def fleet(aws, run_module):
    """A created fleet (module result), call record cleared."""
    result = run_module(aws, MODULE, _args(aws))
    assert result.get("failed") is not True, result.get("msg")
    aws.clear_calls()
    return result


def test_create_builds_tagged_secure_fleet(aws, run_module):
    result = run_module(aws, MODULE, _args(aws), diff=True)
    assert result["changed"] is True, result.get("msg")
    assert [a["action"] for a in result["actions"]] == [
        "create_launch_template", "create_target_group", "create_auto_scaling_group"]
    assert "hunter2" not in repr(result)

    template = _template(aws)
    lt_tags = _tags(template["Tags"])
    assert OWNERSHIP.items() <= lt_tags.items() and lt_tags["team"] == "web" and lt_tags["Name"] == NAME
    assert lt_tags["cattle:user-data-sha256"] == hashlib.sha256(USER_DATA.encode()).hexdigest()
    assert template["LatestVersionNumber"] == 1
    data = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["ImageId"] == AMI and data["InstanceType"] == "t3.micro"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(m["Ebs"]["Encrypted"] for m in data["BlockDeviceMappings"])
    assert base64.b64decode(data["UserData"]).decode() == USER_DATA
    specs = {s["ResourceType"]: _tags(s["Tags"]) for s in data["TagSpecifications"]}
    assert OWNERSHIP.items() <= specs["instance"].items() and OWNERSHIP.items() <= specs["volume"].items()

    (target_group,) = _target_groups(aws)
    assert result["fleet"]["target_group_arn"] == target_group["TargetGroupArn"]
    assert (target_group["Port"], target_group["HealthCheckPath"]) == (8080, "/health")
    tg_tags = _tags(aws.client("elbv2").describe_tags(
        ResourceArns=[target_group["TargetGroupArn"]])["TagDescriptions"][0]["Tags"])
    assert OWNERSHIP.items() <= tg_tags.items()

    group = _group(aws)
    assert OWNERSHIP.items() <= _tags(group["Tags"]).items()
    assert all(t["PropagateAtLaunch"] for t in group["Tags"])
    assert group["TargetGroupARNs"] == [target_group["TargetGroupArn"]]
    assert group["HealthCheckType"] == "ELB"
    assert group["LaunchTemplate"]["Version"] == "1"
    assert sum(i["LifecycleState"] == "InService" for i in group["Instances"]) == 2

    fleet = result["fleet"]
    assert fleet["launch_template"] == {"id": template["LaunchTemplateId"], "name": NAME, "version": 1}
    assert fleet["capacity"] == {"min": 1, "max": 3, "desired": 2}
    assert fleet["created_at"] == lt_tags["cattle:created-at"] and fleet["complete"] is True
    assert result["diff"]["before"] == {} and result["diff"]["after"] == fleet


def test_rerun_changes_nothing(aws, run_module, fleet):
    result = run_module(aws, MODULE, _args(aws))
    assert result["changed"] is False and result["actions"] == []
    assert aws.mutating_calls() == []
    assert result["fleet"] == fleet["fleet"]


def test_check_mode_plans_and_simulates_without_changing(aws, run_module):
    result = run_module(aws, MODULE, _args(aws), check=True, diff=True)
    assert result["changed"] is True
    assert [a["action"] for a in result["actions"]] == [
        "create_launch_template", "create_target_group", "create_auto_scaling_group"]
    assert result["fleet"]["auto_scaling_group_name"] == NAME
    assert result["fleet"]["capacity"] == {"min": 1, "max": 3, "desired": 2}
    assert result["fleet"]["target_group_arn"] is None
    assert aws.mutating_calls() == []
    assert _template(aws) is None and _group(aws) is None


def test_check_mode_capacity_change_on_existing_fleet(aws, run_module, fleet):
    result = run_module(aws, MODULE, _args(aws, capacity=dict(min=1, max=4, desired=3)), check=True)
    assert result["changed"] is True
    assert result["actions"][0]["action"] == "update_capacity"
    assert result["fleet"]["capacity"]["desired"] == 3
    assert aws.mutating_calls() == []
    assert _group(aws)["DesiredCapacity"] == 2


def test_changed_spec_fails_naming_fields(aws, run_module, fleet):
    result = run_module(aws, MODULE, _args(aws, ami_id="ami-0fffffffffffffff0", instance_type="t3.large",
                                           user_data="#!/bin/sh\necho other\n"))
    assert result["failed"] is True
    assert ("differ from the existing fleet shop-prod-1.4.2: ami_id, instance_type, user_data. "
            "Fleets are immutable: release a new version.") in result["msg"]
    assert result["differing_fields"] == ["ami_id", "instance_type", "user_data"]
    assert result["refused"] is True  # before any change: a release's rollback leaves this fleet alone
    assert aws.mutating_calls() == []


def test_capacity_change_is_applied_and_waited_for(aws, run_module, fleet):
    result = run_module(aws, MODULE, _args(aws, capacity=dict(min=2, max=5, desired=4)))
    assert result["changed"] is True, result.get("msg")
    assert result["actions"] == [{"action": "update_capacity", "name": NAME,
                                  "before": {"min": 1, "max": 3, "desired": 2},
                                  "after": {"min": 2, "max": 5, "desired": 4}}]
    assert aws.mutating_calls() == [("autoscaling", "UpdateAutoScalingGroup")]
    group = _group(aws)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (2, 5, 4)
    assert sum(i["LifecycleState"] == "InService" for i in group["Instances"]) == 4


def test_invalid_capacity_fails_before_any_call(aws, run_module):
    args = _args(aws, capacity=dict(min=1, max=2, desired=5))
    aws.clear_calls()
    result = run_module(aws, MODULE, args)
    assert result["failed"] is True
    assert "capacity.desired (5) must be within capacity.min (1) and capacity.max (2)" in result["msg"]
    assert result["refused"] is True
    assert aws.calls() == []


def test_resume_after_half_built_fleet(aws, run_module, fleet):
    # A first run that stopped after the launch template: remove what came after it.
    autoscaling, elbv2 = aws.client("autoscaling"), aws.client("elbv2")
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=NAME, ForceDelete=True)
    elbv2.delete_target_group(TargetGroupArn=fleet["fleet"]["target_group_arn"])
    aws.clear_calls()

    result = run_module(aws, MODULE, _args(aws))
    assert result["changed"] is True, result.get("msg")
    assert [a["action"] for a in result["actions"]] == ["create_target_group", "create_auto_scaling_group"]
    assert ("ec2", "CreateLaunchTemplate") not in aws.mutating_calls()
    assert result["fleet"]["launch_template"] == fleet["fleet"]["launch_template"]
    assert result["fleet"]["created_at"] == fleet["fleet"]["created_at"]
    assert _group(aws)["TargetGroupARNs"] == [result["fleet"]["target_group_arn"]]
    assert run_module(aws, MODULE, _args(aws))["changed"] is False


def test_resume_reattaches_a_detached_target_group(aws, run_module, fleet):
    # A run that stopped between detaching the target group and deleting the fleet (state=absent).
    arn = fleet["fleet"]["target_group_arn"]
    aws.client("autoscaling").detach_load_balancer_target_groups(AutoScalingGroupName=NAME, TargetGroupARNs=[arn])
    aws.clear_calls()

    result = run_module(aws, MODULE, _args(aws))
    assert result["changed"] is True, result.get("msg")
    assert [a["action"] for a in result["actions"]] == ["attach_target_group"]
    assert aws.mutating_calls() == [("autoscaling", "AttachLoadBalancerTargetGroups")]
    assert _group(aws)["TargetGroupARNs"] == [arn]


def _listener(aws, forward_to):
    subnets, _vpc = _subnets(aws)
    elbv2 = aws.client("elbv2")
    lb = elbv2.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    return elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": arn, "Weight": weight} for arn, weight in forward_to]}}],
    )["Listeners"][0]["ListenerArn"]


def test_absent_refused_while_the_target_group_has_traffic(aws, run_module, fleet):
    listener = _listener(aws, [(fleet["fleet"]["target_group_arn"], 100)])
    aws.clear_calls()
    result = run_module(aws, MODULE, dict(app="shop", environment="prod", version="1.4.2", state="absent"))
    assert result["failed"] is True
    assert f"listener {listener} (weight 100)" in result["msg"] and "carries traffic" in result["msg"]
    assert aws.mutating_calls() == []
    assert _group(aws) is not None and _template(aws) is not None


def test_absent_deletes_in_order_when_no_traffic(aws, run_module, fleet):
    _subnet_ids, vpc = _subnets(aws)
    other = aws.client("elbv2").create_target_group(Name="other", Protocol="HTTP", Port=80, VpcId=vpc)
    _listener(aws, [(other["TargetGroups"][0]["TargetGroupArn"], 1)])
    aws.clear_calls()
    absent = dict(app="shop", environment="prod", version="1.4.2", state="absent")

    check = run_module(aws, MODULE, absent, check=True)
    assert check["changed"] is True and check["fleet"] == {} and aws.mutating_calls() == []

    result = run_module(aws, MODULE, absent, diff=True)
    assert result["changed"] is True, result.get("msg")
    assert [a["action"] for a in result["actions"]] == [
        "detach_target_group", "delete_auto_scaling_group", "delete_target_group", "delete_launch_template"]
    assert aws.mutating_calls() == [
        ("autoscaling", "DetachLoadBalancerTargetGroups"), ("autoscaling", "DeleteAutoScalingGroup"),
        ("elbv2", "DeleteTargetGroup"), ("ec2", "DeleteLaunchTemplate")]
    assert result["diff"]["before"]["auto_scaling_group_name"] == NAME and result["diff"]["after"] == {}
    assert _group(aws) is None and _template(aws) is None
    assert [tg["TargetGroupName"] for tg in _target_groups(aws)] == ["other"]

    again = run_module(aws, MODULE, absent)
    assert again["changed"] is False and again["actions"] == []


def test_foreign_look_alikes_are_reported_and_untouched(aws, run_module):
    subnets, vpc = _subnets(aws)
    ec2, elbv2, autoscaling = aws.client("ec2"), aws.client("elbv2"), aws.client("autoscaling")
    # Preview the fleet's names, then build untagged resources that carry them.
    names = run_module(aws, MODULE, _args(aws), check=True)["fleet"]
    template = ec2.create_launch_template(LaunchTemplateName=NAME, LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    elbv2.create_target_group(Name=names["target_group_name"], Protocol="HTTP", Port=80, VpcId=vpc)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=NAME, LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=0, MaxSize=1, DesiredCapacity=0, VPCZoneIdentifier=",".join(subnets))
    aws.clear_calls()

    result = run_module(aws, MODULE, _args(aws))
    assert result["failed"] is True
    for text in (f"launch template {NAME} ({template})", f"target group {names['target_group_name']}",
                 f"auto scaling group {NAME}", "never adopts"):
        assert text in result["msg"]
    assert {f["resource"] for f in result["foreign"]} == {"launch_template", "target_group", "auto_scaling_group"}

    gone = run_module(aws, MODULE, dict(app="shop", environment="prod", version="1.4.2", state="absent"))
    assert gone["changed"] is False and gone["actions"] == []
    assert len(gone["foreign"]) == 3
    assert aws.mutating_calls() == []
    assert _group(aws)["MaxSize"] == 1 and _template(aws)["LaunchTemplateId"] == template


def test_wait_fails_fast_on_a_failed_launch(threaded_aws, run_module, monkeypatch):
    """AWS does not launch instances from a broken launch (missing AMI, no capacity, ...): it records
    a failed scaling activity and retries. moto launches anyway and records no activity, so model
    AWS: no instance ever starts, and DescribeScalingActivities reports the failure."""
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    monkeypatch.setattr(FakeAutoScalingGroup, "replace_autoscaling_group_instances",
                        lambda self, count_needed, propagated_tags: None)
    reason = ("The image id '[ami-0ca771e0000ba5e01]' does not exist. Launching EC2 instance failed.")

    def failed_activity(self):
        name = self._get_param("AutoScalingGroupName")
        return ActionResult({"Activities": [{
            "ActivityId": "0f6b3c0e-0000-4000-8000-000000000001", "AutoScalingGroupName": name,
            "Description": "Launching a new EC2 instance.  Status Reason: " + reason,
            "Cause": "An instance was started in response to a difference between desired and actual capacity",
            "StartTime": "2024-05-01T12:00:00Z", "EndTime": "2024-05-01T12:00:01Z",
            "StatusCode": "Failed", "StatusMessage": reason, "Progress": 100}]})

    monkeypatch.setattr(AutoScalingResponse, "describe_scaling_activities", failed_activity)
    started = time.monotonic()
    result = run_module(threaded_aws, MODULE, _args(threaded_aws, wait_timeout=45))
    elapsed = time.monotonic() - started
    assert result["failed"] is True
    assert f"Auto scaling group {NAME} could not launch its instances (0 of 2 InService)" in result["msg"]
    assert reason in result["msg"]
    assert "refused" not in result  # the fleet was created: there is something to undo
    assert elapsed < 30  # stopped at the failure, not after wait_timeout


def test_capacity_from_live_copies_the_serving_fleet(aws, run_module):
    live = run_module(aws, MODULE, _args(aws, version="1.4.1", capacity=dict(min=2, max=6, desired=3)))
    assert live["changed"] is True, live.get("msg")
    _listener(aws, [(live["fleet"]["target_group_arn"], 100)])

    result = run_module(aws, MODULE, _args(aws, capacity=None, capacity_from_live=True))
    assert result["changed"] is True, result.get("msg")
    assert result["actions"][-1]["capacity"] == {"min": 2, "max": 6, "desired": 3}
    group = _group(aws)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (2, 6, 3)


# ---- without the spec: scale / status only (rollback.yml, the release's rescue) ----------------

IDENTITY = dict(app="shop", environment="prod", version="1.4.2", wait_timeout=60)


def _capacity(group):
    return (group["MinSize"], group["MaxSize"], group["DesiredCapacity"])


def _fleet_info(aws, run_module):
    info = run_module(aws, "cattle.aws.fleet_info", dict(app="shop", environment="prod"))
    assert info.get("failed") is not True, info.get("msg")
    return {f["version"]: f for f in info["fleets"]}


def test_scale_to_zero_and_back_without_the_spec(aws, run_module, fleet):
    zero = run_module(aws, MODULE, dict(IDENTITY, capacity=dict(min=0, max=0, desired=0)))
    assert zero["changed"] is True, zero.get("msg")
    assert [a["action"] for a in zero["actions"]] == ["update_capacity"]
    assert aws.mutating_calls() == [("autoscaling", "UpdateAutoScalingGroup")]
    group = _group(aws)
    assert _capacity(group) == (0, 0, 0) and group["Instances"] == []  # waited until none is left
    assert zero["fleet"]["capacity"] == {"min": 0, "max": 0, "desired": 0}
    assert zero["fleet"]["ami_id"] == AMI and zero["fleet"]["complete"] is True

    aws.clear_calls()
    back = run_module(aws, MODULE, dict(IDENTITY, capacity=dict(min=1, max=3, desired=2)))
    assert back["changed"] is True, back.get("msg")
    assert aws.mutating_calls() == [("autoscaling", "UpdateAutoScalingGroup")]
    group = _group(aws)
    assert _capacity(group) == (1, 3, 2)
    assert sum(i["LifecycleState"] == "InService" for i in group["Instances"]) == 2

    aws.clear_calls()
    again = run_module(aws, MODULE, dict(IDENTITY, capacity=dict(min=1, max=3, desired=2)))
    assert again["changed"] is False and aws.mutating_calls() == []
    # The full spec still matches: the fleet was scaled, never changed.
    assert run_module(aws, MODULE, _args(aws))["changed"] is False


def test_scale_back_to_the_live_capacity_without_the_spec(aws, run_module, fleet):
    run_module(aws, MODULE, dict(IDENTITY, capacity=dict(min=0, max=0, desired=0)))
    live = run_module(aws, MODULE, _args(aws, version="1.4.3", capacity=dict(min=2, max=4, desired=3)))
    assert live["changed"] is True, live.get("msg")
    _listener(aws, [(live["fleet"]["target_group_arn"], 100)])
    aws.clear_calls()

    result = run_module(aws, MODULE, dict(IDENTITY, capacity_from_live=True))
    assert result["changed"] is True, result.get("msg")
    assert _capacity(_group(aws)) == (2, 4, 3)
    assert aws.mutating_calls() == [("autoscaling", "UpdateAutoScalingGroup")]


def test_missing_fleet_without_the_spec_fails_before_any_change(aws, run_module):
    aws.clear_calls()
    result = run_module(aws, MODULE, dict(IDENTITY, status="failed", capacity=dict(min=0, max=0, desired=0)))
    assert result["failed"] is True
    assert result["msg"] == "Version 1.4.2 of shop/prod does not exist; creating it needs ami_id, instance_type, subnet_ids."
    assert result["missing_options"] == ["ami_id", "instance_type", "subnet_ids"]
    assert aws.mutating_calls() == []


def test_half_built_fleet_without_the_spec_fails_before_any_change(aws, run_module, fleet):
    aws.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=NAME, ForceDelete=True)
    aws.clear_calls()
    result = run_module(aws, MODULE, dict(IDENTITY, capacity=dict(min=1, max=1)))
    assert result["failed"] is True
    assert "Version 1.4.2 of shop/prod is incomplete (no auto scaling group)" in result["msg"]
    assert aws.mutating_calls() == []


def test_mark_failed_and_scale_to_zero_then_clear(aws, run_module, fleet):
    rescue = dict(IDENTITY, status="failed", capacity=dict(min=0, max=0, desired=0))
    check = run_module(aws, MODULE, rescue, check=True, diff=True)
    assert check["changed"] is True, check.get("msg")
    assert [(a["action"], a.get("resource")) for a in check["actions"]] == [
        ("tag_status", "auto_scaling_group"), ("tag_status", "target_group"), ("tag_status", "launch_template"),
        ("update_capacity", None)]
    assert check["diff"]["before"]["status"] == "active" and check["diff"]["after"]["status"] == "failed"
    assert aws.mutating_calls() == []
    assert _fleet_info(aws, run_module)["1.4.2"]["failed"] is False

    aws.clear_calls()
    result = run_module(aws, MODULE, rescue)
    assert result["changed"] is True, result.get("msg")
    assert result["fleet"]["status"] == "failed"
    assert aws.mutating_calls() == [
        ("autoscaling", "CreateOrUpdateTags"), ("elbv2", "AddTags"), ("ec2", "CreateTags"),
        ("autoscaling", "UpdateAutoScalingGroup")]
    assert _tags(_group(aws)["Tags"])["cattle:status"] == "failed"
    tg_arn = fleet["fleet"]["target_group_arn"]
    assert _tags(aws.client("elbv2").describe_tags(ResourceArns=[tg_arn])["TagDescriptions"][0]["Tags"])[
        "cattle:status"] == "failed"
    lt_id = fleet["fleet"]["launch_template"]["id"]
    lt_tags = aws.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [lt_id]}])["Tags"]
    assert _tags(lt_tags)["cattle:status"] == "failed"
    assert _capacity(_group(aws)) == (0, 0, 0)
    info = _fleet_info(aws, run_module)["1.4.2"]
    assert info["failed"] is True and info["status"] == "failed"

    aws.clear_calls()
    again = run_module(aws, MODULE, rescue)
    assert again["changed"] is False and again["actions"] == [] and aws.mutating_calls() == []

    cleared = run_module(aws, MODULE, dict(IDENTITY, status="active"))
    assert cleared["changed"] is True and cleared["fleet"]["status"] == "active"
    assert "cattle:status" not in _tags(_group(aws)["Tags"])
    info = _fleet_info(aws, run_module)["1.4.2"]
    assert info["failed"] is False and info["status"] == "ok"
    aws.clear_calls()
    assert run_module(aws, MODULE, dict(IDENTITY, status="active"))["changed"] is False
    assert aws.mutating_calls() == []
