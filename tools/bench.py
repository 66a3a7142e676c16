#!/usr/bin/env python
"""cattle.aws benchmark (``make bench``): prints a table and writes bench/results.json.

Everything runs against the local AWS endpoint (tools/local_aws.py), one server per scenario,
in this one run of the script; each measurement is the median of ``--runs`` runs.

Scenarios (bench/README.md says what each number means):

- ``release``  a v1 -> v2 release of a stack (prebuilt AMI, instant strategy) by
  ``cattle.aws.release``; its idempotent re-run; the same blue/green by the baseline playbook
  bench/baseline_release.yml (amazon.aws / community.aws modules only). Wall time, module
  invocations (from ansible's json callback), AWS API calls by service/action (recorded by the
  endpoint; the collection's own calls are those whose User-Agent carries ``cattle.aws/``).
- ``scale``    fleet_info and fleet_gc (check mode) on a stack of 50 versions, in an account
  holding only the stack, then in the same account after 500 foreign auto scaling groups and
  500 foreign target groups were added. Calls (the key metric) and wall time.
- ``gate``     fleet_health's reaction: the time from the targets becoming healthy (or an alarm
  going to ALARM) to the module returning, with poll_interval 1 s, against an in-process
  endpoint whose target health is switched at a known time.

    .venv/bin/python tools/bench.py [--runs 3] [--quick] [--scenario release|scale|gate]...
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"
COLLECTIONS = REPO / "build" / "collections"
BASELINE = REPO / "bench" / "baseline_release.yml"
FLOOR = REPO / "bench" / "floor.yml"
RESULTS = REPO / "bench" / "results.json"
os.environ.setdefault("MOTO_AMIS_PATH", str(TOOLS / "local_aws_amis.json"))
for _path in (REPO / "tests", TOOLS, COLLECTIONS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import local_aws  # noqa: E402  (tools/local_aws.py)
from helpers.ansible import _playbook_cmd, ansible_env  # noqa: E402
from helpers.endpoint import Endpoint  # noqa: E402
from helpers.release import AMI, make_stack  # noqa: E402

OUR_UA = "cattle.aws/"
# Actions that run on the controller only (no module process is started for them).
CONTROLLER_ACTIONS = {
    "set_fact", "debug", "assert", "fail", "pause", "set_stats", "include_tasks", "import_tasks",
    "include_role", "import_role", "meta", "include_vars", "validate_argument_spec",
    # cattle.aws' action plugins that start no module: the report's writer, the inputs' reader
    "release_report_files", "release_inputs",
}
AWS_COLLECTIONS = ("cattle.aws.", "amazon.aws.", "community.aws.")
TARGETS = {
    "release_wall_vs_baseline": 0.4,
    "release_collection_calls": 30,
    "rerun_wall_vs_release": 0.5,
    "scale_calls_ratio": 1.2,
    "scale_wall_ratio": 1.2,
    "gate_reaction_vs_poll_interval": 1.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------------------------- running
class Server:
    """A local endpoint subprocess (tools/local_aws.py start) in its own state dir."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="cattle-bench-aws-")
        self.endpoint = Endpoint(local_aws.start(Path(self._dir.name)))

    def close(self) -> None:
        local_aws.stop(Path(self._dir.name))
        self._dir.cleanup()

    def __enter__(self) -> Endpoint:
        return self.endpoint

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _short(action: str) -> str:
    return action.rsplit(".", 1)[-1]


def run_ansible(endpoint: Endpoint, playbook: str, extra_vars: dict[str, Any], check: bool = False,
                extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a playbook with the json stdout callback; return rc, wall time, tasks and the calls made."""
    endpoint.clear_calls()
    with tempfile.TemporaryDirectory(prefix="cattle-bench-") as tmp:
        vars_path = os.path.join(tmp, "vars.json")
        with open(vars_path, "w", encoding="utf-8") as f:
            json.dump(extra_vars, f)
        cmd = _playbook_cmd(playbook, check, False, 0) + ["-e", "@" + vars_path]
        env = ansible_env(endpoint, extra_env, stdout_callback="ansible.posix.json")
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env, cwd=tmp)
        wall = time.time() - start
    calls = endpoint.call_log()
    try:
        plays = json.loads(proc.stdout)["plays"]
    except (ValueError, KeyError):
        raise SystemExit(f"ansible-playbook {playbook} did not run (rc={proc.returncode})\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}") from None
    tasks = []
    for play in plays:
        for task in play["tasks"]:
            result = task["hosts"].get("localhost") or {}
            duration = task["task"].get("duration") or {}
            items = result.get("results") if isinstance(result.get("results"), list) else None
            ran = (sum(1 for i in items if not i.get("skipped")) if items is not None
                   else (0 if result.get("skipped") else 1))
            tasks.append({
                "name": task["task"]["name"], "action": result.get("action", ""), "ran": ran,
                "failed": bool(result.get("failed")), "msg": result.get("msg"),
                "window": (_epoch(duration.get("start")), _epoch(duration.get("end"))),
                "result": result,
            })
    return {"rc": proc.returncode, "started": start, "wall": wall, "tasks": tasks, "calls": calls, "stderr": proc.stderr}


def time_split(run: dict[str, Any]) -> dict[str, Any]:
    """Where a playbook run's wall time goes, from its tasks' windows (the json callback's).

    ``startup_s``: from the process start to its first task (ansible's start-up, the playbook's
    loading); ``module_tasks``, ``controller_tasks``, ``skipped_tasks``: count and seconds of the
    tasks that ran a module, that ran on the controller only, that were skipped; ``between_tasks_s``:
    the time between one task's end and the next one's start, in ansible's main process (it loads
    a task's action plugin there before it forks the task's worker: cattle.aws' loads the AWS SDK,
    once); ``exit_s``: from the last task's end to the process' exit.
    """
    windows = [t for t in run["tasks"] if t["window"][0] is not None and t["window"][1] is not None]
    split: dict[str, Any] = {"startup_s": 0.0, "between_tasks_s": 0.0, "exit_s": 0.0}
    for kind in ("module_tasks", "controller_tasks", "skipped_tasks"):
        split[kind] = {"count": 0, "seconds": 0.0}
    if not windows:
        return split
    split["startup_s"] = round(windows[0]["window"][0] - run["started"], 3)
    split["exit_s"] = round(run["started"] + run["wall"] - windows[-1]["window"][1], 3)
    previous_end = None
    for task in windows:
        start, end = task["window"]
        if previous_end is not None:
            split["between_tasks_s"] += max(0.0, start - previous_end)
        previous_end = end
        kind = ("skipped_tasks" if not task["ran"] else
                "controller_tasks" if _short(task["action"]) in CONTROLLER_ACTIONS else "module_tasks")
        split[kind]["count"] += 1
        split[kind]["seconds"] += end - start
    split["between_tasks_s"] = round(split["between_tasks_s"], 3)
    for kind in ("module_tasks", "controller_tasks", "skipped_tasks"):
        split[kind]["seconds"] = round(split[kind]["seconds"], 3)
    return split


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one playbook run."""
    module_tasks = [t for t in run["tasks"] if t["ran"] and _short(t["action"]) not in CONTROLLER_ACTIONS]
    aws_modules = [t for t in module_tasks if t["action"].startswith(AWS_COLLECTIONS)]
    ours = [c for c in run["calls"] if OUR_UA in (c.get("user_agent") or "")]
    per_task = []
    for task in aws_modules:
        start, end = task["window"]
        mine = [c for c in run["calls"] if start is not None and start - 0.05 <= c["time"] <= end + 0.05]
        per_task.append({"task": task["name"], "module": task["action"], "invocations": task["ran"],
                         "seconds": round(end - start, 2) if start and end else None, "calls": len(mine),
                         "calls_by_action": dict(collections.Counter(f"{c['service']}:{c['action']}" for c in mine))})
    return {
        "wall_s": run["wall"],
        "module_invocations": sum(t["ran"] for t in module_tasks),
        "aws_module_invocations": sum(t["ran"] for t in aws_modules),
        "tasks_run": sum(1 for t in run["tasks"] if t["ran"]),
        "calls_total": len(run["calls"]),
        "calls_collection": len(ours),
        "calls_by_action": dict(collections.Counter(f"{c['service']}:{c['action']}" for c in run["calls"]).most_common()),
        "calls_collection_by_action": dict(collections.Counter(f"{c['service']}:{c['action']}" for c in ours).most_common()),
        "per_module_task": per_task,
        "time_split": time_split(run),
    }


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of the numeric fields over the runs; the detail of the median-wall run."""
    keys = ("wall_s", "module_invocations", "aws_module_invocations", "tasks_run", "calls_total", "calls_collection")
    out = {k: median([s[k] for s in samples]) for k in keys}
    out["wall_s_runs"] = [round(s["wall_s"], 2) for s in samples]
    typical = sorted(samples, key=lambda s: s["wall_s"])[len(samples) // 2]
    for k in ("calls_by_action", "calls_collection_by_action", "per_module_task", "time_split"):
        out[k] = typical[k]
    return out


def must_succeed(run: dict[str, Any], what: str) -> dict[str, Any]:
    if run["rc"] != 0:
        failed = [f"{t['name']}: {t['msg']}" for t in run["tasks"] if t["failed"]]
        raise SystemExit(f"{what} failed (rc={run['rc']}): {failed}\n{run['stderr'][-2000:]}")
    return run


# ------------------------------------------------------------------------------------ release
def baseline_vars(stack: dict[str, Any], version: str, previous: str) -> dict[str, Any]:
    return {
        "app": stack["app"], "stage": stack["environment"], "version": version, "previous_version": previous,
        "ami_id": stack["ami_id"], "instance_type": stack["instance_type"], "vpc_id": stack["vpc_id"],
        "subnet_ids": stack["subnet_ids"], "security_group_ids": stack["security_group_ids"],
        "listener_arn": stack["listener_arn"], "capacity": stack["capacity"],
        "health_check": {"path": stack["target_group"]["health_check"]["path"], "port": stack["target_group"]["port"],
                         "interval": stack["target_group"]["health_check"]["interval"],
                         "healthy_threshold": stack["target_group"]["health_check"]["healthy_threshold"]},
        "poll_interval": stack["health"]["poll_interval"], "health_timeout": stack["health"]["timeout"],
    }


def listener_weights(endpoint: Endpoint, listener_arn: str) -> dict[str, int]:
    """Target group name -> weight of the listener's forward action."""
    elbv2 = endpoint.client("elbv2")
    [listener] = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    groups = listener["DefaultActions"][0].get("ForwardConfig", {}).get("TargetGroups", [])
    return {g["TargetGroupArn"].split("/")[1]: g.get("Weight", 1) for g in groups}


def scenario_release(runs: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {"release": [], "rerun": [], "baseline": [], "floor": []}
    with Server() as endpoint, tempfile.TemporaryDirectory(prefix="cattle-bench-release-") as tmp:
        for run in range(runs):
            # cattle.aws.release: v1 (setup, not measured), v2 (measured), v2 again (measured).
            endpoint.reset()
            stack = make_stack(endpoint, Path(tmp) / f"cattle-{run}")
            must_succeed(run_ansible(endpoint, "cattle.aws.release", dict(stack, version="1")), "release of v1")
            release = must_succeed(run_ansible(endpoint, "cattle.aws.release", dict(stack, version="2")), "release of v2")
            weights = listener_weights(endpoint, stack["listener_arn"])
            assert any(w == 100 and "-2-" in n for n, w in weights.items()), weights
            rerun = must_succeed(run_ansible(endpoint, "cattle.aws.release", dict(stack, version="2")), "re-run of v2")
            # What any ansible-playbook run costs here (start-up, one task): part of every number above.
            floor = must_succeed(run_ansible(endpoint, str(FLOOR), {}), "floor")
            # The baseline, on a fresh account: v1 (setup), v2 (measured).
            endpoint.reset()
            stack = make_stack(endpoint, Path(tmp) / f"baseline-{run}")
            must_succeed(run_ansible(endpoint, str(BASELINE), baseline_vars(stack, "1", "")), "baseline v1")
            baseline = must_succeed(run_ansible(endpoint, str(BASELINE), baseline_vars(stack, "2", "1")), "baseline v2")
            weights = listener_weights(endpoint, stack["listener_arn"])
            assert weights.get("shop-test-2") == 100 and weights.get("shop-test-1") == 0, weights
            for name, sample in (("release", release), ("rerun", rerun), ("baseline", baseline), ("floor", floor)):
                samples[name].append(analyse(sample))
            log(f"release run {run + 1}/{runs}: release {release['wall']:.1f} s, re-run {rerun['wall']:.1f} s, "
                f"baseline {baseline['wall']:.1f} s")
    result = {name: summarize(s) for name, s in samples.items()}
    rel, rerun, base, floor = result["release"], result["rerun"], result["baseline"], result["floor"]
    result["ratios"] = {
        "floor_vs_release": floor["wall_s"] / rel["wall_s"],
        "floor_vs_rerun": floor["wall_s"] / rerun["wall_s"],
        "release_wall_vs_baseline": rel["wall_s"] / base["wall_s"],
        "release_calls_total_vs_baseline": rel["calls_total"] / base["calls_total"],
        "release_module_invocations_vs_baseline": rel["module_invocations"] / base["module_invocations"],
        "rerun_wall_vs_release": rerun["wall_s"] / rel["wall_s"],
        "rerun_calls_vs_release": rerun["calls_total"] / rel["calls_total"],
    }
    return result


# -------------------------------------------------------------------------------------- scale
def make_versions(endpoint: Endpoint, stack: dict[str, Any], count: int) -> None:
    """``count`` versions of the stack, with the names and tags immutable_fleet gives them
    (plugins/module_utils/_fleet/{naming,tags}.py); the newest is the listener's forward target."""
    from ansible_collections.cattle.aws.plugins.module_utils._fleet.naming import fleet_names
    from ansible_collections.cattle.aws.plugins.module_utils._fleet.tags import ownership_tags

    ec2, elbv2, asg = endpoint.client("ec2"), endpoint.client("elbv2"), endpoint.client("autoscaling")
    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    newest = None
    for i in range(count):
        version = f"1.{i}"
        names = fleet_names(stack["app"], stack["environment"], version)
        tags = ownership_tags(stack["app"], stack["environment"], version, created_at=base + datetime.timedelta(hours=i))
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        ec2.create_launch_template(
            LaunchTemplateName=names["launch_template"],
            LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": tag_list}],
        )
        tg = elbv2.create_target_group(Name=names["target_group"], Protocol="HTTP", Port=8080, VpcId=stack["vpc_id"],
                                       HealthCheckPath="/health", Tags=tag_list)["TargetGroups"][0]["TargetGroupArn"]
        live = i == count - 1
        asg.create_auto_scaling_group(
            AutoScalingGroupName=names["auto_scaling_group"],
            LaunchTemplate={"LaunchTemplateName": names["launch_template"], "Version": "$Default"},
            MinSize=0, MaxSize=2, DesiredCapacity=1 if live else 0, VPCZoneIdentifier=",".join(stack["subnet_ids"]),
            TargetGroupARNs=[tg],
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": k != "Name", "ResourceId": names["auto_scaling_group"],
                   "ResourceType": "auto-scaling-group"} for k, v in tags.items()],
        )
        if live:
            newest = tg
    elbv2.modify_listener(ListenerArn=stack["listener_arn"], DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": newest, "Weight": 100}]}}])


def make_foreign(endpoint: Endpoint, stack: dict[str, Any], count: int) -> None:
    """``count`` auto scaling groups and ``count`` target groups that are not the collection's
    (tagged like another team's, without cattle:* tags)."""
    ec2, elbv2, asg = endpoint.client("ec2"), endpoint.client("elbv2"), endpoint.client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="foreign", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"})

    def tag_list(i: int) -> list[dict[str, str]]:
        return [{"Key": "team", "Value": "other"}, {"Key": "app", "Value": f"foreign-{i}"}]

    def target_groups() -> None:
        for i in range(count):
            elbv2.create_target_group(Name=f"foreign-{i}", Protocol="HTTP", Port=80, VpcId=stack["vpc_id"], Tags=tag_list(i))

    def groups() -> None:
        for i in range(count):
            asg.create_auto_scaling_group(
                AutoScalingGroupName=f"foreign-{i}", LaunchTemplate={"LaunchTemplateName": "foreign", "Version": "$Default"},
                MinSize=0, MaxSize=1, DesiredCapacity=0, VPCZoneIdentifier=stack["subnet_ids"][0],
                Tags=[dict(t, PropagateAtLaunch=True, ResourceId=f"foreign-{i}", ResourceType="auto-scaling-group")
                      for t in tag_list(i)])

    # One thread per service: moto's backends are not safe for concurrent writes to one service.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(target_groups), pool.submit(groups)]:
            future.result()


def _module_play(module: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": [{"name": module, module: args}]}]


def run_module_measured(endpoint: Endpoint, module: str, args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, prefix="cattle-bench-") as f:
        json.dump(_module_play(module, args), f)
    try:
        run = run_ansible(endpoint, f.name, {}, check=check)
    finally:
        os.unlink(f.name)
    must_succeed(run, module)
    [task] = run["tasks"]
    start, end = task["window"]
    ours = [c for c in run["calls"] if OUR_UA in (c.get("user_agent") or "")]
    return {"task_s": end - start, "wall_s": run["wall"], "calls": len(ours), "result": task["result"],
            "calls_by_action": dict(collections.Counter(f"{c['service']}:{c['action']}" for c in ours).most_common())}


def scenario_scale(runs: int, versions: int, foreign: int) -> dict[str, Any]:
    """Two accounts (two endpoints) holding the same stack; the crowded one also holds the foreign
    resources. The measurements alternate between them, so a load change on the machine hits both."""
    result: dict[str, Any] = {"versions": versions, "foreign_asgs": foreign, "foreign_target_groups": foreign}
    accounts = ("stack_only", "crowded")
    servers = {name: Server() for name in accounts}
    samples: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    try:
        with tempfile.TemporaryDirectory(prefix="cattle-bench-scale-") as tmp:
            stacks = {}
            for account, server in servers.items():
                stacks[account] = stack = make_stack(server.endpoint, Path(tmp) / account)
                started = time.time()
                make_versions(server.endpoint, stack, versions)
                if account == "crowded":
                    make_foreign(server.endpoint, stack, foreign)
                log(f"scale: {account} account made in {time.time() - started:.1f} s")
            for run in range(runs):
                for account in (accounts if run % 2 == 0 else accounts[::-1]):
                    stack, endpoint = stacks[account], servers[account].endpoint
                    common = {"app": stack["app"], "environment": stack["environment"]}
                    info = run_module_measured(endpoint, "cattle.aws.fleet_info",
                                               dict(common, traffic_point=stack["listener_arn"]))
                    assert len(info["result"]["fleets"]) == versions, len(info["result"]["fleets"])
                    gc = run_module_measured(endpoint, "cattle.aws.fleet_gc", dict(common, keep=2, mode="delete"),
                                             check=True)
                    # keep=2: the live version and the two before it stay.
                    assert len(gc["result"]["deleted"]) == versions - 3 and len(gc["result"]["kept"]) == 3, gc["result"]
                    samples[("fleet_info", account)].append(info)
                    samples[("fleet_gc", account)].append(gc)
                    log(f"scale run {run + 1}/{runs}, {account}: fleet_info {info['calls']} calls {info['task_s']:.2f} s, "
                        f"fleet_gc (check) {gc['calls']} calls {gc['task_s']:.2f} s")
    finally:
        for server in servers.values():
            server.close()
    for name in ("fleet_info", "fleet_gc"):
        entry = result[name] = {}
        for account in accounts:
            runs_of = samples[(name, account)]
            entry[account] = {
                "task_s": median([s["task_s"] for s in runs_of]),
                "wall_s": median([s["wall_s"] for s in runs_of]),
                "calls": median([s["calls"] for s in runs_of]),
                "calls_by_action": runs_of[0]["calls_by_action"],
            }
        entry["calls_ratio"] = entry["crowded"]["calls"] / entry["stack_only"]["calls"]
        entry["task_ratio"] = entry["crowded"]["task_s"] / entry["stack_only"]["task_s"]
    return result


# --------------------------------------------------------------------------------------- gate
class HealthSwitch:
    """Patches the in-process moto so that target health is ``initial`` until ``flip_at``."""

    def __init__(self) -> None:
        from moto.elbv2 import models

        self.models = models
        self.flip_at = float("inf")
        self._original = models.FakeTargetGroup.health_for
        switch = self

        def health_for(tg_self: Any, target: Any, ec2_backend: Any) -> Any:
            status = switch._original(tg_self, target, ec2_backend)
            if time.time() >= switch.flip_at or status.status != "healthy":
                return status
            return models.FakeHealthStatus(target["Id"], status.port, tg_self.health_check_port, "initial",
                                           "Elb.RegistrationInProgress", "Target registration is in progress")

        models.FakeTargetGroup.health_for = health_for

    def restore(self) -> None:
        self.models.FakeTargetGroup.health_for = self._original


def _gate_once(endpoint: Endpoint, stack: dict[str, Any], version: str, delay: float, poll: float, kind: str,
               switch: HealthSwitch) -> dict[str, Any]:
    args = {"app": stack["app"], "environment": stack["environment"], "version": version,
            "timeout": 60, "poll_interval": poll}
    cloudwatch = endpoint.client("cloudwatch")
    alarm = f"bench-{version}-{kind}"
    if kind == "alarm":
        cloudwatch.put_metric_alarm(AlarmName=alarm, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                    Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanOrEqualToThreshold")
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="bench")
        args.update(alarm_names=[alarm], watch_seconds=60)
        switch.flip_at = 0.0  # healthy from the start: the watch runs until the alarm fires
    # The event happens `delay` s after the playbook starts: the module is polling by then.
    timer_state: dict[str, float] = {}

    def fire() -> None:
        timer_state["at"] = time.time()
        if kind == "alarm":
            cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="bench: 5xx")
        else:
            switch.flip_at = timer_state["at"]

    timer = threading.Timer(delay, fire)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, prefix="cattle-bench-") as f:
        json.dump(_module_play("cattle.aws.fleet_health", args), f)
    try:
        timer.start()
        run = run_ansible(endpoint, f.name, {})
    finally:
        timer.cancel()
        os.unlink(f.name)
    [task] = run["tasks"]
    if "at" not in timer_state:
        raise SystemExit(f"gate ({kind}): the module returned before the event ({task['msg']}); raise the delay")
    expected_failed = kind == "alarm"
    if task["failed"] != expected_failed:
        raise SystemExit(f"gate ({kind}): unexpected result {task['result']}")
    # The module's answer: the end of its last poll (the last call it made) and the task's end.
    last_call = max(c["time"] for c in run["calls"] if OUR_UA in (c.get("user_agent") or ""))
    return {"reaction_s": task["window"][1] - timer_state["at"], "last_call_after_event_s": last_call - timer_state["at"]}


def scenario_gate(runs: int, poll: float = 1.0, delay: float = 5.0) -> dict[str, Any]:
    server = local_aws.serve_in_thread()
    switch = HealthSwitch()
    try:
        endpoint = Endpoint(server.url)
        with tempfile.TemporaryDirectory(prefix="cattle-bench-gate-") as tmp:
            stack = make_stack(endpoint, Path(tmp))
            result: dict[str, Any] = {"poll_interval_s": poll, "event_after_s": delay}
            for kind in ("healthy", "alarm"):
                samples = []
                for run in range(runs):
                    version = f"{kind}-{run}"
                    switch.flip_at = float("inf")
                    run_module_measured(endpoint, "cattle.aws.immutable_fleet", {
                        "app": stack["app"], "environment": stack["environment"], "version": version, "ami_id": AMI,
                        "instance_type": "t3.micro", "subnet_ids": stack["subnet_ids"],
                        "target_group": {"port": 8080, "vpc_id": stack["vpc_id"]},
                        "capacity": {"min": 1, "max": 1, "desired": 1}, "wait": True})
                    samples.append(_gate_once(endpoint, stack, version, delay, poll, kind, switch))
                    log(f"gate ({kind}) run {run + 1}/{runs}: {samples[-1]['reaction_s']:.2f} s")
                result[kind] = {
                    "reaction_s": median([s["reaction_s"] for s in samples]),
                    "reaction_s_runs": [round(s["reaction_s"], 2) for s in samples],
                    "last_call_after_event_s": median([s["last_call_after_event_s"] for s in samples]),
                }
    finally:
        switch.restore()
        server.stop()
    return result


# -------------------------------------------------------------------------------------- report
def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    rows = []
    rel = results.get("release")
    if rel:
        ratio = rel["ratios"]["release_wall_vs_baseline"]
        rows.append(("release wall time vs baseline", f"{ratio:.2f}x", "<= 0.4x", ratio <= TARGETS["release_wall_vs_baseline"]))
        calls = rel["release"]["calls_collection"]
        rows.append(("API calls per release (collection's)", f"{calls:.0f} (total {rel['release']['calls_total']:.0f})",
                     "<= 30", calls <= TARGETS["release_collection_calls"]))
        ratio = rel["ratios"]["rerun_wall_vs_release"]
        rows.append(("idempotent re-run vs release", f"{ratio:.2f}x", "<= 0.5x", ratio <= TARGETS["rerun_wall_vs_release"]))
    scale = results.get("scale")
    if scale:
        for name in ("fleet_info", "fleet_gc"):
            ratio = scale[name]["calls_ratio"]
            rows.append((f"{name} calls, crowded vs stack-only", f"{ratio:.2f}x", "<= 1.2x", ratio <= TARGETS["scale_calls_ratio"]))
            ratio = scale[name]["task_ratio"]
            rows.append((f"{name} time, crowded vs stack-only", f"{ratio:.2f}x", "<= 1.2x", ratio <= TARGETS["scale_wall_ratio"]))
    gate = results.get("gate")
    if gate:
        for kind in ("healthy", "alarm"):
            reaction = gate[kind]["reaction_s"]
            rows.append((f"gate reaction ({kind})", f"{reaction:.2f} s", f"<= {gate['poll_interval_s']:g} s",
                         reaction <= gate["poll_interval_s"] * TARGETS["gate_reaction_vs_poll_interval"]))
    return rows


def table(results: dict[str, Any]) -> str:
    lines = []
    rel = results.get("release")
    if rel:
        lines.append(f"{'release (median of ' + str(results['runs']) + ')':<34}{'wall s':>8}{'modules':>9}{'AWS mods':>9}"
                     f"{'calls':>7}{'ours':>6}")
        for name, label in (("release", "cattle.aws.release v1->v2"), ("rerun", "  same release again"),
                            ("baseline", "baseline playbook v1->v2"), ("floor", "ansible-playbook, one debug task")):
            if name not in rel:
                continue
            r = rel[name]
            lines.append(f"{label:<34}{r['wall_s']:>8.1f}{r['module_invocations']:>9.0f}{r['aws_module_invocations']:>9.0f}"
                         f"{r['calls_total']:>7.0f}{r['calls_collection']:>6.0f}")
        lines.append("")
    scale = results.get("scale")
    if scale:
        lines.append(f"scale: {scale['versions']} versions; crowded = +{scale['foreign_asgs']} foreign ASGs and target groups")
        lines.append(f"{'':<14}{'calls':>8}{'calls':>9}{'ratio':>7}{'task s':>9}{'task s':>9}{'ratio':>7}")
        lines.append(f"{'':<14}{'alone':>8}{'crowded':>9}{'':>7}{'alone':>9}{'crowded':>9}{'':>7}")
        for name in ("fleet_info", "fleet_gc"):
            s = scale[name]
            lines.append(f"{name:<14}{s['stack_only']['calls']:>8.0f}{s['crowded']['calls']:>9.0f}{s['calls_ratio']:>7.2f}"
                         f"{s['stack_only']['task_s']:>9.2f}{s['crowded']['task_s']:>9.2f}{s['task_ratio']:>7.2f}")
        lines.append("")
    lines.append(f"{'target':<40}{'measured':>22}{'goal':>10}  met")
    for name, value, goal, met in verdicts(results):
        lines.append(f"{name:<40}{value:>22}{goal:>10}  {'yes' if met else 'NO'}")
    if rel:
        lines.append("\nwhere the wall time goes (the median run): start-up | between tasks | module tasks | "
                     "controller tasks | skipped tasks | exit")
        for name, label in (("release", "release"), ("rerun", "re-run"), ("baseline", "baseline")):
            split = rel.get(name, {}).get("time_split")
            if split:
                lines.append(f"  {label:<9}{split['startup_s']:>5.1f} s | {split['between_tasks_s']:>4.1f} s | "
                             + " | ".join(f"{split[k]['count']:>2} in {split[k]['seconds']:.1f} s"
                                          for k in ("module_tasks", "controller_tasks", "skipped_tasks"))
                             + f" | {split['exit_s']:.1f} s")
    if rel and "floor" in rel:
        ratios = rel["ratios"]
        lines.append(f"\nansible-playbook alone (one task) takes {rel['floor']['wall_s']:.1f} s: "
                     f"{100 * ratios['floor_vs_release']:.0f} % of the release, {100 * ratios['floor_vs_rerun']:.0f} % of the re-run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="1 run, 10 versions and 50 foreign resources (a smoke run; results not written)")
    parser.add_argument("--scenario", action="append", choices=("release", "scale", "gate"),
                        help="run only this scenario (repeatable; default: all)")
    parser.add_argument("--versions", type=int, default=None, help="versions of the scale stack (default 50, --quick 10)")
    parser.add_argument("--foreign", type=int, default=None,
                        help="foreign ASGs and target groups of the crowded account (default 500, --quick 50)")
    parser.add_argument("--no-sync", action="store_true",
                        help="do not mirror the repository into build/collections first (the caller did)")
    parser.add_argument("--output", default=None,
                        help=f"results file (default {RESULTS.relative_to(REPO)} for a full run, none with --quick)")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    scenarios = args.scenario or ["release", "scale", "gate"]
    if not args.no_sync:
        subprocess.run([sys.executable, str(TOOLS / "sync_collection.py"), str(COLLECTIONS), "-q"], check=True, cwd=REPO)
    # build/collections may not have existed when this script started: put it on sys.path again so
    # that the ansible_collections namespace package sees cattle.aws (make_versions imports it).
    sys.path[:] = [str(COLLECTIONS)] + [p for p in sys.path if p != str(COLLECTIONS)]
    importlib.invalidate_caches()
    results: dict[str, Any] = {
        "runs": runs, "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": list(os.getloadavg())},
        "started_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "make bench" if not args.quick else "tools/bench.py --quick",
    }
    started = time.time()
    output = args.output or (None if args.quick else str(RESULTS))

    def save() -> None:
        """Write what is measured so far (a later scenario failing loses nothing)."""
        results["seconds"] = round(time.time() - started, 1)
        results["machine"]["load_average_at_end"] = list(os.getloadavg())
        results["targets"] = [{"name": n, "measured": v, "goal": g, "met": m} for n, v, g, m in verdicts(results)]
        if output:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    if "release" in scenarios:
        results["release"] = scenario_release(runs)
        save()
    if "scale" in scenarios:
        versions = args.versions or (10 if args.quick else 50)
        foreign = args.foreign if args.foreign is not None else (50 if args.quick else 500)
        results["scale"] = scenario_scale(runs, versions, foreign)
        save()
    if "gate" in scenarios:
        results["gate"] = scenario_gate(runs)
    save()
    print(table(results))
    if output:
        print(f"\nwritten: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
