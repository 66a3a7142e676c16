# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: used by the action plugin cattle.aws.release_inputs. Not a public API.

"""The inputs of the release and rollback playbooks: merged, validated, typed; the record started.

Pure functions (no ansible variables, no AWS): `merge_inputs` lays the sources over the defaults,
`validate_inputs` checks them against the argument spec (playbooks/vars/release_argument_spec.yml)
and the rules between options, and returns them typed; `start_record` starts the release record.
Every message names the option and ends the run before any change.
"""

from __future__ import annotations

import datetime
import json
import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.utils.vars import merge_hash

PURPOSES = ("release", "rollback")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
NAME = re.compile(r"^[a-z](-?[a-z0-9])*$")
VERSION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
# Given on the command line (-e keep=3 -e retry_failed=false) they are strings: the spec accepts them as
# convertible, and the playbooks compare and test them as what they are.
TYPED = ("keep", "lock_ttl", "bake_seconds", "releases_per_week", "retry_failed", "capacity_from_live")
INVALID = "Invalid release inputs, nothing was changed: "


class InputError(Exception):
    """Invalid inputs; the message names the options."""


def merge_inputs(defaults, *sources):
    """The defaults with each source laid over them in turn (dicts merged recursively); a None in a
    source is not given. Sources are dicts of the inputs (the stack, the stack file, the run's)."""
    merged = dict(defaults)
    for source in sources:
        merged = merge_hash(merged, {k: v for k, v in (source or {}).items() if v is not None}, recursive=True)
    return merged


def dependent_problems(inputs, purpose):
    """The messages of the rules between options that inputs (typed) break; [] when none."""
    app, environment = inputs["app"], inputs["environment"] or ""
    version, rollback_to = _text(inputs["version"]), _text(inputs["rollback_to"])
    canary = inputs.get("canary") or {}
    steps = canary.get("steps") or []
    capacity = inputs.get("capacity") or {}
    checks = [
        (bool(NAME.match(app)) and len(app) <= 32,
         f"app: {json.dumps(app)} must be 1 to 32 lowercase letters, digits and single hyphens, starting with a letter"),
        (not environment or (bool(NAME.match(environment)) and len(environment) <= 24),
         f"environment: {json.dumps(environment)} must be 1 to 24 lowercase letters, digits and single hyphens"),
        (bool(version) or purpose != "release", "version is required, for example -e version=1.4.2"),
        (not version or bool(VERSION.match(version)),
         f"version: {json.dumps(inputs['version'])} must be 1 to 64 letters, digits, '.', '_' and '-', starting and ending "
         "with a letter or digit"),
        (not rollback_to or bool(VERSION.match(rollback_to)),
         f"rollback_to: {json.dumps(inputs['rollback_to'])} must be a version (1 to 64 letters, digits, '.', '_' and '-') "
         "or previous"),
        (len([a for a in (inputs["listener_arn"], inputs["rule_arn"]) if a]) == 1,
         "give exactly one of listener_arn and rule_arn (the traffic point)"),
        (bool(inputs["subnet_ids"]) or purpose != "release", "subnet_ids is required (the subnets of the new fleet)"),
        (bool(inputs["instance_type"]) or purpose != "release", "instance_type is required"),
        (inputs["strategy"] != "canary" or (bool(steps) and steps[-1] == 100), f"canary.steps: {json.dumps(steps)} must end at 100"),
        (all(0 < s <= 100 for s in steps), f"canary.steps: {json.dumps(steps)} must be percentages from 1 to 100"),
        (steps == sorted(steps) and len(set(steps)) == len(steps), f"canary.steps: {json.dumps(steps)} must be strictly ascending"),
        (canary.get("pause_seconds", 0) >= 0 and inputs["bake_seconds"] >= 0 and inputs["health"]["warmup_seconds"] >= 0
         and inputs["keep"] >= 0 and inputs["lock_ttl"] > 0,
         "canary.pause_seconds, bake_seconds, health.warmup_seconds and keep must not be negative, lock_ttl must be positive"),
        (not capacity or ("min" in capacity and "max" in capacity
                          and capacity["min"] <= capacity.get("desired", capacity["min"]) <= capacity["max"]),
         f"capacity: {json.dumps(capacity)} needs min and max, and min <= desired <= max"),
    ]
    return [message for passed, message in checks if not passed]


def _text(value):
    return "" if value is None else str(value)


def validate_inputs(spec, inputs, purpose):
    """inputs checked against the argument spec, then against the rules between options; returns them
    with TYPED converted. Raises InputError naming every option that is wrong."""
    if purpose not in PURPOSES:
        raise InputError(f"purpose: {json.dumps(purpose)} must be one of {', '.join(PURPOSES)}")
    validated = ArgumentSpecValidator(spec).validate(inputs)
    if validated.error_messages:
        raise InputError(INVALID + "; ".join(validated.error_messages))
    typed = dict(inputs, **{key: validated.validated_parameters[key] for key in TYPED if key in inputs})
    problems = dependent_problems(typed, purpose)
    if problems:
        raise InputError(INVALID + "; ".join(problems))
    return typed


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(TIME_FORMAT)


def label(inputs, purpose):
    """[app/environment version] (rollback: [app/environment rollback]): the prefix of the run's messages."""
    environment = ("/" + inputs["environment"]) if inputs["environment"] else ""
    return f"[{inputs['app']}{environment} {_text(inputs['version']) if purpose == 'release' else 'rollback'}]"


def start_record(inputs, purpose, started):
    """The release record (its format: the cattle.aws.release_report filter) as the validation starts."""
    return {
        "app": inputs["app"],
        "environment": inputs["environment"] or None,
        "version": _text(inputs["version"]),
        "previous_version": None,
        "strategy": inputs["strategy"] if purpose == "release" else "rollback",
        "started": started,
        "result": "success",
        "phases": {"validate": {"started": started}},
        "weights": [],
        "fleets": {},
        "instance_prices": inputs["instance_prices"],
        "currency": inputs["currency"],
        "releases_per_week": float(inputs["releases_per_week"]),
    }
