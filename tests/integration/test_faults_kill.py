"""Fault matrix (issue #8): the release process SIGKILLed in each phase, then the same command
re-run; and a second release started while one runs.

One stack per case, each released by its own `ansible-playbook cattle.aws.release -i <stack> -e
cattle_release_hosts=all` process, all at the same time (one process with the free strategy would
be cheaper, but release.yml's ansible.builtin.pause is refused by that strategy). Each stack is
held at a point of its phase - an AWS call that does not answer yet
(after AWS made the change: the lock written, the auto scaling group created), instances slow to
start, targets still registering, a canary pause, the post-shift watch, the cleanup's deletion -
and once it is there its whole process group is SIGKILLed, as a crashed AWX job.

After the kill: the lock of each stack is left behind (stale), the traffic is on healthy versions
only, nothing owned by others changed. Then the holds are gone and the same command runs again
once the locks expired (lock_ttl is a few seconds): it takes each stale lock over, naming the dead
holder, and converges (1.1.0 live, healthy, no lock, nothing pinned or suspended).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from helpers.faults import (
    Ctx,
    HttpFaults,
    Watcher,
    add_foreign_lookalikes,
    assert_converged,
    body_has,
    foreign_snapshot,
    healthy_versions,
    host_failures,
    instances_never_in_service,
    run_release_hosts,
    seed_fleet,
    seed_live,
    targets_initial,
)
from helpers.observer import TrafficObserver
from helpers.release import lock_value, make_stack, weights

pytestmark = pytest.mark.integration

LOCK_TTL = 3
BASE = {"health": {"timeout": 120, "poll_interval": 1}, "lock_ttl": LOCK_TTL}


@dataclass
class KillCase:
    app: str
    phase: str  # the phase the process is killed in
    last_done: str  # the last phase the run reported done before the kill
    settings: dict[str, Any] = field(default_factory=dict)
    arm: Callable[["Ctx"], None] = lambda ctx: None
    reached: Callable[["Ctx", str], bool] = lambda ctx, out: False
    older: str | None = None  # a version made before the live one


def _held(ctx, out):
    return ctx.state["rule"].injected == 1


def _hold(service, action, needle, after=True):
    def arm(ctx):
        ctx.state["rule"] = ctx.faults.hold(service, action, body_has(needle(ctx)), after=after)
    return arm


def _done(phase, seconds=1.5):
    """Reached once the stack's run reported ``phase`` done, plus a moment (it is then in the next one)."""
    def reached(ctx, out):
        if f"[{ctx.stack['app']}/test 1.1.0] {phase} done" not in out:
            return False
        ctx.state.setdefault("since", time.monotonic())
        return time.monotonic() - ctx.state["since"] > seconds
    return reached


def _slow_instances(ctx):
    ctx.state["stop"] = instances_never_in_service(ctx.monkeypatch, f"{ctx.stack['app']}-test-1.1.0")


def _registering(ctx):
    ctx.state["stop"] = targets_initial(ctx.monkeypatch, f"{ctx.stack['app']}-test-1-1-0")


def _weight(percent):
    return lambda ctx, out: weights(ctx.aws, ctx.stack).get("1.1.0") == percent


def _watch_held(ctx):
    # The post-shift watch reads the stack's alarm: once all the traffic is on 1.1.0, hold that read.
    name = f"{ctx.stack['app']}-test-5xx"
    ctx.aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    ctx.stack["health"] = dict(ctx.stack["health"], alarm_names=[name])
    ctx.watcher.when(lambda: weights(ctx.aws, ctx.stack).get("1.1.0") == 100,
                     lambda: ctx.state.update(rule=ctx.faults.hold("cloudwatch", "DescribeAlarms", body_has(name), after=False)))


def _watch_reached(ctx, out):
    return "rule" in ctx.state and ctx.state["rule"].injected == 1


def _old_version(ctx):
    # 0.9.0 (made before 1.0.0) is older than the previous version: the cleanup deletes it (keep=0:
    # only the new and the previous version stay); hold that deletion.
    _hold("autoscaling", "DeleteAutoScalingGroup", lambda c: f"{c.stack['app']}-test-0.9.0", after=False)(ctx)


CASES = [
    KillCase("klock", "lock", "validate", arm=_hold("ssm", "PutParameter", lambda c: f"/cattle/locks/{c.stack['app']}/test"),
             reached=_held),
    KillCase("kprov", "provision", "bake",
             arm=_hold("autoscaling", "CreateAutoScalingGroup", lambda c: f"{c.stack['app']}-test-1.1.0"), reached=_held),
    KillCase("kinit", "initialization", "provision", arm=_slow_instances, reached=_done("provision")),
    # The gate waits for both: killed while it waits for the targets of InService instances.
    KillCase("khealth", "health", "provision", arm=_registering, reached=_done("provision", seconds=3)),
    KillCase("kshift", "shift", "health", settings={"strategy": "canary", "canary": {"steps": [10, 100], "pause_seconds": 15}},
             reached=_weight(10)),
    KillCase("kwatch", "watch", "shift", settings={"bake_seconds": 3}, arm=_watch_held, reached=_watch_reached),
    KillCase("kclean", "cleanup", "watch", settings={"keep": 0, "bake_seconds": 1}, arm=_old_version, reached=_held,
             older="0.9.0"),
]
CONCURRENT = "first"
PROGRESS = r"\[{app}/test 1\.1\.0\] (\w+) (?:done|skipped)"


@pytest.fixture(scope="module")
def killed(_threaded_server, tmp_path_factory):
    from helpers.endpoint import Endpoint

    aws = Endpoint(_threaded_server.url, server=_threaded_server)
    aws.reset()
    root = tmp_path_factory.mktemp("kill")
    mp = pytest.MonkeyPatch()
    faults = HttpFaults(aws, mp)
    result: dict[str, Any] = {"cases": {}, "aws": aws, "after_kill": {}}
    apps = tuple(c.app for c in CASES) + (CONCURRENT,)
    try:
        with Watcher() as watcher:
            stacks = {}
            for case in CASES:
                stack = make_stack(aws, root / case.app, app=case.app, **BASE)
                stack.update(case.settings)
                if case.older:
                    seed_fleet(aws, stack, case.older)
                    time.sleep(1.1)  # its created-at tag (seconds) must be earlier
                seed_live(aws, stack)
                add_foreign_lookalikes(aws, stack)
                ctx = Ctx(aws, stack, faults, watcher, mp)
                case.arm(ctx)
                result["cases"][case.app] = ctx
                stacks[case.app] = stack
            # The concurrent case: a canary whose first step is watched a few seconds; meanwhile a
            # second release of the same stack (1.2.0) is started and must fail at once naming the holder.
            first = make_stack(aws, root / CONCURRENT, app=CONCURRENT, lock_ttl=600, health={"timeout": 60, "poll_interval": 1},
                               strategy="canary", canary={"steps": [10, 100], "pause_seconds": 6})
            seed_live(aws, first)
            add_foreign_lookalikes(aws, first)
            stacks[CONCURRENT] = first
            second: dict[str, Any] = {}

            def start_second():
                started = time.monotonic()
                second["run"] = run_release_hosts(aws, {CONCURRENT: dict(first)}, "1.2.0", root / "second")
                second["seconds"] = time.monotonic() - started

            (root / "second").mkdir()
            watcher.when(lambda: weights(aws, first).get("1.1.0") == 10,
                         lambda: threading.Thread(target=start_second, daemon=True).start(), "second")
            result["foreign"] = foreign_snapshot(aws, apps)
            result["observers"] = {app: TrafficObserver(aws, listener_arn=stack["listener_arn"], interval=0.5).start()
                                   for app, stack in stacks.items()}

            # One process per stack (the command of that stack), each SIGKILLed (its whole process
            # group) as soon as it is at its point; the concurrent case's runs to its end.
            procs = {}
            for app, stack in stacks.items():
                (root / app / "run").mkdir(parents=True, exist_ok=True)
                procs[app] = run_release_hosts(aws, {app: stack}, "1.1.0", root / app / "run", popen=True)
            deadline = time.monotonic() + 600
            outs: dict[str, str] = {}
            pending = {c.app for c in CASES} | {CONCURRENT}
            while pending:
                for case in CASES:
                    if case.app not in pending:
                        continue
                    proc, out_path = procs[case.app]
                    outs[case.app] = out_path.read_text()
                    if case.reached(result["cases"][case.app], outs[case.app]):
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait(timeout=30)
                        outs[case.app] = out_path.read_text()
                        result["after_kill"][case.app] = {
                            "weights": weights(aws, stacks[case.app]),
                            "lock": lock_value(aws, f"/cattle/locks/{case.app}/test"),
                            "healthy": healthy_versions(aws, case.app)}
                        pending.discard(case.app)
                        continue
                    assert proc.poll() is None, f"{case.app}: the release ended before its point\n{outs[case.app][-4000:]}"
                proc, out_path = procs[CONCURRENT]
                if CONCURRENT in pending and proc.poll() is not None and "run" in second:
                    outs[CONCURRENT] = out_path.read_text()
                    pending.discard(CONCURRENT)
                assert time.monotonic() < deadline, f"never reached their point: {pending}"
                time.sleep(0.3)
            result["killed_out"] = outs
            result["second"] = second
            result["foreign_after_kill"] = foreign_snapshot(aws, apps)
        faults.release_holds()
        for ctx in result["cases"].values():
            ctx.state.get("stop", lambda: None)()
        time.sleep(LOCK_TTL + 1)  # the killed run's locks expire
        # The same command again, for every stack at once (each its own process).
        reruns = {app: run_release_hosts(aws, {app: stack}, "1.1.0", root / app / "run", popen=True)
                  for app, stack in stacks.items()}
        result["rerun"] = {}
        for app, (proc, out_path) in reruns.items():
            rc = proc.wait(timeout=600)
            result["rerun"][app] = (rc, out_path.read_text())
        result["apps"], result["stacks"] = apps, stacks
        for observer in result["observers"].values():
            observer.stop()
        yield result
    finally:
        for observer in result.get("observers", {}).values():
            observer.stop()
        faults.release_holds()
        mp.undo()
        aws.reset()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.app}-SIGKILL-in-{c.phase}" for c in CASES])
def test_sigkill_in_a_phase_then_the_same_command_converges(case, killed):
    aws, ctx = killed["aws"], killed["cases"][case.app]
    out = killed["killed_out"][case.app]
    done = re.findall(PROGRESS.format(app=case.app), out)
    assert done and done[-1] == case.last_done, f"killed after {done}, expected in {case.phase}"
    after = killed["after_kill"][case.app]
    assert after["lock"] is not None and after["lock"]["version"] == "1.1.0", "the killed run's lock is left (stale)"
    serving = {v for v, w in after["weights"].items() if w}
    assert serving and serving <= after["healthy"], f"traffic {after['weights']} on versions not all healthy {after['healthy']}"
    assert killed["foreign_after_kill"] == killed["foreign"]

    rc, out2 = killed["rerun"][case.app]
    assert rc == 0 and host_failures(out2, case.app) == [], host_failures(out2, case.app) or out2[-3000:]
    assert f"Took over the expired lock of stack {case.app}-test held by" in re.sub(r"\s+", " ", out2)
    assert_converged(aws, ctx.stack, "1.1.0", killed["foreign"], own_apps=killed["apps"])
    killed["observers"][case.app].assert_zero_downtime(min_samples=3, require_forward=True)


def test_second_release_while_one_runs_fails_at_once_naming_the_holder(killed):
    aws = killed["aws"]
    rc, out = killed["second"]["run"]
    assert rc != 0
    [message] = host_failures(out, CONCURRENT)
    assert message.startswith("Stack first-test is locked by ") and "(release of version 1.1.0)" in message, message
    # at once: at the lock, before any change (no phase after validate reported)
    assert re.findall(PROGRESS.replace("1\\.1\\.0", "1\\.2\\.0").format(app=CONCURRENT), out) == ["validate"], out[-3000:]
    # the first release completed: 1.1.0 live; the re-run of the same command changes nothing and converges
    assert f"[{CONCURRENT}/test 1.1.0] released in" in killed["killed_out"][CONCURRENT]
    assert killed["rerun"][CONCURRENT][0] == 0, killed["rerun"][CONCURRENT][1][-3000:]
    assert_converged(aws, killed["stacks"][CONCURRENT], "1.1.0", killed["foreign"], own_apps=killed["apps"])
    killed["observers"][CONCURRENT].assert_zero_downtime(min_samples=3, require_forward=True)
