"""Every runnable example in docs/ runs against the local endpoint, and the docs show it verbatim.

Runnable examples live in docs/examples/*.yml; a markdown page shows one in a fenced ```yaml block
preceded by `<!-- example: docs/examples/NAME.yml -->`, and the block must equal the file. Every
other ```yaml block in docs/*.md must say why it cannot run here with `<!-- fragment: reason -->`
(it needs a real account, or it is a piece of a larger file). `tools/docs_examples.py` copies the
files into the pages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
EXAMPLES = DOCS / "examples"
BLOCK = re.compile(r"(?:<!--\s*(example|fragment):\s*(.*?)\s*-->\s*\n)?```ya?ml\n(.*?)```", re.S)


def _blocks():
    for page in sorted(DOCS.glob("*.md")):
        for kind, arg, body in BLOCK.findall(page.read_text()):
            yield page.name, kind, arg, body


def _ok(rc, out, err):
    assert rc == 0, out + err
    m = re.search(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", out, re.M)
    assert m, out + err
    return int(m.group(1))


def _weights(aws, listener_arn, stack):
    """{version: weight} of the listener's forward action, by the target groups' version tags."""
    elbv2 = aws.client("elbv2")
    [listener] = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    [forward] = [a for a in listener["DefaultActions"] if a["Type"] == "forward"]
    weights = {}
    for tg in forward["ForwardConfig"]["TargetGroups"]:
        tags = {t["Key"]: t["Value"] for t in elbv2.describe_tags(ResourceArns=[tg["TargetGroupArn"]])[
            "TagDescriptions"][0]["Tags"]}
        assert (tags["cattle:app"], tags["cattle:environment"]) == (stack["app"], stack["environment"])
        weights[tags["cattle:version"]] = tg["Weight"]
    return weights


def test_every_yaml_block_in_the_docs_is_an_example_file_or_a_declared_fragment():
    shown = set()
    blocks = list(_blocks())
    assert blocks, "no yaml block found in docs/*.md"
    for page, kind, arg, body in blocks:
        assert kind, f"{page}: a ```yaml block without <!-- example: ... --> or <!-- fragment: ... -->:\n{body}"
        if kind == "example":
            path = REPO / arg
            assert path.parent == EXAMPLES and path.is_file(), f"{page}: {arg} is not a file in docs/examples"
            assert body == path.read_text(), f"{page}: the block shown for {arg} differs from the file (run tools/docs_examples.py)"
            shown.add(path.name)
        else:
            assert arg, f"{page}: a fragment needs a reason"
            yaml.safe_load(body)  # fragments are still valid YAML
    assert shown == {p.name for p in EXAMPLES.glob("*.yml")}, "every example file is shown in a page"


def test_walkthrough_examples_run_against_the_local_endpoint(aws, run_playbook, tmp_path):
    """sandbox -> fleet_info -> release 1.0.0 (instant) -> 1.1.0 (canary steps) -> rollback."""
    stack_file = tmp_path / "stack.yml"
    rc, out, err = run_playbook(aws, "cattle.aws.sandbox", {
        "sandbox_app": "shop", "sandbox_environment": "prod", "sandbox_stack_file": str(stack_file)})
    _ok(rc, out, err)
    stack = yaml.safe_load(stack_file.read_text())

    aws.clear_calls()
    rc, out, err = run_playbook(aws, EXAMPLES / "fleet_info.yml", {"app": "shop", "env_name": "prod"})
    assert _ok(rc, out, err) == 0
    assert "shop/prod: live none, versions , drift False" in out, out
    assert aws.mutating_calls() == []

    rc, out, err = run_playbook(aws, EXAMPLES / "compose_release.yml",
                                {"stack_file": str(stack_file), "version": "1.0.0"})
    _ok(rc, out, err)
    aws.clear_calls()
    assert "live 1.0.0, rollback target none, 1 fleets" in out, out
    assert _weights(aws, stack["listener_arn"], stack) == {"1.0.0": 100}

    rc, out, err = run_playbook(aws, EXAMPLES / "compose_release.yml",
                                {"stack_file": str(stack_file), "version": "1.1.0", "shift_steps": [10, 50, 100]})
    _ok(rc, out, err)
    assert "live 1.1.0, rollback target 1.0.0, 2 fleets" in out, out
    weights = _weights(aws, stack["listener_arn"], stack)
    assert weights["1.1.0"] > 0 and weights.get("1.0.0", 0) == 0, weights
    # the canary went through its steps: three weight changes after the weight-0 attach
    shifts = [c for c in aws.calls() if c == ("elbv2", "ModifyListener")]
    assert len(shifts) >= 4, aws.calls()

    rc, out, err = run_playbook(aws, EXAMPLES / "rollback.yml", {"stack_file": str(stack_file)})
    _ok(rc, out, err)
    weights = _weights(aws, stack["listener_arn"], stack)
    assert weights["1.0.0"] > 0 and weights.get("1.1.0", 0) == 0, weights

    aws.clear_calls()
    rc, out, err = run_playbook(aws, EXAMPLES / "fleet_info.yml", {"app": "shop", "env_name": "prod"})
    assert _ok(rc, out, err) == 0
    assert "shop/prod: live 1.0.0, versions 1.1.0, 1.0.0, drift False" in out, out
    assert aws.mutating_calls() == []


def test_group_amazon_aws_does_not_reach_our_modules_as_composing_md_says(aws, run_playbook, tmp_path):
    """docs/composing.md: use group/cattle.aws.aws; group/amazon.aws.aws leaves our modules on their defaults."""
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/amazon.aws.aws": {"region": "us-east-1", "endpoint_url": aws.url}},
        "tasks": [
            {"name": "amazon.aws gets the defaults", "amazon.aws.ec2_vpc_net_info": {}, "register": "vpcs"},
            {"name": "ours does not", "cattle.aws.fleet_info": {"app": "shop", "health": False, "drift": False},
             "register": "info", "ignore_errors": True},
            {"name": "check", "ansible.builtin.assert": {"that": [
                "vpcs.vpcs | length >= 1", "info is failed", "'127.0.0.1:9' in info.msg"]}},
        ],
    }]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    # the environment points at a dead endpoint: only module_defaults can bring a module to the endpoint
    rc, out, err = run_playbook(aws, path, extra_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert rc == 0, out + err
