"""The benchmark (tools/bench.py, `make bench`) still runs, and the call budgets it found stay.

- A tiny scale run of the benchmark (4 versions, 5 foreign resources, one run): the script, its
  measuring of fleet_info / fleet_gc and its results file cannot silently rot.
- fleet_gc reads the launch templates' versions (one DescribeLaunchTemplateVersions per version)
  only when prune_images needs them: on a 50-version stack that is 50 calls saved per cleanup.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AMI = "ami-0ca771e0000ba5e01"


def test_bench_scale_smoke(tmp_path):
    output = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench.py"), "--quick", "--scenario", "scale", "--versions", "4",
         "--foreign", "5", "--no-sync", "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(output.read_text())
    for module in ("fleet_info", "fleet_gc"):
        entry = results["scale"][module]
        assert entry["stack_only"]["calls"] > 0
        # The foreign resources cost nothing: every list call is filtered by the stack's tags.
        assert entry["crowded"]["calls"] == entry["stack_only"]["calls"], entry
    assert "fleet_info calls, crowded vs stack-only" in proc.stdout


def _version(aws, vpc, subnets, version, day):
    from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
    from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T

    names = naming.fleet_names("shop", "prod", version)
    tag_list = T.dict_to_tag_list(T.ownership_tags(
        "shop", "prod", version, created_at=datetime.datetime(2024, 5, day, tzinfo=datetime.timezone.utc)))
    aws.client("ec2").create_launch_template(
        LaunchTemplateName=names["launch_template"], LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": tag_list}])
    arn = aws.client("elbv2").create_target_group(
        Name=names["target_group"], Protocol="HTTP", Port=8080, VpcId=vpc, Tags=tag_list)["TargetGroups"][0]["TargetGroupArn"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=names["auto_scaling_group"], MinSize=0, MaxSize=1, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateName": names["launch_template"], "Version": "$Default"},
        VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[arn],
        Tags=[dict(t, PropagateAtLaunch=True, ResourceId=names["auto_scaling_group"], ResourceType="auto-scaling-group")
              for t in tag_list])


def test_gc_reads_launch_template_versions_only_to_prune_images(aws, run_module):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]]
    for day, version in enumerate(("1.0", "1.1", "1.2", "1.3"), start=1):
        _version(aws, vpc, subnets, version, day)
    args = {"app": "shop", "environment": "prod", "keep": 1}

    aws.clear_calls()
    result = run_module(aws, "cattle.aws.fleet_gc", args, check=True)
    assert [e["version"] for e in result["deleted"]] == ["1.2", "1.1", "1.0"], result
    assert Counter(a for s, a in aws.calls())["DescribeLaunchTemplateVersions"] == 0

    aws.clear_calls()
    result = run_module(aws, "cattle.aws.fleet_gc", dict(args, prune_images=True), check=True)
    assert [e["version"] for e in result["deleted"]] == ["1.2", "1.1", "1.0"], result
    assert Counter(a for s, a in aws.calls())["DescribeLaunchTemplateVersions"] == 4
    assert aws.mutating_calls() == []


def test_the_time_split_accounts_for_a_run_from_its_tasks_windows():
    sys.path.insert(0, str(REPO / "tools"))
    import bench  # noqa: E402  (tools/bench.py)

    def task(action, start, end, ran=1):
        return {"action": action, "ran": ran, "window": (start, end)}

    run = {"started": 100.0, "wall": 3.0, "tasks": [
        task("ansible.builtin.set_fact", 100.8, 100.85),          # start-up 0.8 s
        task("cattle.aws.stack_lock", 101.35, 101.5),            # 0.5 s between: the SDK loaded
        task("ansible.builtin.debug", 101.5, 101.6),
        task("cattle.aws.fleet_gc", 101.6, 101.62, ran=0),       # skipped
        task("cattle.aws.release_report_files", 101.62, 102.9),  # an action on the controller
    ]}

    split = bench.time_split(run)

    assert split["startup_s"] == 0.8 and split["between_tasks_s"] == 0.5 and split["exit_s"] == 0.1
    assert split["module_tasks"] == {"count": 1, "seconds": 0.15}
    assert split["controller_tasks"] == {"count": 3, "seconds": 1.43}
    assert split["skipped_tasks"] == {"count": 1, "seconds": 0.02}
