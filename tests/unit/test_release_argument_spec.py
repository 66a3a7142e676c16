"""The release inputs (playbooks/vars/release_argument_spec.yml): the spec and the defaults agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

SPEC_FILE = Path(__file__).resolve().parents[2] / "playbooks" / "vars" / "release_argument_spec.yml"
DESIGN_KEYS = {  # the stack file of DESIGN.md, "The release"
    "app", "environment", "listener_arn", "rule_arn", "vpc_id", "subnet_ids", "security_group_ids", "instance_type",
    "capacity", "target_group", "ami_id", "packer", "strategy", "canary", "health", "bake_seconds", "keep", "gc_mode",
    "on_failure", "instance_prices", "currency", "releases_per_week",
}
PYTHON_TYPES = {"str": str, "list": list, "dict": dict, "bool": bool, "int": int, "float": (int, float)}


@pytest.fixture(scope="module")
def spec_file():
    return yaml.safe_load(SPEC_FILE.read_text())


def test_every_option_has_a_default_and_a_description(spec_file):
    spec, defaults = spec_file["cattle_release_argument_spec"], spec_file["cattle_release_defaults"]
    assert set(spec) == set(defaults)
    assert DESIGN_KEYS <= set(spec)
    for name, option in spec.items():
        assert option.get("description"), name
        assert isinstance(defaults[name], PYTHON_TYPES[option["type"]]), name
        for sub, sub_option in (option.get("options") or {}).items():
            assert sub_option.get("description"), f"{name}.{sub}"
            if name in ("canary", "health", "packer"):
                assert sub in defaults[name], f"{name}.{sub} has no default"
                assert isinstance(defaults[name][sub], PYTHON_TYPES[sub_option["type"]]), f"{name}.{sub}"


def test_choices_contain_the_defaults(spec_file):
    spec, defaults = spec_file["cattle_release_argument_spec"], spec_file["cattle_release_defaults"]
    for name, option in spec.items():
        if "choices" in option:
            assert defaults[name] in option["choices"], name


def test_the_spec_validates_with_ansible(spec_file):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec, defaults = spec_file["cattle_release_argument_spec"], spec_file["cattle_release_defaults"]
    validator = ArgumentSpecValidator(spec)
    assert validator.validate(dict(defaults, app="shop", version="1.0.0")).error_messages == []
    errors = validator.validate(dict(defaults, app="shop", strategy="blue", health={"timeout": "soon"})).error_messages
    assert any("strategy" in e for e in errors) and any("timeout" in e for e in errors)
    errors = validator.validate(dict(defaults, app="shop", canary={"stepz": [10]})).error_messages
    assert any("stepz" in e for e in errors)
