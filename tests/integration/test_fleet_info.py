"""cattle.aws.fleet_info against the local endpoint: a stack of three versions built with
immutable_fleet, one live behind an ALB listener, then drift made by hand (an edited launch
template, a stray instance, an instance from another AMI attached to a fleet's ASG)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from helpers import run_playbook

from ansible_collections.cattle.aws.plugins.module_utils._fleet import info_api
from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming

pytestmark = pytest.mark.integration

MODULE = "cattle.aws.fleet_info"
AMI = "ami-0ca771e0000ba5e01"  # seeded by tools/local_aws_amis.json
VERSIONS = ("1.0", "1.1", "1.2")


def _network(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    lb = aws.client("elbv2").create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    return vpc, subnets, lb


def _other_ami(aws):
    return aws.client("ec2").copy_image(SourceImageId=AMI, SourceRegion="us-east-1", Name="hand-made")["ImageId"]


def _instance(aws, subnet, tags, image=AMI):
    spec = {"ImageId": image, "MinCount": 1, "MaxCount": 1, "SubnetId": subnet}
    if tags:
        spec["TagSpecifications"] = [{"ResourceType": "instance",
                                      "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    return aws.client("ec2").run_instances(**spec)["Instances"][0]["InstanceId"]


def _build(aws, run_playbook, tmp_path, app="shop", environment="prod", desired=2):
    """Three fleets made by immutable_fleet (one ansible-playbook run, a loop), 1.1 live at
    100 and 1.0 at 0 on the ALB listener, 1.2 not attached."""
    vpc, subnets, lb = _network(aws)
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "fleets", "loop": list(VERSIONS),
        "cattle.aws.immutable_fleet": dict(
            app=app, environment=environment, version="{{ item }}", ami_id=AMI, instance_type="t3.micro",
            subnet_ids=subnets, capacity=dict(min=0, max=4, desired=desired), wait_timeout=60),
    }]}]
    path = tmp_path / "fleets.yml"
    path.write_text(json.dumps(play), encoding="utf-8")
    rc, out, err = run_playbook(aws, path)
    assert rc == 0, out + err
    fleets = {}
    for version in VERSIONS:
        names = naming.fleet_names(app, environment, version)
        fleets[version] = {
            "names": names,
            "target_group_arn": aws.client("elbv2").describe_target_groups(
                Names=[names["target_group"]])["TargetGroups"][0]["TargetGroupArn"],
            "launch_template_id": aws.client("ec2").describe_launch_templates(
                LaunchTemplateNames=[names["launch_template"]])["LaunchTemplates"][0]["LaunchTemplateId"],
        }
    listener = aws.client("elbv2").create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": fleets["1.1"]["target_group_arn"], "Weight": 100},
            {"TargetGroupArn": fleets["1.0"]["target_group_arn"], "Weight": 0},
        ]}}],
    )["Listeners"][0]["ListenerArn"]
    # Foreign look-alikes: the same app in another environment, and an untagged instance named
    # like the stack's.
    _instance(aws, subnets[0], {"cattle:app": "shop", "cattle:environment": "staging", "cattle:version": "1.1"})
    _instance(aws, subnets[0], {"Name": "shop-prod-1.1"})
    aws.clear_calls()
    return {"vpc": vpc, "subnets": subnets, "lb": lb, "listener": listener, "fleets": fleets}


@pytest.fixture(scope="module")
def shared_stack(aws_endpoint, tmp_path_factory):
    """Built once for the read-only tests of this file, which come first (a later test using the
    `aws` fixture resets the endpoint)."""
    aws_endpoint.reset()
    return _build(aws_endpoint, run_playbook, tmp_path_factory.mktemp("fleet-info"))


@pytest.fixture
def stack(aws_endpoint, shared_stack):
    aws_endpoint.clear_calls()
    return shared_stack


def test_three_versions_one_live(aws_endpoint, run_module, stack):
    aws = aws_endpoint
    result = run_module(aws, MODULE, dict(app="shop", environment="prod"))
    assert result["changed"] is False and result.get("failed") is not True, result.get("msg")
    assert aws.mutating_calls() == []

    assert [f["version"] for f in result["fleets"]] == ["1.2", "1.1", "1.0"]
    assert result["live_version"] == "1.1" and result["previous_version"] == "1.0"
    assert result["traffic_point"] == stack["listener"]
    fleets = {f["version"]: f for f in result["fleets"]}
    assert [(v, fleets[v]["live"], fleets[v]["serving"]) for v in VERSIONS] == [
        ("1.0", False, False), ("1.1", True, True), ("1.2", False, False)]

    [live_traffic] = fleets["1.1"]["traffic"]
    assert live_traffic["listener_arn"] == stack["listener"] and live_traffic["type"] == "listener"
    assert (live_traffic["weight"], live_traffic["total_weight"], live_traffic["percent"]) == (100, 100, 100.0)
    assert [(t["weight"], t["percent"]) for t in fleets["1.0"]["traffic"]] == [(0, 0.0)]
    assert fleets["1.2"]["traffic"] == []

    for version in VERSIONS:
        counts = fleets[version]["instance_counts"]
        assert (counts["total"], counts["in_service"], counts["registered"]) == (2, 2, 2), (version, counts)
        # moto reports every registered running instance healthy (AWS: `unused` for 1.2, whose
        # target group no listener forwards to; the threaded test below models that).
        assert counts["healthy"] == 2 and counts["unhealthy"] == 0 and counts["unused"] == 0
        assert [t["state"] for t in fleets[version]["target_health"]] == ["healthy", "healthy"]
        assert {i["target_health"] for i in fleets[version]["auto_scaling_group"]["instances"]} == {"healthy"}
        assert {i["image_id"] for i in fleets[version]["auto_scaling_group"]["instances"]} == {AMI}
        assert fleets[version]["drift"] == {"detected": False, "instances": [], "launch_template": None}

    # No drift: the look-alike instances (other environment, untagged) are not strays.
    assert result["drift"] == {"detected": False, "instances": [], "launch_templates": [],
                               "stray_instances": [], "messages": []}


def test_calls_scale_with_the_stack(aws_endpoint, stack):
    aws = aws_endpoint
    info_api.describe_fleets(aws.client, "shop", "prod")
    calls = Counter(aws.calls())
    assert aws.mutating_calls() == []
    assert calls[("elbv2", "DescribeTargetHealth")] == 3  # one per target group
    assert calls[("ec2", "DescribeInstances")] == 1  # every ASG instance is tagged: no second call
    assert calls[("ec2", "DescribeLaunchTemplateVersions")] == 3  # discovery's $Default, none edited

    aws.clear_calls()
    info_api.describe_fleets(aws.client, "shop", "prod", health=False, drift=False)
    calls = Counter(aws.calls())
    assert calls[("elbv2", "DescribeTargetHealth")] == 0 and calls[("ec2", "DescribeInstances")] == 0


def test_health_and_drift_off(aws_endpoint, run_module, stack):
    aws = aws_endpoint
    result = run_module(aws, MODULE, dict(app="shop", environment="prod", health=False, drift=False))
    assert "drift" not in result
    live = [f for f in result["fleets"] if f["live"]][0]
    assert "target_health" not in live and "drift" not in live
    assert live["instance_counts"]["total"] == 2 and live["instance_counts"]["healthy"] is None
    assert result["live_version"] == "1.1"


def test_without_images_and_launch_template_data(aws_endpoint, run_module, stack):
    # What the release playbook reads: versions, traffic, capacity, status - one call per version fewer.
    aws = aws_endpoint
    args = dict(app="shop", environment="prod", health=False, drift=False)
    full = run_module(aws, MODULE, args)
    aws.clear_calls()
    lean = run_module(aws, MODULE, dict(args, include_images=False, include_launch_template_data=False))
    calls = Counter(aws.calls())
    assert calls[("ec2", "DescribeImages")] == 0 and calls[("ec2", "DescribeLaunchTemplateVersions")] == 0, calls
    assert sum(calls.values()) <= 6, calls
    keep = ("version", "live", "serving", "traffic_percent", "complete", "failed", "status", "instance_counts", "attach_rules")
    assert [{k: f[k] for k in keep} for f in lean["fleets"]] == [{k: f[k] for k in keep} for f in full["fleets"]]
    assert [f["auto_scaling_group"] for f in lean["fleets"]] == [f["auto_scaling_group"] for f in full["fleets"]]
    assert (lean["live_version"], lean["previous_version"]) == (full["live_version"], full["previous_version"]) == ("1.1", "1.0")
    assert all(f["launch_template"]["instance_type"] is None for f in lean["fleets"])
    assert all(f["launch_template"]["instance_type"] == "t3.micro" for f in full["fleets"])

    aws.clear_calls()
    result = run_module(aws, MODULE, dict(app="shop", environment="prod", include_launch_template_data=False))
    assert result["failed"] and "keep include_images and include_launch_template_data true" in result["msg"]
    assert aws.calls() == []


def test_drift_is_reported(aws, run_module, tmp_path):
    stack = _build(aws, run_playbook, tmp_path)
    ec2 = aws.client("ec2")
    fleets = stack["fleets"]
    # 1. Someone edits 1.0's launch template.
    ec2.create_launch_template_version(
        LaunchTemplateId=fleets["1.0"]["launch_template_id"], SourceVersion="1",
        LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.large"})
    # 2. A stray instance tagged for the stack, in no ASG.
    stray = _instance(aws, stack["subnets"][0], {"cattle:app": "shop", "cattle:environment": "prod",
                                                 "cattle:version": "1.1", "Name": "debug"})
    # 3. An instance from another AMI, without the stack's tags, attached to 1.1's ASG.
    other_ami = _other_ami(aws)
    odd = _instance(aws, stack["subnets"][0], None, image=other_ami)
    aws.client("autoscaling").attach_instances(
        InstanceIds=[odd], AutoScalingGroupName=fleets["1.1"]["names"]["auto_scaling_group"])
    aws.clear_calls()

    result = run_module(aws, MODULE, dict(app="shop", environment="prod"), check=True)
    assert aws.mutating_calls() == []
    drift = result["drift"]
    assert drift["detected"] is True

    [template] = drift["launch_templates"]
    assert template["version"] == "1.0" and template["id"] == fleets["1.0"]["launch_template_id"]
    assert (template["latest_version"], template["expected_version"]) == (2, 1)
    assert [(v["version_number"], v["instance_type"]) for v in template["versions"]] == [(1, "t3.micro"), (2, "t3.large")]

    [stray_entry] = drift["stray_instances"]
    assert stray_entry["instance_id"] == stray and stray_entry["version"] == "1.1"
    assert stray_entry["managed"] is False and stray_entry["name"] == "debug"

    [odd_entry] = drift["instances"]
    assert odd_entry["instance_id"] == odd and odd_entry["version"] == "1.1"
    assert "ami" in odd_entry["reasons"]
    assert (odd_entry["image_id"], odd_entry["expected_image_id"]) == (other_ami, AMI)

    fleets_out = {f["version"]: f for f in result["fleets"]}
    assert fleets_out["1.0"]["drift"]["detected"] and fleets_out["1.0"]["drift"]["launch_template"]["id"] == template["id"]
    assert fleets_out["1.1"]["drift"]["instances"] == [{k: v for k, v in odd_entry.items() if k != "version"}]
    assert fleets_out["1.2"]["drift"]["detected"] is False
    assert fleets_out["1.1"]["instance_counts"]["total"] == 3
    assert len(drift["messages"]) == 3 and any(stray in m for m in drift["messages"])
    # Still the same live/previous view.
    assert (result["live_version"], result["previous_version"]) == ("1.1", "1.0")

    # Bounded extra calls: one DescribeInstances for the untagged attached instance, one
    # DescribeLaunchTemplateVersions for the edited template.
    calls = Counter(aws.calls())
    assert calls[("ec2", "DescribeInstances")] == 2
    assert calls[("ec2", "DescribeLaunchTemplateVersions")] == 4


def test_target_states_as_aws_reports_them(threaded_aws, monkeypatch):
    """AWS: targets of a target group no listener forwards to are `unused`; failing ones
    `unhealthy`. moto says healthy, so the backend is patched to model AWS."""
    from moto.elbv2 import models as elbv2_models  # pylint: disable=import-outside-toplevel

    aws = threaded_aws
    vpc, subnets, lb = _network(aws)
    ec2 = aws.client("ec2")
    elbv2 = aws.client("elbv2")
    tags = [{"Key": "cattle:app", "Value": "shop"}, {"Key": "cattle:environment", "Value": "prod"},
            {"Key": "cattle:managed-by", "Value": "cattle.aws"}]
    arns = {}
    for version in ("1.0", "1.1"):
        version_tags = tags + [{"Key": "cattle:version", "Value": version},
                               {"Key": "cattle:created-at", "Value": f"2024-05-0{int(version[-1]) + 1}T00:00:00Z"}]
        template = ec2.create_launch_template(
            LaunchTemplateName=f"shop-prod-{version}", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": version_tags}])["LaunchTemplate"]
        arns[version] = elbv2.create_target_group(
            Name=f"shop-prod-{version.replace('.', '-')}", Protocol="HTTP", Port=8080,
            VpcId=vpc, Tags=version_tags,
        )["TargetGroups"][0]["TargetGroupArn"]
        aws.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=f"shop-prod-{version}", MinSize=0, MaxSize=3, DesiredCapacity=2,
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
            VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[arns[version]],
            Tags=[dict(t, PropagateAtLaunch=True) for t in version_tags])
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": arns["1.1"], "Weight": 1}]}}])
    live_targets = sorted(t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=arns["1.1"])[
        "TargetHealthDescriptions"])
    original = elbv2_models.FakeTargetGroup.health_for

    def aws_like(self, target, ec2_backend):
        status = original(self, target, ec2_backend)
        if not self.load_balancer_arns or self.arn == arns["1.0"]:
            return elbv2_models.FakeHealthStatus(target["Id"], status.port, None, "unused", "Target.NotInUse",
                                                 "Target group is not configured to receive traffic from the load balancer")
        if target["Id"] == live_targets[0]:
            return elbv2_models.FakeHealthStatus(target["Id"], status.port, None, "unhealthy",
                                                 "Target.FailedHealthChecks", "Health checks failed")
        return status

    monkeypatch.setattr(elbv2_models.FakeTargetGroup, "health_for", aws_like)
    result = info_api.describe_fleets(aws.client, "shop", "prod", drift=False)
    fleets = {f["version"]: f for f in result["fleets"]}
    assert result["live_version"] == "1.1"
    live = fleets["1.1"]["instance_counts"]
    assert (live["total"], live["registered"], live["healthy"], live["unhealthy"], live["unused"]) == (2, 2, 1, 1, 0)
    old = fleets["1.0"]["instance_counts"]
    assert (old["healthy"], old["unhealthy"], old["unused"]) == (0, 0, 2)
    assert {t["reason"] for t in fleets["1.0"]["target_health"]} == {"Target.NotInUse"}
    unhealthy = [t for t in fleets["1.1"]["target_health"] if t["state"] == "unhealthy"]
    assert [t["target_id"] for t in unhealthy] == [live_targets[0]]
    assert "drift" not in result
