"""Discovery against the local endpoint: a real stack with weighted traffic, surrounded by
foreign look-alike resources (same names, no tags / other app / no managed-by) it must ignore."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections import Counter

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import discovery
from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T

pytestmark = pytest.mark.integration

BASE_AMI = "ami-0ca771e0000ba5e01"  # seeded by tools/local_aws_amis.json


def _when(day):
    return datetime.datetime(2024, 5, day, 12, 0, 0, tzinfo=datetime.timezone.utc)


def _network(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    lb = aws.client("elbv2").create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    return vpc, subnets, lb


def _ami(aws, name, tags):
    ec2 = aws.client("ec2")
    image = ec2.copy_image(SourceImageId=BASE_AMI, SourceRegion="us-east-1", Name=name)["ImageId"]
    if tags:
        ec2.create_tags(Resources=[image], Tags=T.dict_to_tag_list(tags))
    return image


def _launch_template(aws, name, tags, image=BASE_AMI):
    spec = {"LaunchTemplateName": name, "LaunchTemplateData": {"ImageId": image, "InstanceType": "t3.micro"}}
    if tags:
        spec["TagSpecifications"] = [{"ResourceType": "launch-template", "Tags": T.dict_to_tag_list(tags)}]
    return aws.client("ec2").create_launch_template(**spec)["LaunchTemplate"]["LaunchTemplateId"]


def _target_group(aws, name, vpc, tags):
    spec = {"Name": name, "Protocol": "HTTP", "Port": 8080, "VpcId": vpc}
    if tags:
        spec["Tags"] = T.dict_to_tag_list(tags)
    return aws.client("elbv2").create_target_group(**spec)["TargetGroups"][0]["TargetGroupArn"]


def _asg(aws, name, template, subnets, tags, target_group=None, desired=1):
    spec = {"AutoScalingGroupName": name, "LaunchTemplate": {"LaunchTemplateName": template, "Version": "1"},
            "MinSize": 0, "MaxSize": 3, "DesiredCapacity": desired, "VPCZoneIdentifier": ",".join(subnets)}
    if target_group:
        spec["TargetGroupARNs"] = [target_group]
    if tags:
        spec["Tags"] = [{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()]
    aws.client("autoscaling").create_auto_scaling_group(**spec)


def _fleet(aws, vpc, subnets, app, environment, version, day, parts=("ami", "lt", "tg", "asg"), **tag_changes):
    names = naming.fleet_names(app, environment, version)
    tags = T.ownership_tags(app, environment, version, created_at=_when(day))
    for k, v in tag_changes.items():
        if v is None:
            tags.pop(k.replace("_", ":", 1).replace("_", "-"), None)
        else:
            tags[k] = v
    out = {"names": names}
    image = _ami(aws, f"{names['launch_template']}-ami", tags) if "ami" in parts else BASE_AMI
    out["ami"] = image
    if "lt" in parts:
        out["lt"] = _launch_template(aws, names["launch_template"], tags, image)
    if "tg" in parts:
        out["tg"] = _target_group(aws, names["target_group"], vpc, tags)
    if "asg" in parts:
        _asg(aws, names["auto_scaling_group"], names["launch_template"], subnets, tags, out.get("tg"))
    return out


@pytest.fixture
def stack(aws):
    """shop/prod: 1.0 and 1.1 complete (1.1 live at 80, 1.0 at 20), 1.2 only a launch template,
    plus a foreign TG on the same listener and look-alikes that must be ignored."""
    vpc, subnets, lb = _network(aws)
    f10 = _fleet(aws, vpc, subnets, "shop", "prod", "1.0", 1)
    f11 = _fleet(aws, vpc, subnets, "shop", "prod", "1.1", 2)
    f12 = _fleet(aws, vpc, subnets, "shop", "prod", "1.2", 3, parts=("lt",))

    # Look-alikes. 2.0: the names cattle.aws would use, but no tags at all.
    lookalike = naming.fleet_names("shop", "prod", "2.0")
    _launch_template(aws, lookalike["launch_template"], None)
    foreign_tg = _target_group(aws, lookalike["target_group"], vpc, None)
    _asg(aws, lookalike["auto_scaling_group"], lookalike["launch_template"], subnets, None, foreign_tg)
    # 3.0: every ownership tag but cattle:managed-by.
    unmanaged = T.ownership_tags("shop", "prod", "3.0")
    del unmanaged["cattle:managed-by"]
    names30 = naming.fleet_names("shop", "prod", "3.0")
    _ami(aws, "shop-3.0", unmanaged)
    _launch_template(aws, names30["launch_template"], unmanaged)
    tg30 = _target_group(aws, names30["target_group"], vpc, unmanaged)
    _asg(aws, names30["auto_scaling_group"], names30["launch_template"], subnets, unmanaged, tg30)
    # Same stack names in another app and another environment, and the environment-less stack.
    _fleet(aws, vpc, subnets, "shop2", "prod", "1.0", 1)
    _fleet(aws, vpc, subnets, "shop", "staging", "1.0", 1)
    _fleet(aws, vpc, subnets, "shop", None, "1.0", 1)

    listener = aws.client("elbv2").create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": f10["tg"], "Weight": 20},
            {"TargetGroupArn": f11["tg"], "Weight": 80},
            {"TargetGroupArn": foreign_tg, "Weight": 0},
        ]}}],
    )["Listeners"][0]["ListenerArn"]
    aws.clear_calls()
    return {"lb": lb, "listener": listener, "foreign_tg": foreign_tg, "1.0": f10, "1.1": f11, "1.2": f12}


def test_discovery_finds_only_the_stack_and_reports_weights(aws, stack):
    result = discovery.discover_stack(aws.client, "shop", "prod")

    assert [f["version"] for f in result["fleets"]] == ["1.2", "1.1", "1.0"]
    fleets = {f["version"]: f for f in result["fleets"]}
    assert result["live_version"] == "1.1"
    assert result["previous_version"] == "1.0"
    assert fleets["1.1"]["traffic"][0]["weight"] == 80 and fleets["1.1"]["traffic_percent"] == 80.0
    assert fleets["1.0"]["traffic"][0]["weight"] == 20 and fleets["1.0"]["serving"] is True
    assert fleets["1.1"]["live"] and not fleets["1.0"]["live"]
    assert fleets["1.0"]["traffic"][0]["listener_arn"] == stack["listener"]

    f10 = fleets["1.0"]
    assert f10["created_at"] == "2024-05-01T12:00:00Z"
    assert f10["complete"] and f10["status"] == "ok"
    assert f10["ami"]["id"] == stack["1.0"]["ami"] and f10["ami"]["owned"] is True
    assert f10["launch_template"]["id"] == stack["1.0"]["lt"]
    assert f10["launch_template"]["image_id"] == stack["1.0"]["ami"]
    assert f10["target_group"]["arn"] == stack["1.0"]["tg"]
    assert f10["target_group"]["load_balancer_arns"] == [stack["lb"]]
    assert f10["auto_scaling_group"]["name"] == "shop-prod-1.0"
    assert f10["auto_scaling_group"]["desired_capacity"] == 1
    assert len(f10["auto_scaling_group"]["instances"]) == 1
    assert f10["auto_scaling_group"]["instances"][0]["launch_template_version"] == "1"

    partial = fleets["1.2"]
    assert partial["launch_template"]["id"] == stack["1.2"]["lt"]
    assert partial["target_group"] is None and partial["auto_scaling_group"] is None
    assert partial["ami"] == {"id": BASE_AMI, "name": None, "state": None, "creation_date": None,
                              "snapshot_ids": [], "owned": False}
    assert partial["serving"] is False and partial["complete"] is False

    [foreign] = result["foreign_target_groups"]
    assert foreign["arn"] == stack["foreign_tg"] and foreign["weight"] == 0
    assert foreign["name"] == naming.fleet_names("shop", "prod", "2.0")["target_group"]
    assert result["conflicts"] == []


def test_discovery_of_other_stacks_sees_their_own_fleets(aws, stack):
    assert [f["version"] for f in discovery.discover_stack(aws.client, "shop", "staging")["fleets"]] == ["1.0"]
    assert [f["version"] for f in discovery.discover_stack(aws.client, "shop", None)["fleets"]] == ["1.0"]
    nothing = discovery.discover_stack(aws.client, "nothing", "prod")
    assert nothing["fleets"] == [] and nothing["live_version"] is None


def test_discovery_calls_are_read_only_and_scale_with_the_stack(aws, stack):
    discovery.discover_stack(aws.client, "shop", "prod")
    calls = Counter(aws.calls())
    assert aws.mutating_calls() == []
    assert calls == Counter({
        ("ec2", "DescribeImages"): 1,
        ("ec2", "DescribeLaunchTemplates"): 1,
        ("ec2", "DescribeLaunchTemplateVersions"): 3,  # one per launch template of the stack
        ("autoscaling", "DescribeAutoScalingGroups"): 1,
        ("tagging", "GetResources"): 1,
        ("elbv2", "DescribeTargetGroups"): 1,
        ("elbv2", "DescribeListeners"): 1,  # one per load balancer
        ("elbv2", "DescribeRules"): 1,  # one per listener
    }), calls


def test_target_group_missing_from_the_tagging_api_is_found_through_its_asg(aws, stack, monkeypatch):
    # The Tagging API is eventually consistent on AWS: simulate a just-created target group it
    # does not return yet. Discovery still finds it through the ASG and checks its tags.
    real = discovery.get_tagged_resources

    def lagging(client, tag_filters, resource_types):
        return [m for m in real(client, tag_filters, resource_types) if m["ResourceARN"] != stack["1.1"]["tg"]]

    monkeypatch.setattr(discovery, "get_tagged_resources", lagging)
    result = discovery.discover_stack(aws.client, "shop", "prod")
    fleets = {f["version"]: f for f in result["fleets"]}
    assert fleets["1.1"]["target_group"]["arn"] == stack["1.1"]["tg"]
    assert result["live_version"] == "1.1"
    assert ("elbv2", "DescribeTags") in aws.calls()


def test_failed_fleet_is_reported_and_skipped_as_previous(aws, stack):
    # Tag the ASG: moto 5.2.5 does not show CreateTags made after CreateLaunchTemplate in
    # DescribeLaunchTemplates (AWS does); any tagged part marks the fleet failed.
    aws.client("autoscaling").create_or_update_tags(Tags=[{
        "ResourceId": "shop-prod-1.0", "ResourceType": "auto-scaling-group", "Key": "cattle:status",
        "Value": "failed", "PropagateAtLaunch": False}])
    result = discovery.discover_stack(aws.client, "shop", "prod")
    fleets = {f["version"]: f for f in result["fleets"]}
    assert fleets["1.0"]["status"] == "failed"
    assert result["previous_version"] is None


def test_fleet_info_module_in_check_mode(aws, stack, run_module):
    result = run_module(aws, "cattle.aws.fleet_info", {"app": "shop", "environment": "prod"}, check=True)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["live_version"] == "1.1" and result["previous_version"] == "1.0"
    assert [f["version"] for f in result["fleets"]] == ["1.2", "1.1", "1.0"]
    assert [t["arn"] for t in result["foreign_target_groups"]] == [stack["foreign_tg"]]
    assert aws.mutating_calls() == []


def test_fleet_info_rejects_invalid_app_before_any_call(aws, run_module):
    result = run_module(aws, "cattle.aws.fleet_info", {"app": "Shop"})
    assert result["failed"] is True
    assert "Invalid app 'Shop': app must be 1 to 32 characters" in result["msg"]
    assert aws.calls() == []


def test_module_defaults_of_the_collection_group_reach_fleet_info_and_amazon_aws(aws, stack, run_playbook):
    # The environment points at a dead endpoint and another region: only module_defaults can
    # bring the modules to the stack. group/cattle.aws.aws extends amazon.aws.aws, so one entry
    # configures both collections' modules. (ansible-core resolves group/amazon.aws.aws from
    # amazon.aws's own meta/runtime.yml only: extend_group cannot add our modules to it.)
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/cattle.aws.aws": {"region": "us-east-1", "endpoint_url": aws.url}},
        "tasks": [
            {"name": "fleet_info", "cattle.aws.fleet_info": {"app": "shop", "environment": "prod"}, "register": "info"},
            {"name": "amazon.aws module", "amazon.aws.ec2_vpc_net_info": {}, "register": "vpcs"},
            {"name": "check", "ansible.builtin.assert": {"that": [
                "info.live_version == '1.1'", "info.fleets | length == 3", "vpcs.vpcs | length >= 1"]}},
        ],
    }]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "play.yml")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(play, f)
        rc, out, err = run_playbook(aws, path, extra_env={
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-3"})
    assert rc == 0, out + err
    assert ("autoscaling", "DescribeAutoScalingGroups") in aws.calls()
    assert ("ec2", "DescribeVpcs") in aws.calls()
