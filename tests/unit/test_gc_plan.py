"""fleet_gc planning without AWS: properties over random stacks, order of actions, traffic edits."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.cattle.aws.plugins.module_utils._fleet import discovery as D
from ansible_collections.cattle.aws.plugins.module_utils._fleet import gc as G
from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
LB = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/lb/1"
LISTENER = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:listener/app/lb/1/2"
RULE = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:listener-rule/app/lb/1/2/3"
BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def tg_arn(name, suffix="abc"):
    return f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/{name}/{suffix}"


def fleet_parts(observed, version, hours, failed=False, parts="ami lt tg asg", image=None, capacity=(1, 3, 2),
                tags=None, suffix="abc"):
    """Add boto3-shaped parts of one fleet to `observed`; tags=None means the stack's ownership tags."""
    names = naming.fleet_names("shop", "prod", version)
    if tags is None:
        tags = T.ownership_tags("shop", "prod", version, created_at=BASE + datetime.timedelta(hours=hours))
        if failed:
            tags[T.TAG_STATUS] = T.STATUS_FAILED
    tag_list = T.dict_to_tag_list(tags)
    image = image or f"ami-{version}"
    arn = tg_arn(names["target_group"], suffix)
    lt_id = f"lt-{suffix}-{version}-{len(observed['launch_templates'])}"
    if "ami" in parts:
        observed["images"].append({"ImageId": image, "Name": f"shop-{version}", "Tags": tag_list,
                                   "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": f"snap-{image}"}}]})
    if "lt" in parts:
        observed["launch_templates"].append({"LaunchTemplateId": lt_id, "LaunchTemplateName": names["launch_template"],
                                             "Tags": tag_list})
        observed["launch_template_versions"][lt_id] = {"LaunchTemplateData": {"ImageId": image, "InstanceType": "t3.micro"}}
    if "tg" in parts:
        observed["target_groups"].append({"TargetGroupArn": arn, "TargetGroupName": names["target_group"],
                                          "Tags": dict(tags), "LoadBalancerArns": [LB]})
    if "asg" in parts:
        observed["auto_scaling_groups"].append({
            "AutoScalingGroupName": names["auto_scaling_group"], "Tags": tag_list,
            "TargetGroupARNs": [arn] if "tg" in parts else [],
            "MinSize": capacity[0], "MaxSize": capacity[1], "DesiredCapacity": capacity[2],
            "LaunchTemplate": {"LaunchTemplateId": lt_id, "Version": "1"},
            "Instances": [{"InstanceId": f"i-{version}-{n}", "LifecycleState": "InService"} for n in range(capacity[2])],
        })
    return arn


def empty():
    return {"images": [], "launch_templates": [], "launch_template_versions": {}, "target_groups": [],
            "auto_scaling_groups": [], "listeners": [], "rules": []}


def forward(targets, stickiness=False):
    config = {"TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in targets]}
    if stickiness:
        config["TargetGroupStickinessConfig"] = {"Enabled": True, "DurationSeconds": 300}
    return [{"Type": "forward", "Order": 1, "ForwardConfig": config}]


def stack_of(observed):
    return D.build_stack(observed, "shop", "prod")


# --------------------------------------------------------------------------------------------
# Random stacks
# --------------------------------------------------------------------------------------------

VERSIONS = [f"1.{n}" for n in range(12)]


@st.composite
def stacks(draw):
    observed = empty()
    versions = draw(st.lists(st.sampled_from(VERSIONS), min_size=0, max_size=8, unique=True))
    arns = {}
    shared_image = draw(st.booleans())
    for version in versions:
        hours = draw(st.integers(0, 50))  # creation time independent of the version string; ties allowed
        failed = draw(st.booleans()) and draw(st.booleans())
        parts = draw(st.sampled_from(["ami lt tg asg"] * 6 + ["lt tg asg", "ami", "lt", "tg", "lt tg", "tg asg", "asg"]))
        image = "ami-shared" if shared_image and draw(st.booleans()) else None
        arns[version] = fleet_parts(observed, version, hours, failed=failed, parts=parts, image=image)
    # Foreign look-alikes: the names the stack would use (for versions it does not have: AWS names
    # are unique), with the tags of nobody / another app / no managed-by.
    foreign = []
    for version in draw(st.lists(st.sampled_from(VERSIONS), max_size=3, unique=True)):
        if version in versions:
            continue
        kind = draw(st.sampled_from(["none", "other-app", "unmanaged"]))
        tags = {"none": {"Name": "x"}, "other-app": T.ownership_tags("shop2", "prod", version),
                "unmanaged": {k: v for k, v in T.ownership_tags("shop", "prod", version).items()
                              if k != T.TAG_MANAGED_BY}}[kind]
        fake = empty()
        fleet_parts(fake, version, 0, tags=tags, suffix="foreign")
        for key in ("images", "launch_templates", "target_groups", "auto_scaling_groups"):
            observed[key].extend(fake[key])
        foreign.append(fake["target_groups"][0]["TargetGroupArn"])
    # Traffic: a listener default action and maybe a rule, at most 5 target groups each.
    candidates = [arns[v] for v in versions if any(tg["TargetGroupArn"] == arns[v] for tg in observed["target_groups"])]
    candidates += foreign
    for index in range(draw(st.integers(0, 2))):
        if not candidates:
            break
        chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=5, unique=True))
        weights = [draw(st.sampled_from([0, 0, 1, 10, 100, 999])) for dummy in chosen]
        actions = forward(list(zip(chosen, weights)), stickiness=draw(st.booleans()))
        if index == 0:
            observed["listeners"].append({"ListenerArn": LISTENER, "LoadBalancerArn": LB, "DefaultActions": actions})
        else:
            observed["rules"].append({"RuleArn": RULE, "ListenerArn": LISTENER, "LoadBalancerArn": LB,
                                      "Priority": "10", "Actions": actions})
    protect = draw(st.lists(st.sampled_from(VERSIONS), max_size=3, unique=True))
    return observed, protect


def _serving_versions(stack):
    return {r["version"] for r in stack["fleets"] if any(t["weight"] > 0 for t in r["traffic"])}


def _owned_ids(stack):
    ids = set()
    for r in stack["fleets"]:
        for part, keys in (("launch_template", ("id", "name")), ("target_group", ("arn", "name")),
                           ("auto_scaling_group", ("name",))):
            if r.get(part):
                ids.update(r[part][key] for key in keys)
        if r.get("ami") and r["ami"]["owned"]:
            ids.add(r["ami"]["id"])
            ids.update(r["ami"]["snapshot_ids"])
    return ids


def _eligible(stack, protect, mode):
    return [r for r in D.sort_fleets(stack["fleets"])
            if r["complete"] and not r["failed"] and not r["live"] and r["version"] not in protect
            and r["version"] not in _serving_versions(stack)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), st.integers(0, 4), st.sampled_from(G.MODES), st.booleans())
def test_properties_over_random_stacks(generated, keep, mode, prune):
    observed, protect = generated
    stack = stack_of(observed)
    decisions, actions = G.plan_gc(stack, keep, protect, mode, prune)
    by_version = {d["version"]: d for d in decisions if d["version"] is not None}
    assert set(by_version) == {r["version"] for r in stack["fleets"]}
    serving = _serving_versions(stack)

    # Never removes serving, live or protected versions.
    for version, decision in by_version.items():
        if version in serving or version == stack["live_version"] or version in protect:
            assert decision["decision"] == G.KEEP
            assert decision["reason"] in (G.REASON_LIVE, G.REASON_SERVING, G.REASON_PROTECTED)
    touched = {a["version"] for a in actions if "version" in a} | {
        v for a in actions if a["action"] == "leave_traffic" for v in a["versions"]}
    assert all(by_version[v]["decision"] == mode for v in touched)

    # Never touches anything not owned: every identifier in the plan belongs to a stack part.
    owned = _owned_ids(stack)
    for action in actions:
        for key in ("id", "arn", "name", "target_group_arn"):
            if key in action and action["action"] != "leave_traffic" and (action["action"], key) != ("deregister_image", "name"):
                assert action[key] in owned, action
        for arn in action.get("target_group_arns", []):
            assert arn in owned
    assert all(d["reason"] == G.REASON_NOT_OWNED for d in decisions if d["version"] is None)

    # Keeps exactly `keep` eligible previous versions (or all if fewer): the most recent ones.
    eligible = _eligible(stack, set(protect), mode)
    retained = [r for r in eligible if by_version[r["version"]]["reason"] == G.REASON_RETAINED]
    assert len(retained) == min(keep, len(eligible))
    assert [r["version"] for r in retained] == [r["version"] for r in eligible[:len(retained)]]

    # AMIs are pruned only when no remaining launch template uses them.
    remaining_images = {r["launch_template"]["image_id"] for r in stack["fleets"]
                        if r.get("launch_template") and by_version[r["version"]]["decision"] != G.DELETE}
    pruned = {a["id"] for a in actions if a["action"] == "deregister_image"}
    assert not pruned & remaining_images
    if not prune or mode == G.SCALE_TO_ZERO:
        assert not pruned

    # Idempotent: the state the plan leaves plans nothing.
    after = G.simulate(stack, actions)
    decisions2, actions2 = G.plan_gc(after, keep, protect, mode, prune)
    assert actions2 == []
    kept_after = {d["version"]: d["reason"] for d in decisions2 if d["version"] is not None and d["decision"] == G.KEEP}
    assert kept_after == {v: d["reason"] for v, d in by_version.items() if d["decision"] == G.KEEP}


# --------------------------------------------------------------------------------------------
# Examples
# --------------------------------------------------------------------------------------------


def _five_versions(weights=None):
    """1.0 .. 1.4 created in that order, except 1.10 created oldest; 1.4 live, 1.3 at weight 0."""
    observed = empty()
    arns = {}
    for version, hours in (("1.10", 0), ("1.0", 1), ("1.1", 2), ("1.2", 3), ("1.3", 4), ("1.4", 5)):
        arns[version] = fleet_parts(observed, version, hours)
    weights = weights or {"1.4": 100, "1.3": 0, "1.0": 0}
    observed["listeners"].append({"ListenerArn": LISTENER, "LoadBalancerArn": LB,
                                  "DefaultActions": forward([(arns[v], w) for v, w in weights.items()])})
    return observed, arns


def test_orders_by_creation_time_not_version_string():
    observed, dummy = _five_versions()
    decisions, actions = G.plan_gc(stack_of(observed), keep=2)
    reasons = {d["version"]: (d["decision"], d["reason"]) for d in decisions}
    assert reasons["1.4"] == ("keep", "live")
    assert reasons["1.3"] == ("keep", "retained") and reasons["1.2"] == ("keep", "retained")
    assert reasons["1.10"][0] == reasons["1.1"][0] == reasons["1.0"][0] == "delete"
    assert [d["version"] for d in decisions] == ["1.4", "1.3", "1.2", "1.1", "1.0", "1.10"]


def test_delete_actions_follow_the_draining_order_per_fleet():
    observed, arns = _five_versions()
    decisions, actions = G.plan_gc(stack_of(observed), keep=1, prune_images=True)
    kinds = [a["action"] for a in actions]
    assert kinds[0] == "leave_traffic"
    assert actions[0]["target_group_arns"] == [arns["1.0"]] and actions[0]["versions"] == ["1.0"]
    order = list(G.ACTIONS[:-1])
    for version in ("1.10", "1.0", "1.1", "1.2"):
        mine = [a["action"] for a in actions
                if a.get("version") == version or version in a.get("versions", [])]
        assert mine == sorted(mine, key=order.index), mine
        assert {"detach_target_group", "wait_for_drain", "delete_auto_scaling_group", "delete_target_group",
                "delete_launch_template", "deregister_image", "delete_snapshot"} <= set(mine)
    # Oldest fleet first within a phase.
    assert [a["version"] for a in actions if a["action"] == "delete_auto_scaling_group"] == ["1.10", "1.0", "1.1", "1.2"]


def test_partial_fleets_are_completed_and_failed_ones_do_not_count():
    observed = empty()
    live = fleet_parts(observed, "2.0", 10)
    fleet_parts(observed, "1.9", 9, failed=True)
    fleet_parts(observed, "1.8", 8)
    fleet_parts(observed, "1.7", 7, parts="tg lt")  # interrupted: ASG already deleted
    fleet_parts(observed, "1.6", 6, parts="ami")  # only the AMI left
    observed["listeners"].append({"ListenerArn": LISTENER, "LoadBalancerArn": LB,
                                  "DefaultActions": forward([(live, 1)])})
    decisions, actions = G.plan_gc(stack_of(observed), keep=1)
    reasons = {d["version"]: (d["decision"], d["reason"]) for d in decisions}
    assert reasons["1.8"] == ("keep", "retained")
    assert reasons["1.9"] == ("delete", "failed release")
    assert reasons["1.7"] == ("delete", "incomplete fleet")
    assert [(a["action"], a["version"]) for a in actions if a["version"] == "1.7"] == [
        ("delete_target_group", "1.7"), ("delete_launch_template", "1.7")]
    assert not [a for a in actions if a["version"] == "1.6"]  # prune_images is off
    deleted, scaled, kept = G.summarize(decisions, actions)
    assert [d["version"] for d in deleted] == ["1.9", "1.7"] and scaled == []
    decisions, actions = G.plan_gc(stack_of(observed), keep=1, prune_images=True)
    assert ("deregister_image", "1.6") in [(a["action"], a["version"]) for a in actions]


def test_scale_to_zero_keeps_max_and_everything_else():
    observed, dummy = _five_versions()
    decisions, actions = G.plan_gc(stack_of(observed), keep=3, mode="scale_to_zero", prune_images=True)
    assert [(a["action"], a["version"]) for a in actions] == [("scale_to_zero", "1.10"), ("scale_to_zero", "1.0")]
    assert actions[0]["before"] == {"min": 1, "max": 3, "desired": 2}
    assert actions[0]["after"] == {"min": 0, "max": 3, "desired": 0}


def test_last_target_of_a_forward_action_is_kept():
    observed = empty()
    live = fleet_parts(observed, "2.0", 10)
    old = fleet_parts(observed, "1.0", 1)
    observed["listeners"].append({"ListenerArn": LISTENER, "LoadBalancerArn": LB, "DefaultActions": forward([(live, 1)])})
    observed["rules"].append({"RuleArn": RULE, "ListenerArn": LISTENER, "LoadBalancerArn": LB, "Priority": "1",
                              "Actions": forward([(old, 0)])})
    decisions, actions = G.plan_gc(stack_of(observed), keep=0)
    assert {d["version"]: d["reason"] for d in decisions}["1.0"] == G.REASON_LAST_TARGET
    assert actions == []


def test_invalid_keep_and_mode():
    with pytest.raises(FleetError, match="keep must be 0 or more"):
        G.plan_gc(stack_of(empty()), keep=-1)
    with pytest.raises(FleetError, match="mode must be one of"):
        G.plan_gc(stack_of(empty()), mode="shred")


# --------------------------------------------------------------------------------------------
# Traffic edits and draining
# --------------------------------------------------------------------------------------------


def test_without_target_groups_preserves_everything_else():
    actions = [
        {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {"Issuer": "https://idp", "ClientId": "c"}},
        {"Type": "forward", "Order": 2, "TargetGroupArn": "a",
         "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "a", "Weight": 0}, {"TargetGroupArn": "foreign", "Weight": 0},
                                            {"TargetGroupArn": "live", "Weight": 5}],
                           "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}},
    ]
    new, changed = G.without_target_groups(actions, ["a"])
    assert changed is True
    assert new[1] == {"Type": "forward", "Order": 2, "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": "foreign", "Weight": 0}, {"TargetGroupArn": "live", "Weight": 5}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}}
    assert new[0]["AuthenticateOidcConfig"] == {"Issuer": "https://idp", "ClientId": "c", "UseExistingClientSecret": True}
    assert actions[1]["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"] == "a"  # input untouched
    assert G.without_target_groups(new, ["a"]) == (new, False)


def test_without_target_groups_refuses_serving_or_emptying():
    with pytest.raises(FleetError, match="now has weight > 0"):
        G.without_target_groups(forward([("a", 3), ("b", 1)]), ["a"])
    with pytest.raises(FleetError, match="without any target group"):
        G.without_target_groups(forward([("a", 0)]), ["a"])
    with pytest.raises(FleetError, match="now has weight > 0"):
        G.without_target_groups([{"Type": "forward", "TargetGroupArn": "a"}], ["a"])


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeElbv2:
    def __init__(self, answers):
        self.answers = list(answers)

    def describe_target_health(self, TargetGroupArn):  # noqa: N803 (boto3's name)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return {"TargetHealthDescriptions": answer}


def _health(instance, state):
    return {"Target": {"Id": instance}, "TargetHealth": {"State": state}}


def test_wait_for_drain_until_no_target_drains():
    elbv2 = FakeElbv2([[_health("i-1", "healthy")], [_health("i-1", "draining")], [_health("i-9", "healthy")]])
    clock = FakeClock()
    action = {"target_group_arn": "tg", "instance_ids": ["i-1"]}
    assert G.wait_for_drain(elbv2, action, 60, sleep=clock.sleep, clock=clock) is True
    assert clock.now == 3.0  # polled three times: 1 s then 2 s


def test_wait_for_drain_gives_up_after_the_timeout():
    elbv2 = FakeElbv2([[_health("i-1", "draining")]])
    clock = FakeClock()
    assert G.wait_for_drain(elbv2, {"target_group_arn": "tg", "instance_ids": []}, 7, sleep=clock.sleep, clock=clock) is False
    assert clock.now == 7.0


def test_prune_images_spares_an_ami_a_remaining_launch_template_uses():
    observed = empty()
    live = fleet_parts(observed, "2.0", 10, image="ami-shared")
    fleet_parts(observed, "1.0", 1, image="ami-shared")
    fleet_parts(observed, "0.9", 0)
    observed["listeners"].append({"ListenerArn": LISTENER, "LoadBalancerArn": LB, "DefaultActions": forward([(live, 1)])})
    decisions, actions = G.plan_gc(stack_of(observed), keep=0, prune_images=True)
    assert {d["version"]: d["decision"] for d in decisions} == {"2.0": "keep", "1.0": "delete", "0.9": "delete"}
    assert [(a["action"], a["id"]) for a in actions if a["action"] in ("deregister_image", "delete_snapshot")] == [
        ("deregister_image", "ami-0.9"), ("delete_snapshot", "snap-ami-0.9")]
