"""The API-call journal that feeds the least-privilege check (tools/check_iam_policy.py).

The comparison itself runs after the whole suite (``make test``: pytest, then
``tools/check_iam_policy.py build/api-calls docs/iam-policy.json``), because it needs every
test's calls from every xdist worker; tests/unit/test_check_iam_policy.py covers the checker.
These tests prove the journal it reads: every call a module makes is journaled with the user
agent that tells it from the tests' own boto3 calls, and clearing the endpoint's call record
(as tests do) does not lose it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT

pytestmark = pytest.mark.integration

sys.path.insert(0, str(REPO_ROOT / "tools"))
import check_iam_policy  # noqa: E402

sys.path.remove(str(REPO_ROOT / "tools"))


def _journal(aws):
    """Every call this worker's subprocess endpoint has journaled so far."""
    calls_dir = Path(os.environ.get("CATTLE_API_CALLS_DIR") or REPO_ROOT / "build" / "api-calls")
    worker = os.environ.get("PYTEST_XDIST_WORKER") or "main"
    path = calls_dir / f"{worker}.jsonl"
    assert path.exists(), f"no call journal at {path}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_module_calls_are_journaled_with_their_user_agent(aws, run_module):
    marker = "journal-probe"
    aws.client("ssm").put_parameter(Name=f"/{marker}/setup", Value="x", Type="String")  # a test's own call
    result = run_module(aws, "cattle.aws.stack_lock", {"app": "journal", "holder": marker, "parameter_prefix":
                                                       f"/{marker}"})
    assert result.get("failed") is not True, result.get("msg")
    aws.clear_calls()  # tests do this; the journal keeps everything

    ours = [c for c in _journal(aws) if (c["service"], c["action"]) == ("ssm", "PutParameter")]
    by_caller = {}
    for call in ours:
        by_caller.setdefault(check_iam_policy.caller(call["user_agent"]), set()).add(call["action"])
    assert "PutParameter" in by_caller.get("ansible", set()), by_caller  # the module's lock write
    assert "PutParameter" in by_caller.get(None, set()), by_caller  # the test's setup write, left out
    assert all(c["status"] for c in ours)


def test_shipped_policy_grants_what_this_test_saw(aws, run_module):
    before = len(_journal(aws))
    result = run_module(aws, "cattle.aws.fleet_info", {"app": "journal"})
    assert result.get("failed") is not True, result.get("msg")
    used, unnamed = check_iam_policy.used_actions(_journal(aws)[before:])
    granted, problems = check_iam_policy.policy_actions(json.loads((REPO_ROOT / "docs" / "iam-policy.json").read_text()))
    assert problems == [] and unnamed == []
    assert "tag:GetResources" in used
    assert set(used) <= granted, f"called but not granted: {sorted(set(used) - granted)}"
