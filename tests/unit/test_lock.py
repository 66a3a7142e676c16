"""Stack lock without AWS: names, the lock document, expiry, decisions, messages, and the call
sequence of acquire/release against a fake SSM client."""

from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import lock as L
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit

T0 = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
EPOCH0 = T0.timestamp()


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


# ---- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("app,env,prefix,expected", [
    ("shop", "prod", None, "/cattle/locks/shop/prod"),
    ("shop", None, None, "/cattle/locks/shop/_"),
    ("shop", "", None, "/cattle/locks/shop/_"),
    ("order-api", "staging", "/acme/locks", "/acme/locks/order-api/staging"),
])
def test_lock_name(app, env, prefix, expected):
    assert L.lock_name(app, env, prefix) == expected
    assert L.guard_name(expected) == expected + ".takeover"


@pytest.mark.parametrize("prefix", ["cattle/locks", "/cattle/locks/", "/cattle//locks", "/aws/locks", "/SSM-x", "/a b", ""])
def test_bad_prefix(prefix):
    with pytest.raises(FleetError, match="parameter_prefix"):
        L.lock_name("shop", "prod", prefix)


def test_names_validated():
    with pytest.raises(FleetError, match="Invalid app"):
        L.lock_name("Shop", "prod")
    with pytest.raises(FleetError, match="Invalid environment"):
        L.lock_name("shop", "prod.takeover")


# ---- document ---------------------------------------------------------------------------------


def test_build_and_parse_round_trip():
    lock = L.build_lock("alice@ci:42", "1.4.2", "release", 3600, now=T0.replace(microsecond=123))
    assert lock["acquired_at"] == "2024-05-01T12:00:00Z"
    assert lock["expires_at"] == "2024-05-01T13:00:00Z"
    assert lock["ttl"] == 3600 and lock["cattle_lock"] == 1
    assert len(lock["token"]) == 32 and int(lock["token"], 16) >= 0
    value = L.dump_lock(lock)
    assert json.loads(value) == lock
    assert L.parse_lock(value) == lock


def test_tokens_are_random_and_can_be_given():
    assert L.build_lock("a", now=T0)["token"] != L.build_lock("a", now=T0)["token"]
    assert L.build_lock("a", token="mine", now=T0)["token"] == "mine"
    assert L.build_lock("a", now=EPOCH0 + 0.9)["acquired_at"] == "2024-05-01T12:00:00Z"


@pytest.mark.parametrize("kwargs,match", [
    (dict(holder=""), "holder"),
    (dict(holder="a", version="1.4"), None),
    (dict(holder="a", version="bad version"), "Invalid version"),
    (dict(holder="a", purpose="deploy"), "purpose"),
    (dict(holder="a", ttl=0), "ttl"),
    (dict(holder="a", ttl=True), "ttl"),
])
def test_build_lock_validates(kwargs, match):
    if match is None:
        assert L.build_lock(**kwargs, now=T0)["version"] == "1.4"
    else:
        with pytest.raises(FleetError, match=match):
            L.build_lock(**kwargs, now=T0)


@pytest.mark.parametrize("value", ["", "not json", "[]", '{"holder": "x"}', "null"])
def test_unreadable_value_is_held_forever(value):
    lock = L.parse_lock(value)
    assert lock["token"] is None and lock["holder"].startswith("unknown")
    assert not L.is_expired(lock, at(10 ** 9))
    assert L.decide_acquire(lock, token=None, now=at(10 ** 9)) == L.HELD
    assert L.decide_acquire(lock, force=True, now=T0) == L.TAKE_OVER


def test_expiry_boundary():
    lock = L.build_lock("a", ttl=60, now=T0)
    assert not L.is_expired(lock, at(59))
    assert L.is_expired(lock, at(60))
    assert L.is_expired(lock, EPOCH0 + 61)


# ---- decisions ------------------------------------------------------------------------------

OURS = L.build_lock("me", ttl=60, token="tok-me", now=T0)


@pytest.mark.parametrize("current,token,force,when,expected", [
    (None, None, False, 0, L.CREATE),
    (None, "tok-me", True, 0, L.CREATE),
    (OURS, None, False, 10, L.HELD),
    (OURS, "other", False, 10, L.HELD),
    (OURS, "tok-me", False, 10, L.UNCHANGED),
    (OURS, "tok-me", True, 10, L.UNCHANGED),
    (OURS, None, True, 10, L.TAKE_OVER),
    (OURS, None, False, 60, L.TAKE_OVER),
    (OURS, "tok-me", False, 60, L.TAKE_OVER),
])
def test_decide_acquire(current, token, force, when, expected):
    assert L.decide_acquire(current, token, force, at(when)) == expected


@pytest.mark.parametrize("current,token,force,expected", [
    (None, None, False, L.NOT_HELD),
    (None, "x", True, L.NOT_HELD),
    (OURS, "tok-me", False, L.DELETE),
    (OURS, "other", False, L.REFUSE),
    (OURS, None, False, L.REFUSE),
    (OURS, "other", True, L.DELETE),
    (OURS, None, True, L.DELETE),
])
def test_decide_release(current, token, force, expected):
    assert L.decide_release(current, token, force) == expected


def test_messages_name_holder_version_times_and_way_out():
    lock = L.build_lock("alice@ci:42", "1.4.2", "release", 3600, now=T0)
    msg = L.held_message("shop-prod", "/cattle/locks/shop/prod", lock)
    for part in ("shop-prod", "alice@ci:42", "version 1.4.2", "since 2024-05-01T12:00:00Z",
                 "until 2024-05-01T13:00:00Z", "force_unlock=true", "/cattle/locks/shop/prod"):
        assert part in msg
    assert "waiting" in L.held_message("s", "n", lock, waited=5)
    assert "no token was given" in L.refuse_message("s", "n", lock, None)
    assert "does not match" in L.refuse_message("s", "n", lock, "x")
    assert "alice@ci:42" in L.stale_warning("s", lock) and "expired" in L.stale_warning("s", lock)
    assert "force_unlock" in L.forced_warning("s", lock) and "alice@ci:42" in L.forced_warning("s", lock)


# ---- call sequences against a fake client ---------------------------------------------------


class FakeSSM:
    """Just enough SSM: get/put(Overwrite=False)/delete with the botocore error codes."""

    def __init__(self):
        self.params = {}
        self.calls = []

    def _error(self, code, op):
        from botocore.exceptions import ClientError
        return ClientError({"Error": {"Code": code, "Message": code}}, op)

    def get_parameter(self, Name):
        self.calls.append(("get", Name))
        if Name not in self.params:
            raise self._error("ParameterNotFound", "GetParameter")
        return {"Parameter": {"Name": Name, "Value": self.params[Name]}}

    def put_parameter(self, Name, Value, Overwrite, **_kwargs):
        self.calls.append(("put", Name))
        if Name in self.params and not Overwrite:
            raise self._error("ParameterAlreadyExists", "PutParameter")
        self.params[Name] = Value
        return {"Version": 1}

    def delete_parameter(self, Name):
        self.calls.append(("delete", Name))
        if self.params.pop(Name, None) is None:
            raise self._error("ParameterNotFound", "DeleteParameter")

    def mutating(self):
        return [c for c in self.calls if c[0] != "get"]


NAME = "/cattle/locks/shop/prod"


def clock_at(seconds):
    return lambda: EPOCH0 + seconds


def test_acquire_free_then_held_then_release():
    ssm = FakeSSM()
    first = L.acquire(ssm, "shop", "prod", holder="a", version="1", clock=clock_at(0))
    assert first["changed"] and first["outcome"] == "acquired" and first["lock"]["name"] == NAME
    ssm.params[NAME] = L.dump_lock(L.build_lock("b", "9", now=T0))
    with pytest.raises(FleetError, match="locked by b") as err:
        L.acquire(ssm, "shop", "prod", holder="c", version="2", clock=clock_at(1))
    assert err.value.details["lock"]["holder"] == "b"
    token = json.loads(ssm.params[NAME])["token"]
    assert L.release(ssm, "shop", "prod", token=token, clock=clock_at(2))["outcome"] == "released"
    assert NAME not in ssm.params
    assert L.release(ssm, "shop", "prod", token=token, clock=clock_at(2))["changed"] is False


def test_wait_polls_until_free():
    ssm = FakeSSM()
    ssm.params[NAME] = L.dump_lock(L.build_lock("b", "9", now=T0))
    now = [EPOCH0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 3:
            del ssm.params[NAME]  # the other run releases

    result = L.acquire(ssm, "shop", "prod", holder="c", wait=10, clock=lambda: now[0], sleep=sleep)
    assert result["outcome"] == "acquired" and len(sleeps) == 3


def test_wait_gives_up():
    ssm = FakeSSM()
    ssm.params[NAME] = L.dump_lock(L.build_lock("b", "9", now=T0))
    now = [EPOCH0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(FleetError, match="still held after waiting 3 s"):
        L.acquire(ssm, "shop", "prod", holder="c", wait=3, clock=lambda: now[0], sleep=sleep)
    assert now[0] == EPOCH0 + 3


def test_stale_takeover_uses_guard_and_cleans_it():
    ssm = FakeSSM()
    old = L.build_lock("dead", "1", ttl=60, now=T0)
    ssm.params[NAME] = L.dump_lock(old)
    result = L.acquire(ssm, "shop", "prod", holder="new", version="2", clock=clock_at(61))
    assert result["outcome"] == "taken_over" and result["previous"]["holder"] == "dead"
    assert "dead" in result["warnings"][0] and "expired" in result["warnings"][0]
    assert ssm.mutating() == [("put", NAME + ".takeover"), ("delete", NAME), ("put", NAME), ("delete", NAME + ".takeover")]
    assert json.loads(ssm.params[NAME])["holder"] == "new" and NAME + ".takeover" not in ssm.params


def test_takeover_refused_while_another_guard_is_live_and_cleared_when_stale():
    ssm = FakeSSM()
    ssm.params[NAME] = L.dump_lock(L.build_lock("dead", "1", ttl=60, now=T0))
    ssm.params[NAME + ".takeover"] = L.dump_lock(L.build_lock("other-taker", ttl=60, now=at(60)))
    with pytest.raises(FleetError, match="Another run is taking over.*other-taker"):
        L.acquire(ssm, "shop", "prod", holder="new", clock=clock_at(61))
    assert json.loads(ssm.params[NAME])["holder"] == "dead"
    result = L.acquire(ssm, "shop", "prod", holder="new", clock=clock_at(200))  # guard expired too
    assert result["outcome"] == "taken_over" and NAME + ".takeover" not in ssm.params


def test_check_mode_never_mutates():
    ssm = FakeSSM()
    assert L.acquire(ssm, "shop", "prod", holder="a", check_mode=True, clock=clock_at(0))["outcome"] == "acquired"
    ssm.params[NAME] = L.dump_lock(L.build_lock("dead", ttl=60, now=T0))
    assert L.acquire(ssm, "shop", "prod", holder="a", check_mode=True, clock=clock_at(100))["outcome"] == "taken_over"
    assert L.release(ssm, "shop", "prod", force=True, check_mode=True, clock=clock_at(100))["outcome"] == "released"
    assert ssm.mutating() == []


def test_same_token_is_unchanged_and_renews_after_expiry():
    ssm = FakeSSM()
    first = L.acquire(ssm, "shop", "prod", holder="a", ttl=60, clock=clock_at(0))
    token = first["lock"]["token"]
    again = L.acquire(ssm, "shop", "prod", holder="a", ttl=60, token=token, clock=clock_at(30))
    assert again["changed"] is False and again["lock"]["expires_at"] == first["lock"]["expires_at"]
    renewed = L.acquire(ssm, "shop", "prod", holder="a", ttl=60, token=token, clock=clock_at(90))
    assert renewed["changed"] and renewed["lock"]["token"] == token and renewed["warnings"] == []
    assert renewed["lock"]["expires_at"] == "2024-05-01T12:02:30Z"


def test_release_of_expired_lock_is_guarded():
    ssm = FakeSSM()
    lock = L.build_lock("a", ttl=60, now=T0)
    ssm.params[NAME] = L.dump_lock(lock)
    assert L.release(ssm, "shop", "prod", token=lock["token"], clock=clock_at(100))["outcome"] == "released"
    assert ssm.mutating() == [("put", NAME + ".takeover"), ("delete", NAME), ("delete", NAME + ".takeover")]


def test_release_wrong_token_refused_force_warns():
    ssm = FakeSSM()
    lock = L.build_lock("alice", "1.4.2", now=T0)
    ssm.params[NAME] = L.dump_lock(lock)
    with pytest.raises(FleetError, match="held by alice .*does not match"):
        L.release(ssm, "shop", "prod", token="wrong", clock=clock_at(1))
    forced = L.release(ssm, "shop", "prod", token="wrong", force=True, clock=clock_at(1))
    assert forced["changed"] and "alice" in forced["warnings"][0]
    assert forced["diff"] == {"before": dict(forced["previous"]), "after": {}}


def test_guard_that_vanishes_is_not_deleted():
    """The guard exists at our put but is gone when we read it (its taker finished): never delete
    a guard we did not see — that could be a third taker's — just try to create ours again."""
    ssm = FakeSSM()
    old = L.build_lock("dead", ttl=60, now=T0)
    ssm.params[NAME] = L.dump_lock(old)
    ssm.params[NAME + ".takeover"] = "guard of a finishing taker"
    real_get = ssm.get_parameter

    def get_parameter(Name):
        if Name.endswith(".takeover"):
            ssm.params.pop(Name, None)
        return real_get(Name)

    ssm.get_parameter = get_parameter
    result = L.acquire(ssm, "shop", "prod", holder="new", clock=clock_at(100))
    assert result["outcome"] == "taken_over"
    assert ("delete", NAME + ".takeover") == ssm.mutating()[-1]
    assert ssm.mutating().count(("delete", NAME + ".takeover")) == 1
