"""fleet_info's pure evaluation: instance counts from target health, and drift."""

from __future__ import annotations

import copy
import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.cattle.aws.plugins.module_utils._fleet import info as I

pytestmark = pytest.mark.unit

AMI = "ami-00000000000000001"
OTHER_AMI = "ami-00000000000000002"
LT = "lt-00000000000000001"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-prod-1-0-abcdef12/1"


def asg_instance(instance_id, lifecycle="InService", lt=LT, lt_version="1"):
    return {"instance_id": instance_id, "lifecycle_state": lifecycle, "health_status": "Healthy",
            "launch_template_id": lt, "launch_template_version": lt_version}


def fleet(version="1.0", instances=None, asg_version="1", latest=1, default=1, image=AMI, owned_ami=None,
          target_group=True, asg=True):
    return {
        "version": version,
        "ami": {"id": owned_ami or image, "owned": bool(owned_ami)},
        "launch_template": {"id": LT, "name": f"shop-prod-{version}", "latest_version": latest,
                            "default_version": default, "image_id": image},
        "target_group": {"arn": TG} if target_group else None,
        "auto_scaling_group": {
            "name": f"shop-prod-{version}",
            "launch_template": {"id": LT, "version": asg_version},
            "instances": instances if instances is not None else [asg_instance("i-1"), asg_instance("i-2")],
        } if asg else None,
    }


def ec2_instance(instance_id, image=AMI, state="running", **tags):
    tag_list = [{"Key": k.replace("_", ":"), "Value": v} for k, v in tags.items()]
    return {"InstanceId": instance_id, "ImageId": image, "State": {"Name": state}, "InstanceType": "t3.micro",
            "LaunchTime": datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc), "Tags": tag_list}


def health(target_id, state, reason=None):
    return {"Target": {"Id": target_id, "Port": 8080}, "TargetHealth": {"State": state, "Reason": reason}}


def stack(*fleets, environment="prod"):
    return {"app": "shop", "environment": environment, "fleets": list(fleets)}


# --- health ---------------------------------------------------------------------------------


def test_target_states_are_counted_as_aws_reports_them():
    records = I.target_health_records([
        health("i-3", "unused", "Target.NotInUse"), health("i-1", "healthy"), health("i-2", "unhealthy"),
        health("i-4", "initial"), health("i-5", "draining"), health("i-6", "unhealthy.draining"),
        health("i-7", "unavailable"),
    ])
    assert [r["target_id"] for r in records] == ["i-1", "i-2", "i-3", "i-4", "i-5", "i-6", "i-7"]
    assert records[2] == {"target_id": "i-3", "port": 8080, "availability_zone": None, "state": "unused",
                          "reason": "Target.NotInUse", "description": None}
    counts = I.instance_counts(fleet(), records)
    assert counts == {"total": 2, "in_service": 2, "registered": 7, "healthy": 1, "unhealthy": 1, "initial": 1,
                      "unused": 1, "draining": 1, "unhealthy_draining": 1, "unavailable": 1}


def test_unused_targets_are_not_healthy():
    counts = I.instance_counts(fleet(), I.target_health_records([health("i-1", "unused"), health("i-2", "unused")]))
    assert (counts["healthy"], counts["unhealthy"], counts["unused"]) == (0, 0, 2)


def test_counts_without_target_health_are_none_and_asg_counts_stay():
    f = fleet(instances=[asg_instance("i-1"), asg_instance("i-2", lifecycle="Pending")])
    counts = I.instance_counts(f, None)
    assert (counts["total"], counts["in_service"]) == (2, 1)
    assert counts["healthy"] is None and counts["registered"] is None and counts["unused"] is None


def test_counts_of_a_fleet_without_asg():
    assert I.instance_counts(fleet(asg=False), [])["total"] == 0


@given(st.lists(st.sampled_from(I.TARGET_STATES), max_size=30))
def test_state_counts_add_up_to_registered(states):
    records = I.target_health_records([health(f"i-{n}", s) for n, s in enumerate(states)])
    counts = I.instance_counts(fleet(), records)
    assert counts["registered"] == len(states)
    assert sum(counts[s.replace(".", "_")] for s in I.TARGET_STATES) == len(states)


# --- expected version / image ------------------------------------------------------------------


@pytest.mark.parametrize("pinned, expected", [("1", 1), ("3", 3), ("$Latest", 4), ("$Default", 2), (None, 2)])
def test_expected_launch_template_version(pinned, expected):
    assert I.expected_launch_template_version(fleet(asg_version=pinned, latest=4, default=2)) == expected


def test_expected_image_is_the_image_of_the_version_the_asg_uses():
    f = fleet(latest=2, default=2, image=OTHER_AMI)  # someone made an edited version 2 the default
    versions = {LT: [{"VersionNumber": 1, "LaunchTemplateData": {"ImageId": AMI}},
                     {"VersionNumber": 2, "LaunchTemplateData": {"ImageId": OTHER_AMI}}]}
    assert I.expected_image(f, versions) == AMI
    assert I.expected_image(fleet()) == AMI
    # Version data unknown and the default is not the ASG's version: the fleet's AMI.
    assert I.expected_image(fleet(latest=2, default=2, image=OTHER_AMI, owned_ami=AMI)) == AMI


# --- instance drift -----------------------------------------------------------------------------


def test_no_drift_for_a_clean_fleet():
    described = {i: ec2_instance(i) for i in ("i-1", "i-2")}
    assert I.instance_drift(fleet(), described) == []


def test_instance_from_another_ami_is_drift():
    described = {"i-1": ec2_instance("i-1"), "i-2": ec2_instance("i-2", image=OTHER_AMI)}
    assert I.instance_drift(fleet(), described) == [{
        "instance_id": "i-2", "reasons": ["ami"], "image_id": OTHER_AMI, "expected_image_id": AMI,
        "launch_template_id": LT, "expected_launch_template_id": LT,
        "launch_template_version": "1", "expected_launch_template_version": 1,
    }]


def test_attached_instance_without_launch_template_is_drift():
    f = fleet(instances=[asg_instance("i-1"), asg_instance("i-9", lt=None, lt_version=None)])
    described = {"i-1": ec2_instance("i-1"), "i-9": ec2_instance("i-9", image=OTHER_AMI)}
    [entry] = I.instance_drift(f, described)
    assert entry["instance_id"] == "i-9" and entry["reasons"] == ["ami", "launch_template"]


def test_instance_from_another_launch_template_version_is_drift():
    f = fleet(instances=[asg_instance("i-1"), asg_instance("i-2", lt_version="2")], latest=2)
    [entry] = I.instance_drift(f, {i: ec2_instance(i) for i in ("i-1", "i-2")})
    assert entry["instance_id"] == "i-2" and entry["reasons"] == ["launch_template_version"]
    assert entry["expected_launch_template_version"] == 1


def test_undescribed_instance_is_not_judged_on_its_ami():
    assert I.instance_drift(fleet(), {}) == []


# --- launch template drift ------------------------------------------------------------------------


def test_single_version_launch_template_is_not_drift():
    assert I.launch_template_drift(fleet()) is None
    assert I.launch_template_drift(fleet(asg=False, target_group=False)) is None
    assert I.launch_template_drift({"launch_template": None}) is None


def test_edited_launch_template_is_drift_with_its_versions():
    created = datetime.datetime(2024, 5, 2, 8, tzinfo=datetime.timezone.utc)
    versions = {LT: [
        {"VersionNumber": 2, "DefaultVersion": False, "CreateTime": created, "CreatedBy": "arn:aws:iam::1:user/bob",
         "LaunchTemplateData": {"ImageId": OTHER_AMI, "InstanceType": "t3.large"}},
        {"VersionNumber": 1, "DefaultVersion": True, "LaunchTemplateData": {"ImageId": AMI, "InstanceType": "t3.micro"}},
    ]}
    entry = I.launch_template_drift(fleet(latest=2), versions)
    assert entry["id"] == LT and entry["latest_version"] == 2 and entry["expected_version"] == 1
    assert [(v["version_number"], v["default"], v["image_id"]) for v in entry["versions"]] == [
        (1, True, AMI), (2, False, OTHER_AMI)]
    assert entry["versions"][1]["created_at"] == "2024-05-02T08:00:00Z"
    assert entry["versions"][1]["created_by"] == "arn:aws:iam::1:user/bob"


# --- stray instances ---------------------------------------------------------------------------------


def test_stray_instances():
    instances = [
        ec2_instance("i-1", cattle_app="shop", cattle_environment="prod"),  # in the ASG
        ec2_instance("i-5", cattle_app="shop", cattle_environment="prod", cattle_version="1.0", Name="debug"),
        ec2_instance("i-6", cattle_app="shop", cattle_environment="staging"),  # other environment
        ec2_instance("i-7", cattle_app="shop2", cattle_environment="prod"),  # other app
        ec2_instance("i-8", state="stopped", cattle_app="shop", cattle_environment="prod"),
        ec2_instance("i-3", cattle_app="shop", cattle_environment="prod", **{"cattle_managed-by": "cattle.aws"}),
        ec2_instance("i-4"),  # untagged
    ]
    strays = I.stray_instances(instances, [fleet()], "shop", "prod")
    assert [(s["instance_id"], s["managed"]) for s in strays] == [("i-3", True), ("i-5", False)]
    assert strays[1]["version"] == "1.0" and strays[1]["name"] == "debug"
    assert strays[1]["launch_time"] == "2024-05-01T12:00:00Z"


def test_stray_instances_of_a_stack_without_environment():
    instances = [ec2_instance("i-5", cattle_app="shop"), ec2_instance("i-6", cattle_app="shop", cattle_environment="prod")]
    assert [s["instance_id"] for s in I.stray_instances(instances, [], "shop", None)] == ["i-5"]


# --- enrich_stack --------------------------------------------------------------------------------


def _details(**overrides):
    details = {
        "target_health": {TG: [health("i-1", "healthy"), health("i-2", "unused")]},
        "instances": [ec2_instance("i-1", cattle_app="shop", cattle_environment="prod"),
                      ec2_instance("i-2", image=OTHER_AMI, cattle_app="shop", cattle_environment="prod"),
                      ec2_instance("i-5", cattle_app="shop", cattle_environment="prod")],
        "launch_template_versions": {},
    }
    details.update(overrides)
    return details


def test_enrich_stack_with_health_and_drift():
    result = I.enrich_stack(stack(fleet(latest=2)), _details())
    [f] = result["fleets"]
    assert f["instance_counts"]["healthy"] == 1 and f["instance_counts"]["unused"] == 1
    assert [(i["instance_id"], i["target_health"], i["image_id"]) for i in f["auto_scaling_group"]["instances"]] == [
        ("i-1", "healthy", AMI), ("i-2", "unused", OTHER_AMI)]
    assert f["drift"]["detected"] and [d["instance_id"] for d in f["drift"]["instances"]] == ["i-2"]
    drift = result["drift"]
    assert drift["detected"] is True
    assert [(d["version"], d["instance_id"]) for d in drift["instances"]] == [("1.0", "i-2")]
    assert [(t["version"], t["id"]) for t in drift["launch_templates"]] == [("1.0", LT)]
    assert [s["instance_id"] for s in drift["stray_instances"]] == ["i-5"]
    assert len(drift["messages"]) == 3
    assert "i-2 differs from its fleet (ami" in drift["messages"][0]


def test_enrich_stack_without_health_and_drift_adds_only_counts():
    original = stack(fleet())
    result = I.enrich_stack(copy.deepcopy(original), _details(), health=False, drift=False)
    assert "drift" not in result
    [f] = result["fleets"]
    assert "drift" not in f and "target_health" not in f
    assert f["instance_counts"]["total"] == 2 and f["instance_counts"]["healthy"] is None
    assert "target_health" not in f["auto_scaling_group"]["instances"][0]


def test_enrich_stack_fleet_without_target_group_or_gone_target_group():
    result = I.enrich_stack(stack(fleet(target_group=False), fleet("1.1")), _details(target_health={TG: None}))
    assert [f["instance_counts"]["registered"] for f in result["fleets"]] == [0, 0]
    assert result["drift"]["detected"] is True  # i-5 stray, i-2 on another AMI in both fleets


def test_no_drift_at_all():
    result = I.enrich_stack(stack(fleet()), _details(instances=[ec2_instance("i-1"), ec2_instance("i-2")]))
    assert result["drift"] == {"detected": False, "instances": [], "launch_templates": [],
                               "stray_instances": [], "messages": []}


def test_what_to_describe():
    s = stack(fleet(latest=3), fleet("1.1", instances=[asg_instance("i-3")]), fleet("1.2", asg=False))
    assert I.instance_ids_to_describe(s, [ec2_instance("i-1")]) == ["i-2", "i-3"]
    assert I.edited_launch_templates(s) == [LT]
