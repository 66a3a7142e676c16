"""Discovery's pure half: grouping by version, partial fleets, traffic weights, live/serving/previous."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import discovery as D
from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
LB = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/lb/1"
LISTENER = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:listener/app/lb/1/2"


def _when(day):
    return datetime.datetime(2024, 5, day, 12, 0, 0, tzinfo=datetime.timezone.utc)


def tg_arn(name):
    return f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/{name}/abc"


def owned_tags(version, day, app="shop", environment="prod", **extra):
    tags = T.ownership_tags(app, environment, version, created_at=_when(day))
    tags.update(extra)
    return tags


def parts(version, day, app="shop", environment="prod", ami=True, lt=True, tg=True, asg=True, **extra_tags):
    """Boto3-shaped descriptions of one fleet's parts."""
    names = naming.fleet_names(app, environment, version)
    tags = owned_tags(version, day, app, environment, **extra_tags)
    tag_list = T.dict_to_tag_list(tags)
    out = {"images": [], "launch_templates": [], "target_groups": [], "auto_scaling_groups": [],
           "launch_template_versions": {}}
    if ami:
        out["images"].append({"ImageId": f"ami-{version}", "Name": f"{app}-{version}", "State": "available",
                              "CreationDate": "2024-05-01T11:00:00.000Z", "Tags": tag_list,
                              "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": f"snap-{version}"}}]})
    if lt:
        out["launch_templates"].append({"LaunchTemplateId": f"lt-{version}", "LaunchTemplateName": names["launch_template"],
                                        "LatestVersionNumber": 1, "DefaultVersionNumber": 1,
                                        "CreateTime": _when(day), "Tags": tag_list})
        out["launch_template_versions"][f"lt-{version}"] = {
            "LaunchTemplateData": {"ImageId": f"ami-{version}", "InstanceType": "t3.micro"}}
    if tg:
        out["target_groups"].append({"TargetGroupArn": tg_arn(names["target_group"]), "TargetGroupName": names["target_group"],
                                     "Port": 8080, "Protocol": "HTTP", "VpcId": "vpc-1", "TargetType": "instance",
                                     "LoadBalancerArns": [LB], "Tags": tags})
    if asg:
        out["auto_scaling_groups"].append({
            "AutoScalingGroupName": names["auto_scaling_group"], "MinSize": 1, "MaxSize": 3, "DesiredCapacity": 2,
            "CreatedTime": _when(day),
            "LaunchTemplate": {"LaunchTemplateId": f"lt-{version}", "LaunchTemplateName": names["launch_template"], "Version": "1"},
            "TargetGroupARNs": [tg_arn(names["target_group"])] if tg else [],
            "Instances": [
                {"InstanceId": "i-2", "LifecycleState": "InService", "HealthStatus": "Healthy",
                 "LaunchTemplate": {"LaunchTemplateId": f"lt-{version}", "Version": "1"}},
                {"InstanceId": "i-1", "LifecycleState": "Pending", "HealthStatus": "UNHEALTHY"},
            ],
            "Tags": [dict(t, ResourceId=names["auto_scaling_group"], PropagateAtLaunch=True) for t in tag_list],
        })
    return out


def merge(*observations, listeners=(), rules=()):
    merged = {"images": [], "launch_templates": [], "target_groups": [], "auto_scaling_groups": [],
              "launch_template_versions": {}, "listeners": list(listeners), "rules": list(rules)}
    for o in observations:
        for k in ("images", "launch_templates", "target_groups", "auto_scaling_groups"):
            merged[k].extend(o[k])
        merged["launch_template_versions"].update(o["launch_template_versions"])
    return merged


def arn_of(version):
    return tg_arn(naming.fleet_names("shop", "prod", version)["target_group"])


def weighted_listener(weights, arn=LISTENER, foreign=None):
    groups = [{"TargetGroupArn": arn_of(v), "Weight": w} for v, w in weights.items()]
    if foreign:
        groups.append({"TargetGroupArn": foreign, "Weight": 5})
    return {"ListenerArn": arn, "LoadBalancerArn": LB,
            "DefaultActions": [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]}


def test_groups_parts_by_version_newest_first():
    stack = D.build_stack(merge(parts("1.9", 1), parts("1.10", 2), parts("1.8", 3)), "shop", "prod")
    assert [f["version"] for f in stack["fleets"]] == ["1.8", "1.10", "1.9"]  # by created_at
    fleet = stack["fleets"][0]
    assert fleet["created_at"] == "2024-05-03T12:00:00Z"
    assert fleet["complete"] is True and fleet["status"] == "ok" and fleet["failed"] is False
    assert fleet["ami"] == {"id": "ami-1.8", "name": "shop-1.8", "state": "available",
                            "creation_date": "2024-05-01T11:00:00.000Z", "snapshot_ids": ["snap-1.8"], "owned": True}
    assert fleet["launch_template"]["name"] == "shop-prod-1.8"
    assert fleet["launch_template"]["image_id"] == "ami-1.8"
    assert fleet["target_group"]["port"] == 8080
    group = fleet["auto_scaling_group"]
    assert (group["min_size"], group["max_size"], group["desired_capacity"]) == (1, 3, 2)
    assert [i["instance_id"] for i in group["instances"]] == ["i-1", "i-2"]
    assert group["instances"][0]["health_status"] == "Unhealthy"
    assert group["instance_counts"] == {"total": 2, "in_service": 1, "healthy": 1, "unhealthy": 1}
    assert stack["live_version"] is None and stack["previous_version"] is None


def test_same_created_at_sorts_by_natural_version():
    stack = D.build_stack(merge(parts("1.9", 1), parts("1.10", 1), parts("1.2", 1)), "shop", "prod")
    assert [f["version"] for f in stack["fleets"]] == ["1.10", "1.9", "1.2"]


def test_partial_fleets_have_missing_parts_as_none():
    observed = merge(parts("1", 1, ami=False, tg=False, asg=False), parts("2", 2, ami=False, lt=False, tg=False),
                     parts("3", 3, lt=False, asg=False))
    fleets = {f["version"]: f for f in D.build_stack(observed, "shop", "prod")["fleets"]}
    assert fleets["1"]["launch_template"] is not None
    assert fleets["1"]["target_group"] is None and fleets["1"]["auto_scaling_group"] is None
    assert fleets["1"]["ami"]["id"] == "ami-1" and fleets["1"]["ami"]["owned"] is False  # from the LT
    assert fleets["2"]["launch_template"] is None and fleets["2"]["auto_scaling_group"] is not None
    assert fleets["2"]["ami"] is None
    assert fleets["3"]["target_group"] is not None and fleets["3"]["launch_template"] is None
    assert not any(f["complete"] for f in fleets.values())


def test_foreign_parts_are_ignored_even_if_a_server_filter_let_them_through():
    mine = parts("1", 1)
    other_app = parts("1", 1, app="shop2")
    other_env = parts("1", 1, environment="staging")
    unmanaged = parts("1", 1, **{"cattle:managed-by": "terraform"})
    stack = D.build_stack(merge(mine, other_app, other_env, unmanaged), "shop", "prod")
    assert len(stack["fleets"]) == 1
    assert stack["conflicts"] == []
    assert stack["fleets"][0]["launch_template"]["id"] == "lt-1"


def test_environment_less_stack_ignores_environment_fleets():
    observed = merge(parts("1", 1, environment=None), parts("2", 2))
    assert [f["version"] for f in D.build_stack(observed, "shop", None)["fleets"]] == ["1"]


def test_created_at_falls_back_to_creation_times():
    observed = parts("1", 1, ami=False)
    for kind in ("launch_templates", "auto_scaling_groups"):
        for r in observed[kind]:
            r["Tags"] = [t for t in r["Tags"] if t["Key"] != "cattle:created-at"]
    observed["target_groups"][0]["Tags"].pop("cattle:created-at")
    observed["auto_scaling_groups"][0]["CreatedTime"] = _when(4)
    fleet = D.build_stack(merge(observed), "shop", "prod")["fleets"][0]
    assert fleet["created_at"] == "2024-05-01T12:00:00Z"  # the LT's CreateTime, the oldest


def test_failed_status_from_any_part():
    observed = parts("1", 1)
    observed["auto_scaling_groups"][0]["Tags"].append({"Key": "cattle:status", "Value": "failed"})
    fleet = D.build_stack(merge(observed), "shop", "prod")["fleets"][0]
    assert fleet["failed"] is True and fleet["status"] == "failed"


def test_duplicate_parts_prefer_expected_name_and_report_conflict():
    a = parts("1", 1)
    b = parts("1", 1, ami=False, tg=False, asg=False)
    b["launch_templates"][0].update(LaunchTemplateId="lt-other", LaunchTemplateName="aaa-copy")
    stack = D.build_stack(merge(b, a), "shop", "prod")
    assert stack["fleets"][0]["launch_template"]["name"] == "shop-prod-1"
    assert stack["conflicts"] == ["version 1: 2 launch templates carry the stack's tags (shop-prod-1, aaa-copy); using shop-prod-1"]


def test_weighted_forward_sets_weights_live_and_serving():
    observed = merge(parts("1", 1), parts("2", 2), parts("3", 3),
                     listeners=[weighted_listener({"1": 0, "2": 90, "3": 10})])
    stack = D.build_stack(observed, "shop", "prod")
    fleets = {f["version"]: f for f in stack["fleets"]}
    assert stack["live_version"] == "2"
    assert (fleets["2"]["weight"], fleets["2"]["traffic_percent"], fleets["2"]["live"]) == (90, 90.0, True)
    assert fleets["3"]["serving"] is True and fleets["3"]["live"] is False
    assert fleets["1"]["serving"] is False and fleets["1"]["traffic"][0]["weight"] == 0
    assert stack["previous_version"] == "1"
    assert stack["traffic_point"] == LISTENER
    assert stack["foreign_target_groups"] == []


def test_plain_target_group_forward_is_all_traffic():
    listener = {"ListenerArn": LISTENER, "LoadBalancerArn": LB,
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": arn_of("1")}]}
    stack = D.build_stack(merge(parts("1", 1), parts("2", 2), listeners=[listener]), "shop", "prod")
    assert stack["live_version"] == "1"
    live = [f for f in stack["fleets"] if f["live"]][0]
    assert live["traffic"][0]["weight"] == 1 and live["traffic_percent"] == 100.0
    assert stack["previous_version"] is None  # nothing older than the live version


def test_tie_goes_to_the_newest_version():
    stack = D.build_stack(merge(parts("1", 1), parts("2", 2), listeners=[weighted_listener({"1": 50, "2": 50})]),
                          "shop", "prod")
    assert stack["live_version"] == "2"
    assert stack["previous_version"] == "1"


def test_foreign_target_groups_on_the_traffic_point_are_reported():
    foreign = tg_arn("legacy-web")
    observed = merge(parts("1", 1), listeners=[weighted_listener({"1": 95}, foreign=foreign)])
    stack = D.build_stack(observed, "shop", "prod")
    assert stack["live_version"] == "1"
    [entry] = stack["foreign_target_groups"]
    assert (entry["arn"], entry["name"], entry["weight"], entry["percent"]) == (foreign, "legacy-web", 5, 5.0)
    assert entry["listener_arn"] == LISTENER and entry["type"] == "listener"
    point = stack["traffic_points"][0]
    assert [(tg["name"], tg["version"]) for tg in point["target_groups"]] == [
        (naming.fleet_names("shop", "prod", "1")["target_group"], "1"), ("legacy-web", None)]


def test_foreign_weight_can_win_and_then_nothing_of_ours_is_live():
    observed = merge(parts("1", 1), listeners=[weighted_listener({"1": 0}, foreign=tg_arn("legacy"))])
    stack = D.build_stack(observed, "shop", "prod")
    assert stack["live_version"] is None
    assert stack["previous_version"] is None


def test_listener_rules_and_points_without_our_target_groups():
    rule_arn = LISTENER.replace("listener/", "listener-rule/") + "/9"
    rule = {"RuleArn": rule_arn, "ListenerArn": LISTENER, "LoadBalancerArn": LB, "Priority": "10",
            "Actions": [{"Type": "authenticate-oidc", "Order": 1},
                        {"Type": "forward", "Order": 2, "ForwardConfig": {"TargetGroups": [
                            {"TargetGroupArn": arn_of("1"), "Weight": 1}, {"TargetGroupArn": arn_of("2"), "Weight": 3}]}}]}
    unrelated = {"ListenerArn": LISTENER + "x", "LoadBalancerArn": LB,
                 "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn("someone-else")}]}
    redirect = {"ListenerArn": LISTENER + "y", "LoadBalancerArn": LB, "DefaultActions": [{"Type": "redirect"}]}
    stack = D.build_stack(merge(parts("1", 1), parts("2", 2), listeners=[unrelated, redirect], rules=[rule]),
                          "shop", "prod")
    assert [p["arn"] for p in stack["traffic_points"]] == [rule_arn]
    assert stack["live_version"] == "2"
    fleets = {f["version"]: f for f in stack["fleets"]}
    assert fleets["1"]["traffic"][0]["percent"] == 25.0 and fleets["1"]["traffic"][0]["priority"] == "10"
    assert stack["foreign_target_groups"] == []


def test_traffic_point_option_decides_live_but_serving_counts_everywhere():
    other = LISTENER + "-b"
    observed = merge(parts("1", 1), parts("2", 2),
                     listeners=[weighted_listener({"1": 100, "2": 0}), weighted_listener({"1": 0, "2": 100}, arn=other)])
    assert D.build_stack(observed, "shop", "prod", traffic_point=other)["live_version"] == "2"
    stack = D.build_stack(observed, "shop", "prod", traffic_point=LISTENER)
    assert stack["live_version"] == "1"
    assert all(f["serving"] for f in stack["fleets"])
    assert D.build_stack(observed, "shop", "prod", traffic_point="arn:nowhere")["live_version"] is None


def test_previous_skips_failed_and_incomplete_versions():
    observed = merge(parts("1", 1), parts("2", 2, asg=False), parts("3", 3, **{"cattle:status": "failed"}),
                     parts("4", 4), parts("5", 5), listeners=[weighted_listener({"4": 100, "5": 0})])
    stack = D.build_stack(observed, "shop", "prod")
    assert stack["live_version"] == "4"
    assert stack["previous_version"] == "1"


@pytest.mark.parametrize(
    "actions, expected",
    [
        ([], []),
        ([{"Type": "fixed-response"}], []),
        ([{"Type": "forward", "TargetGroupArn": "a"}], [("a", 1)]),
        # AWS returns both fields for a plain forward; ForwardConfig is authoritative.
        ([{"Type": "forward", "TargetGroupArn": "a", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "a", "Weight": 1}]}}], [("a", 1)]),
        ([{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "a"}, {"TargetGroupArn": "b", "Weight": 0}]}}], [("a", 1), ("b", 0)]),
    ],
)
def test_forward_targets(actions, expected):
    assert D.forward_targets(actions) == expected


def test_helpers():
    assert D.target_group_name_from_arn(tg_arn("web-1")) == "web-1"
    assert D.target_group_name_from_arn("arn:aws:ec2:::instance/i-1") is None
    assert sorted(["1.10", "1.9", "1.9a", "2"], key=D.version_sort_key) == ["1.9", "1.9a", "1.10", "2"]
    assert D.previous_version([], None) is None
