# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Names of a stack's resources, within AWS limits.

Inputs (validated by `validate_app`, `validate_environment`, `validate_version`):

- ``app``: 1-32 characters, lowercase letters, digits and single hyphens; starts with a letter,
  does not end with a hyphen (``shop``, ``order-api``).
- ``environment`` (optional; ``None`` or ``""`` means "no environment"): same rules, 1-24 chars.
- ``version``: 1-64 characters, letters, digits, ``.``, ``_`` and ``-``; starts and ends with a
  letter or digit (``1.4.2``, ``v2``, ``2024.05.01-rc_1``, a git sha).

Outputs (`fleet_names`), all deterministic functions of (app, environment, version):

- launch template and auto scaling group: ``{app}-{environment}-{version}`` (or
  ``{app}-{version}`` without environment). At most 32+1+24+1+64 = 122 characters, all of
  ``[A-Za-z0-9._-]``: inside the launch template rule (3-128 of ``[A-Za-z0-9()./_-]``) and the
  auto scaling group rule (1-255 characters, no ``:``).
- target group: ``{readable prefix}-{8 hex of sha256("app/environment/version")}``, at most 32 of
  ``[A-Za-z0-9-]``, never starting or ending with ``-``, never starting with ``internal-``. The
  prefix is the fleet name with other characters turned into ``-`` and cut to 23 characters, so
  people recognise it; the hash keeps names of distinct versions apart.

Names are a convenience: ownership is decided by tags (see tags.py), never by names. Within one
stack the names are injective in the version. Across stacks the readable names can coincide
(app ``a-b`` environment ``c`` vs app ``a`` environment ``b-c``); modules must therefore check the
ownership tags of a resource found by name before using it.
"""

from __future__ import annotations

import hashlib
import re

from .errors import FleetError

APP_MAX_LENGTH = 32
ENVIRONMENT_MAX_LENGTH = 24
VERSION_MAX_LENGTH = 64

TARGET_GROUP_NAME_MAX_LENGTH = 32
TARGET_GROUP_HASH_LENGTH = 8
# 32 - len("-") - 8 hex
TARGET_GROUP_PREFIX_MAX_LENGTH = TARGET_GROUP_NAME_MAX_LENGTH - 1 - TARGET_GROUP_HASH_LENGTH

_SLUG_RE = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_NOT_TG_CHAR_RE = re.compile(r"[^A-Za-z0-9-]")
_HYPHENS_RE = re.compile(r"-{2,}")


def _slug_rules(max_length):
    return (
        f"1 to {max_length} characters: lowercase letters (a-z), digits and single hyphens, "
        "starting with a letter and not ending with a hyphen (for example 'shop' or 'order-api')"
    )


def _validate_slug(option, value, max_length):
    if not isinstance(value, str):
        raise FleetError(f"{option} must be a string of {_slug_rules(max_length)}; got {value!r}.")
    if not value or len(value) > max_length or not _SLUG_RE.fullmatch(value):
        raise FleetError(f"Invalid {option} {value!r}: {option} must be {_slug_rules(max_length)}.")
    return value


def validate_app(app):
    """Return app if valid, else raise FleetError telling what the option `app` allows."""
    return _validate_slug("app", app, APP_MAX_LENGTH)


def normalize_environment(environment):
    """``None`` and ``""`` both mean "no environment"; return None for them."""
    if environment is None or environment == "":
        return None
    return environment


def validate_environment(environment):
    """Return the environment (None when not given) if valid, else raise FleetError."""
    environment = normalize_environment(environment)
    if environment is None:
        return None
    return _validate_slug("environment", environment, ENVIRONMENT_MAX_LENGTH)


def validate_version(version):
    """Return version if valid, else raise FleetError telling what the option `version` allows."""
    rules = (
        f"1 to {VERSION_MAX_LENGTH} characters: letters, digits, '.', '_' and '-', starting and "
        "ending with a letter or digit (for example '1.4.2', 'v2' or '2024.05.01-rc_1')"
    )
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        # YAML turns `version: 1.4` into a float; say so rather than guess the intended text.
        raise FleetError(
            f"version must be a string of {rules}; got the number {version!r}. Quote it in YAML "
            f"(version: '{version}')."
        )
    if not isinstance(version, str):
        raise FleetError(f"version must be a string of {rules}; got {version!r}.")
    if not version or len(version) > VERSION_MAX_LENGTH or not _VERSION_RE.fullmatch(version):
        raise FleetError(f"Invalid version {version!r}: version must be {rules}.")
    return version


def validate_stack(app, environment=None):
    """Validate app and environment; return (app, environment-or-None)."""
    return validate_app(app), validate_environment(environment)


def stack_name(app, environment=None):
    """Readable name of the stack: ``{app}-{environment}`` or ``{app}`` (for locks, reports)."""
    app, environment = validate_stack(app, environment)
    return app if environment is None else f"{app}-{environment}"


def _fleet_base_name(app, environment, version):
    parts = [app] if environment is None else [app, environment]
    parts.append(version)
    return "-".join(parts)


def fleet_hash(app, environment, version):
    """8 hex characters of sha256("app/environment/version") (environment "" when absent)."""
    key = f"{app}/{environment or ''}/{version}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:TARGET_GROUP_HASH_LENGTH]


def _target_group_name(base, digest):
    prefix = _NOT_TG_CHAR_RE.sub("-", base)
    prefix = _HYPHENS_RE.sub("-", prefix)
    prefix = prefix[:TARGET_GROUP_PREFIX_MAX_LENGTH].strip("-")
    if prefix.lower().startswith("internal-"):
        # AWS rejects target group names starting with "internal-" (reserved for internal ELBs).
        prefix = prefix[:8] + prefix[9:]
    # The prefix starts with a letter (app does), so it is never empty.
    return f"{prefix}-{digest}"


def fleet_names(app, environment, version):
    """All AWS names of one fleet, validated, as a dict.

    Returns ``{"launch_template": str, "auto_scaling_group": str, "target_group": str,
    "name_tag": str}`` for (app, environment, version). Raises FleetError on invalid input.
    """
    app, environment = validate_stack(app, environment)
    version = validate_version(version)
    base = _fleet_base_name(app, environment, version)
    return {
        "launch_template": base,
        "auto_scaling_group": base,
        "target_group": _target_group_name(base, fleet_hash(app, environment, version)),
        "name_tag": base,
    }
