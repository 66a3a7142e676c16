#!/usr/bin/env python
"""Compare docs/iam-policy.json with the AWS API actions the test suite recorded.

    python tools/check_iam_policy.py build/api-calls docs/iam-policy.json [--suggest]

``build/api-calls/*.jsonl`` are the call journals the local AWS endpoints write during a pytest
run (tests/conftest.py: one file per worker and endpoint; one JSON object per call with
``service``, ``action``, ``user_agent``). Only calls made by the collection count:

- our modules and the amazon.aws tasks of our playbooks, whose user agent carries
  ``cattle.aws/<version>`` (module_utils/_fleet/connection.py; ``aws_config.user_agent_extra``),
  and Packer (the Go SDK's ``aws-sdk-go``), which the packer_bake role runs;
- not the tests' own setup calls (boto3, or amazon.aws modules without the mark), and not the
  demo network playbook (``cattle-sandbox``).

Each (service, action) becomes an IAM action (``elbv2`` -> ``elasticloadbalancing``,
``resourcegroupstaggingapi`` -> ``tag``, ...), plus the actions AWS authorizes implicitly
(IMPLIED: CreateAutoScalingGroup with a launch template needs ec2:RunInstances, ...). Fails
(exit 1) when an action was called but is not granted, when one is granted but never called,
when the policy has a ``*`` in an action, or when no call was recorded at all. ``--suggest``
prints the policy the recorded calls need (statements by service).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable

# boto3 client name -> IAM service prefix, where they differ.
IAM_PREFIX = {
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "resourcegroupstaggingapi": "tag",
    "tagging": "tag",  # the local endpoint names it by its SigV4 signing name
    "cloudwatch": "cloudwatch",
    "monitoring": "cloudwatch",
}

# IAM actions AWS checks on top of the API action itself (the caller needs them, no call shows them).
IMPLIED = {
    # Tags given at creation are authorized as tagging actions.
    "ec2:CreateLaunchTemplate": ["ec2:CreateTags"],
    "elasticloadbalancing:CreateTargetGroup": ["elasticloadbalancing:AddTags"],
    "elasticloadbalancing:CreateRule": ["elasticloadbalancing:AddTags"],  # attach rules are created with Tags
    "ssm:PutParameter": ["ssm:AddTagsToResource"],  # the lock parameter is created with Tags
    "autoscaling:CreateAutoScalingGroup": [
        "autoscaling:CreateOrUpdateTags",
        # An ASG with a launch template: the caller must be allowed to launch from it.
        "ec2:RunInstances",
    ],
}

SANDBOX_MARK = "cattle-sandbox"

# Granted, needed on AWS, but no local run can call them; each with the reason (reviewed list).
NOT_CALLABLE_LOCALLY = {
    "route53:GetChange": "moto answers every ChangeResourceRecordSets INSYNC at once, so the wait "
                         "for INSYNC never polls (the polling is unit-tested with a fake client)",
}
CATTLE_MARK = "cattle.aws/"


def caller(user_agent: str) -> str | None:
    """'ansible', 'packer', or None (tests' own setup calls, the sandbox playbook)."""
    user_agent = user_agent or ""
    if SANDBOX_MARK in user_agent:
        return None
    if "Ansible/" in user_agent and CATTLE_MARK in user_agent:
        return "ansible"
    # Packer's amazon plugin: the Go SDK's user agent (no test or tool of ours uses Go).
    if "packer" in user_agent.lower() or "aws-sdk-go" in user_agent:
        return "packer"
    return None


def iam_action(service: str, action: str) -> str | None:
    """IAM action name of one recorded API call; None when the recorder could not name it."""
    if not action or " " in action or action.startswith("recorder error"):
        return None
    return f"{IAM_PREFIX.get(service, service)}:{action}"


def read_calls(directory: Path) -> list[dict]:
    calls = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                calls.append(json.loads(line))
    return calls


def used_actions(calls: Iterable[dict]) -> tuple[dict[str, set[str]], list[dict]]:
    """({IAM action: {callers}}, unnamed calls) for the collection's calls, implied actions included."""
    used: dict[str, set[str]] = {}
    unnamed = []
    for call in calls:
        who = caller(call.get("user_agent", ""))
        if who is None:
            continue
        name = iam_action(call.get("service", ""), call.get("action", ""))
        if name is None:
            unnamed.append(call)
            continue
        for action in [name, *IMPLIED.get(name, [])]:
            used.setdefault(action, set()).add(who)
    return used, unnamed


def policy_actions(policy: dict) -> tuple[set[str], list[str]]:
    """(granted actions, problems such as wildcards or Deny/NotAction statements)."""
    granted, problems = set(), []
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for index, statement in enumerate(statements):
        sid = statement.get("Sid", f"#{index}")
        if statement.get("Effect") != "Allow" or "NotAction" in statement:
            problems.append(f"statement {sid}: only Allow statements with Action are expected")
            continue
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if "*" in action or "?" in action:
                problems.append(f"statement {sid}: wildcard action {action}")
            granted.add(action)
    return granted, problems


def compare(calls: list[dict], policy: dict) -> list[str]:
    """Every problem found (empty: the policy is exactly what the collection calls)."""
    used, unnamed = used_actions(calls)
    granted, problems = policy_actions(policy)
    if not used:
        problems.append("no API call by the collection was recorded: run the test suite first")
    # IAM action names are case-insensitive.
    granted_lower = {a.lower(): a for a in granted}
    used_lower = {a.lower(): a for a in used}
    for action in sorted(set(used_lower) - set(granted_lower)):
        who = ", ".join(sorted(used[used_lower[action]]))
        problems.append(f"called but not granted: {used_lower[action]} (by {who})")
    not_callable = {a.lower() for a in NOT_CALLABLE_LOCALLY}
    for action in sorted(set(granted_lower) - set(used_lower) - not_callable):
        problems.append(f"granted but never called: {granted_lower[action]}")
    for call in unnamed:
        problems.append(f"unnamed call (recorder could not name the action): {call.get('service')} {call.get('action')}")
    return problems


def suggest(calls: list[dict]) -> dict:
    used, dummy = used_actions(calls)
    by_service: dict[str, list[str]] = {}
    for action in sorted(used):
        by_service.setdefault(action.split(":", 1)[0], []).append(action)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": service.title().replace("-", ""), "Effect": "Allow", "Action": actions, "Resource": "*"}
            for service, actions in sorted(by_service.items())
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("calls_dir", type=Path)
    parser.add_argument("policy", type=Path)
    parser.add_argument("--suggest", action="store_true", help="print the policy the recorded calls need")
    args = parser.parse_args(argv)
    calls = read_calls(args.calls_dir)
    if args.suggest:
        print(json.dumps(suggest(calls), indent=2))
        return 0
    policy = json.loads(args.policy.read_text(encoding="utf-8"))
    problems = compare(calls, policy)
    used, dummy = used_actions(calls)
    if problems:
        print(f"{args.policy}: {len(problems)} problem(s) against {len(calls)} recorded calls:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{args.policy}: least privilege holds: {len(used)} IAM actions, each granted and used "
          f"({len(calls)} calls recorded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
