"""The test harness itself: the local endpoint, its call recorder, reset and fault injection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = REPO_ROOT / "tools" / "local_aws.py"
SEEDED_AMI = "ami-0ca771e0000ba5e01"


def _network(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")[
            "Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    return vpc, subnets


def test_recorder_sees_service_and_action_of_every_protocol(aws):
    vpc, subnets = _network(aws)  # ec2 query protocol
    elbv2 = aws.client("elbv2")  # query protocol, signing name elasticloadbalancing
    tg = elbv2.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=vpc)
    elbv2.describe_target_groups(TargetGroupArns=[tg["TargetGroups"][0]["TargetGroupArn"]])
    aws.client("autoscaling").describe_auto_scaling_groups()
    ssm = aws.client("ssm")  # JSON protocol (X-Amz-Target)
    ssm.put_parameter(Name="/cattle/lock", Value="x", Type="String")
    ssm.get_parameter(Name="/cattle/lock")
    r53 = aws.client("route53")  # REST-XML: method + path
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="ref")["HostedZone"]["Id"]
    change = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": "www.example.com", "Type": "A", "TTL": 60, "SetIdentifier": "v1", "Weight": 10,
            "ResourceRecords": [{"Value": "192.0.2.1"}]}}]})
    r53.get_change(Id=change["ChangeInfo"]["Id"])
    r53.list_resource_record_sets(HostedZoneId=zone)
    cw = aws.client("cloudwatch")  # whatever protocol botocore picks (cbor / json / query)
    cw.put_metric_alarm(AlarmName="a", MetricName="m", Namespace="n", Statistic="Average",
                        Period=60, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="test")
    cw.describe_alarms(AlarmNames=["a"])

    assert aws.calls() == [
        ("ec2", "CreateVpc"),
        ("ec2", "CreateSubnet"),
        ("ec2", "CreateSubnet"),
        ("elbv2", "CreateTargetGroup"),
        ("elbv2", "DescribeTargetGroups"),
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("ssm", "PutParameter"),
        ("ssm", "GetParameter"),
        ("route53", "CreateHostedZone"),
        ("route53", "ChangeResourceRecordSets"),
        ("route53", "GetChange"),
        ("route53", "ListResourceRecordSets"),
        ("cloudwatch", "PutMetricAlarm"),
        ("cloudwatch", "SetAlarmState"),
        ("cloudwatch", "DescribeAlarms"),
    ]
    assert aws.mutating_calls() == [
        ("ec2", "CreateVpc"),
        ("ec2", "CreateSubnet"),
        ("ec2", "CreateSubnet"),
        ("elbv2", "CreateTargetGroup"),
        ("ssm", "PutParameter"),
        ("route53", "CreateHostedZone"),
        ("route53", "ChangeResourceRecordSets"),
        ("cloudwatch", "PutMetricAlarm"),
        ("cloudwatch", "SetAlarmState"),
    ]
    assert all(c["status"] in (200, 201) for c in aws.call_log())


def test_failed_calls_are_recorded_with_their_status(aws):
    with pytest.raises(aws.client("ssm").exceptions.ParameterNotFound):
        aws.client("ssm").get_parameter(Name="/missing")
    [call] = aws.call_log()
    assert (call["service"], call["action"], call["status"]) == ("ssm", "GetParameter", 400)


def test_clear_calls_empties_the_record(aws):
    aws.client("ec2").describe_vpcs()
    assert aws.calls() == [("ec2", "DescribeVpcs")]
    aws.clear_calls()
    assert aws.calls() == []


def test_reset_clears_state_but_keeps_the_seeded_ebs_ami(aws):
    ec2 = aws.client("ec2")
    vpc = _network(aws)[0]
    aws.reset()
    assert vpc not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    [image] = ec2.describe_images(ImageIds=[SEEDED_AMI])["Images"]
    assert image["RootDeviceType"] == "ebs"
    assert image["VirtualizationType"] == "hvm"
    assert image["Architecture"] == "x86_64"
    [bdm] = image["BlockDeviceMappings"]
    assert bdm["DeviceName"] == image["RootDeviceName"] == "/dev/xvda"
    assert bdm["Ebs"]["SnapshotId"].startswith("snap-")
    found = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["amzn2-ami-hvm-*-x86_64-gp2"]}])["Images"]
    assert [i["ImageId"] for i in found] == [SEEDED_AMI]


def test_threaded_server_backends_can_be_patched(threaded_aws, monkeypatch):
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    vpc, subnets = _network(threaded_aws)
    ec2 = threaded_aws.client("ec2")
    instance = ec2.run_instances(ImageId=SEEDED_AMI, MinCount=1, MaxCount=1,
                                 SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    elbv2 = threaded_aws.client("elbv2")
    tg = elbv2.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance}])

    def unhealthy(self, target, ec2_backend):
        return FakeHealthStatus(target["Id"], target.get("Port", self.port),
                                self.health_check_port, "unhealthy",
                                reason="Target.FailedHealthChecks",
                                description="Health checks failed")

    monkeypatch.setattr(FakeTargetGroup, "health_for", unhealthy)
    [desc] = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert desc["TargetHealth"]["State"] == "unhealthy"
    assert desc["TargetHealth"]["Reason"] == "Target.FailedHealthChecks"
    assert ("elbv2", "DescribeTargetHealth") in threaded_aws.calls()


@pytest.mark.filterwarnings("ignore:Exception\\(Throttling\\):UserWarning")
@pytest.mark.parametrize("service, patch_target, call", [
    ("ssm", "moto.ssm.models.SimpleSystemManagerBackend.get_parameter",
     lambda c: c.get_parameter(Name="/x")),
    ("elbv2", "moto.elbv2.models.ELBv2Backend.describe_target_health",
     lambda c: c.describe_target_health(TargetGroupArn="arn:aws:elasticloadbalancing:x")),
])
def test_threaded_server_can_inject_throttling(threaded_aws, monkeypatch, service, patch_target, call):
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from moto.core.exceptions import ServiceException

    class Throttling(ServiceException):
        code = "Throttling"
        message = "Rate exceeded"

    def throttled(*args, **kwargs):
        raise Throttling()

    monkeypatch.setattr(patch_target, throttled)
    client = threaded_aws.client(service, config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        call(client)
    assert err.value.response["Error"]["Code"] == "Throttling"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _launcher(*args):
    return subprocess.run([sys.executable, str(LAUNCHER), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_launcher_start_is_idempotent_and_stop_really_stops(tmp_path):
    state = str(tmp_path / "state")
    first = _launcher("start", "--state-dir", state)
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip()
    pid = int((tmp_path / "state" / "pid").read_text())
    try:
        again = _launcher("start", "--state-dir", state)
        assert again.stdout.strip() == url
        assert int((tmp_path / "state" / "pid").read_text()) == pid
        status = _launcher("status", "--state-dir", state)
        assert status.returncode == 0 and url in status.stdout
        env = _launcher("env", "--state-dir", state).stdout
        assert f"export AWS_ENDPOINT_URL={url}\n" in env
        assert "export AWS_ACCESS_KEY_ID=testing\n" in env
    finally:
        stopped = _launcher("stop", "--state-dir", state)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"server pid {pid} still alive after stop")
    assert not (tmp_path / "state" / "pid").exists()
    assert _launcher("status", "--state-dir", state).returncode == 3
    assert _launcher("env", "--state-dir", state).returncode == 1


def test_run_module_check_mode_makes_no_mutating_call(aws, run_module):
    args = {"name": "harness", "cidr_block": "10.9.0.0/16", "tags": {"cattle:app": "harness"}}
    result = run_module(aws, "amazon.aws.ec2_vpc_net", args, check=True, diff=True)
    assert result["changed"] is True, result
    assert not result.get("failed"), result
    assert aws.calls() and aws.mutating_calls() == []
    assert aws.client("ec2").describe_vpcs(
        Filters=[{"Name": "tag:Name", "Values": ["harness"]}])["Vpcs"] == []

    result = run_module(aws, "amazon.aws.ec2_vpc_net", args)
    assert result["changed"] is True and result["vpc"]["cidr_block"] == "10.9.0.0/16"
    assert ("ec2", "CreateVpc") in aws.mutating_calls()


def test_run_module_returns_module_failures(aws, run_module):
    result = run_module(aws, "amazon.aws.ec2_vpc_subnet",
                        {"vpc_id": "vpc-00000000", "cidr": "10.0.1.0/24"})
    assert result["failed"] is True, result
    assert "InvalidVpcID.NotFound" in str(result), result
    with pytest.raises(AssertionError, match="did not run"):
        run_module(aws, "cattle.aws.no_such_module", {})


def test_target_groups_report_the_load_balancers_that_route_to_them_like_aws(aws):
    """moto alone forgets ModifyListener's forward targets in LoadBalancerArns; AWS does not."""
    vpc, subnets = _network(aws)
    elbv2 = aws.client("elbv2")
    lb = elbv2.create_load_balancer(Name="lb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (
        elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        for name in ("blue", "green")
    )
    listener = elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}],
    )["Listeners"][0]["ListenerArn"]

    def load_balancers_of(arn):
        return elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]["LoadBalancerArns"]

    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": blue, "Weight": 0}, {"TargetGroupArn": green, "Weight": 100}]}}])
    assert load_balancers_of(green) == [lb]
    assert load_balancers_of(blue) == [lb]

    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": green}])
    assert load_balancers_of(blue) == []

    elbv2.delete_listener(ListenerArn=listener)
    assert load_balancers_of(green) == []
