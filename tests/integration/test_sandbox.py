"""playbooks/sandbox.yml against the local endpoint: resources, tags, listener, stack file."""

from __future__ import annotations

import re

import pytest
import yaml

pytestmark = pytest.mark.integration


def _changed(stdout: str) -> int:
    m = re.search(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", stdout, re.M)
    assert m, stdout
    return int(m.group(1))


def _tags(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def test_sandbox_creates_the_network_and_alb_idempotently(aws, run_playbook, tmp_path):
    stack_file = tmp_path / "stack.yml"
    extra_vars = {
        "sandbox_app": "shop",
        "sandbox_environment": "test",
        "sandbox_stack_file": str(stack_file),
        "sandbox_tags": {"owner": "tests"},
        "sandbox_stack_extra": {"strategy": "canary"},
    }
    rc, out, err = run_playbook(aws, "cattle.aws.sandbox", extra_vars)
    assert rc == 0, out + err
    assert _changed(out) > 0

    stack = yaml.safe_load(stack_file.read_text())
    assert stack["app"] == "shop"
    assert stack["environment"] == "test"
    assert stack["instance_type"] == "t3.micro"
    assert stack["capacity"] == {"min": 2, "max": 4, "desired": 2}
    assert stack["target_group"]["port"] == 8080
    assert stack["strategy"] == "canary"
    expected_tags = {"cattle:app": "shop", "cattle:environment": "test", "owner": "tests"}

    ec2 = aws.client("ec2")
    [vpc] = ec2.describe_vpcs(VpcIds=[stack["vpc_id"]])["Vpcs"]
    assert vpc["CidrBlock"] == "10.42.0.0/16"
    assert _tags(vpc["Tags"]) == {**expected_tags, "Name": "shop-test"}

    subnets = ec2.describe_subnets(SubnetIds=stack["subnet_ids"])["Subnets"]
    assert len(subnets) == 2
    assert {s["VpcId"] for s in subnets} == {stack["vpc_id"]}
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert all(expected_tags.items() <= _tags(s["Tags"]).items() for s in subnets)

    [igw] = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [stack["vpc_id"]]}])["InternetGateways"]
    routes = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": stack["subnet_ids"]}])["RouteTables"]
    assert [r.get("GatewayId") for t in routes for r in t["Routes"]
            if r.get("DestinationCidrBlock") == "0.0.0.0/0"] == [igw["InternetGatewayId"]]

    [sg] = ec2.describe_security_groups(GroupIds=stack["security_group_ids"])["SecurityGroups"]
    assert sg["VpcId"] == stack["vpc_id"]
    assert expected_tags.items() <= _tags(sg["Tags"]).items()
    ports = {(p["FromPort"], bool(p.get("IpRanges")), bool(p.get("UserIdGroupPairs")))
             for p in sg["IpPermissions"]}
    assert ports == {(80, True, False), (8080, False, True)}

    elbv2 = aws.client("elbv2")
    [listener] = elbv2.describe_listeners(ListenerArns=[stack["listener_arn"]])["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTP", 80)
    [action] = listener["DefaultActions"]
    assert action["Type"] == "fixed-response"
    assert action["FixedResponseConfig"]["StatusCode"] == "503"
    [lb] = elbv2.describe_load_balancers(LoadBalancerArns=[listener["LoadBalancerArn"]])[
        "LoadBalancers"]
    assert lb["Scheme"] == "internet-facing"
    assert sorted(az["SubnetId"] for az in lb["AvailabilityZones"]) == sorted(stack["subnet_ids"])
    lb_tags = _tags(elbv2.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])[
        "TagDescriptions"][0]["Tags"])
    assert expected_tags.items() <= lb_tags.items()

    # second run: nothing changes, no mutating API call, same stack file
    before = stack_file.read_text()
    aws.clear_calls()
    rc, out, err = run_playbook(aws, "cattle.aws.sandbox", extra_vars)
    assert rc == 0, out + err
    assert _changed(out) == 0, out
    assert aws.mutating_calls() == []
    assert stack_file.read_text() == before
