# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""The stack lock: one SSM parameter per stack, so two releases of one stack never overlap.

The lock is the String parameter ``{prefix}/{app}/{environment}`` (``{prefix}/{app}/_`` for a
stack without environment; default prefix ``/cattle/locks``). Its value is a JSON document::

    {"cattle_lock": 1, "holder": "alice@ci-7:4242", "version": "1.4.2", "purpose": "release",
     "acquired_at": "2024-05-01T12:00:00Z", "expires_at": "2024-05-01T13:00:00Z", "ttl": 3600,
     "token": "9f86d081884c7d659a2feaa0c55ad015"}

Acquiring a free lock is ``put_parameter(Overwrite=False)``: SSM lets exactly one of several
concurrent writers create the parameter, the others get ``ParameterAlreadyExists``.

Taking a lock over (it expired, or ``force``) cannot be one SSM call, so it is done under a
second, short-lived parameter, the *takeover guard* ``{lock name}.takeover``, itself created with
``Overwrite=False``: only the taker that created the guard re-reads the lock, checks it is still
the document it decided to take over, deletes it and creates its own with ``Overwrite=False``
(a plain acquirer that slipped in between wins, and the taker fails naming it). Environment
names cannot contain ``.``, so a guard never collides with another stack's lock.

Releasing deletes the parameter after checking the token. Releasing an *expired* lock also goes
through the guard (only then may a taker be racing); releasing a live lock needs no guard.

The parameter carries the stack tags (``cattle:app``, ``cattle:environment``,
``cattle:managed-by``) and ``cattle:created-at``, but no ``cattle:version``: the lock belongs to
the stack, not to a fleet, and must never look like a part of one (the version is in the value).

Pure parts (`build_lock`, `parse_lock`, `is_expired`, `decide_acquire`, `decide_release`, the
messages) take plain values; `acquire` / `release` take a boto3 SSM client.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .connection import THROTTLING_CODES
from .errors import FleetAWSErrorHandler
from .errors import FleetError
from .naming import stack_name
from .naming import validate_stack
from .naming import validate_version
from .tags import TAG_CREATED_AT
from .tags import dict_to_tag_list
from .tags import parse_timestamp
from .tags import stack_tags
from .tags import utc_timestamp

DEFAULT_PREFIX = "/cattle/locks"
NO_ENVIRONMENT = "_"
GUARD_SUFFIX = ".takeover"
GUARD_TTL = 60
DEFAULT_TTL = 3600
PURPOSES = ("release", "rollback")
FORMAT = 1
POLL_INTERVAL = 1.0

_PREFIX_RE = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
_PARAMETER_NAME_MAX = 1011

# Decisions of decide_acquire / decide_release
CREATE = "create"            # free: put(Overwrite=False)
UNCHANGED = "unchanged"      # already ours and valid
TAKE_OVER = "take_over"      # expired, or force: guarded delete + put
HELD = "held"                # someone else's, valid: fail (or wait)
DELETE = "delete"            # release: ours (or force)
NOT_HELD = "not_held"        # release: nothing to do
REFUSE = "refuse"            # release: someone else's


# ---- names and documents (pure) ----------------------------------------------------------------


def validate_prefix(prefix):
    """The parameter prefix: ``/`` separated path of SSM name characters, no trailing ``/``."""
    if prefix is None:
        return DEFAULT_PREFIX
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise FleetError(
            f"Invalid parameter_prefix {prefix!r}: it must be an SSM parameter path such as "
            f"'{DEFAULT_PREFIX}': starting with '/', segments of letters, digits, '_', '.' and '-', "
            "no trailing '/'."
        )
    first = prefix.split("/", 2)[1].lower()
    if first.startswith(("aws", "ssm")):
        raise FleetError(f"Invalid parameter_prefix {prefix!r}: SSM reserves names starting with 'aws' or 'ssm'.")
    return prefix


def lock_name(app, environment=None, prefix=None):
    """SSM parameter name of the stack's lock: ``{prefix}/{app}/{environment or _}``."""
    app, environment = validate_stack(app, environment)
    name = f"{validate_prefix(prefix)}/{app}/{environment or NO_ENVIRONMENT}"
    if len(name) + len(GUARD_SUFFIX) > _PARAMETER_NAME_MAX:
        raise FleetError(f"parameter_prefix is too long: the lock name {name!r} exceeds the SSM limit.")
    return name


def guard_name(name):
    """Name of the takeover guard of lock ``name``."""
    return name + GUARD_SUFFIX


def new_token():
    """A random lock token (32 hex characters)."""
    return secrets.token_hex(16)


def _as_datetime(when):
    if when is None:
        return datetime.datetime.now(datetime.timezone.utc)
    if isinstance(when, (int, float)):
        return datetime.datetime.fromtimestamp(when, tz=datetime.timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def build_lock(holder, version=None, purpose="release", ttl=DEFAULT_TTL, token=None, now=None):
    """The lock document (dict) for a new lock acquired at ``now`` (datetime/epoch; default now)."""
    if not holder or not isinstance(holder, str):
        raise FleetError(f"holder must be a non-empty string naming who holds the lock; got {holder!r}.")
    if version is not None:
        version = validate_version(version)
    if purpose not in PURPOSES:
        raise FleetError(f"Invalid purpose {purpose!r}: purpose must be one of {', '.join(PURPOSES)}.")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise FleetError(f"ttl must be a positive number of seconds; got {ttl!r}.")
    acquired = _as_datetime(now).replace(microsecond=0)
    return {
        "cattle_lock": FORMAT,
        "holder": holder,
        "version": version,
        "purpose": purpose,
        "acquired_at": utc_timestamp(acquired),
        "expires_at": utc_timestamp(acquired + datetime.timedelta(seconds=ttl)),
        "ttl": ttl,
        "token": token or new_token(),
    }


def dump_lock(lock):
    """The parameter value of a lock document (compact JSON, sorted keys)."""
    return json.dumps(lock, sort_keys=True, separators=(",", ":"))


def parse_lock(value):
    """The lock document in a parameter value.

    A value that is not a cattle.aws lock document comes back as a lock with holder
    ``"unknown (unreadable lock value)"``, no token and no expiry: it is held until forced.
    """
    try:
        lock = json.loads(value)
    except (TypeError, ValueError):
        lock = None
    if not isinstance(lock, dict) or not isinstance(lock.get("token"), str):
        return {"cattle_lock": None, "holder": "unknown (unreadable lock value)", "version": None,
                "purpose": None, "acquired_at": None, "expires_at": None, "ttl": None, "token": None,
                "raw": value}
    return {
        "cattle_lock": lock.get("cattle_lock"),
        "holder": str(lock.get("holder") or "unknown"),
        "version": lock.get("version"),
        "purpose": lock.get("purpose"),
        "acquired_at": lock.get("acquired_at"),
        "expires_at": lock.get("expires_at"),
        "ttl": lock.get("ttl"),
        "token": lock["token"],
    }


def is_expired(lock, now=None):
    """True when the lock's expires_at is at or before ``now``. No readable expiry: never expires."""
    expires = parse_timestamp(lock.get("expires_at"))
    if expires is None:
        return False
    return _as_datetime(now) >= expires


def decide_acquire(current, token=None, force=False, now=None):
    """What acquiring does given the current lock document (None when free).

    CREATE (free), UNCHANGED (held with ``token`` and not expired), TAKE_OVER (expired — ours or
    not — or ``force``), HELD (someone else's, not expired).
    """
    if current is None:
        return CREATE
    ours = token is not None and current.get("token") == token
    if is_expired(current, now):
        return TAKE_OVER
    if ours:
        return UNCHANGED
    return TAKE_OVER if force else HELD


def decide_release(current, token=None, force=False):
    """NOT_HELD (free), DELETE (ours, or ``force``), REFUSE (someone else's, or no token)."""
    if current is None:
        return NOT_HELD
    if force or (token is not None and current.get("token") == token):
        return DELETE
    return REFUSE


# ---- messages (pure) -------------------------------------------------------------------------


def describe_holder(lock):
    """``alice@ci:42 (release of version 1.4.2) since 2024-05-01T12:00:00Z, until 2024-05-01T13:00:00Z``."""
    what = lock.get("purpose") or "unknown purpose"
    if lock.get("version"):
        what = f"{what} of version {lock['version']}"
    text = f"{lock.get('holder')} ({what})"
    if lock.get("acquired_at"):
        text += f" since {lock['acquired_at']}"
    text += f", until {lock['expires_at']}" if lock.get("expires_at") else ", with no expiry"
    return text


def held_message(stack, name, lock, waited=0):
    waited_text = f" (still held after waiting {waited} s)" if waited else ""
    if lock.get("expires_at"):
        later = f"; it can be taken over without force_unlock after {lock['expires_at']}"
    else:
        later = ""
    return (
        f"Stack {stack} is locked by {describe_holder(lock)}{waited_text} (SSM parameter {name}). "
        f"Wait for that run to finish, or re-run with force_unlock=true to take the lock over if you are "
        f"sure it is dead{later}."
    )


def stale_warning(stack, lock):
    return (
        f"Took over the expired lock of stack {stack} held by {describe_holder(lock)}; "
        "that run did not release it (it crashed or exceeded its ttl)."
    )


def forced_warning(stack, lock):
    return (
        f"force_unlock: took over the lock of stack {stack} held by {describe_holder(lock)}. "
        "If that run is still going, it no longer holds the lock."
    )


def forced_release_warning(stack, lock):
    return f"force_unlock: released the lock of stack {stack} held by {describe_holder(lock)}."


def refuse_message(stack, name, lock, token):
    why = "no token was given" if token is None else "the token given does not match it"
    return (
        f"Cannot release the lock of stack {stack}: it is held by {describe_holder(lock)} "
        f"(SSM parameter {name}) and {why}. Pass the token returned when the lock was acquired "
        "(lock.token), or force_unlock=true to release it anyway."
    )


def race_message(stack, name, lock):
    return (
        f"Lost the race for the lock of stack {stack}: it is now held by {describe_holder(lock)} "
        f"(SSM parameter {name}), who acquired it while this run was taking it over."
    )


def guard_message(stack, name, guard):
    return (
        f"Another run is taking over the lock of stack {stack} right now (takeover guard {guard_name(name)} "
        f"held by {describe_holder(guard)}). Re-run in a moment."
    )


# ---- AWS calls ---------------------------------------------------------------------------------


class _LockErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("ParameterNotFound")


_retry = AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=10, catch_extra_error_codes=THROTTLING_CODES)


@_LockErrors.list_error_handler("read the stack lock parameter", default_value=None)
@_retry
def get_lock_value(client, name):
    """The parameter's value, or None when it does not exist."""
    return client.get_parameter(Name=name)["Parameter"]["Value"]


@_LockErrors.common_error_handler("create the stack lock parameter")
@_retry
def put_lock_value(client, name, value, tags):
    """Create the parameter with Overwrite=False; False when it already exists."""
    try:
        client.put_parameter(Name=name, Value=value, Type="String", Overwrite=False, Tags=dict_to_tag_list(tags),
                             Description="cattle.aws stack lock")
    except is_boto3_error_code("ParameterAlreadyExists"):
        return False
    return True


@_LockErrors.deletion_error_handler("delete the stack lock parameter")
@_retry
def delete_lock_value(client, name):
    """Delete the parameter; False when it did not exist."""
    client.delete_parameter(Name=name)
    return True


def read_lock(client, name):
    """The current lock document, or None when the stack is not locked."""
    value = get_lock_value(client, name)
    return None if value is None else parse_lock(value)


# ---- acquire / release -------------------------------------------------------------------------


def _lock_tags(app, environment, now):
    tags = stack_tags(app, environment)
    tags[TAG_CREATED_AT] = utc_timestamp(_as_datetime(now).replace(microsecond=0))
    return tags


def _public(lock, name):
    if lock is None:
        return None
    public = {k: v for k, v in lock.items() if k != "cattle_lock"}
    public["name"] = name
    return public


def _take_over(client, name, stack, seen, new_lock, tags, clock):
    """Replace lock document ``seen`` by ``new_lock`` under the takeover guard; FleetError if beaten."""
    guard = build_lock(new_lock["holder"], new_lock.get("version"), new_lock["purpose"], GUARD_TTL,
                       new_lock["token"], now=clock())
    if not put_lock_value(client, guard_name(name), dump_lock(guard), tags):
        other = read_lock(client, guard_name(name))
        if other is not None and not is_expired(other, clock()):
            raise FleetError(guard_message(stack, name, other))
        if other is not None:
            # A guard left behind by a run that died mid-takeover: clear it, try once more.
            # (Gone already: the other taker just finished; never delete a guard we did not see.)
            delete_lock_value(client, guard_name(name))
        if not put_lock_value(client, guard_name(name), dump_lock(guard), tags):
            raise FleetError(guard_message(stack, name, read_lock(client, guard_name(name)) or {}))
    try:
        current = read_lock(client, name)
        if current is not None and current.get("token") != seen.get("token"):
            raise FleetError(race_message(stack, name, current))
        if current is not None:
            delete_lock_value(client, name)
        if not put_lock_value(client, name, dump_lock(new_lock), tags):
            raise FleetError(race_message(stack, name, read_lock(client, name) or {"holder": "unknown"}))
    finally:
        delete_lock_value(client, guard_name(name))


def acquire(client, app, environment=None, holder=None, version=None, purpose="release", ttl=DEFAULT_TTL,
            token=None, force=False, wait=0, prefix=None, check_mode=False, clock=time.time, sleep=time.sleep):
    """Acquire the lock of stack (app, environment); return a result dict for the module.

    ``token`` given and matching the current lock: the lock is ours, nothing changes (its expiry is
    not extended); given and the lock is free or expired: the new lock gets that token. ``wait``
    seconds: keep retrying while another run holds the lock. Raises FleetError when held.
    Result: changed, outcome (acquired / unchanged / taken_over), lock, previous, warnings, diff.
    """
    name = lock_name(app, environment, prefix)
    stack = stack_name(app, environment)
    app, environment = validate_stack(app, environment)
    build_lock(holder, version, purpose, ttl, token)  # validate every input before any call
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
        raise FleetError(f"wait must be a number of seconds >= 0; got {wait!r}.")
    started = clock()
    while True:
        current = read_lock(client, name)
        decision = decide_acquire(current, token, force, clock())
        if decision == HELD:
            remaining = started + wait - clock()
            if remaining > 0:
                sleep(min(POLL_INTERVAL, remaining))
                continue
            raise FleetError(held_message(stack, name, current, waited=wait), lock=_public(current, name))
        if decision == UNCHANGED:
            return _result(False, UNCHANGED, name, current, current, [])
        new_lock = build_lock(holder, version, purpose, ttl, token, now=clock())
        warnings = []
        if decision == TAKE_OVER and current.get("token") != token:
            warnings.append(stale_warning(stack, current) if is_expired(current, clock()) else forced_warning(stack, current))
        if check_mode:
            return _result(True, "acquired" if decision == CREATE else "taken_over", name, current, new_lock, warnings)
        tags = _lock_tags(app, environment, clock())
        if decision == CREATE:
            if not put_lock_value(client, name, dump_lock(new_lock), tags):
                continue  # somebody created it since we read: look again (held -> fail or wait)
            return _result(True, "acquired", name, None, new_lock, warnings)
        _take_over(client, name, stack, current, new_lock, tags, clock)
        return _result(True, "taken_over", name, current, new_lock, warnings)


def release(client, app, environment=None, token=None, force=False, prefix=None, check_mode=False, clock=time.time):
    """Release the lock of stack (app, environment) if ``token`` is its token (or ``force``).

    Result: changed, outcome (released / not_held), lock (None), previous, warnings, diff.
    Raises FleetError naming the holder when the token does not match.
    """
    name = lock_name(app, environment, prefix)
    stack = stack_name(app, environment)
    app, environment = validate_stack(app, environment)
    current = read_lock(client, name)
    decision = decide_release(current, token, force)
    if decision == NOT_HELD:
        return _result(False, NOT_HELD, name, None, None, [])
    if decision == REFUSE:
        raise FleetError(refuse_message(stack, name, current, token), lock=_public(current, name))
    warnings = []
    if current.get("token") != token:
        warnings.append(forced_release_warning(stack, current))
    if check_mode:
        return _result(True, "released", name, current, None, warnings)
    if not is_expired(current, clock()):
        delete_lock_value(client, name)
        return _result(True, "released", name, current, None, warnings)
    # Expired: a taker may be replacing it right now; only delete the document we checked.
    guard = build_lock("release of " + str(current.get("holder")), None, "release", GUARD_TTL, now=clock())
    if not put_lock_value(client, guard_name(name), dump_lock(guard), _lock_tags(app, environment, clock())):
        other = read_lock(client, guard_name(name)) or {}
        raise FleetError(guard_message(stack, name, other))
    try:
        again = read_lock(client, name)
        if again is None:
            return _result(False, NOT_HELD, name, None, None, [])
        if again.get("token") != current.get("token"):
            raise FleetError(race_message(stack, name, again), lock=_public(again, name))
        delete_lock_value(client, name)
    finally:
        delete_lock_value(client, guard_name(name))
    return _result(True, "released", name, current, None, warnings)


def _result(changed, action, name, before, after, warnings):
    before, after = _public(before, name), _public(after, name)
    return {
        "changed": changed,
        "outcome": action,
        "name": name,
        "lock": after,
        "previous": before if changed else None,
        "warnings": warnings,
        "diff": {"before": before or {}, "after": after or {}},
    }
