"""cattle.aws.fleet_gc through ansible against the local AWS endpoint.

The stack shop/prod (fleets built with boto3, tagged by tags.ownership_tags, one instance each):
1.9 (oldest) .. 1.13 (newest) — creation order differs from the version strings' order (1.9 is
older than 1.10). The listener forwards 1.13 at 100 (live), 1.11 at 0 and a foreign target group
at 0 with stickiness. Look-alikes with the stack's names but no tags, and another app, surround it.
"""

from __future__ import annotations

import datetime

import pytest
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus

from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T

pytestmark = pytest.mark.integration

MODULE = "cattle.aws.fleet_gc"
BASE_AMI = "ami-0ca771e0000ba5e01"  # seeded by tools/local_aws_amis.json
VERSIONS = ["1.9", "1.10", "1.11", "1.12", "1.13"]  # creation order
ARGS = {"app": "shop", "environment": "prod", "keep": 1, "drain_timeout": 10, "wait_timeout": 60}


def _when(day):
    return datetime.datetime(2024, 5, day, 12, 0, 0, tzinfo=datetime.timezone.utc)


def _network(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
               for i, az in ((1, "a"), (2, "b"))]
    lb = aws.client("elbv2").create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    return vpc, subnets, lb


def _fleet(aws, vpc, subnets, app, version, day, tags="owned", image=None):
    """AMI (unless image is given), LT, TG and ASG (TG attached) of one version; returns their ids."""
    names = naming.fleet_names(app, "prod", version)
    tag_dict = T.ownership_tags(app, "prod", version, created_at=_when(day)) if tags == "owned" else {}
    tag_list = T.dict_to_tag_list(tag_dict)
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    out = {"names": names}
    if image is None:
        image = ec2.copy_image(SourceImageId=BASE_AMI, SourceRegion="us-east-1", Name=f"{app}-{version}")["ImageId"]
        if tag_list:
            ec2.create_tags(Resources=[image], Tags=tag_list)
        out["own_ami"] = image
    out["ami"] = image
    lt = {"LaunchTemplateName": names["launch_template"], "LaunchTemplateData": {"ImageId": image, "InstanceType": "t3.micro"}}
    tg = {"Name": names["target_group"], "Protocol": "HTTP", "Port": 8080, "VpcId": vpc}
    asg = {"AutoScalingGroupName": names["auto_scaling_group"], "MinSize": 1, "MaxSize": 3, "DesiredCapacity": 1,
           "LaunchTemplate": {"LaunchTemplateName": names["launch_template"], "Version": "1"},
           "VPCZoneIdentifier": ",".join(subnets)}
    if tag_list:
        lt["TagSpecifications"] = [{"ResourceType": "launch-template", "Tags": tag_list}]
        tg["Tags"] = tag_list
        asg["Tags"] = [dict(t, PropagateAtLaunch=True) for t in tag_list]
    out["lt"] = ec2.create_launch_template(**lt)["LaunchTemplate"]["LaunchTemplateId"]
    out["tg"] = elbv2.create_target_group(**tg)["TargetGroups"][0]["TargetGroupArn"]
    asg["TargetGroupARNs"] = [out["tg"]]
    aws.client("autoscaling").create_auto_scaling_group(**asg)
    return out


@pytest.fixture
def stack(aws):
    return _build_stack(aws)


def _build_stack(aws):
    vpc, subnets, lb = _network(aws)
    fleets = {}
    for day, version in enumerate(VERSIONS, start=1):
        # 1.12 has no AMI of its own: it runs 1.10's (prune_images must spare it while 1.12 exists).
        image = fleets["1.10"]["ami"] if version == "1.12" else None
        fleets[version] = _fleet(aws, vpc, subnets, "shop", version, day, image=image)
    lookalike = _fleet(aws, vpc, subnets, "shop", "1.0", 1, tags=None)  # the stack's names, no tags
    other_app = _fleet(aws, vpc, subnets, "shop2", "1.0", 1)
    listener = aws.client("elbv2").create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": fleets["1.13"]["tg"], "Weight": 100},
                             {"TargetGroupArn": fleets["1.11"]["tg"], "Weight": 0},
                             {"TargetGroupArn": lookalike["tg"], "Weight": 0}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}],
    )["Listeners"][0]["ListenerArn"]
    aws.clear_calls()
    return {"fleets": fleets, "lookalike": lookalike, "other_app": other_app, "listener": listener}


def _groups(aws):
    groups = aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: g for g in groups}


def _target_groups(aws):
    return {tg["TargetGroupArn"] for tg in aws.client("elbv2").describe_target_groups()["TargetGroups"]}


def _templates(aws):
    return {t["LaunchTemplateId"] for t in aws.client("ec2").describe_launch_templates()["LaunchTemplates"]}


def _images(aws):
    return {i["ImageId"]: i for i in aws.client("ec2").describe_images(Owners=["self"])["Images"]}


def _snapshots(aws):
    return {s["SnapshotId"] for s in aws.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def _forward(aws, listener):
    (found,) = aws.client("elbv2").describe_listeners(ListenerArns=[listener])["Listeners"]
    return found["DefaultActions"][0]["ForwardConfig"]


def _exists(aws, fleet):
    return (fleet["names"]["auto_scaling_group"] in _groups(aws), fleet["tg"] in _target_groups(aws),
            fleet["lt"] in _templates(aws))


def _versions(entries):
    return [e["version"] for e in entries]


def test_delete_keeps_live_and_newest_previous_and_drains_in_order(aws, run_module, stack):
    fleets = stack["fleets"]
    result = run_module(aws, MODULE, ARGS, diff=True)
    assert result["changed"] is True, result.get("msg")
    assert _versions(result["deleted"]) == ["1.11", "1.10", "1.9"]
    kept = {e["version"]: e["reason"] for e in result["kept"] if e["version"]}
    assert kept == {"1.13": "live", "1.12": "retained"}
    assert [e for e in result["kept"] if e["version"] is None] == [{
        "version": None, "target_group_arn": stack["lookalike"]["tg"],
        "target_group_name": stack["lookalike"]["names"]["target_group"], "reason": "not owned"}]
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert set(before) == set(after) == set(VERSIONS)  # without prune_images, the AMIs stay
    assert after["1.9"] == {"launch_template": None, "target_group": None, "auto_scaling_group": None,
                            "capacity": None, "ami": fleets["1.9"]["ami"]}
    assert after["1.12"] == before["1.12"] and before["1.9"]["capacity"] == {"min": 1, "max": 3, "desired": 1}

    for version in ("1.9", "1.10", "1.11"):
        assert _exists(aws, fleets[version]) == (False, False, False)
    for fleet in (fleets["1.12"], fleets["1.13"], stack["lookalike"], stack["other_app"]):
        assert _exists(aws, fleet) == (True, True, True)
    assert _groups(aws)[fleets["1.13"]["names"]["auto_scaling_group"]]["DesiredCapacity"] == 1

    # 1.11 left the forward action; the live and the foreign target group kept weights and stickiness.
    forward = _forward(aws, stack["listener"])
    assert {(t["TargetGroupArn"], t["Weight"]) for t in forward["TargetGroups"]} == {
        (fleets["1.13"]["tg"], 100), (stack["lookalike"]["tg"], 0)}
    assert forward["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 300}

    # Leave traffic -> detach (drain) -> delete ASG -> delete TG -> delete LT, and nothing else.
    mutating = [action for service, action in aws.mutating_calls()]
    order = ["ModifyListener", "DetachLoadBalancerTargetGroups", "DeleteAutoScalingGroup", "DeleteTargetGroup",
             "DeleteLaunchTemplate"]
    assert set(mutating) == set(order)
    assert mutating.count("ModifyListener") == 1 and mutating.count("DeleteAutoScalingGroup") == 3
    for earlier, later in zip(order, order[1:]):
        last = max(i for i, a in enumerate(mutating) if a == earlier)
        assert last < min(i for i, a in enumerate(mutating) if a == later), (earlier, later, mutating)
    calls = [action for service, action in aws.calls()]
    first_delete = calls.index("DeleteAutoScalingGroup")
    assert "DescribeTargetHealth" in calls[calls.index("DetachLoadBalancerTargetGroups"):first_delete]
    assert _images(aws).keys() >= {fleets[v]["ami"] for v in ("1.9", "1.10", "1.11")}  # prune_images is off

    aws.clear_calls()
    again = run_module(aws, MODULE, ARGS)
    assert again["changed"] is False and again["actions"] == [] and again["deleted"] == []
    assert aws.mutating_calls() == []


def test_check_mode_lists_what_would_go_and_changes_nothing(aws, run_module, stack):
    result = run_module(aws, MODULE, dict(ARGS, keep=0, protect=["1.10"]), check=True)
    assert result["changed"] is True
    assert _versions(result["deleted"]) == ["1.12", "1.11", "1.9"]
    assert {e["version"]: e["reason"] for e in result["kept"] if e["version"]} == {"1.13": "live", "1.10": "protected"}
    assert [a["action"] for a in result["actions"]][:2] == ["leave_traffic", "detach_target_group"]
    assert aws.mutating_calls() == []
    for fleet in stack["fleets"].values():
        assert _exists(aws, fleet) == (True, True, True)


def test_scale_to_zero_keeps_definitions_and_is_idempotent(aws, run_module, stack):
    fleets = stack["fleets"]
    args = dict(ARGS, mode="scale_to_zero")
    result = run_module(aws, MODULE, args)
    assert result["changed"] is True, result.get("msg")
    assert _versions(result["scaled_to_zero"]) == ["1.11", "1.10", "1.9"] and result["deleted"] == []
    groups = _groups(aws)
    for version in VERSIONS:
        group = groups[fleets[version]["names"]["auto_scaling_group"]]
        expected = (0, 3, 0) if version in ("1.9", "1.10", "1.11") else (1, 3, 1)
        assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == expected, version
        assert _exists(aws, fleets[version]) == (True, True, True)
    assert {action for service, action in aws.mutating_calls()} == {"UpdateAutoScalingGroup"}
    assert len(_forward(aws, stack["listener"])["TargetGroups"]) == 3

    aws.clear_calls()
    again = run_module(aws, MODULE, args)
    assert again["changed"] is False and again["scaled_to_zero"] == []
    assert aws.mutating_calls() == []


def test_resume_after_an_interrupted_run(aws, run_module, stack):
    """A previous run deleted 1.9's ASG and was interrupted: its TG and LT are found by their tags."""
    fleets = stack["fleets"]
    autoscaling = aws.client("autoscaling")
    name = fleets["1.9"]["names"]["auto_scaling_group"]
    autoscaling.detach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=[fleets["1.9"]["tg"]])
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    aws.clear_calls()

    result = run_module(aws, MODULE, dict(ARGS, keep=3))
    assert result["changed"] is True, result.get("msg")
    assert _versions(result["deleted"]) == ["1.9"]
    assert [(a["action"], a["version"]) for a in result["actions"]] == [
        ("delete_target_group", "1.9"), ("delete_launch_template", "1.9")]
    assert _exists(aws, fleets["1.9"]) == (False, False, False)
    assert [a for s, a in aws.mutating_calls()] == ["DeleteTargetGroup", "DeleteLaunchTemplate"]


def test_prune_images_removes_unused_amis_and_their_snapshots(aws, run_module, stack):
    fleets = stack["fleets"]
    images = _images(aws)
    snapshots = {v: [m["Ebs"]["SnapshotId"] for m in images[fleets[v]["ami"]]["BlockDeviceMappings"] if "Ebs" in m]
                 for v in ("1.9", "1.10", "1.11")}
    result = run_module(aws, MODULE, dict(ARGS, prune_images=True))
    assert result["changed"] is True, result.get("msg")
    pruned = {a["id"] for a in result["actions"] if a["action"] == "deregister_image"}
    assert pruned == {fleets["1.9"]["ami"], fleets["1.11"]["ami"]}  # 1.10's AMI runs 1.12 (retained)
    images = _images(aws)
    assert fleets["1.9"]["ami"] not in images and fleets["1.11"]["ami"] not in images
    assert fleets["1.10"]["ami"] in images and fleets["1.13"]["ami"] in images
    assert stack["other_app"]["ami"] in images
    left = _snapshots(aws)
    assert not set(snapshots["1.9"] + snapshots["1.11"]) & left
    assert set(snapshots["1.10"]) <= left

    # Once 1.12 is gone too, the AMI it shared with 1.10 goes (the version left with only its AMI).
    again = run_module(aws, MODULE, dict(ARGS, keep=0, prune_images=True))
    assert _versions(again["deleted"]) == ["1.12", "1.10"]
    assert fleets["1.10"]["ami"] not in _images(aws)


def _drain_patch(monkeypatch, target_group_arn, draining_polls):
    """describe_target_health shows one target of `target_group_arn` draining for `draining_polls`
    polls after its ASG detached it (moto deregisters at once; AWS drains for the deregistration delay)."""
    original = ELBv2Backend.describe_target_health
    polls = {"count": 0}

    def describe_target_health(self, target_group_arn_, targets):
        found = original(self, target_group_arn_, targets)
        if target_group_arn_ == target_group_arn and not found and polls["count"] < draining_polls:
            polls["count"] += 1
            return [FakeHealthStatus("i-0123456789abcdef0", "8080", "traffic-port", "draining",
                                     "Target.DeregistrationInProgress", "Target deregistration is in progress")]
        return found

    monkeypatch.setattr(ELBv2Backend, "describe_target_health", describe_target_health)
    return polls


def test_deletes_only_after_targets_drained(threaded_aws, run_module, monkeypatch):
    stack = _build_stack(threaded_aws)
    fleets = stack["fleets"]
    polls = _drain_patch(monkeypatch, fleets["1.10"]["tg"], 2)
    result = run_module(threaded_aws, MODULE, ARGS)
    assert result["changed"] is True and "drain_timed_out" not in result, result.get("msg")
    assert polls["count"] == 2
    calls = [action for service, action in threaded_aws.calls()]
    first_delete = calls.index("DeleteAutoScalingGroup")
    # 1.11 and 1.9 drained at the first poll, 1.10 at the third: every delete comes after.
    assert calls[calls.index("DetachLoadBalancerTargetGroups"):first_delete].count("DescribeTargetHealth") == 5
    assert _exists(threaded_aws, fleets["1.10"]) == (False, False, False)


def test_drain_timeout_deletes_anyway_and_says_so(threaded_aws, run_module, monkeypatch):
    stack = _build_stack(threaded_aws)
    fleets = stack["fleets"]
    _drain_patch(monkeypatch, fleets["1.10"]["tg"], 1000)
    result = run_module(threaded_aws, MODULE, dict(ARGS, drain_timeout=2))
    assert result["changed"] is True, result.get("msg")
    assert result["drain_timed_out"] == ["1.10"]
    assert any("still draining after 2s" in w for w in result.get("warnings", []))
    assert _exists(threaded_aws, fleets["1.10"]) == (False, False, False)
