"""Helpers of the release playbook tests (tests/integration/test_release*.py): a stack's network made
with boto3, running cattle.aws.release / cattle.aws.rollback, and reading weights, groups, the lock
and the report back."""

from __future__ import annotations

import json
import re
from pathlib import Path

AMI = "ami-0ca771e0000ba5e01"
RELEASE = "cattle.aws.release"
ROLLBACK = "cattle.aws.rollback"


def _tags(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def make_stack(aws, tmp_path, app="shop", environment="test", **extra):
    """The network of a stack, created with boto3; returns the stack file's content (a dict)."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i + 1}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
               for i, az in enumerate(azs)]
    sg = ec2.create_security_group(GroupName=f"{app}-{environment}", Description="test", VpcId=vpc)["GroupId"]
    elbv2 = aws.client("elbv2")
    lb = elbv2.create_load_balancer(Name=f"{app}-{environment}", Subnets=subnets, SecurityGroups=[sg])[
        "LoadBalancers"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "No release yet"}}],
    )["Listeners"][0]
    stack = {
        "app": app,
        "environment": environment,
        "listener_arn": listener["ListenerArn"],
        "vpc_id": vpc,
        "subnet_ids": subnets,
        "security_group_ids": [sg],
        "instance_type": "t3.micro",
        "capacity": {"min": 2, "max": 4, "desired": 2},
        "target_group": {"port": 8080, "health_check": {"path": "/health", "interval": 10, "healthy_threshold": 2}},
        "ami_id": AMI,
        "strategy": "instant",
        "health": {"timeout": 60, "poll_interval": 1},
        "keep": 2,
        "instance_prices": {"t3.micro": 0.0104},
        "currency": "USD",
        "releases_per_week": 3.5,
        "report_dir": str(tmp_path / "report"),
    }
    stack.update(extra)
    return stack


def release(aws, run_playbook, stack, version, playbook=RELEASE, **overrides):
    extra_vars = dict(stack, **overrides)
    if version is not None:
        extra_vars["version"] = version
    rc, out, err = run_playbook(aws, playbook, extra_vars)
    return rc, out + err


def ok(result):
    rc, out = result
    assert rc == 0, out
    return out


def weights(aws, stack):
    """Version -> weight of the listener's forward action (versions from the target groups' tags)."""
    elbv2 = aws.client("elbv2")
    [listener] = elbv2.describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"]
    [action] = listener["DefaultActions"]
    if action["Type"] != "forward":
        return {"<" + action["Type"] + ">": 0}
    groups = action["ForwardConfig"]["TargetGroups"]
    tags = elbv2.describe_tags(ResourceArns=[g["TargetGroupArn"] for g in groups])["TagDescriptions"]
    version = {t["ResourceArn"]: _tags(t["Tags"]).get("cattle:version") for t in tags}
    return {version[g["TargetGroupArn"]]: g.get("Weight", 1) for g in groups}


def groups(aws, app="shop"):
    """Version -> the auto scaling group of that version (with its tags as a dict)."""
    result = {}
    for group in aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]:
        tags = _tags(group.get("Tags"))
        if tags.get("cattle:app") == app:
            group["tags"] = tags
            result[tags["cattle:version"]] = group
    return result


def lock_value(aws, name="/cattle/locks/shop/test"):
    params = aws.client("ssm").get_parameters(Names=[name])["Parameters"]
    return json.loads(params[0]["Value"]) if params else None


def report(stack):
    directory = Path(stack["report_dir"])
    return json.loads((directory / "release-report.json").read_text()), (directory / "release-report.html").read_text()


def progress_lines(out):
    return re.findall(r"\[shop/test [^\]]+\] (\w+) (?:done|skipped)", out)


def patch_unhealthy(monkeypatch, tg_name_part, reason="Target.ResponseCodeMismatch"):
    """Targets of the target groups whose name contains tg_name_part are reported unhealthy, like AWS."""
    from moto.elbv2 import models

    original = models.FakeTargetGroup.health_for

    def health_for(self, target, ec2_backend):
        status = original(self, target, ec2_backend)
        if tg_name_part not in self.name or status.status != "healthy":
            return status
        return models.FakeHealthStatus(target["Id"], status.port, self.health_check_port, "unhealthy", reason,
                                       "Health checks failed with these codes: [500]")

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)


def patch_target_health_like_aws(monkeypatch, listener_arn):
    """Targets of a target group that no listener or rule uses are `unused` (AWS runs no health check
    then; moto says `healthy`). Returns a list that gets the type of the listener's first default
    action each time a target's health is read while its group is in use (what answered the
    listener's requests while the group was health-checked)."""
    from moto.elbv2 import models

    original = models.FakeTargetGroup.health_for
    seen = []

    def health_for(self, target, ec2_backend):
        status = original(self, target, ec2_backend)
        if status.status != "healthy":
            return status
        if not self.load_balancer_arns:
            return models.FakeHealthStatus(target["Id"], status.port, self.health_check_port, "unused",
                                           "Target.NotInUse", "Target group is not configured to receive traffic "
                                           "from the load balancer")
        for backend in models.elbv2_backends.values():
            for region_backend in backend.values():
                for balancer in region_backend.load_balancers.values():
                    listener = balancer.listeners.get(listener_arn)
                    if listener is not None:
                        action = listener.default_actions[0]
                        seen.append(action.type if hasattr(action, "type") else action["Type"])
        return status

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)
    return seen


def listener_rules(aws, listener_arn):
    """The listener's non-default rules."""
    return [r for r in aws.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"] if not r["IsDefault"]]
