"""roles/packer_bake with the real Packer against the local endpoint."""

from __future__ import annotations

import json
import re
import shutil
import uuid

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed (make packer)"),
]

PLAY = """
- name: Bake
  hosts: localhost
  gather_facts: false
  roles:
    - role: cattle.aws.packer_bake
  post_tasks:
    - name: Save the facts
      ansible.builtin.copy:
        content: "{{ {'ami': packer_bake_ami_id, 'skipped': packer_bake_skipped} | to_json }}"
        dest: "{{ result_path }}"
        mode: "0600"
"""


def _bake(aws, run_playbook, tmp_path, verbosity=0, **extra):
    play = tmp_path / "bake.yml"
    play.write_text(PLAY)
    result = tmp_path / "result.json"
    if result.exists():
        result.unlink()
    extra_vars = {
        "packer_bake_app": "shop",
        "packer_bake_environment": "test",
        "packer_bake_version": "1.0.0",
        "packer_bake_work_dir": str(tmp_path / "work"),
        "packer_bake_tags": {"team": "tests"},
        "result_path": str(result),
        **extra,
    }
    rc, out, err = run_playbook(aws, play, extra_vars, verbosity=verbosity)
    facts = json.loads(result.read_text()) if result.exists() else None
    return rc, out + err, facts


def _tags(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_bake_builds_a_tagged_ami_then_skips(aws, run_playbook, tmp_path):
    rc, out, facts = _bake(aws, run_playbook, tmp_path)
    assert rc == 0, out
    assert facts["skipped"] is False
    ami_id = facts["ami"]
    ec2 = aws.client("ec2")
    [image] = ec2.describe_images(ImageIds=[ami_id])["Images"]
    tags = _tags(image)
    assert tags["cattle:app"] == "shop"
    assert tags["cattle:environment"] == "test"
    assert tags["cattle:version"] == "1.0.0"
    assert tags["cattle:managed-by"] == "cattle.aws"
    assert tags["team"] == "tests"
    assert "cattle:created-at" in tags
    assert image["Name"].startswith("shop-test-1.0.0-")
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert snapshot_ids
    for snapshot in ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
        assert _tags(snapshot)["cattle:version"] == "1.0.0"
    # Packer talked to the endpoint (custom_endpoint_ec2): the build instance was launched there.
    assert ("ec2", "RunInstances") in aws.calls()

    aws.clear_calls()
    rc, out, facts = _bake(aws, run_playbook, tmp_path)
    assert rc == 0, out
    assert facts == {"ami": ami_id, "skipped": True}
    assert "bake skipped" in out
    assert aws.mutating_calls() == []

    # Another version is baked again.
    rc, out, facts = _bake(aws, run_playbook, tmp_path, packer_bake_version="1.0.1")
    assert rc == 0, out
    assert facts["skipped"] is False and facts["ami"] != ami_id


def test_force_bakes_again(aws, run_playbook, tmp_path):
    rc, out, first = _bake(aws, run_playbook, tmp_path)
    assert rc == 0, out
    rc, out, second = _bake(aws, run_playbook, tmp_path, packer_bake_force=True)
    assert rc == 0, out
    assert second["skipped"] is False and second["ami"] != first["ami"]


def test_broken_template_fails_with_packers_message(aws, run_playbook, tmp_path):
    template = tmp_path / "broken.json"
    template.write_text('{"builders": [{"type": "amazon-ebs", "region": "us-east-1"}]}')
    rc, out, facts = _bake(aws, run_playbook, tmp_path, packer_bake_template=str(template))
    assert rc != 0
    assert facts is None
    assert "is invalid (packer validate" in out
    assert "ami_name must be specified" in out  # Packer's own words
    assert aws.mutating_calls() == []


def test_build_failure_shows_packers_log(aws, run_playbook, tmp_path):
    # A source AMI that does not exist: validate passes, the build fails in AWS.
    secret = "artifact-token-" + uuid.uuid4().hex
    rc, out, facts = _bake(aws, run_playbook, tmp_path, verbosity=3, packer_bake_source_ami="ami-0000000000000dead",
                           packer_bake_sensitive_vars={"artifact_token": secret})
    assert rc != 0
    assert "packer build failed" in out
    assert "Last lines of Packer's output" in out
    assert str(tmp_path / "work") in out and "packer-build.log" in out
    # The sensitive variable reached Packer, in a file only its owner reads, and nowhere else.
    [var_file] = (tmp_path / "work").glob("*/cattle.pkrvars.json")
    assert json.loads(var_file.read_text())["artifact_token"] == secret
    assert var_file.stat().st_mode & 0o777 == 0o600
    assert secret not in out, "a sensitive variable was shown in the output (-vvv)"
    assert all(secret not in p.read_text() for p in (tmp_path / "work").glob("*/packer-build.log"))
    images = aws.client("ec2").describe_images(Owners=["self"])["Images"]
    assert images == []


def test_missing_packer_says_how_to_install(aws, run_playbook, tmp_path):
    rc, out, facts = _bake(aws, run_playbook, tmp_path, packer_bake_packer_path=str(tmp_path / "no-packer"))
    assert rc != 0
    assert "apt-get install packer" in out
    assert "packer_bake_packer_path" in out


def test_molecule_scenario(aws, run_playbook, tmp_path):
    """extensions/molecule/packer_bake: converge, idempotence (skips), verify."""
    from helpers.ansible import REPO_ROOT

    scenario = REPO_ROOT / "extensions" / "molecule" / "packer_bake"
    extra = {"packer_bake_work_dir": str(tmp_path)}
    for step in ("converge.yml", "verify.yml"):
        rc, out, err = run_playbook(aws, scenario / step, extra)
        assert rc == 0, f"{step}\n{out}{err}"
    rc, out, err = run_playbook(aws, scenario / "converge.yml", extra)
    assert rc == 0 and "bake skipped" in out, out + err
    assert re.search(r"changed=0\s", out), out


HCL_TEMPLATE = """
variable "app" { type = string }
variable "version" { type = string }
variable "region" { type = string }
variable "aws_endpoint_url" { type = string }
variable "skip_region_validation" { type = bool }
variable "manifest_path" { type = string }
variable "source_ami" { type = string }

source "amazon-ebs" "app" {
  region                 = var.region
  custom_endpoint_ec2    = var.aws_endpoint_url
  skip_region_validation = var.skip_region_validation
  source_ami             = var.source_ami
  instance_type          = "t3.micro"
  communicator           = "none"
  ami_name               = "${var.app}-${var.version}-hcl"
}

build {
  sources = ["source.amazon-ebs.app"]

  post-processor "manifest" {
    output = var.manifest_path
  }
}
"""


def test_hcl2_template_with_user_vars(aws, run_playbook, tmp_path):
    template = tmp_path / "app.pkr.hcl"
    template.write_text(HCL_TEMPLATE)
    rc, out, facts = _bake(aws, run_playbook, tmp_path, packer_bake_template=str(template),
                           packer_bake_vars={"source_ami": "ami-0ca771e0000ba5e01"})
    assert rc == 0, out
    [image] = aws.client("ec2").describe_images(ImageIds=[facts["ami"]])["Images"]
    assert image["Name"] == "shop-1.0.0-hcl"
    assert _tags(image)["cattle:version"] == "1.0.0"


def test_check_mode_bakes_nothing(aws, run_playbook, tmp_path):
    play = tmp_path / "bake.yml"
    play.write_text("- name: Bake\n  hosts: localhost\n  gather_facts: false\n  roles:\n    - role: cattle.aws.packer_bake\n")
    rc, out, err = run_playbook(aws, play, {
        "packer_bake_app": "shop", "packer_bake_version": "1.0.0", "packer_bake_work_dir": str(tmp_path / "work"),
    }, check=True)
    assert rc == 0, out + err
    assert "would be baked" in out
    assert aws.mutating_calls() == []
