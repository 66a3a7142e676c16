"""cattle.aws.release through ansible-runner, the executor AWX / Automation Controller runs jobs with.

The private data dir is laid out the way AWX lays out a job's: env/extravars (the job template's
extra variables: the stack file, plus the survey's answers), env/envvars (what the "Amazon Web
Services" credential injects - AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SECURITY_TOKEN - and
the region and endpoint a custom credential type would inject), inventory/ and project/ with the
project playbook of docs/awx.md (docs/examples/awx_project_release.yml) and its
collections/requirements.yml. What AWX shows of a job comes from runner's event stream and the
playbook_on_stats event's artifact_data (set_stats, the workflow artifacts): the tests read those.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from helpers.ansible import BIN_DIR, BUNDLED_COLLECTIONS, COLLECTIONS_PATH, PYTHON
from helpers.release import lock_value, make_stack, patch_unhealthy, report, weights

ansible_runner = pytest.importorskip("ansible_runner")

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROJECT_PLAYBOOK = REPO / "docs" / "examples" / "awx_project_release.yml"
SURVEY = REPO / "docs" / "awx" / "survey.json"


def _private_data_dir(tmp_path, endpoint, extravars):
    """An AWX-like private data dir: env/, inventory/, project/ (see the module docstring)."""
    pdd = tmp_path / "job"
    (pdd / "env").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "project" / "collections").mkdir(parents=True)
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        # the "Amazon Web Services" credential type's injector
        "AWS_ACCESS_KEY_ID": endpoint.env["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": endpoint.env["AWS_SECRET_ACCESS_KEY"],
        "AWS_SECURITY_TOKEN": "session-token-from-awx",
        # a custom credential type (docs/awx.md): the region, and here the local endpoint
        "AWS_REGION": endpoint.env["AWS_REGION"],
        "AWS_DEFAULT_REGION": endpoint.env["AWS_REGION"],
        "AWS_ENDPOINT_URL": endpoint.url,
        # AWX installs the project's collections/requirements.yml and points ansible at them
        # (and the execution environment's own: amazon.aws, from the `ansible` package here)
        "ANSIBLE_COLLECTIONS_PATH": f"{COLLECTIONS_PATH}{os.pathsep}{BUNDLED_COLLECTIONS}",
        "ANSIBLE_SHOW_CUSTOM_STATS": "True",
        "ANSIBLE_PYTHON_INTERPRETER": PYTHON,
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
    }))
    (pdd / "inventory" / "hosts").write_text("localhost ansible_connection=local\n")
    (pdd / "project" / "release.yml").write_text(PROJECT_PLAYBOOK.read_text())
    (pdd / "project" / "collections" / "requirements.yml").write_text(yaml.safe_dump(
        {"collections": [{"name": "cattle.aws"}, {"name": "amazon.aws", "version": ">=9.0.0"}]}))
    return pdd


def _run(tmp_path, endpoint, extravars, ident):
    pdd = _private_data_dir(tmp_path / ident, endpoint, extravars)
    return ansible_runner.run(private_data_dir=str(pdd), playbook="release.yml", ident=ident, quiet=True,
                              timeout=300)


def _stdout(runner):
    return runner.stdout.read()


def _task_starts(events):
    return [e["event_data"]["task"] for e in events if e["event"] == "playbook_on_task_start"]


def _progress(events, label):
    """The phase progress lines ("[shop/test 1.1.0] provision done in ...") of runner_on_ok debug events."""
    lines = [str(e["event_data"]["res"].get("msg", "")) for e in events
             if e["event"] == "runner_on_ok" and e["event_data"].get("task_action") in ("debug", "ansible.builtin.debug")]
    return [line for line in lines if line.startswith(label)]


def _artifacts(events):
    [stats] = [e for e in events if e["event"] == "playbook_on_stats"]
    return stats["event_data"]["artifact_data"]


def _in_order(names, wanted):
    """The index in `names` of each pattern of `wanted`, found one after the other (AssertionError if not)."""
    at, found = 0, []
    for pattern in wanted:
        for index in range(at, len(names)):
            if re.search(pattern, names[index]):
                found.append(index)
                at = index + 1
                break
        else:
            raise AssertionError(f"no task matching {pattern!r} after {names[at - 1] if at else 'the start'}: {names}")
    return found


def _survey_answers():
    """Answers to the survey of docs/awx/survey.json, as AWX adds them to the extra variables."""
    spec = json.loads(SURVEY.read_text())["spec"]
    return {q["variable"]: q["default"] for q in spec if q.get("default") not in (None, "")}


def test_release_through_ansible_runner_tells_the_story(aws, tmp_path):
    stack = make_stack(aws, tmp_path)
    first = _run(tmp_path, aws, dict(stack, **_survey_answers(), version="1.0.0"), "release-1.0.0")
    assert (first.status, first.rc) == ("successful", 0), _stdout(first)
    assert weights(aws, stack) == {"1.0.0": 100}

    stack["report_dir"] = str(tmp_path / "report-1.1.0")
    runner = _run(tmp_path, aws, dict(stack, **_survey_answers(), version="1.1.0"), "release-1.1.0")
    out = _stdout(runner)
    assert (runner.status, runner.rc) == ("successful", 0), out
    stats = runner.stats
    assert stats["ok"]["localhost"] > 0 and not stats["failures"] and not stats["dark"], stats
    assert weights(aws, stack) == {"1.0.0": 0, "1.1.0": 100}
    assert lock_value(aws) is None

    events = list(runner.events)
    # The job's task list tells the phases in order.
    _in_order(_task_starts(events), [
        r"^Read and validate the inputs", r"^Check that the listener or rule exists", r"^Lock the stack",
        r"^Provision the fleet",
        r"^Gate the new fleet", r"^Shift all the traffic", r"^Remove old versions", r"^Write release-report.json",
        r"^Publish the release for AWX workflows", r"^Unlock the stack",
    ])
    # The progress lines, one debug event per phase, in order.
    progress = _progress(events, "[shop/test 1.1.0]")
    phases = [m.group(1) for m in (re.match(r"\[shop/test 1\.1\.0\] (\w+) (?:done|skipped)", line) for line in progress) if m]
    assert phases == ["validate", "lock", "bake", "provision", "initialization", "health", "shift", "cleanup"], progress
    assert any(re.match(r"\[shop/test 1\.1\.0\] provision done in \d+ s \(elapsed \d+ s\)", line) for line in progress), progress
    assert any("releasing 1.1.0 (instant) over 1.0.0" in line for line in progress), progress
    assert any("released in" in line and "1.1.0 is live, 1.0.0 kept for a rollback" in line for line in progress), progress

    # set_stats -> the job's artifacts (AWX hands them to the next workflow node as extra variables).
    artifacts = _artifacts(events)
    json_report, _html = report(stack)
    assert artifacts["cattle_release_version"] == "1.1.0" and artifacts["cattle_release_result"] == "success"
    assert artifacts["cattle_release_previous_version"] == "1.0.0"
    assert (artifacts["cattle_release_app"], artifacts["cattle_release_environment"]) == ("shop", "test")
    assert artifacts["cattle_release_failed_phase"] is None
    assert {"validate", "lock", "provision", "initialization", "health", "shift", "cleanup"} <= set(
        artifacts["cattle_release_durations"])
    assert artifacts["cattle_release_total_seconds"] == json_report["timeline"]["total_seconds"]
    assert artifacts["cattle_release_cost"] == round(json_report["cost"]["cost"], 4)
    # two fleets ran side by side for a few seconds: a priced overlap (t3.micro from instance_prices)
    assert artifacts["cattle_release_overlap_seconds"] > 0 and artifacts["cattle_release_currency"] == "USD"
    assert isinstance(artifacts["cattle_release_cost"], float)
    assert artifacts["cattle_release_monthly_cost"] == round(json_report["cost"]["monthly_cost"], 4)
    # ANSIBLE_SHOW_CUSTOM_STATS: the job's output shows them too
    assert "CUSTOM STATS" in out and "cattle_release_version" in out


def test_failed_release_through_ansible_runner_names_the_phase(threaded_aws, tmp_path, monkeypatch):
    aws = threaded_aws
    stack = make_stack(aws, tmp_path)
    patch_unhealthy(monkeypatch, "1-0-0")
    runner = _run(tmp_path, aws, dict(stack, **_survey_answers(), version="1.0.0",
                                      health={"timeout": 2, "poll_interval": 1}), "release-failed")
    out = _stdout(runner)
    assert runner.status == "failed" and runner.rc != 0, out
    assert runner.stats["failures"] == {"localhost": 1}, runner.stats
    events = list(runner.events)

    failed = [e for e in events if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")]
    # the gate failed (rescued), then the play failed on purpose, naming the phase and the rollback
    assert [e["event_data"]["task"] for e in failed] == [
        "Gate the new fleet (instances InService, then target health, alarms, HTTP checks)",
        "Fail the release with what happened and what was rolled back"], [e["event_data"]["task"] for e in failed]
    message = failed[-1]["event_data"]["res"]["msg"]
    assert message.startswith("Release of 1.0.0 FAILED in phase health (Gate the new fleet"), message
    assert "The lock is released." in message
    assert [e["event"] for e in events if e["event"] == "runner_on_rescued"] or \
        any(e["event_data"].get("rescued") for e in events if e["event"] == "playbook_on_stats")
    assert any("FAILED in phase health" in line and "rolling back" in line
               for line in _progress(events, "[shop/test 1.0.0]"))

    artifacts = _artifacts(events)
    assert artifacts["cattle_release_result"] == "rolled_back"
    assert artifacts["cattle_release_failed_phase"] == "health"
    assert "unhealthy" in artifacts["cattle_release_failure_reason"]
    assert "rollback" in artifacts["cattle_release_durations"]
    assert lock_value(aws) is None
    json_report, _html = report(stack)
    assert json_report["result"] == "rolled_back" and json_report["failed_phase"] == "health"


# ------------------------------------------------------------------ the survey of docs/awx.md

# AWX's checks of a survey spec (awx/api/views JobTemplateSurveySpec._validate_spec_data and
# awx.main.constants.SURVEY_TYPE_MAPPING): the question types and the Python type of their default.
AWX_SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
                    "integer": int, "float": (float, int)}
# What a question's answer becomes in the playbook, per argument spec type.
SPEC_TYPES = {"str": ("text", "textarea", "password", "multiplechoice"), "int": ("integer",),
              "float": ("float", "integer"), "list": ("multiselect",)}


def awx_survey_errors(spec):
    """The errors AWX's API answers a POST of this survey spec with (empty: accepted)."""
    errors = []
    for field, expected in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(field), expected):
            errors.append(f"{field}: missing or not a {expected.__name__}")
    if errors:
        return errors
    if not spec["spec"]:
        errors.append("'spec' doesn't contain any items")
    variables = set()
    for index, question in enumerate(spec["spec"]):
        if not isinstance(question, dict):
            errors.append(f"question {index} is not an object")
            continue
        for field, expected in (("type", str), ("question_name", str), ("variable", str), ("required", bool)):
            if not isinstance(question.get(field), expected):
                errors.append(f"question {index}: {field} missing or not a {expected.__name__}")
        if errors:
            continue
        if question["variable"] in variables:
            errors.append(f"question {index}: variable {question['variable']} duplicated")
        variables.add(question["variable"])
        qtype = question["type"]
        if qtype not in AWX_SURVEY_TYPES:
            errors.append(f"question {index}: type {qtype} is not one of {', '.join(AWX_SURVEY_TYPES)}")
            continue
        default = question.get("default", "")
        if default != "" and (not isinstance(default, AWX_SURVEY_TYPES[qtype]) or isinstance(default, bool)):
            errors.append(f"question {index}: default {default!r} is not a {qtype}")
        for key in ("min", "max"):
            if question.get(key) is not None and (not isinstance(question[key], int) or isinstance(question[key], bool)):
                errors.append(f"question {index}: {key} is not an integer")
        if qtype in ("multiplechoice", "multiselect"):
            choices = question.get("choices")
            if isinstance(choices, str):
                choices = [c for c in choices.splitlines() if c.strip()]
            if not choices:
                errors.append(f"question {index}: a {qtype} question needs choices")
                continue
            defaults = [d for d in (default.splitlines() if isinstance(default, str) else default) if d.strip()]
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append(f"question {index}: a multiplechoice question has one default at most")
            if any(d not in choices for d in defaults):
                errors.append(f"question {index}: default {default!r} is not one of the choices")
    return errors


def test_awx_survey_check_refuses_what_awx_refuses():
    good = json.loads(SURVEY.read_text())
    assert awx_survey_errors(good) == []
    bad = [
        {"name": "x", "description": "", "spec": []},
        {"name": "x", "spec": [{"type": "text", "question_name": "q", "variable": "v", "required": True}]},
        {"name": "x", "description": "", "spec": [{"type": "regex", "question_name": "q", "variable": "v", "required": True}]},
        {"name": "x", "description": "", "spec": [{"type": "text", "question_name": "q", "variable": "v", "required": "yes"}]},
        {"name": "x", "description": "", "spec": [{"type": "integer", "question_name": "q", "variable": "v", "required": False,
                                                   "default": "3"}]},
        {"name": "x", "description": "", "spec": [{"type": "multiplechoice", "question_name": "q", "variable": "v",
                                                   "required": False, "choices": ["a", "b"], "default": "c"}]},
        {"name": "x", "description": "", "spec": [{"type": "multiplechoice", "question_name": "q", "variable": "v",
                                                   "required": False}]},
        {"name": "x", "description": "", "spec": [{"type": "text", "question_name": "q", "variable": "v", "required": True,
                                                   "min": "1"}]},
        {"name": "x", "description": "", "spec": [{"type": "text", "question_name": "q", "variable": "v", "required": True}] * 2},
    ]
    for spec in bad:
        assert awx_survey_errors(spec), spec


def test_awx_survey_asks_for_real_inputs_of_the_release():
    survey = json.loads(SURVEY.read_text())
    assert awx_survey_errors(survey) == []
    argument_spec = yaml.safe_load((REPO / "playbooks" / "vars" / "release_argument_spec.yml").read_text())
    inputs, defaults = argument_spec["cattle_release_argument_spec"], argument_spec["cattle_release_defaults"]
    questions = {q["variable"]: q for q in survey["spec"]}
    assert {"version", "strategy"} <= set(questions)
    assert questions["version"]["required"] is True and questions["version"]["type"] == "text"
    for variable, question in questions.items():
        assert variable in inputs, f"{variable} is not an input of cattle.aws.release"
        option = inputs[variable]
        assert question["type"] in SPEC_TYPES[option["type"]], (variable, question["type"], option["type"])
        if "choices" in option:
            assert question["type"] == "multiplechoice" and sorted(question["choices"]) == sorted(option["choices"]), variable
        if question.get("default") not in (None, ""):
            assert question["default"] == defaults[variable], f"{variable}: the survey's default differs from the release's"
    # the version rule the question describes is the one the release checks
    validate = (REPO / "plugins" / "plugin_utils" / "release_inputs.py").read_text()
    pattern = re.search(r"\((\^\[A-Za-z0-9\].*?\$)\)", questions["version"]["question_description"]).group(1)
    assert pattern in validate
    assert re.fullmatch(pattern, "1.4.2") and not re.fullmatch(pattern, "-1.4") and questions["version"]["max"] == 64
