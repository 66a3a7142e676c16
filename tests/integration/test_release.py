"""playbooks/release.yml through ansible-playbook against the local endpoint: the releases that succeed,
validation and the lock. Failures, rollbacks and the rollback playbook: test_release_rollback.py.

Each test builds the network with boto3 (VPC, two subnets, security group, ALB with an HTTP:80
listener answering a fixed 503) and releases with ami_id = the endpoint's seeded AMI, so no bake
runs (except in the Packer test).
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import time

import pytest
import yaml

from helpers.release import AMI, RELEASE, groups, lock_value, make_stack, ok, progress_lines, release, report, weights

pytestmark = pytest.mark.integration


def test_first_then_second_release_instant(threaded_aws, run_playbook, tmp_path, observe_traffic):
    aws = threaded_aws  # in process: the observer reads the models, not HTTP
    stack = make_stack(aws, tmp_path)
    observe_traffic(aws, stack)  # zero downtime through every release of the test
    out = ok(release(aws, run_playbook, stack, "1.0.0"))
    assert weights(aws, stack) == {"1.0.0": 100}
    assert progress_lines(out)[:6] == ["validate", "lock", "bake", "provision", "initialization", "health"]
    assert "[shop/test 1.0.0] provision done in" in out and "(elapsed" in out
    assert lock_value(aws) is None
    first, html = report(stack)
    assert first["result"] == "success" and first["version"] == "1.0.0" and first["previous_version"] is None
    assert "<svg" in html

    stack["report_dir"] = str(tmp_path / "report2")
    rc, out, err = run_playbook(aws, RELEASE, dict(stack, version="1.1.0"), extra_env={"ANSIBLE_SHOW_CUSTOM_STATS": "True"})
    assert rc == 0, out + err
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    asgs = groups(aws)
    assert asgs["1.0.0"]["DesiredCapacity"] == 2, "the previous version is kept running for a rollback"
    assert asgs["1.1.0"]["DesiredCapacity"] == 2 and asgs["1.1.0"]["MinSize"] == 2
    assert lock_value(aws) is None
    second, _html = report(stack)
    assert second["result"] == "success" and second["previous_version"] == "1.0.0"
    assert second["strategy"] == "instant"
    phases = {p["name"]: p for p in second["timeline"]["phases"]}
    assert {"validate", "lock", "provision", "initialization", "health", "shift", "cleanup"} <= set(phases)
    assert second["cost"]["currency"] == "USD" and second["cost"]["cost"] != "unknown"
    assert "released in" in out and "1.1.0 is live, 1.0.0 kept for a rollback" in out
    progress = re.findall(r'"msg": "(\[shop/test 1\.1\.0\] [^"]*)"', out)
    assert len(progress) >= 9 and [line for line in progress if "\\n" in line] == [], "each progress line is one line"
    # set_stats for AWX workflows (the default callback prints them with ANSIBLE_SHOW_CUSTOM_STATS).
    stats = json.loads(re.search(r"CUSTOM STATS: \*+\s*RUN: (\{.*\})", out, re.S).group(1))
    assert stats["cattle_release_version"] == "1.1.0" and stats["cattle_release_result"] == "success"
    assert stats["cattle_release_app"] == "shop" and stats["cattle_release_environment"] == "test"
    assert stats["cattle_release_previous_version"] == "1.0.0" and stats["cattle_release_currency"] == "USD"
    assert {"provision", "initialization", "health", "shift", "cleanup"} <= set(stats["cattle_release_durations"])
    assert stats["cattle_release_total_seconds"] > 0 and stats["cattle_release_overlap_seconds"] > 0
    assert stats["cattle_release_cost"] == second["cost"]["cost"] or abs(stats["cattle_release_cost"] - second["cost"]["cost"]) < 1e-4
    assert stats["cattle_release_stacks"] == {"shop/test": {k: v for k, v in stats.items() if k != "cattle_release_stacks"}}

    # Two versions, keep 2: the cleanup has nothing to remove, so fleet_gc does not even run.
    assert "cleanup done in" in out and 'nothing to remove: no version but 1.1.0, 1.0.0 and at most 2 retained (keep)' in out

    # The same command again changes nothing and succeeds: the fleet is checked and gated, there is
    # nothing to wait for and no traffic to shift.
    stack["report_dir"] = str(tmp_path / "report3")
    aws.clear_calls()
    out = ok(release(aws, run_playbook, stack, "1.1.0"))
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    assert "1.1.0 is live already: its fleet is checked and gated again, the traffic stays as it is" in out
    assert "initialization skipped: 1.1.0 is live already" in out
    assert "shift skipped: 1.1.0 has all the traffic already" in out
    # ... and shows the weights it found (its report too).
    assert re.search(r'shift skipped: 1\.1\.0 has all the traffic already \(elapsed \d+ s\): weights \{\\"1\.0\.0\\": 0, \\"1\.1\.0\\": 100\}', out), out
    writes = [c for c in aws.mutating_calls() if c[0] != "ssm"]
    assert writes == [], writes  # only the lock's own parameter is written
    third, _html = report(stack)
    assert third["result"] == "success"
    status = {p["name"]: p["status"] for p in third["timeline"]["phases"]}
    assert status["initialization"] == status["shift"] == "skipped" and status["health"] == "done", status
    assert [w["weights"] for w in third["weights"]] == [{"1.0.0": 0, "1.1.0": 100}]

    # ... and a live version is as immutable as any: the same version with another option is refused.
    rc, out = release(aws, run_playbook, stack, "1.1.0", instance_type="t3.large")
    assert rc != 0 and "Cannot change version 1.1.0" in out and "instance_type" in out
    # ... and refusing it changes nothing: the live version keeps its traffic and its instances.
    assert "1.1.0 was live already and stays live with all the traffic" in out and "nothing was changed" in out, out
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    asgs = groups(aws)
    assert asgs["1.1.0"]["DesiredCapacity"] == 2 and asgs["1.1.0"]["tags"].get("cattle:status") != "failed", asgs["1.1.0"]
    assert lock_value(aws) is None


def test_relative_paths_are_the_working_directory_s_and_a_rerun_keeps_the_release_s_report(
        aws, run_playbook, tmp_path):
    stack = dict(make_stack(aws, tmp_path), report_dir="")
    work = tmp_path / "work"
    work.mkdir()
    # Started by another process: its $PWD is not where it runs.
    elsewhere = {"PWD": str(tmp_path / "elsewhere")}

    rc, out, err = run_playbook(aws, RELEASE, dict(stack, version="1.0.0"), cwd=work, extra_env=elsewhere)

    assert rc == 0, out + err
    released = work / "release-reports" / "shop-test-1.0.0"
    assert f"report {released}/release-report.html" in out, out
    first = json.loads((released / "release-report.json").read_text())
    assert first["result"] == "success" and not (tmp_path / "elsewhere").exists()

    # The same release again, the stack given by a path relative to the working directory.
    (work / "stack.yml").write_text(yaml.safe_dump(stack))
    rc, out, err = run_playbook(aws, RELEASE, {"stack_file": "stack.yml", "version": "1.0.0"}, cwd=work, extra_env=elsewhere)

    assert rc == 0 and "1.0.0 is live already" in out, out + err
    rechecked = work / "release-reports" / "shop-test-1.0.0-recheck"
    assert f"report {rechecked}/release-report.html" in out, out
    assert json.loads((released / "release-report.json").read_text()) == first, "the release's own report stays"
    status = {p["name"]: p["status"] for p in json.loads((rechecked / "release-report.json").read_text())["timeline"]["phases"]}
    assert status["shift"] == "skipped" and status["health"] == "done", status


def test_validation_fails_before_any_change(aws, run_playbook, tmp_path):
    stack = make_stack(aws, tmp_path)
    aws.clear_calls()
    rc, out = release(aws, run_playbook, stack, "1.0.0", strategy="canary",
                      canary={"steps": [50, 10, 90], "pause_seconds": 0})
    assert rc != 0
    assert "canary.steps: [50, 10, 90] must end at 100" in out
    assert "must be strictly ascending" in out
    rc, out = release(aws, run_playbook, stack, None)
    assert rc != 0 and "version is required" in out
    rc, out = release(aws, run_playbook, stack, "1.0.0", strategy="blue")
    assert rc != 0 and "strategy" in out
    rc, out = release(aws, run_playbook, stack, "1.0.0", rollback_to="1.0/2")
    assert rc != 0 and 'rollback_to: \\"1.0/2\\" must be a version' in out, out
    rc, out = release(aws, run_playbook, stack, "1.0.0", rule_arn=stack["listener_arn"].replace(":listener/", ":listener-rule/") + "/abc")
    assert rc != 0 and "exactly one of listener_arn and rule_arn" in out
    bad = stack["listener_arn"][:-4] + "0000"
    rc, out = release(aws, run_playbook, stack, "1.0.0", listener_arn=bad)
    assert rc != 0 and f"listener_arn: {bad} was not found" in out
    assert aws.mutating_calls() == []


def test_numbers_and_switches_typed_on_the_command_line(aws, run_playbook, tmp_path):
    # `-e keep=3 -e retry_failed=false` gives strings: they mean what they say (false is false).
    from helpers.faults import seed_fleet, seed_live

    stack = make_stack(aws, tmp_path)
    seed_live(aws, stack)
    seed_fleet(aws, stack, "1.1.0", status="failed")
    typed = ["-e", "keep=3", "-e", "lock_ttl=600", "-e", "bake_seconds=0", "-e", "releases_per_week=2.5"]
    aws.clear_calls()
    rc, out, err = run_playbook(aws, RELEASE, dict(stack, version="1.1.0"), extra_args=typed + ["-e", "retry_failed=false"])
    assert rc != 0 and "Version 1.1.0 failed before and retry_failed is false" in out + err, (out + err)[-3000:]
    assert [c for c in aws.mutating_calls() if c[0] != "ssm"] == []
    assert lock_value(aws) is None
    rc, out, err = run_playbook(aws, RELEASE, dict(stack, version="1.1.0"), extra_args=typed + ["-e", "retry_failed=yes"])
    assert rc == 0, (out + err)[-3000:]
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    record, dummy = report(stack)
    assert record["cost"]["releases_per_week"] == 2.5
    rc, out, err = run_playbook(aws, RELEASE, dict(stack, version="1.1.0"), extra_args=["-e", "keep=abc"])
    assert rc != 0 and "keep" in out + err and "int" in out + err


def test_lock_contention_fails_at_once_naming_the_holder(aws, run_playbook, run_module, tmp_path):
    stack = make_stack(aws, tmp_path)
    held = run_module(aws, "cattle.aws.stack_lock", dict(app="shop", environment="test", version="0.9.0",
                                                         holder="alice@ci:42"))
    assert held.get("failed") is not True, held
    aws.clear_calls()
    started = time.monotonic()
    rc, out = release(aws, run_playbook, stack, "1.0.0")
    assert rc != 0 and "locked by alice@ci:42" in out
    assert time.monotonic() - started < 30
    assert [c for c in aws.mutating_calls() if c[0] != "ssm"] == []
    assert groups(aws) == {}
    assert lock_value(aws)["holder"] == "alice@ci:42", "the other run's lock is left alone"


def test_stack_file_given_by_path_releases_without_reserved_name_warnings(aws, run_playbook, tmp_path):
    stack = make_stack(aws, tmp_path)
    path = tmp_path / "stack.yml"
    path.write_text(yaml.safe_dump(dict(stack, version="0.9.0")))
    # -e @stack.yml makes ansible warn that `environment` and `strategy` are reserved names.
    # A variable given by itself (-e version=1.0.0) wins over the file's.
    rc, out, err = run_playbook(aws, RELEASE, {"stack_file": str(path), "version": "1.0.0"})
    assert rc == 0, out + err
    assert "reserved name" not in out + err
    assert weights(aws, stack) == {"1.0.0": 100} and "shop-test-1.0.0" in out
    assert report(stack)[0]["environment"] == "test"

    aws.clear_calls()
    rc, out, err = run_playbook(aws, RELEASE, {"stack_file": str(tmp_path / "nope.yml"), "version": "1.1.0"})
    assert rc != 0 and f"stack_file: {tmp_path / 'nope.yml'} is not a file" in out + err, out + err
    assert aws.mutating_calls() == []

    # The stack as one dict, as a playbook importing the release passes it; here as an extra variable,
    # which nothing the release registers may shadow.
    rc, out, err = run_playbook(aws, RELEASE, {"cattle_release_stack": dict(stack, version="0.9.0"), "version": "1.1.0"})
    assert rc == 0, out + err
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100} and "over 1.0.0" in out


def test_check_mode_previews_a_release_and_changes_nothing(aws, run_playbook, run_module, tmp_path):
    stack = make_stack(aws, tmp_path)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    # A version that failed before: marked failed and scaled to zero (as a rollback leaves it).
    fleet = {key: stack[key] for key in ("app", "environment", "ami_id", "instance_type", "subnet_ids", "security_group_ids")}
    fleet.update(version="1.2.0", target_group=dict(stack["target_group"], vpc_id=stack["vpc_id"]),
                 capacity={"min": 0, "max": 0, "desired": 0}, status="failed", wait=False)
    assert run_module(aws, "cattle.aws.immutable_fleet", fleet)["changed"] is True
    before = (weights(aws, stack), {v: g["DesiredCapacity"] for v, g in groups(aws).items()})

    def check(version, **overrides):
        aws.clear_calls()
        rc, out, err = run_playbook(aws, RELEASE, dict(stack, version=version, **overrides), check=True)
        assert rc == 0, out + err
        assert aws.mutating_calls() == [], "check mode changes nothing"
        assert (weights(aws, stack), {v: g["DesiredCapacity"] for v, g in groups(aws).items()}) == before
        assert lock_value(aws) is None
        return out, {action for _service, action in aws.calls()}

    # The live version: its fleet is checked and gated again.
    out, called = check("1.0.0")
    assert "1.0.0 is live already: its fleet is checked and gated again, the traffic stays as it is (check mode" in out, out
    assert re.search(r"\] lock done in \d+ s \(elapsed \d+ s\): /cattle/locks/shop/test is free \(check mode does not take it\)", out), out
    assert "check mode done in" in out and "1.0.0 is live and passed its gate again" in out
    assert "DescribeTargetHealth" in called

    # An expired lock of a run that died: check mode says a real run would take it over, and leaves it.
    from ansible_collections.cattle.aws.plugins.module_utils._fleet import lock as stack_lock

    expired = stack_lock.build_lock("bob@old:7", "0.9.0", "release", 60, token="tok-bob",
                                    now=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=120))
    aws.client("ssm").put_parameter(Name="/cattle/locks/shop/test", Value=stack_lock.dump_lock(expired), Type="String")
    aws.clear_calls()
    rc, out, err = run_playbook(aws, RELEASE, dict(stack, version="1.0.0"), check=True)
    assert rc == 0 and "/cattle/locks/shop/test would be taken over (check mode does not take it)" in out, out + err
    assert aws.mutating_calls() == [] and lock_value(aws)["holder"] == "bob@old:7"
    aws.client("ssm").delete_parameter(Name="/cattle/locks/shop/test")

    # A new version: what would be created and what would follow, without waiting on a fleet that is not there.
    out, called = check("1.1.0", strategy="canary", canary={"steps": [10, 100], "pause_seconds": 1}, bake_seconds=5)
    assert ("[shop/test 1.1.0] check mode: for shop-test-1.1.0 it would create the launch template, create the target "
            "group, create the auto scaling group (capacity {") in out, out
    assert ("}), then attach it without traffic, gate it (instances InService, targets healthy, alarms, HTTP checks), "
            "shift the traffic from 1.0.0 in canary steps of 10, 100 % and watch it for 5 s.") in out
    assert "check mode done in" in out and "1.1.0 would be released" in out
    assert "Check mode: the report files are not written." in out
    assert "DescribeTargetHealth" not in called and "DescribeScalingActivities" not in called
    assert "1.1.0" not in groups(aws)

    # A failed version scaled to zero: its failed mark would be cleared and its capacity set; the gate
    # does not wait for instances check mode does not launch.
    out, called = check("1.2.0")
    assert "check mode: for shop-test-1.2.0 it would clear its failed mark, set its capacity" in out, out
    assert "shift the traffic from 1.0.0 in one write" in out and "1.2.0 would be released" in out
    assert "DescribeTargetHealth" not in called
    assert groups(aws)["1.2.0"]["tags"]["cattle:status"] == "failed"

    # A version whose AMI the bake would make: no Packer run, no fleet to describe, still a preview.
    baked = dict(stack, packer={"source_ami": AMI})
    del baked["ami_id"]
    stack = baked
    out, called = check("1.3.0")
    assert "the AMI of shop version 1.3.0 would be baked with Packer (no build is run in check mode)" in out, out
    assert re.search(r"\[shop/test 1\.3\.0\] bake not run: check mode does not run Packer \(elapsed \d+ s\)", out), out
    assert ("[shop/test 1.3.0] check mode: it would provision the fleet from the AMI the bake would make (the bake does "
            "not run in check mode), then attach it without traffic") in out
    assert "1.3.0 would be released" in out and "CreateImage" not in called and "RunInstances" not in called


def test_canary_release_in_steps(threaded_aws, run_playbook, tmp_path, observe_traffic):
    aws = threaded_aws  # in process: the observer reads the models, not HTTP
    stack = make_stack(aws, tmp_path)
    observe_traffic(aws, stack)
    ok(release(aws, run_playbook, stack, "1.0.0"))
    stack["report_dir"] = str(tmp_path / "canary")
    out = ok(release(aws, run_playbook, stack, "1.1.0", strategy="canary",
                     canary={"steps": [10, 50, 100], "pause_seconds": 1}, bake_seconds=1))
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    steps = re.findall(r"canary step (\d+) % done \(elapsed \d+ s\): weights (\{[^}]*\})(, watched 1 s)?", out)
    assert [(int(p), json.loads(w.replace('\\"', '"')), bool(watched)) for p, w, watched in steps] == [
        (10, {"1.0.0": 90, "1.1.0": 10}, True),
        (50, {"1.0.0": 50, "1.1.0": 50}, True),
        (100, {"1.0.0": 0, "1.1.0": 100}, False),
    ]
    assert "watch done in" in out
    canary, html = report(stack)
    assert canary["strategy"] == "canary" and canary["result"] == "success"
    assert {"shift", "watch"} <= {p["name"] for p in canary["timeline"]["phases"]}
    assert "<svg" in html


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make packer)")
def test_release_bakes_the_ami_with_packer(threaded_aws, run_playbook, tmp_path, observe_traffic):
    aws = threaded_aws  # in process: the observer reads the models, not HTTP
    stack = make_stack(aws, tmp_path)
    observe_traffic(aws, stack)
    del stack["ami_id"]
    stack["packer"] = {"source_ami": AMI}
    out = ok(release(aws, run_playbook, stack, "1.0.0"))
    assert re.search(r"\[shop/test 1\.0\.0\] bake done in \d+ s: ami-[0-9a-f]+", out), out
    ec2 = aws.client("ec2")
    [image] = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:cattle:version", "Values": ["1.0.0"]}])["Images"]
    [lt] = ec2.describe_launch_templates(Filters=[{"Name": "tag:cattle:version", "Values": ["1.0.0"]}])["LaunchTemplates"]
    [version] = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"])["LaunchTemplateVersions"]
    assert version["LaunchTemplateData"]["ImageId"] == image["ImageId"]
    assert weights(aws, stack) == {"1.0.0": 100}
    baked, _html = report(stack)
    assert "bake" in {p["name"] for p in baked["timeline"]["phases"] if not p.get("skipped")}
    # Run again: the AMI of 1.0.0 is found and not baked again, and the progress line says so.
    out = ok(release(aws, run_playbook, stack, "1.0.0"))
    assert re.search(rf"\[shop/test 1\.0\.0\] bake done in \d+ s: {image['ImageId']}, the AMI of 1\.0\.0 found, not baked again", out), out


def test_first_release_is_gated_behind_the_fixed_503_then_forwards_all(threaded_aws, run_playbook, tmp_path, monkeypatch):
    """#7: the ALB health-checks the first version through an attach rule while the listener still
    answers its fixed 503 (targets of a group no listener uses are `unused` on AWS, so the gate could
    not pass otherwise); the shift replaces the 503 in one guarded write and deletes the rule."""
    from helpers.release import listener_rules, patch_target_health_like_aws

    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    seen = patch_target_health_like_aws(monkeypatch, stack["listener_arn"])
    out = ok(release(aws, run_playbook, stack, "1.0.0"))
    assert "attached without traffic by the attach rule at priority 50000" in out
    assert seen and seen[0] == "fixed-response", seen  # the gate saw health while the 503 answered
    assert "FORCED" not in out
    assert weights(aws, stack) == {"1.0.0": 100}
    assert listener_rules(aws, stack["listener_arn"]) == []
    first, _html = report(stack)
    assert first["result"] == "success" and first["weights"][0]["weights"] == {"1.0.0": 0}
