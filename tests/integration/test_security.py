"""Security defaults, proven: IMDSv2 and encrypted EBS by default; user_data never shown.

- immutable_fleet with no metadata_options and no volumes builds a launch template that requires
  IMDSv2 (HttpTokens=required, hop limit 1) and encrypts every EBS volume.
- user_data (it often carries secrets) never appears in a module result, a diff, check-mode
  output, a failure message (changed spec) or fleet_info output, nor in ansible's output at -vvv or
  its log file (ANSIBLE_LOG_PATH) — neither as text nor base64-encoded.
- Options that carry secrets are no_log (checked in every module's argument spec); options whose
  names look secret but are not are no_log=False on purpose, with the reason below.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import uuid

import pytest

from helpers import REPO_ROOT, run_playbook

pytestmark = pytest.mark.integration

AMI = "ami-0ca771e0000ba5e01"  # seeded by tools/local_aws_amis.json
MODULES = REPO_ROOT / "plugins" / "modules"

# (module, option) -> required no_log value, and why.
NO_LOG = {
    ("immutable_fleet", "user_data"): True,  # boot scripts carry passwords and keys
    ("packer_build", "sensitive_vars"): True,  # tokens and passwords the bake needs
    # Not secrets, declared no_log=False on purpose (ansible-test flags their names):
    ("immutable_fleet", "key_name"): False,  # the NAME of an EC2 key pair, not key material
    # The lock token proves which run holds the stack lock; it is returned to the playbook (which
    # needs it to release) and stored readable in the SSM parameter; hiding it would mask the
    # returned value too. It grants nothing: whoever can call ssm:PutParameter can break the lock.
    ("stack_lock", "token"): False,
    ("immutable_fleet", "http_tokens"): None,  # IMDS setting (required/optional), not a token
}
SECRET_LOOKING = ("password", "secret", "token", "user_data", "private", "credential", "passphrase")


def _options_with_no_log():
    """{(module, option): no_log or None} for every dict(...) keyword option in plugins/modules/*.py."""
    found = {}
    for path in sorted(MODULES.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict"):
                continue
            for kw in node.keywords:
                if not (isinstance(kw.value, ast.Call) and isinstance(kw.value.func, ast.Name)
                        and kw.value.func.id == "dict"):
                    continue
                inner = {k.arg: k.value for k in kw.value.keywords}
                if "type" not in inner:
                    continue  # not an option spec
                no_log = inner.get("no_log")
                found[(path.stem, kw.arg)] = ast.literal_eval(no_log) if no_log is not None else None
    return found


def test_sensitive_options_are_no_log():
    options = _options_with_no_log()
    assert ("immutable_fleet", "user_data") in options, "the option parser found no user_data: fix the test"
    for key, wanted in NO_LOG.items():
        assert options.get(key) is wanted, f"{key[0]}.{key[1]} must have no_log={wanted}"
    unreviewed = [f"{m}.{o}" for (m, o), v in options.items()
                  if any(w in o.lower() for w in SECRET_LOOKING) and (m, o) not in NO_LOG]
    assert unreviewed == [], f"options that look secret, not reviewed here (add them to NO_LOG): {unreviewed}"


def _subnets(aws):
    subnets = aws.client("ec2").describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return sorted(s["SubnetId"] for s in subnets)[:2]


def _fleet_args(aws, user_data):
    return {"app": "vault", "environment": "prod", "version": "1.0", "ami_id": AMI, "instance_type": "t3.micro",
            "subnet_ids": _subnets(aws), "user_data": user_data, "capacity": {"min": 0, "max": 1, "desired": 0}}


def test_launch_template_requires_imdsv2_and_encrypts_ebs_by_default(aws, run_module):
    args = _fleet_args(aws, "#!/bin/sh\ntrue\n")
    result = run_module(aws, "cattle.aws.immutable_fleet", args)
    assert result["changed"] is True, result.get("msg")
    template_id = result["fleet"]["launch_template"]["id"]
    data = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id)["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1  # containers cannot reach IMDS through a hop
    assert data["BlockDeviceMappings"], "no block device mapping: the root volume would take the AMI's encryption"
    assert all(m["Ebs"]["Encrypted"] is True for m in data["BlockDeviceMappings"] if "Ebs" in m)


def _secret_forms(user_data):
    encoded = base64.b64encode(user_data.encode()).decode()
    return [user_data.split("\n")[1], encoded, encoded[:-4]]


def test_user_data_never_in_results_diffs_or_logs(aws, tmp_path):
    marker = f"hunter2-{uuid.uuid4().hex}"
    marker2 = f"changed-{uuid.uuid4().hex}"
    user_data = f"#!/bin/sh\necho {marker} > /etc/db-password\n"
    user_data2 = f"#!/bin/sh\necho {marker2} > /etc/db-password\n"
    args = _fleet_args(aws, user_data)
    results = tmp_path / "results.json"
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "check mode with diff", "cattle.aws.immutable_fleet": args, "check_mode": True, "diff": True,
             "register": "planned"},
            {"name": "create with diff", "cattle.aws.immutable_fleet": args, "diff": True, "register": "created"},
            {"name": "re-run", "cattle.aws.immutable_fleet": args, "diff": True, "register": "again"},
            {"name": "changed user_data is refused", "cattle.aws.immutable_fleet": dict(args, user_data=user_data2),
             "diff": True, "register": "changed_spec", "ignore_errors": True},
            {"name": "fleet_info", "cattle.aws.fleet_info": {"app": "vault", "environment": "prod"},
             "register": "info"},
            {"name": "keep the results", "ansible.builtin.copy": {
                "dest": str(results),
                "content": "{{ {'planned': planned, 'created': created, 'again': again, "
                           "'changed_spec': changed_spec, 'info': info} | to_json }}"}},
        ],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    log = tmp_path / "ansible.log"
    rc, stdout, stderr = run_playbook(aws, playbook, verbosity=3, diff=True, cwd=tmp_path,
                                      extra_env={"ANSIBLE_LOG_PATH": str(log)})
    assert rc == 0, stdout[-3000:] + stderr[-3000:]

    out = json.loads(results.read_text())
    assert out["planned"]["changed"] is True and out["created"]["changed"] is True
    assert out["again"]["changed"] is False
    assert out["changed_spec"]["failed"] is True and "user_data" in out["changed_spec"]["msg"]
    assert out["info"]["fleets"], "fleet_info found the fleet"
    assert log.exists() and "immutable_fleet" in log.read_text()

    texts = {"results": results.read_text(), "stdout": stdout, "stderr": stderr, "log": log.read_text()}
    for name, text in texts.items():
        for secret in _secret_forms(user_data) + _secret_forms(user_data2):
            assert secret not in text, f"user_data leaked into {name}"
    # The fleet itself does have it (the test would prove nothing otherwise).
    template = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=out["created"]["fleet"]["launch_template"]["id"])["LaunchTemplateVersions"][0]
    assert marker in base64.b64decode(template["LaunchTemplateData"]["UserData"]).decode()
    assert os.path.getsize(log) > 0
