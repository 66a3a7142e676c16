"""cattle.aws.stack_lock through ansible against the local AWS endpoint; the race through lock.py."""

from __future__ import annotations

import datetime
import json
import threading
import time

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import lock as L
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.integration

MODULE = "cattle.aws.stack_lock"
NAME = "/cattle/locks/shop/prod"


def _args(**overrides):
    args = dict(app="shop", environment="prod", version="1.4.2", holder="alice@ci:42")
    args.update(overrides)
    return args


def _value(aws, name=NAME):
    params = aws.client("ssm").get_parameters(Names=[name])["Parameters"]
    return json.loads(params[0]["Value"]) if params else None


def _ok(result):
    assert result.get("failed") is not True, result.get("msg")
    return result


def _write_lock(aws, holder="bob@old:7", version="1.4.1", ttl=60, seconds_ago=0, token="tok-bob"):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    lock = L.build_lock(holder, version, "release", ttl, token=token, now=when)
    aws.client("ssm").put_parameter(Name=NAME, Value=L.dump_lock(lock), Type="String")
    aws.clear_calls()
    return lock


def test_acquire_free_stack(aws, run_module):
    result = _ok(run_module(aws, MODULE, _args(ttl=600)))
    assert result["changed"] is True and result["outcome"] == "acquired"
    lock = result["lock"]
    assert lock["name"] == NAME and lock["holder"] == "alice@ci:42" and lock["version"] == "1.4.2"
    assert lock["purpose"] == "release" and lock["ttl"] == 600 and len(lock["token"]) == 32
    stored = _value(aws)
    assert stored["token"] == lock["token"] and stored["expires_at"] == lock["expires_at"]
    param = aws.client("ssm").get_parameter(Name=NAME)["Parameter"]
    assert param["Type"] == "String"
    tags = {t["Key"]: t["Value"] for t in aws.client("ssm").list_tags_for_resource(
        ResourceType="Parameter", ResourceId=NAME)["TagList"]}
    assert tags["cattle:app"] == "shop" and tags["cattle:environment"] == "prod"
    assert tags["cattle:managed-by"] == "cattle.aws" and "cattle:version" not in tags


def test_default_holder_and_no_environment(aws, run_module):
    result = _ok(run_module(aws, MODULE, dict(app="shop")))
    assert result["lock"]["name"] == "/cattle/locks/shop/_"
    user_host, _sep, pid = result["lock"]["holder"].rpartition(":")
    assert "@" in user_host and pid.isdigit()


def test_second_acquirer_fails_at_once_naming_holder(aws, run_module):
    first = _ok(run_module(aws, MODULE, _args()))
    second = run_module(aws, MODULE, _args(holder="carol@laptop:9", version="1.4.3"))
    assert second["failed"] is True
    msg = second["msg"]
    assert msg.startswith("Stack shop-prod is locked by alice@ci:42 (release of version 1.4.2) since ")
    assert first["lock"]["acquired_at"] in msg and f"until {first['lock']['expires_at']}" in msg
    assert "force_unlock=true" in msg and NAME in msg
    assert second["lock"]["holder"] == "alice@ci:42"
    assert _value(aws)["token"] == first["lock"]["token"]


def test_reacquire_with_token_is_idempotent(aws, run_module):
    first = _ok(run_module(aws, MODULE, _args()))
    aws.clear_calls()
    again = _ok(run_module(aws, MODULE, _args(token=first["lock"]["token"])))
    assert again["changed"] is False and again["outcome"] == "unchanged"
    assert again["lock"]["expires_at"] == first["lock"]["expires_at"]
    assert aws.mutating_calls() == []


def test_stale_lock_taken_over_with_warning(aws, run_module):
    _write_lock(aws, ttl=60, seconds_ago=120)
    result = _ok(run_module(aws, MODULE, _args()))
    assert result["changed"] is True and result["outcome"] == "taken_over"
    assert result["previous"]["holder"] == "bob@old:7"
    assert any("expired lock of stack shop-prod held by bob@old:7 (release of version 1.4.1)" in w
               for w in result.get("warnings", []))
    assert _value(aws)["holder"] == "alice@ci:42"
    assert _value(aws, NAME + ".takeover") is None


def test_tiny_ttl_expires(aws, run_module):
    _ok(run_module(aws, MODULE, _args(holder="bob@old:7", ttl=1)))
    time.sleep(2)
    result = _ok(run_module(aws, MODULE, _args()))
    assert result["outcome"] == "taken_over" and result["previous"]["holder"] == "bob@old:7"


def test_force_unlock_takes_over_live_lock(aws, run_module):
    _write_lock(aws, ttl=3600)
    result = _ok(run_module(aws, MODULE, _args(force_unlock=True)))
    assert result["outcome"] == "taken_over"
    assert any(w.startswith("force_unlock: took over the lock of stack shop-prod held by bob@old:7") for w in result["warnings"])
    assert _value(aws)["holder"] == "alice@ci:42"


def test_release_by_token(aws, run_module):
    lock = _ok(run_module(aws, MODULE, _args()))["lock"]
    result = _ok(run_module(aws, MODULE, dict(app="shop", environment="prod", state="released", token=lock["token"])))
    assert result["changed"] is True and result["outcome"] == "released" and result["lock"] is None
    assert _value(aws) is None
    again = _ok(run_module(aws, MODULE, dict(app="shop", environment="prod", state="released", token=lock["token"])))
    assert again["changed"] is False and again["outcome"] == "not_held"


def test_release_wrong_token_refused_then_forced(aws, run_module):
    _write_lock(aws)
    refused = run_module(aws, MODULE, dict(app="shop", environment="prod", state="released", token="nope"))
    assert refused["failed"] is True
    assert refused["msg"].startswith("Cannot release the lock of stack shop-prod: it is held by bob@old:7")
    assert "does not match" in refused["msg"] and "force_unlock=true" in refused["msg"]
    assert _value(aws)["token"] == "tok-bob" and aws.mutating_calls() == []
    forced = _ok(run_module(aws, MODULE, dict(app="shop", environment="prod", state="released", force_unlock=True)))
    assert forced["changed"] is True and any("bob@old:7" in w for w in forced["warnings"])
    assert _value(aws) is None


def test_check_mode_makes_no_mutating_call(aws, run_module):
    result = _ok(run_module(aws, MODULE, _args(), check=True, diff=True))
    assert result["changed"] is True and result["outcome"] == "acquired"
    assert result["diff"]["before"] == {} and result["diff"]["after"]["holder"] == "alice@ci:42"
    _write_lock(aws, seconds_ago=120)
    taken = _ok(run_module(aws, MODULE, _args(), check=True))
    assert taken["outcome"] == "taken_over"
    released = _ok(run_module(aws, MODULE, dict(app="shop", environment="prod", state="released", token="tok-bob"),
                              check=True))
    assert released["outcome"] == "released"
    assert aws.mutating_calls() == []
    assert _value(aws)["token"] == "tok-bob"


def test_diff_on_release(aws, run_module):
    lock = _write_lock(aws)
    result = _ok(run_module(aws, MODULE, dict(app="shop", environment="prod", state="released", token="tok-bob"), diff=True))
    assert result["diff"]["before"]["token"] == lock["token"] and result["diff"]["after"] == {}


def test_concurrent_acquirers_exactly_one_wins(aws):
    barrier = threading.Barrier(8)
    outcomes = {}

    def attempt(i):
        client = aws.client("ssm")
        barrier.wait()
        try:
            outcomes[i] = L.acquire(client, "shop", "prod", holder=f"racer-{i}", version="1.0")
        except FleetError as e:
            outcomes[i] = e

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in outcomes.values() if isinstance(r, dict)]
    assert len(outcomes) == 8 and len(winners) == 1
    holder = winners[0]["lock"]["holder"]
    assert _value(aws)["holder"] == holder
    for loser in (r for r in outcomes.values() if isinstance(r, FleetError)):
        assert f"locked by {holder}" in loser.msg


def test_concurrent_stale_takeovers_exactly_one_wins(aws):
    _write_lock(aws, ttl=60, seconds_ago=120)
    barrier = threading.Barrier(6)
    outcomes = {}

    def attempt(i):
        client = aws.client("ssm")
        barrier.wait()
        try:
            outcomes[i] = L.acquire(client, "shop", "prod", holder=f"taker-{i}", version="2.0")
        except FleetError as e:
            outcomes[i] = e

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in outcomes.values() if isinstance(r, dict)]
    assert len(outcomes) == 6 and len(winners) == 1, outcomes
    assert _value(aws)["holder"] == winners[0]["lock"]["holder"]
    assert _value(aws, NAME + ".takeover") is None
