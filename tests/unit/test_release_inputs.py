"""The release inputs (cattle.aws.release_inputs): merged over the defaults, validated, typed, the record started."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.cattle.aws.plugins.plugin_utils import release_inputs as ri

pytestmark = pytest.mark.unit

SPEC_FILE = Path(__file__).resolve().parents[2] / "playbooks" / "vars" / "release_argument_spec.yml"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/0123456789abcdef/0123456789abcdef"


@pytest.fixture(scope="module")
def spec_file():
    return yaml.safe_load(SPEC_FILE.read_text())


def given(spec_file, *sources):
    return ri.merge_inputs(spec_file["cattle_release_defaults"], *sources)


def stack(**extra):
    return dict({"app": "shop", "environment": "prod", "version": "1.4.2", "listener_arn": LISTENER,
                 "subnet_ids": ["subnet-1"]}, **extra)


def test_sources_are_laid_over_the_defaults_in_turn_and_none_is_not_given(spec_file):
    inputs = given(spec_file, stack(health={"timeout": 60}, keep=5), {"keep": 1, "strategy": None},
                   {"version": "1.4.3", "canary": {"pause_seconds": 5}})
    assert inputs["version"] == "1.4.3" and inputs["keep"] == 1 and inputs["strategy"] == "instant"
    # dicts are merged: the defaults' other keys stay
    assert inputs["health"]["timeout"] == 60 and inputs["health"]["poll_interval"] == 5
    assert inputs["canary"] == {"steps": [10, 50, 100], "pause_seconds": 5}


def test_numbers_and_switches_given_as_strings_are_typed(spec_file):
    inputs = given(spec_file, stack(keep="3", lock_ttl="600", bake_seconds="0", releases_per_week="2.5",
                                    retry_failed="false", capacity_from_live="yes"))
    typed = ri.validate_inputs(spec_file["cattle_release_argument_spec"], inputs, "release")
    assert (typed["keep"], typed["lock_ttl"], typed["bake_seconds"], typed["releases_per_week"]) == (3, 600, 0, 2.5)
    assert typed["retry_failed"] is False and typed["capacity_from_live"] is True
    assert typed["version"] == "1.4.2" and typed["subnet_ids"] == ["subnet-1"]


def test_the_argument_spec_names_the_wrong_options(spec_file):
    inputs = given(spec_file, stack(keep="abc", strategy="blue"))
    with pytest.raises(ri.InputError) as error:
        ri.validate_inputs(spec_file["cattle_release_argument_spec"], inputs, "release")
    message = str(error.value)
    assert message.startswith("Invalid release inputs, nothing was changed: ")
    assert "keep" in message and "int" in message and "strategy" in message and "blue" in message


@pytest.mark.parametrize("extra, purpose, problem", [
    ({"app": "Shop"}, "release", 'app: "Shop" must be 1 to 32 lowercase letters'),
    ({"environment": "prod_eu"}, "release", 'environment: "prod_eu" must be 1 to 24 lowercase letters'),
    ({"version": ""}, "release", "version is required, for example -e version=1.4.2"),
    ({"version": "-1.4"}, "release", 'version: "-1.4" must be 1 to 64 letters'),
    ({"rollback_to": "1.0/2"}, "rollback", 'rollback_to: "1.0/2" must be a version'),
    ({"rule_arn": LISTENER.replace(":listener/", ":listener-rule/") + "/abc"}, "release",
     "give exactly one of listener_arn and rule_arn"),
    ({"subnet_ids": []}, "release", "subnet_ids is required"),
    ({"instance_type": ""}, "release", "instance_type is required"),
    ({"strategy": "canary", "canary": {"steps": [10, 50]}}, "release", "canary.steps: [10, 50] must end at 100"),
    ({"canary": {"steps": [0, 100]}}, "release", "canary.steps: [0, 100] must be percentages from 1 to 100"),
    ({"canary": {"steps": [50, 10, 100]}}, "release", "canary.steps: [50, 10, 100] must be strictly ascending"),
    ({"keep": -1}, "release", "keep must not be negative, lock_ttl must be positive"),
    ({"lock_ttl": 0}, "release", "lock_ttl must be positive"),
    ({"capacity": {"min": 2, "max": 1}}, "release", 'capacity: {"min": 2, "max": 1} needs min and max, and min <= desired <= max'),
    ({"capacity": {"min": 1}}, "release", "needs min and max"),
])
def test_each_rule_between_options_names_the_option(spec_file, extra, purpose, problem):
    inputs = given(spec_file, stack(**extra))
    with pytest.raises(ri.InputError) as error:
        ri.validate_inputs(spec_file["cattle_release_argument_spec"], inputs, purpose)
    assert problem in str(error.value)


def test_a_rollback_needs_no_version_subnets_or_instance_type(spec_file):
    inputs = given(spec_file, stack(version="", subnet_ids=[], instance_type=""))
    assert ri.validate_inputs(spec_file["cattle_release_argument_spec"], inputs, "rollback")["version"] == ""
    with pytest.raises(ri.InputError) as error:
        ri.validate_inputs(spec_file["cattle_release_argument_spec"], inputs, "release")
    assert "version is required" in str(error.value) and "subnet_ids is required" in str(error.value)


def test_every_problem_is_reported_at_once(spec_file):
    inputs = given(spec_file, stack(app="Shop", strategy="canary", canary={"steps": [50, 10, 90]}))
    with pytest.raises(ri.InputError) as error:
        ri.validate_inputs(spec_file["cattle_release_argument_spec"], inputs, "release")
    assert str(error.value).count("; ") == 2  # app, must end at 100, strictly ascending


def test_the_label_and_the_record_started(spec_file):
    inputs = ri.validate_inputs(spec_file["cattle_release_argument_spec"],
                                given(spec_file, stack(releases_per_week=3, instance_prices={"t3.micro": 0.0104})), "release")
    assert ri.label(inputs, "release") == "[shop/prod 1.4.2]"
    assert ri.label(dict(inputs, environment=""), "rollback") == "[shop rollback]"
    record = ri.start_record(dict(inputs, environment=""), "release", "2026-11-27T10:00:00.000000Z")
    assert record == {
        "app": "shop", "environment": None, "version": "1.4.2", "previous_version": None, "strategy": "instant",
        "started": "2026-11-27T10:00:00.000000Z", "result": "success",
        "phases": {"validate": {"started": "2026-11-27T10:00:00.000000Z"}}, "weights": [], "fleets": {},
        "instance_prices": {"t3.micro": 0.0104}, "currency": "USD", "releases_per_week": 3.0,
    }
    assert ri.start_record(inputs, "rollback", "t")["strategy"] == "rollback"
    assert ri.now().endswith("Z") and len(ri.now()) == len("2026-11-27T10:00:00.000000Z")
