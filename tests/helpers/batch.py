"""Run many module invocations in ONE ansible-playbook process (for table-driven tests).

``from helpers.batch import run_batch, calls_in``. Starting ansible costs about a
second per process; a catalogue of 40+ failing invocations would otherwise cost a minute.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import tempfile
from typing import Any

from helpers.ansible import _playbook_cmd, ansible_env


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_batch(endpoint: Any, invocations: list[tuple[str, str, dict[str, Any]]], check: bool = False,
              diff: bool = False, timeout: float = 600) -> dict[str, dict[str, Any]]:
    """Run ``[(case_id, module_fqcn, args), ...]`` as one playbook, one task per case.

    Every task has ``ignore_errors: true`` so a failing case does not stop the others. Returns
    ``{case_id: result}``; each result is the module's result dict plus ``_window`` = (start,
    end) epoch seconds of the task, to match the endpoint's recorded calls to cases.
    """
    tasks = [{"name": case_id, module: args, "ignore_errors": True} for case_id, module, args in invocations]
    play = [{"name": "batch", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    with tempfile.TemporaryDirectory(prefix="cattle-batch-") as tmp:
        path = os.path.join(tmp, "play.yml")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(play, f)
        proc = subprocess.run(
            _playbook_cmd(path, check, diff, 0), capture_output=True, text=True, timeout=timeout, check=False,
            env=ansible_env(endpoint, stdout_callback="ansible.posix.json"), cwd=tmp,
        )
    try:
        out = json.loads(proc.stdout)
        ran = out["plays"][0]["tasks"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"ansible did not run the batch (rc={proc.returncode})\n--- stdout\n{proc.stdout}\n"
                             f"--- stderr\n{proc.stderr}") from None
    results = {}
    for task in ran:
        name = task["task"]["name"]
        result = dict(task["hosts"].get("localhost", {}))
        duration = task["task"].get("duration") or {}
        result["_window"] = (_epoch(duration.get("start")), _epoch(duration.get("end")))
        results[name] = result
    missing = [case_id for case_id, dummy, dummy2 in invocations if case_id not in results]
    assert not missing, f"the batch did not run {missing}\n--- stderr\n{proc.stderr}"
    return results


def calls_in(call_log: list[dict[str, Any]], window: tuple[float | None, float | None]) -> list[dict[str, Any]]:
    """The recorded calls (``Endpoint.call_log()``) that arrived within a task's window."""
    start, end = window
    if start is None or end is None:
        return list(call_log)  # unknown window: every call of the batch counts against the case
    return [c for c in call_log if c.get("time") is None or start - 0.05 <= c["time"] <= end + 0.05]
