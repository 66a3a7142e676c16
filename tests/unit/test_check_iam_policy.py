"""tools/check_iam_policy.py with synthetic call journals, and docs/iam-policy.json's shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import check_iam_policy as C  # noqa: E402

sys.path.remove(str(REPO / "tools"))

pytestmark = pytest.mark.unit

ANSIBLE_UA = "APN/1.0 Ansible/2.19.14 amazon.aws/10.1.2 Boto3/1.44.8 md/Botocore#1.44.8 Python/3.11 cattle.aws/0.1.0"
AMAZON_AWS_UA = "APN/1.0 Ansible/2.19.14 amazon.aws/10.1.2 Boto3/1.44.8 md/Botocore#1.44.8 Python/3.11"
TEST_UA = "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux Python/3.11 Botocore/1.44.8"
SANDBOX_UA = "APN/1.0 Ansible/2.19.14 amazon.aws/10.1.2 Botocore/1.44.8 cattle-sandbox"
PACKER_UA = "aws-sdk-go/1.44.133 (go1.19.8; linux; amd64) Waiter"  # what Packer's amazon plugin sends


def call(service, action, ua=ANSIBLE_UA):
    return {"service": service, "action": action, "method": "POST", "path": "/", "status": 200, "user_agent": ua}


def policy(*actions):
    return {"Version": "2012-10-17", "Statement": [{"Sid": "All", "Effect": "Allow", "Action": list(actions),
                                                    "Resource": "*"}]}


def test_exact_policy_passes_and_names_map_to_iam():
    calls = [call("elbv2", "ModifyListener"), call("resourcegroupstaggingapi", "GetResources"),
             call("cloudwatch", "DescribeAlarms"), call("ssm", "GetParametersByPath"), call("tagging", "GetResources")]
    assert C.compare(calls, policy("elasticloadbalancing:ModifyListener", "tag:GetResources",
                                   "cloudwatch:DescribeAlarms", "ssm:GetParametersByPath")) == []


def test_called_but_not_granted_fails():
    problems = C.compare([call("ssm", "GetParametersByPath"), call("ssm", "DeleteParameter")], policy("ssm:GetParametersByPath"))
    assert problems == ["called but not granted: ssm:DeleteParameter (by ansible)"]


def test_granted_but_never_called_fails():
    problems = C.compare([call("ssm", "GetParametersByPath")], policy("ssm:GetParametersByPath", "ssm:GetParameter"))
    assert problems == ["granted but never called: ssm:GetParameter"]


def test_test_setup_and_sandbox_calls_do_not_count_packer_does():
    calls = [call("ec2", "CreateVpc", TEST_UA), call("ec2", "CreateSubnet", SANDBOX_UA),
             call("ec2", "DescribeVpcs", AMAZON_AWS_UA),
             call("ec2", "CreateImage", PACKER_UA), call("ssm", "GetParameter")]
    assert C.compare(calls, policy("ec2:CreateImage", "ssm:GetParameter")) == []
    problems = C.compare(calls, policy("ec2:CreateImage", "ssm:GetParameter", "ec2:CreateVpc"))
    assert problems == ["granted but never called: ec2:CreateVpc"]


def test_implied_actions_count_as_used():
    calls = [call("autoscaling", "CreateAutoScalingGroup")]
    needed = ["autoscaling:CreateAutoScalingGroup", "autoscaling:CreateOrUpdateTags", "ec2:RunInstances"]
    assert C.compare(calls, policy(*needed)) == []
    assert C.compare(calls, policy(*needed[:2])) == ["called but not granted: ec2:RunInstances (by ansible)"]


def test_wildcards_unnamed_calls_and_empty_journals_fail():
    assert "statement All: wildcard action ec2:Describe*" in C.compare([call("ec2", "DescribeImages")],
                                                                       policy("ec2:DescribeImages", "ec2:Describe*"))
    assert any("unnamed call" in p for p in C.compare([call("s3", "GET /bucket")], policy("s3:ListBucket")))
    assert C.compare([call("ec2", "CreateVpc", TEST_UA)], policy())[0].startswith("no API call by the collection")


def test_command_line_reads_journals(tmp_path):
    calls_dir = tmp_path / "api-calls"
    calls_dir.mkdir()
    (calls_dir / "gw0.jsonl").write_text(json.dumps(call("ssm", "GetParametersByPath")) + "\n")
    (calls_dir / "gw1-threaded.jsonl").write_text(json.dumps(call("ssm", "GetParameter")) + "\n\n")
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(policy("ssm:GetParametersByPath", "ssm:GetParameter")))
    bad.write_text(json.dumps(policy("ssm:GetParametersByPath")))
    script = str(REPO / "tools" / "check_iam_policy.py")
    ok = subprocess.run([sys.executable, script, str(calls_dir), str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "least privilege holds: 2 IAM actions" in ok.stdout
    ko = subprocess.run([sys.executable, script, str(calls_dir), str(bad)], capture_output=True, text=True, check=False)
    assert ko.returncode == 1 and "called but not granted: ssm:GetParameter" in ko.stderr
    suggested = subprocess.run([sys.executable, script, str(calls_dir), str(bad), "--suggest"], capture_output=True,
                               text=True, check=False)
    assert C.compare(C.read_calls(calls_dir), json.loads(suggested.stdout)) == []


def test_shipped_policy_has_no_wildcard_actions_and_covers_each_service():
    shipped = json.loads((REPO / "docs" / "iam-policy.json").read_text())
    granted, problems = C.policy_actions(shipped)
    assert problems == []
    services = {a.split(":", 1)[0] for a in granted}
    assert {"ec2", "autoscaling", "elasticloadbalancing", "ssm", "route53", "cloudwatch", "tag"} <= services


def test_lock_write_needs_the_tagging_permission_too():
    calls = [call("ssm", "PutParameter")]
    assert C.compare(calls, policy("ssm:PutParameter")) == [
        "called but not granted: ssm:AddTagsToResource (by ansible)"]


def test_only_the_reviewed_actions_may_stay_uncalled():
    assert set(C.NOT_CALLABLE_LOCALLY) == {"route53:GetChange"}
    calls = [call("route53", "ChangeResourceRecordSets")]
    assert C.compare(calls, policy("route53:ChangeResourceRecordSets", "route53:GetChange")) == []
    assert C.compare(calls, policy("route53:ChangeResourceRecordSets", "route53:GetHostedZone")) == [
        "granted but never called: route53:GetHostedZone"]
