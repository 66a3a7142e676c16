"""traffic_shift's planner (pure): percent mapping, weights, foreign target groups, prune_zero,
limits, fixed-response replacement, stickiness, idempotency, Route53 changes."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, strategies as st

from ansible_collections.cattle.aws.plugins.module_utils._fleet import traffic as T
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2"
FOREIGN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/legacy/ffff"
OTHER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other-team/eeee"


def tg(version):
    return f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-{version.replace('.', '-')}/abcd"


def fleet(version, day, failed=False):
    return {"version": version, "created_at": f"2024-05-{day:02d}T12:00:00Z", "failed": failed, "complete": True,
            "target_group": {"arn": tg(version)}}


FLEETS = [fleet("1.0", 1), fleet("1.1", 2), fleet("1.2", 3)]


def forward(*targets, stickiness=None):
    config = {"TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in targets]}
    if stickiness is not None:
        config["TargetGroupStickinessConfig"] = stickiness
    return [{"Type": "forward", "ForwardConfig": config}]


def observed(actions, fleets=None):
    return {"backend": "alb", "point": {"type": "listener", "arn": LISTENER, "actions": actions},
            "fleets": copy.deepcopy(FLEETS if fleets is None else fleets)}


def plan(actions, fleets=None, **desired):
    return T.plan_shift(observed(actions, fleets), desired)


def sent(p):
    """The weights of the forward action the plan would write: {arn: weight}."""
    return {t["TargetGroupArn"]: t["Weight"] for t in p["request"]["actions"][-1]["ForwardConfig"]["TargetGroups"]}


# ---- percent mapping -------------------------------------------------------------------------


@pytest.mark.parametrize("percent,pool,expected", [
    (0, 100, (0, 100)), (10, 100, (10, 90)), (100, 100, (100, 0)), (12.5, 100, (13, 87)),
    (50, 3, (2, 1)), (33, 999, (330, 669)), (1 / 3 * 100, 999, (333, 666)), (0.4, 100, (0, 100)),
])
def test_percent_split_rounds_half_up_and_keeps_the_sum(percent, pool, expected):
    assert T.percent_split(percent, pool) == expected


@given(st.integers(1, 999), st.floats(0, 100, allow_nan=False))
def test_percent_split_is_exact_for_any_pool(pool, percent):
    mine, rest = T.percent_split(percent, pool)
    assert mine + rest == pool and 0 <= mine <= pool
    assert abs(mine - percent * pool / 100) <= 0.5 + 1e-9


@given(st.integers(1, 999), st.floats(0, 99.99, allow_nan=False))
def test_percent_split_is_monotonic(pool, percent):
    assert T.percent_split(percent, pool)[0] <= T.percent_split(percent + 0.01, pool)[0]


def test_attach_at_zero_keeps_live_and_adds_the_new_version():
    p = plan(forward((tg("1.1"), 100)), to_version="1.2", percent=0)
    assert p["after"] == {"1.1": 100, "1.2": 0}
    assert p["changed"] and p["raised"] == []  # nothing gains traffic: no guard needed
    assert p["live_version"] == "1.1" and p["previous_version"] == "1.0"


def test_steps_then_full_switch_keep_the_old_version_at_zero():
    p = plan(forward((tg("1.1"), 100), (tg("1.2"), 0)), to_version="1.2", percent=10)
    assert p["after"] == {"1.1": 90, "1.2": 10} and p["raised"] == ["1.2"]
    p = plan(forward((tg("1.1"), 50), (tg("1.2"), 50)), to_version="1.2", percent=100)
    assert p["after"] == {"1.1": 0, "1.2": 100}
    assert p["live_version"] == "1.2" and p["previous_version"] == "1.1"
    assert sent(p) == {tg("1.1"): 0, tg("1.2"): 100}


def test_percent_when_to_version_is_already_live_gives_the_rest_to_the_other_serving_version():
    # 50/50: the newest is live; percent 60 still splits between the two serving versions.
    p = plan(forward((tg("1.1"), 50), (tg("1.2"), 50)), to_version="1.2", percent=60)
    assert p["after"] == {"1.1": 40, "1.2": 60}


def test_rollback_moves_everything_back_in_one_write():
    p = plan(forward((tg("1.1"), 0), (tg("1.2"), 100)), to_version="1.1", percent=100)
    assert p["after"] == {"1.1": 100, "1.2": 0} and len(p["actions"]) == 1
    assert p["actions"][0]["action"] == "modify_listener"


def test_other_stack_versions_go_to_zero():
    p = plan(forward((tg("1.0"), 20), (tg("1.1"), 80)), to_version="1.2", percent=10)
    assert p["after"] == {"1.0": 0, "1.1": 90, "1.2": 10}


def test_percent_below_100_with_nothing_serving_fails():
    with pytest.raises(FleetError, match="nowhere to go"):
        plan(forward((tg("1.0"), 0)), fleets=[fleet("1.0", 1)], to_version="1.0", percent=50)


# ---- weights -------------------------------------------------------------------------------


def test_weights_zero_the_unnamed_stack_versions():
    p = plan(forward((tg("1.0"), 20), (tg("1.1"), 80)), weights={"1.2": 30, "1.1": 70})
    assert p["after"] == {"1.0": 0, "1.1": 70, "1.2": 30}


def test_unknown_version_is_a_clear_error():
    with pytest.raises(FleetError, match=r"Unknown version '9.9' in weights: the stack has 1.2, 1.1, 1.0"):
        plan(forward((tg("1.1"), 100)), weights={"9.9": 100})
    with pytest.raises(FleetError, match="Unknown version '9.9' in to_version"):
        plan(forward((tg("1.1"), 100)), to_version="9.9")


def test_version_without_target_group_cannot_take_traffic():
    fleets = FLEETS + [dict(fleet("1.3", 4), target_group=None, complete=False)]
    with pytest.raises(FleetError, match="Version 1.3 of to_version has no target group"):
        plan(forward((tg("1.1"), 100)), fleets=fleets, to_version="1.3")


# ---- foreign target groups -------------------------------------------------------------------


def test_foreign_target_group_keeps_its_weight_and_share():
    p = plan(forward((tg("1.1"), 100), (OTHER, 50)), to_version="1.2", percent=100)
    assert p["after"] == {"1.1": 0, "1.2": 100, OTHER: 50}
    p = plan(forward((tg("1.1"), 100), (OTHER, 50)), weights={"1.2": 100})
    assert p["after"][OTHER] == 50


def test_foreign_target_group_is_not_adopted_once_the_stack_has_a_rollback_target():
    p = plan(forward((tg("1.1"), 100), (OTHER, 50)), to_version="1.1", percent=100)
    assert p["after"] == {"1.1": 100, OTHER: 50} and not p["changed"]
    assert p["previous_version"] == "1.0"
    p = plan(forward((tg("1.1"), 100), (OTHER, 50)), to_version="1.1", percent=90)
    assert p["after"] == {"1.1": 90, OTHER: 50, "1.0": 10}


def test_foreign_weight_preserving_pool_uses_the_stack_sum():
    p = plan(forward((tg("1.1"), 300), (OTHER, 100)), to_version="1.2", percent=50)
    assert p["after"] == {"1.1": 150, "1.2": 150, OTHER: 100}


def test_foreign_target_group_named_by_arn_is_changed():
    p = plan(forward((tg("1.1"), 100), (OTHER, 50)), weights={"1.1": 100, OTHER: 0})
    assert p["after"] == {"1.1": 100, OTHER: 0}


def test_first_release_adopts_the_foreign_target_group_as_previous():
    acts = [{"Type": "forward", "TargetGroupArn": FOREIGN}]
    attach = plan(acts, to_version="1.0", percent=0)
    assert attach["live_version"] == FOREIGN and attach["after"] == {FOREIGN: 100, "1.0": 0}
    canary = plan(forward((FOREIGN, 100), (tg("1.0"), 0)), to_version="1.0", percent=10)
    assert canary["after"] == {FOREIGN: 90, "1.0": 10}
    switch = plan(forward((FOREIGN, 90), (tg("1.0"), 10)), fleets=[fleet("1.0", 1)], to_version="1.0", percent=100)
    assert switch["after"] == {FOREIGN: 0, "1.0": 100}
    assert switch["live_version"] == "1.0" and switch["previous_version"] == FOREIGN
    # Canary steps that do not pass through 50/50 still end with the adopted group at 0.
    step = plan(forward((FOREIGN, 10), (tg("1.0"), 90)), fleets=[fleet("1.0", 1)], to_version="1.0", percent=100)
    assert step["after"] == {FOREIGN: 0, "1.0": 100}
    back = plan(forward((FOREIGN, 0), (tg("1.0"), 100)), fleets=[fleet("1.0", 1)], to_version=FOREIGN, percent=100)
    assert back["after"] == {FOREIGN: 100, "1.0": 0}


def test_new_listener_of_an_existing_stack_adopts_the_foreign_group():
    p = plan(forward((FOREIGN, 100)), to_version="1.2", percent=0)
    assert p["after"] == {FOREIGN: 100, "1.2": 0}


def test_first_release_with_weights_zeroes_the_adopted_group_but_keeps_it():
    p = plan(forward((FOREIGN, 1)), weights={"1.0": 100}, prune_zero=True)
    assert p["after"] == {FOREIGN: 0, "1.0": 100}


# ---- prune_zero, limits ----------------------------------------------------------------------


def test_prune_zero_drops_old_zero_weight_versions_but_keeps_the_previous_live():
    acts = forward((tg("1.0"), 0), (tg("1.1"), 100), (tg("1.2"), 0))
    p = plan(acts, to_version="1.2", percent=100, prune_zero=True)
    assert p["after"] == {"1.1": 0, "1.2": 100}
    assert plan(acts, to_version="1.2", percent=100)["after"] == {"1.0": 0, "1.1": 0, "1.2": 100}


def test_more_than_five_target_groups_fails_before_any_call():
    fleets = [fleet(f"1.{i}", i + 1) for i in range(6)]
    acts = forward(*[(tg(f"1.{i}"), 100 if i == 4 else 0) for i in range(5)])
    with pytest.raises(FleetError, match="would hold 6 target groups .* at most 5. Set prune_zero=true"):
        plan(acts, fleets=fleets, to_version="1.5", percent=0)
    assert plan(acts, fleets=fleets, to_version="1.5", percent=0, prune_zero=True)["after"] == {
        "1.3": 0, "1.4": 100, "1.5": 0}


@pytest.mark.parametrize("desired,message", [
    ({"weights": {"1.0": 1000}}, r"weights\['1.0'\] must be an integer from 0 to 999"),
    ({"weights": {"1.0": -1}}, "from 0 to 999"),
    ({"weights": {"1.0": 0}}, "every version weight 0"),
    ({"to_version": "1.0", "percent": 101}, "percent must be a number from 0 to 100"),
    ({"to_version": "1.0", "weights": {"1.0": 1}}, "either to_version"),
    ({}, "either to_version"),
])
def test_limits(desired, message):
    with pytest.raises(FleetError, match=message):
        T.validate_desired(desired)


def test_route53_weight_limit_is_255():
    with pytest.raises(FleetError, match="from 0 to 255"):
        T.validate_desired({"weights": {"1.0": 256}}, "route53")


# ---- action shape ----------------------------------------------------------------------------


def test_fixed_response_becomes_a_forward_and_is_reported():
    fixed = {"Type": "fixed-response", "Order": 2,
             "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "soon"}}
    auth = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {"Issuer": "https://id"}}
    p = plan([auth, fixed], to_version="1.0", percent=100)
    assert p["before"] == {} and p["replaced_action"] == fixed
    assert p["after"] == {"1.0": 100} and p["changed"]
    new = p["request"]["actions"]
    assert new[0]["Type"] == "authenticate-oidc" and new[0]["AuthenticateOidcConfig"]["UseExistingClientSecret"]
    assert new[1] == {"Type": "forward", "Order": 2,
                      "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg("1.0"), "Weight": 100}]}}
    assert p["actions"][0]["replaced_action"] == fixed


def test_restore_action_puts_back_the_fixed_response_the_first_shift_replaced():
    fixed = {"Type": "fixed-response", "Order": 2,
             "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "soon"}}
    auth = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {"Issuer": "https://id"}}
    first = plan([auth, fixed], to_version="1.0", percent=100)
    p = plan(first["request"]["actions"], restore_action=first["replaced_action"])
    assert p["changed"] and p["before"] == {"1.0": 100} and p["after"] == {}
    assert p["live_version"] is None and p["raised"] == []
    new = p["request"]["actions"]
    assert new[0]["Type"] == "authenticate-oidc" and new[0]["AuthenticateOidcConfig"]["UseExistingClientSecret"]
    assert new[1] == fixed
    [write] = p["actions"]
    assert write["action"] == "modify_listener" and write["restored_action"] == fixed
    assert write["removed"] == [{"key": "1.0", "target_group_arn": tg("1.0"), "weight": 100}]


def test_restore_action_as_traffic_point_info_returns_it():
    fixed = {"Type": "fixed-response", "Order": 1,
             "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "soon"}}
    snake = {"type": "fixed-response", "order": 1,
             "fixed_response_config": {"status_code": "503", "content_type": "text/plain", "message_body": "soon"}}
    assert T.validate_desired({"restore_action": snake})["restore_action"] == fixed
    redirect = {"type": "redirect", "redirect_config": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}
    assert T.validate_desired({"restore_action": redirect})["restore_action"] == {
        "Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}


def test_restore_action_on_a_point_that_does_not_forward_is_no_change():
    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}
    p = plan([fixed], restore_action=fixed)
    assert not p["changed"] and p["actions"] == [] and p["request"] is None


def test_restore_action_refuses_to_take_traffic_from_target_groups_of_others():
    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}
    with pytest.raises(FleetError, match=r"target groups the stack does not own \(" + FOREIGN + r"\).*to_version or weights"):
        plan(forward((tg("1.0"), 90), (FOREIGN, 10)), restore_action=fixed)


@pytest.mark.parametrize("desired,backend,message", [
    ({"restore_action": {"Type": "forward"}}, "alb", "must be the fixed-response or redirect action"),
    ({"restore_action": "503"}, "alb", "must be the fixed-response or redirect action"),
    ({"restore_action": {"Type": "fixed-response"}, "to_version": "1.0"}, "alb", "or restore_action: exactly one"),
    ({"restore_action": {"Type": "fixed-response"}}, "route53", "Route53 has none: give listener_arn or rule_arn"),
])
def test_restore_action_is_checked_before_any_call(desired, backend, message):
    with pytest.raises(FleetError, match=message):
        T.validate_desired(desired, backend)


def test_stickiness_is_preserved():
    sticky = {"Enabled": True, "DurationSeconds": 300}
    p = plan(forward((tg("1.1"), 100), stickiness=sticky), to_version="1.2", percent=10)
    assert p["request"]["actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == sticky


def test_plain_target_group_forward_is_converted():
    p = plan([{"Type": "forward", "TargetGroupArn": tg("1.1")}], to_version="1.2", percent=0)
    action = p["request"]["actions"][0]
    assert "TargetGroupArn" not in action and sent(p) == {tg("1.1"): 100, tg("1.2"): 0}


def test_same_weights_are_a_no_op():
    acts = forward((tg("1.1"), 90), (tg("1.2"), 10))
    p = plan(acts, to_version="1.2", percent=10)
    assert not p["changed"] and p["actions"] == [] and p["before"] == p["after"]
    assert not plan(acts, weights={"1.1": 90, "1.2": 10})["changed"]


# ---- Route53 ---------------------------------------------------------------------------------


def r53(records, targets=None):
    return {"backend": "route53", "fleets": copy.deepcopy(FLEETS), "point": {
        "type": "route53", "zone_id": "Z1", "record_name": "www.example.com.", "record_type": "CNAME",
        "ttl": 60, "targets": targets or {}, "records": records}}


def record(version, weight, value):
    return {"Name": "www.example.com.", "Type": "CNAME", "SetIdentifier": version, "Weight": weight, "TTL": 60,
            "ResourceRecords": [{"Value": value}]}


def test_route53_switch_upserts_changed_records_in_one_batch():
    p = T.plan_shift(r53([record("1.1", 100, "blue")], {"1.2": "green"}), {"to_version": "1.2"})
    assert p["after"] == {"1.1": 0, "1.2": 100}
    changes = p["request"]["changes"]
    assert [(c["Action"], c["ResourceRecordSet"]["SetIdentifier"], c["ResourceRecordSet"]["Weight"]) for c in changes] == [
        ("UPSERT", "1.1", 0), ("UPSERT", "1.2", 100)]
    assert changes[0]["ResourceRecordSet"]["ResourceRecords"] == [{"Value": "blue"}]
    assert changes[1]["ResourceRecordSet"]["ResourceRecords"] == [{"Value": "green"}]


def test_route53_alias_targets_and_missing_target():
    alias = {"dns_name": "lb.example.com", "hosted_zone_id": "ZLB", "evaluate_target_health": True}
    p = T.plan_shift(r53([], {"1.2": alias}), {"weights": {"1.2": 1}})
    assert p["request"]["changes"][0]["ResourceRecordSet"]["AliasTarget"] == {
        "DNSName": "lb.example.com", "HostedZoneId": "ZLB", "EvaluateTargetHealth": True}
    with pytest.raises(FleetError, match=r"no DNS target for version 1.2: add route53.targets\['1.2'\]"):
        T.plan_shift(r53([record("1.1", 100, "blue")]), {"to_version": "1.2"})


def test_route53_no_op():
    p = T.plan_shift(r53([record("1.1", 0, "blue"), record("1.2", 100, "green")], {"1.2": "green"}),
                     {"to_version": "1.2"})
    assert not p["changed"]


# ---- guard and read-back (fake client) -------------------------------------------------------


def _fake_elbv2(described_actions, health):
    from unittest.mock import MagicMock

    client = MagicMock()
    client.describe_listeners.return_value = {"Listeners": [{"ListenerArn": LISTENER, "DefaultActions": described_actions}]}
    client.describe_target_health.return_value = {"TargetHealthDescriptions": health}
    return client


def test_read_back_mismatch_fails():
    obs = observed(forward((tg("1.1"), 100), (tg("1.2"), 0)))
    p = T.plan_shift(obs, {"to_version": "1.2", "percent": 100})
    client = _fake_elbv2(forward((tg("1.1"), 100), (tg("1.2"), 0)), [])  # AWS ignored the write
    with pytest.raises(FleetError, match="AWS does not show the intended weights"):
        T.apply_plan({"elbv2": client}, obs, p)
    client.modify_listener.assert_called_once_with(ListenerArn=LISTENER, DefaultActions=p["request"]["actions"])


def test_guard_reports_states_and_reasons():
    obs = observed(forward((tg("1.1"), 100), (tg("1.2"), 0)))
    p = T.plan_shift(obs, {"to_version": "1.2", "percent": 10})
    unused = {"State": "unused", "Reason": "Target.NotInUse", "Description": "Target group is not configured"}
    initial = {"State": "initial", "Reason": "Elb.RegistrationInProgress"}
    health = [{"Target": {"Id": "i-1", "Port": 8080}, "TargetHealth": unused},
              {"Target": {"Id": "i-2", "Port": 8080}, "TargetHealth": initial}]
    client = _fake_elbv2([], health)
    with pytest.raises(FleetError) as error:
        T.check_health({"elbv2": client}, obs, p)
    assert error.value.msg.startswith(
        "Refusing to give traffic to version 1.2 (target group shop-1-2): no healthy targets (2 targets: 1 initial, "
        "1 unused (Elb.RegistrationInProgress; Target.NotInUse: Target group is not configured)). Wait until")
    assert error.value.details["health"][0]["states"] == {"unused": 1, "initial": 1}
    summaries, warnings = T.check_health({"elbv2": client}, obs, p, force=True)
    assert warnings and warnings[0].startswith("FORCED: giving traffic to version 1.2")


def test_route53_prune_zero_deletes_old_records_but_keeps_the_rollback_target():
    records = [record("1.0", 0, "old"), record("1.1", 0, "blue"), record("1.2", 100, "green")]
    p = T.plan_shift(r53(records), {"to_version": "1.2", "prune_zero": True})
    assert p["after"] == {"1.1": 0, "1.2": 100} and p["previous_version"] == "1.1"
    assert p["request"]["changes"] == [{"Action": "DELETE", "ResourceRecordSet": records[0]}]
    assert p["actions"][0]["changes"] == [{"action": "DELETE", "set_identifier": "1.0", "weight": 0}]


def test_route53_apply_waits_for_insync_then_reads_back():
    from unittest.mock import MagicMock

    obs = r53([record("1.1", 100, "blue")], {"1.2": "green"})
    p = T.plan_shift(obs, {"to_version": "1.2"})
    client = MagicMock()
    client.change_resource_record_sets.return_value = {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING"}}
    client.get_change.side_effect = [{"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING"}},
                                     {"ChangeInfo": {"Id": "/change/C1", "Status": "INSYNC"}}]
    client.list_resource_record_sets.return_value = {"ResourceRecordSets": [
        record("1.1", 0, "blue"), record("1.2", 100, "green")], "IsTruncated": False}
    sleeps = []
    T.apply_plan({"route53": client}, obs, p, sleep=sleeps.append)
    assert client.get_change.call_count == 2 and sleeps == [T.ROUTE53_POLL_SECONDS] * 2
    assert len(client.change_resource_record_sets.call_args.kwargs["ChangeBatch"]["Changes"]) == 2


# ---- attach rules (first release: percent=0 on a point that does not forward yet) ------------

FIXED = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]
RULE = LISTENER.replace(":listener/", ":listener-rule/") + "/9"


def attach_rule(version, arn=RULE, priority="50000", target=None):
    return {"rule_arn": arn, "listener_arn": LISTENER, "priority": priority, "version": version,
            "target_group_arn": target or tg(version)}


def attach_observed(actions, attach_rules=(), listener_rules=()):
    o = observed(actions)
    o["point"]["listener_arn"] = LISTENER
    o["attach_rules"] = list(attach_rules)
    o["listener_rules"] = list(listener_rules)
    return o


def test_percent_zero_on_a_fixed_response_plans_an_attach_rule_and_leaves_the_action():
    p = T.plan_shift(attach_observed(FIXED, listener_rules=[{"Priority": "default"}, {"Priority": "50000"}]),
                     {"to_version": "1.2", "percent": 0})
    assert p["request"] is None and p["after"] == {} and p["raised"] == [] and p["live_version"] is None
    assert [a["action"] for a in p["actions"]] == ["create_attach_rule"]
    assert p["actions"][0]["priority"] == "49999" and p["actions"][0]["target_group_arn"] == tg("1.2")
    assert p["actions"][0]["listener_arn"] == LISTENER and p["changed"] is True


def test_attach_rule_is_reused_and_a_stale_one_replaced():
    p = T.plan_shift(attach_observed(FIXED, [attach_rule("1.2")]), {"to_version": "1.2", "percent": 0})
    assert p["changed"] is False and p["actions"] == [] and p["attach_rules"] == [attach_rule("1.2")]
    stale = attach_rule("1.2", target=FOREIGN)
    p = T.plan_shift(attach_observed(FIXED, [stale]), {"to_version": "1.2", "percent": 0})
    assert [a["action"] for a in p["actions"]] == ["delete_attach_rule", "create_attach_rule"]


def test_attach_needs_a_version_of_the_stack():
    with pytest.raises(FleetError, match="Unknown version"):
        T.plan_shift(attach_observed(FIXED), {"to_version": "9.9", "percent": 0})
    with pytest.raises(FleetError, match="not a version of the stack"):
        T.plan_shift(attach_observed(FIXED), {"to_version": FOREIGN, "percent": 0})


def test_first_shift_replaces_the_fixed_response_then_deletes_the_attach_rule():
    p = T.plan_shift(attach_observed(FIXED, [attach_rule("1.2"), attach_rule("1.1", arn=RULE + "1")]),
                     {"to_version": "1.2", "percent": 100})
    assert [a["action"] for a in p["actions"]] == ["modify_listener", "delete_attach_rule"]
    assert p["actions"][1]["rule_arn"] == RULE and p["raised"] == ["1.2"]
    assert [a["version"] for a in p["attach_rules"]] == ["1.1"]


def test_a_shift_that_changes_no_weight_still_deletes_a_left_over_attach_rule():
    p = T.plan_shift(attach_observed(forward((tg("1.2"), 100)), [attach_rule("1.2")]), {"to_version": "1.2", "percent": 100})
    assert p["request"] is None and [a["action"] for a in p["actions"]] == ["delete_attach_rule"] and p["changed"]


def test_detach_deletes_only_the_attach_rules_of_the_versions():
    o = attach_observed(FIXED, [attach_rule("1.2"), attach_rule("1.1", arn=RULE + "1")])
    p = T.plan_shift(o, {"detach": ["1.2"]})
    assert p["request"] is None and [(a["action"], a["rule_arn"]) for a in p["actions"]] == [("delete_attach_rule", RULE)]
    assert T.plan_shift(attach_observed(FIXED), {"detach": ["1.2"]})["changed"] is False
    with pytest.raises(FleetError, match="Unknown version"):
        T.plan_shift(o, {"detach": ["7.0"]})
    with pytest.raises(FleetError, match="Quote"):
        T.validate_desired({"detach": [1.2]})
    with pytest.raises(FleetError, match="Route53"):
        T.validate_desired({"detach": ["1.2"]}, "route53")


def test_free_priority_searches_down_from_50000():
    from ansible_collections.cattle.aws.plugins.module_utils._fleet import traffic_attach as A
    assert A.free_priority([]) == 50000
    assert A.free_priority([{"Priority": "default"}, {"Priority": "50000"}, {"Priority": "49999"}, {"Priority": "1"}]) == 49998
    with pytest.raises(FleetError, match="no free rule priority"):
        A.free_priority([{"Priority": str(p)} for p in range(1, 50001)])
