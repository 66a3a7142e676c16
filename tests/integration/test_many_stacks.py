"""Many stacks in one job: docs/examples/stacks-inventory.yml (one host per stack) released with
`ansible-playbook cattle.aws.release -i inventory -e cattle_release_hosts=all -f 5`.

The inventory is the documented one with the ids of five local networks (made with boto3) in place of
the example's, a short health poll, and canary pauses of 0 s. One stack is made unhealthy (its target
groups' health patched in the in-process endpoint, as AWS would report a failing health check): it
rolls back alone while the four others are released, each under its own lock. First releases only,
to keep the test short; a stack's first release and its later ones share every task but the attach.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import yaml

from helpers.ansible import BIN_DIR, REPO_ROOT, ansible_env
from helpers.release import RELEASE, groups, lock_value, make_stack, patch_unhealthy, report, weights

pytestmark = pytest.mark.integration

INVENTORY = REPO_ROOT / "docs" / "examples" / "stacks-inventory.yml"
FAILING = "cart-prod"
NETWORK_KEYS = ("listener_arn", "vpc_id", "subnet_ids", "security_group_ids")


def _inventory(aws, tmp_path):
    """The documented inventory, pointed at five local networks; returns (path, {host: stack})."""
    inventory = yaml.safe_load(INVENTORY.read_text())
    hosts = inventory["all"]["hosts"]
    assert len(hosts) == 5 and len({h["app"] for h in hosts.values()}) == 5
    stacks = {}
    for name, host in hosts.items():
        assert set(NETWORK_KEYS) <= set(host), f"{name}: the example names its network"
        network = make_stack(aws, tmp_path / name, app=host["app"], environment=host["environment"])
        host.update({key: network[key] for key in NETWORK_KEYS})
        host["report_dir"] = str(tmp_path / name / "report")
        host["health"] = {"timeout": 60, "poll_interval": 1}
        if "canary" in host:
            host["canary"] = dict(host["canary"], pause_seconds=0)
        stacks[name] = dict(inventory["all"]["vars"], **host)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path, stacks


def _release_all(aws, inventory, version, tmp_path):
    cmd = [str(BIN_DIR / "ansible-playbook"), RELEASE, "-i", str(inventory), "-f", "5",
           "-e", "cattle_release_hosts=all", "-e", f"version={version}"]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                          env=ansible_env(aws, {"ANSIBLE_SHOW_CUSTOM_STATS": "True"}), cwd=tmp_path)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def _recap(out):
    """host -> {ok, changed, unreachable, failed, ...} from the PLAY RECAP."""
    recap = out.split("PLAY RECAP")[-1]
    return {m.group(1): dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2)))
            for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", recap, re.M)}


def _custom_stats(out):
    """The set_stats data the job publishes (ANSIBLE_SHOW_CUSTOM_STATS prints it at the end)."""
    match = re.search(r"CUSTOM STATS: \*+\s*RUN: ", out)
    assert match, out
    return json.JSONDecoder().raw_decode(out, match.end())[0]


def _locks(out, version):
    """app/environment -> the lock parameter each stack's release reported holding."""
    return dict(re.findall(r"\[(\w+/\w+) " + re.escape(version) + r"\] lock done in \d+ s \(elapsed \d+ s\):\s+(\S+) held by",
                           out))


def test_five_stacks_release_in_parallel_and_one_rolls_back_alone(threaded_aws, tmp_path, monkeypatch):
    aws = threaded_aws
    inventory, stacks = _inventory(aws, tmp_path)
    # cart's new targets never become healthy (as AWS reports a failing health check): its gate fails
    patch_unhealthy(monkeypatch, "cart-prod-1-0-0")
    data = yaml.safe_load(inventory.read_text())
    data["all"]["hosts"][FAILING]["health"] = {"timeout": 3, "poll_interval": 1}
    inventory.write_text(yaml.safe_dump(data))

    rc, out, wall = _release_all(aws, inventory, "1.0.0", tmp_path)

    assert rc != 0, out
    recap = _recap(out)
    assert set(recap) == set(stacks), out
    assert sorted(h for h, r in recap.items() if r["failed"] == 0 and r["unreachable"] == 0 and r["ok"] > 0) == \
        sorted(set(stacks) - {FAILING}), out
    assert recap[FAILING]["failed"] == 1, out
    assert "Release of 1.0.0 FAILED in phase health" in out

    reports = {}
    for name, stack in stacks.items():
        reports[name], _html = report(stack)
        assert lock_value(aws, f"/cattle/locks/{stack['app']}/{stack['environment']}") is None, f"{name}: lock left"
        fleets = list(groups(aws, stack["app"]).values())
        assert len(fleets) == 1, f"{name}: {len(fleets)} fleets"
        fleet = fleets[0]
        if name == FAILING:
            assert reports[name]["result"] == "rolled_back" and reports[name]["failed_phase"] == "health"
            assert fleet["tags"]["cattle:status"] == "failed" and fleet["DesiredCapacity"] == 0
            assert weights(aws, stack) == {"<fixed-response>": 0}  # its failed first release never touched the listener
        else:
            assert weights(aws, stack) == {"1.0.0": 100}, name
            assert reports[name]["result"] == "success" and reports[name]["version"] == "1.0.0", name
            assert fleet["tags"].get("cattle:status") != "failed" and fleet["DesiredCapacity"] == stack["capacity"]["desired"]

    # One lock per stack, each named after its own app and environment: no stack waited for another.
    locks = _locks(out, "1.0.0")
    assert locks == {f"{s['app']}/{s['environment']}": f"/cattle/locks/{s['app']}/{s['environment']}"
                     for s in stacks.values()}, out
    assert "is locked" not in out and "held by another" not in out

    # set_stats: one entry per stack in cattle_release_stacks (flat keys would add up across hosts).
    published = _custom_stats(out)
    assert not any(key.startswith("cattle_release_") and key != "cattle_release_stacks" for key in published), published
    per_stack = published["cattle_release_stacks"]
    assert {key: value["cattle_release_result"] for key, value in per_stack.items()} == {
        f"{s['app']}/{s['environment']}": "rolled_back" if name == FAILING else "success" for name, s in stacks.items()}

    # The five releases ran at the same time (forks): every release window overlaps every other, and the
    # run took less than the releases one after the other would have.
    starts = [reports[n]["timeline"]["started"] for n in stacks]
    ends = [reports[n]["timeline"]["finished"] for n in stacks]
    assert max(starts) < min(ends), (starts, ends)
    totals = [reports[n]["timeline"]["total_seconds"] for n in stacks]
    assert wall < sum(totals), (wall, totals)
    print(f"\nmany stacks: 5 first releases (1 rolled back) in {wall:.1f} s wall, "
          f"each release {min(totals):.1f}-{max(totals):.1f} s (sum {sum(totals):.1f} s)")
