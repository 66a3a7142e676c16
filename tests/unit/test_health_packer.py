"""Pure tests of the Packer runner (module_utils/_fleet/packer.py) with a fake Packer."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import packer
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text,version", [("Packer v1.6.6", (1, 6, 6)), ("1.11.2\n", (1, 11, 2)), ("oops", None)])
def test_parse_version(text, version):
    assert packer.parse_version(text) == version


def test_template_vars_endpoint_and_user_values():
    values = packer.template_vars("shop", None, "1.0.0", "us-east-1", "http://127.0.0.1:5000", "/w/m.json",
                                  {"count": 2, "debug": True, "list": ["a"], "version": "override"})
    assert values["aws_endpoint_url"] == "http://127.0.0.1:5000"
    assert values["skip_region_validation"] == "true" and values["skip_metadata_api_check"] == "true"
    assert values["environment"] == ""
    assert values["count"] == "2" and values["debug"] == "true" and values["list"] == '["a"]'
    assert values["version"] == "override"
    assert packer.template_vars("shop", "prod", "1", "eu-west-1", None, "m")["skip_region_validation"] == "false"


def test_manifest_amis_last_run_and_region_only():
    manifest = {"last_run_uuid": "b", "builds": [
        {"packer_run_uuid": "a", "artifact_id": "us-east-1:ami-old"},
        {"packer_run_uuid": "b", "artifact_id": "us-east-1:ami-new,eu-west-1:ami-eu"},
    ]}
    assert packer.manifest_amis(manifest, "us-east-1") == ["ami-new"]
    assert packer.manifest_amis(manifest, "eu-west-1") == ["ami-eu"]


class FakePacker:
    def __init__(self, version="Packer v1.6.6", fail=None, manifest=None):
        self.version, self.fail, self.manifest, self.calls = version, fail, manifest, []

    def __call__(self, argv, cwd, env, timeout):
        self.calls.append(argv[1])
        if argv[1] == "version":
            return 0, self.version, ""
        if argv[1] == self.fail:
            return 1, "line 1\nError: something Packer said", ""
        if argv[1] == "build" and self.manifest is not None:
            with open(self.manifest[0], "w", encoding="utf-8") as f:
                json.dump(self.manifest[1], f)
        return 0, "ok", ""


def _bake(tmp_path, runner, template="t.json", **kw):
    manifest = str(tmp_path / "m.json")
    return packer.bake("packer", template, str(tmp_path / "w"), {"app": "shop"}, "us-east-1", manifest, plugins=["p"],
                       env={}, runner=runner, **kw)


@pytest.mark.parametrize("version,template,steps", [
    ("Packer v1.6.6", "t.json", ["version", "validate", "build"]),
    ("Packer v1.6.6", "t.pkr.hcl", ["version", "validate", "build"]),
    ("Packer v1.9.4", "t.pkr.hcl", ["version", "init", "validate", "build"]),
    ("Packer v1.9.4", "t.json", ["version", "validate", "build"]),
    ("Packer v1.11.2", "t.json", ["version", "plugins", "validate", "build"]),
])
def test_steps_by_packer_version_and_template_kind(tmp_path, version, template, steps):
    runner = FakePacker(version, manifest=(str(tmp_path / "m.json"),
                                           {"last_run_uuid": "r", "builds": [{"packer_run_uuid": "r", "artifact_id": "us-east-1:ami-1"}]}))
    result = _bake(tmp_path, runner, template)
    assert runner.calls == steps
    assert result["ami_id"] == "ami-1"
    assert json.loads((tmp_path / "w" / "cattle.pkrvars.json").read_text()) == {"app": "shop"}


def test_check_mode_validates_only(tmp_path):
    runner = FakePacker()
    assert _bake(tmp_path, runner, check_mode=True)["ami_id"] is None
    assert runner.calls == ["version", "validate"]


def test_invalid_template_quotes_packer(tmp_path):
    with pytest.raises(FleetError, match="is invalid \\(packer validate, Packer 1.6.6\\):\nline 1\nError: something Packer said"):
        _bake(tmp_path, FakePacker(fail="validate"))


def test_build_failure_points_at_the_logs(tmp_path):
    with pytest.raises(FleetError) as e:
        _bake(tmp_path, FakePacker(fail="build"))
    assert "Error: something Packer said" in e.value.msg
    assert str(tmp_path / "w" / "packer-build.log") in e.value.msg
    assert (tmp_path / "w" / "packer-build.log").read_text().startswith("line 1")


def test_missing_manifest(tmp_path):
    with pytest.raises(FleetError, match="manifest post-processor whose output is the variable manifest_path"):
        _bake(tmp_path, FakePacker())


def test_missing_packer(tmp_path):
    with pytest.raises(FleetError, match="apt-get install packer"):
        packer.bake(str(tmp_path / "nope"), "t.json", str(tmp_path / "w"), {}, "us-east-1", "m", env={})


def test_sensitive_values_are_masked_in_messages_and_logs(tmp_path):
    class Echoing(FakePacker):
        def __call__(self, argv, cwd, env, timeout):
            self.calls.append(argv[1])
            if argv[1] == "version":
                return 0, self.version, ""
            if argv[1] == "build":
                return 1, "using token s3cr3t-value and s3cr3t", "Error: s3cr3t-value rejected"
            return 0, "ok", ""

    with pytest.raises(FleetError) as e:
        _bake(tmp_path, Echoing(), secrets=["s3cr3t-value", "s3cr3t", ""])
    assert "s3cr3t" not in e.value.msg
    assert "using token ******** and ********" in e.value.msg and "Error: ******** rejected" in e.value.msg
    log = (tmp_path / "w" / "packer-build.log").read_text()
    assert "s3cr3t" not in log and "********" in log
    var_file = tmp_path / "w" / "cattle.pkrvars.json"
    assert var_file.stat().st_mode & 0o777 == 0o600
