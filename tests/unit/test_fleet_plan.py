"""immutable_fleet's planner (pure): create, no-op, immutability, capacity, resume, absent, check mode."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import fleet as F
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit

AMI = "ami-0ca771e0000ba5e01"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60719"]
VPC = "vpc-0123456789abcdef0"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2"
RULE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/1/2/3"
CREATED = "2024-05-01T12:00:00Z"


def params(**overrides):
    base = dict(app="shop", environment="prod", version="1.4.2", state="present", ami_id=AMI,
                instance_type="t3.micro", subnet_ids=list(SUBNETS), user_data="#!/bin/sh\necho secret-token\n",
                capacity=dict(min=1, max=3, desired=2))
    base.update(overrides)
    return base


def desired(**overrides):
    return F.build_desired(params(**overrides))


def nothing():
    return {"launch_template": None, "target_group": None, "auto_scaling_group": None, "foreign": [],
            "traffic": [], "live": None,
            "image": {"id": AMI, "found": True, "root_device_name": "/dev/xvda", "root_volume_size": 8},
            "subnets": {"found": sorted(SUBNETS), "vpc_ids": [VPC]}}


def built(want=None):
    """The observed state of a complete fleet, as this code creates it (with fake IDs)."""
    want = want or desired()
    state = F.simulate(nothing(), F.plan_fleet(nothing(), want), want, CREATED)
    state["launch_template"]["id"] = "lt-0123456789abcdef0"
    state["target_group"]["arn"] = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1"
    state["auto_scaling_group"]["target_group_arns"] = [state["target_group"]["arn"]]
    state["auto_scaling_group"]["launch_template"]["id"] = "lt-0123456789abcdef0"
    state["image"] = None
    state["subnets"] = None
    return state


def kinds(actions):
    return [a["action"] for a in actions]


# ---- create / no-op ---------------------------------------------------------------------------


def test_create_from_nothing_creates_lt_then_tg_then_asg():
    actions = F.plan_fleet(nothing(), desired())
    assert kinds(actions) == ["create_launch_template", "create_target_group", "create_auto_scaling_group"]
    assert actions[0]["name"] == "shop-prod-1.4.2"
    assert actions[2]["capacity"] == {"min": 1, "max": 3, "desired": 2}
    assert "secret-token" not in repr(actions)


def test_same_spec_again_is_a_no_op():
    assert F.plan_fleet(built(), desired()) == []


def test_launch_template_data_is_secure_by_default():
    want = desired()
    data = F.launch_template_data(want, nothing(), {"cattle:app": "shop"})
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda",
         "Ebs": {"Encrypted": True, "DeleteOnTermination": True, "VolumeType": "gp3", "VolumeSize": 8}}
    ]
    assert {s["ResourceType"] for s in data["TagSpecifications"]} == {"instance", "volume"}


def test_desired_capacity_defaults_to_min_on_create():
    actions = F.plan_fleet(nothing(), desired(capacity=dict(min=2, max=4)))
    assert actions[-1]["capacity"] == {"min": 2, "max": 4, "desired": 2}


def test_create_without_capacity_is_refused():
    with pytest.raises(FleetError, match="capacity with min and max is required"):
        F.plan_fleet(nothing(), desired(capacity=None))


def test_capacity_from_live_copies_the_live_fleet():
    observed = nothing()
    observed["live"] = {"version": "1.4.1", "capacity": {"min": 3, "max": 9, "desired": 5}}
    actions = F.plan_fleet(observed, desired(capacity=None, capacity_from_live=True))
    assert actions[-1]["capacity"] == {"min": 3, "max": 9, "desired": 5}


def test_capacity_from_live_without_live_fleet_uses_capacity_or_fails():
    actions = F.plan_fleet(nothing(), desired(capacity_from_live=True))
    assert actions[-1]["capacity"] == {"min": 1, "max": 3, "desired": 2}
    with pytest.raises(FleetError, match="no live fleet was found"):
        F.plan_fleet(nothing(), desired(capacity=None, capacity_from_live=True))


def test_missing_ami_and_foreign_subnets_fail_before_any_change():
    observed = nothing()
    observed["image"]["found"] = False
    with pytest.raises(FleetError, match=f"ami_id {AMI} does not exist"):
        F.plan_fleet(observed, desired())
    observed = nothing()
    observed["subnets"] = {"found": SUBNETS[:1], "vpc_ids": [VPC]}
    with pytest.raises(FleetError, match=f"subnet_ids: {SUBNETS[1]} not found"):
        F.plan_fleet(observed, desired())


# ---- immutability -----------------------------------------------------------------------------


def test_changed_spec_on_existing_version_names_the_fields():
    with pytest.raises(FleetError) as error:
        F.plan_fleet(built(), desired(ami_id="ami-0fffffffffffffff0", instance_type="t3.large"))
    assert (
        "differ from the existing fleet shop-prod-1.4.2: ami_id, instance_type. "
        "Fleets are immutable: release a new version."
    ) in error.value.msg
    assert error.value.details["differing_fields"] == ["ami_id", "instance_type"]
    assert error.value.details["differences"]["ami_id"] == {"existing": AMI, "requested": "ami-0fffffffffffffff0"}


def test_changed_user_data_is_named_but_never_echoed():
    with pytest.raises(FleetError) as error:
        F.plan_fleet(built(), desired(user_data="#!/bin/sh\necho other-secret\n"))
    assert error.value.details["differing_fields"] == ["user_data"]
    text = error.value.msg + repr(error.value.details)
    assert "secret" not in text


@pytest.mark.parametrize("override, field", [
    (dict(subnet_ids=SUBNETS[:1]), "subnet_ids"),
    (dict(security_group_ids=["sg-0123456789abcdef0"]), "security_group_ids"),
    (dict(key_name="ops"), "key_name"),
    (dict(iam_instance_profile="web"), "iam_instance_profile"),
    (dict(metadata_options=dict(http_tokens="optional")), "metadata_options"),
    (dict(target_group=dict(port=9090)), "target_group.port"),
    (dict(target_group=dict(health_check=dict(path="/ready"))), "target_group.health_check.path"),
    (dict(health_check_type="EC2"), "health_check_type"),
    (dict(tags=dict(team="web")), "tags"),
])
def test_each_spec_field_is_compared(override, field):
    with pytest.raises(FleetError) as error:
        F.plan_fleet(built(), desired(**override))
    assert error.value.details["differing_fields"] == [field]


def test_volumes_given_explicitly_are_compared():
    volumes = [dict(device_name="/dev/xvda", volume_size=20)]
    state = built(desired(volumes=volumes))
    assert F.plan_fleet(state, desired(volumes=volumes)) == []
    with pytest.raises(FleetError, match="volumes"):
        F.plan_fleet(state, desired(volumes=[dict(device_name="/dev/xvda", volume_size=30)]))


# ---- capacity ---------------------------------------------------------------------------------


def test_capacity_change_is_allowed():
    actions = F.plan_fleet(built(), desired(capacity=dict(min=2, max=6, desired=4)))
    assert actions == [{"action": "update_capacity", "name": "shop-prod-1.4.2",
                        "before": {"min": 1, "max": 3, "desired": 2}, "after": {"min": 2, "max": 6, "desired": 4}}]


def test_partial_capacity_merges_with_existing_and_is_range_checked():
    actions = F.plan_fleet(built(), desired(capacity=dict(desired=3)))
    assert actions[0]["after"] == {"min": 1, "max": 3, "desired": 3}
    with pytest.raises(FleetError, match=r"capacity.desired \(5\) must be within"):
        F.plan_fleet(built(), desired(capacity=dict(desired=5)))


def test_no_capacity_on_existing_fleet_leaves_it_alone():
    assert F.plan_fleet(built(), desired(capacity=None)) == []


# ---- resume half-built fleets -----------------------------------------------------------------


def test_resume_after_launch_template_only():
    state = built()
    state["target_group"] = state["auto_scaling_group"] = None
    state["subnets"] = {"found": sorted(SUBNETS), "vpc_ids": [VPC]}
    assert kinds(F.plan_fleet(state, desired())) == ["create_target_group", "create_auto_scaling_group"]


def test_resume_after_launch_template_and_target_group():
    state = built()
    state["auto_scaling_group"] = None
    assert kinds(F.plan_fleet(state, desired())) == ["create_auto_scaling_group"]


def test_resume_when_target_group_is_detached():
    state = built()
    state["auto_scaling_group"]["target_group_arns"] = []
    assert kinds(F.plan_fleet(state, desired())) == ["attach_target_group"]


def test_resume_when_target_group_is_gone():
    state = built()
    state["target_group"] = None
    assert kinds(F.plan_fleet(state, desired())) == ["create_target_group", "attach_target_group"]


def test_group_without_launch_template_is_reported_not_patched():
    state = built()
    state["launch_template"] = None
    with pytest.raises(FleetError, match="Remove the fleet with state=absent"):
        F.plan_fleet(state, desired())


# ---- foreign look-alikes ----------------------------------------------------------------------


def test_foreign_same_named_resource_is_an_error_naming_it():
    state = nothing()
    state["foreign"] = [{"resource": "target_group", "name": "shop-prod-1-4-2-940a5876", "id": "arn:tg",
                         "reason": "it does not carry this stack's cattle.aws ownership tags"}]
    with pytest.raises(FleetError) as error:
        F.plan_fleet(state, desired())
    assert "target group shop-prod-1-4-2-940a5876 (arn:tg)" in error.value.msg
    assert "never adopts" in error.value.msg


# ---- absent -----------------------------------------------------------------------------------


def test_absent_detaches_then_deletes_asg_tg_lt():
    state = built()
    actions = F.plan_fleet(state, desired(state="absent"))
    assert kinds(actions) == ["detach_target_group", "delete_auto_scaling_group", "delete_target_group",
                              "delete_launch_template"]
    assert F.fleet_view(F.simulate(state, actions, desired(state="absent")), desired(state="absent")) == {}


def test_absent_of_nothing_is_a_no_op():
    assert F.plan_fleet(nothing(), desired(state="absent")) == []


def test_absent_resumes_a_half_deleted_fleet():
    state = built()
    state["auto_scaling_group"] = None
    assert kinds(F.plan_fleet(state, desired(state="absent"))) == ["delete_target_group", "delete_launch_template"]


def test_absent_refused_while_serving_names_the_listener():
    state = built()
    state["traffic"] = [{"type": "listener", "listener_arn": LISTENER, "rule_arn": None, "priority": "default",
                         "weight": 100}]
    with pytest.raises(FleetError) as error:
        F.plan_fleet(state, desired(state="absent"))
    assert f"listener {LISTENER} (weight 100)" in error.value.msg
    assert "carries traffic" in error.value.msg


def test_absent_refused_while_attached_at_weight_zero_names_the_rule():
    state = built()
    state["traffic"] = [{"type": "rule", "listener_arn": LISTENER, "rule_arn": RULE, "priority": "10", "weight": 0}]
    with pytest.raises(FleetError, match=f"rule {RULE} \\(weight 0\\)"):
        F.plan_fleet(state, desired(state="absent"))


# ---- check mode -------------------------------------------------------------------------------


def test_simulation_gives_the_resulting_fleet_without_ids():
    want = desired()
    observed = nothing()
    before = copy.deepcopy(observed)
    state = F.simulate(observed, F.plan_fleet(observed, want), want, CREATED)
    assert observed == before  # the observation is not modified
    view = F.fleet_view(state, want)
    assert view["launch_template"] == {"id": None, "name": "shop-prod-1.4.2", "version": 1}
    assert view["auto_scaling_group_name"] == "shop-prod-1.4.2"
    assert view["target_group_name"].startswith("shop-prod-1-4-2-")
    assert view["capacity"] == {"min": 1, "max": 3, "desired": 2}
    assert view["created_at"] == CREATED
    assert view["ami_id"] == AMI


def test_simulated_capacity_change():
    want = desired(capacity=dict(min=1, max=5, desired=5))
    state = F.simulate(built(), F.plan_fleet(built(), want), want)
    assert F.fleet_view(state, want)["capacity"] == {"min": 1, "max": 5, "desired": 5}


# ---- input validation (before any AWS call) --------------------------------------------------


@pytest.mark.parametrize("override, message", [
    (dict(capacity=dict(min=1, max=2, desired=3)), r"capacity.desired \(3\) must be within"),
    (dict(capacity=dict(min=3, max=2)), r"capacity.min \(3\) must not be greater"),
    (dict(subnet_ids=[]), "subnet_ids is required"),
    (dict(ami_id="not-an-ami"), "ami_id: not-an-ami is not a valid ID"),
    (dict(version="1.4 beta"), "Invalid version"),
    (dict(app="Shop"), "Invalid app"),
    (dict(tags={"cattle:app": "x"}), "reserved prefixes"),
    (dict(target_group=dict(health_check=dict(interval=5, timeout=5))), "must be less than"),
])
def test_invalid_inputs_are_rejected(override, message):
    with pytest.raises(FleetError, match=message):
        desired(**override)


def test_absent_needs_only_the_identity():
    want = F.build_desired(dict(app="shop", environment="prod", version="1.4.2", state="absent"))
    assert want["names"]["auto_scaling_group"] == "shop-prod-1.4.2"


# ---- waiting ------------------------------------------------------------------------------------


class FakeAutoScaling:
    def __init__(self, instances, activities):
        self.instances = instances
        self.activities = activities
        self.calls = 0

    def describe_auto_scaling_groups(self, **kwargs):
        self.calls += 1
        return {"AutoScalingGroups": [{"AutoScalingGroupName": "g", "Instances": self.instances}]}

    def describe_scaling_activities(self, **kwargs):
        return {"Activities": self.activities}


def test_wait_stops_at_the_first_failed_activity_with_the_aws_reason():
    client = FakeAutoScaling([], [{"ActivityId": "a1", "StatusCode": "Failed",
                                   "StatusMessage": "The image id '[ami-1]' does not exist."}])
    slept = []
    with pytest.raises(FleetError, match=r"scaling activity Failed: The image id '\[ami-1\]' does not exist"):
        F.wait_for_capacity(client, "g", 2, 600, known_activities=set(), sleep=slept.append)
    assert slept == []


def test_wait_ignores_old_failures_and_times_out_with_counts():
    client = FakeAutoScaling([{"InstanceId": "i-1", "LifecycleState": "Pending"}],
                             [{"ActivityId": "old", "StatusCode": "Failed", "StatusMessage": "old"}])
    now = [0.0]
    with pytest.raises(FleetError, match=r"Timed out after 10s .* \(0 InService of 1\)"):
        F.wait_for_capacity(client, "g", 1, 10, known_activities=None,
                            sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert client.calls > 2


def test_wait_timing_out_names_the_latest_failed_activity():
    # Found by the fault matrix: a launch that failed between the group's creation (provision) and
    # the wait (initialization) is in the baseline; the timeout must still name the cause.
    client = FakeAutoScaling([], [{"ActivityId": "a2", "StatusCode": "Failed", "StatusMessage": "We currently do not "
                                   "have sufficient t3.micro capacity. Launching EC2 instance failed."}])
    now = [0.0]
    with pytest.raises(FleetError, match=r"\(0 InService of 0\); run again to resume waiting\. Its latest failed scaling "
                                         r"activity: We currently do not have sufficient t3.micro capacity"):
        F.wait_for_capacity(client, "g", 2, 10, known_activities=None,
                            sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])


def test_wait_returns_when_desired_instances_are_in_service():
    client = FakeAutoScaling([{"InstanceId": "i-1", "LifecycleState": "InService"},
                              {"InstanceId": "i-2", "LifecycleState": "Terminating"}], [])
    assert F.wait_for_capacity(client, "g", 1, 10, sleep=pytest.fail) == 1


# ---- without the spec: scale / status only ------------------------------------------------------


def scale_only(**overrides):
    base = dict(app="shop", environment="prod", version="1.4.2", state="present")
    base.update(overrides)
    return F.build_desired(base)


def test_scale_only_to_zero_and_back_on_an_existing_fleet():
    state = built()
    to_zero = F.plan_fleet(state, scale_only(capacity=dict(min=0, max=0, desired=0)))
    assert to_zero == [{"action": "update_capacity", "name": "shop-prod-1.4.2",
                        "before": {"min": 1, "max": 3, "desired": 2}, "after": {"min": 0, "max": 0, "desired": 0}}]
    zero = F.simulate(state, to_zero, scale_only(capacity=dict(min=0, max=0, desired=0)))
    back = scale_only(capacity=dict(min=1, max=3, desired=2))
    assert F.plan_fleet(zero, back)[0]["after"] == {"min": 1, "max": 3, "desired": 2}
    assert F.plan_fleet(state, back) == []


def test_scale_only_ignores_the_spec_entirely():
    state = built()
    # An existing fleet whose spec no run could reproduce: still scaled, nothing compared.
    state["launch_template"]["data"]["ImageId"] = "ami-0fffffffffffffff0"
    state["auto_scaling_group"]["subnet_ids"] = ["subnet-0ffffffffffffffff"]
    assert F.plan_fleet(state, scale_only()) == []
    assert F.plan_fleet(state, scale_only(capacity=dict(desired=3)))[0]["after"] == {"min": 1, "max": 3, "desired": 3}


def test_scale_only_from_live():
    state = built()
    state["live"] = {"version": "1.4.3", "capacity": {"min": 2, "max": 4, "desired": 2}}
    actions = F.plan_fleet(state, scale_only(capacity_from_live=True))
    assert actions[0]["after"] == {"min": 2, "max": 4, "desired": 2}


def test_missing_fleet_without_spec_names_the_options():
    with pytest.raises(FleetError) as error:
        F.plan_fleet(nothing(), scale_only(capacity=dict(min=1, max=2)))
    assert error.value.msg == (
        "Version 1.4.2 of shop/prod does not exist; creating it needs ami_id, instance_type, subnet_ids.")
    assert error.value.details["missing_options"] == ["ami_id", "instance_type", "subnet_ids"]
    no_env = F.build_desired(dict(app="shop", version="2.0", state="present"))
    with pytest.raises(FleetError, match=r"^Version 2.0 of shop does not exist"):
        F.plan_fleet(nothing(), no_env)


@pytest.mark.parametrize("missing, text", [
    ("auto_scaling_group", "no auto scaling group"),
    ("target_group", "no target group"),
    ("attachment", "its target group is not attached"),
])
def test_half_built_fleet_without_spec_is_refused(missing, text):
    state = built()
    if missing == "attachment":
        state["auto_scaling_group"]["target_group_arns"] = []
    else:
        state[missing] = None
    with pytest.raises(FleetError) as error:
        F.plan_fleet(state, scale_only(status="failed", capacity=dict(min=0, max=0, desired=0)))
    assert f"Version 1.4.2 of shop/prod is incomplete ({text}" in error.value.msg
    assert "completing it needs ami_id, instance_type, subnet_ids" in error.value.msg


@pytest.mark.parametrize("override, message", [
    (dict(ami_id=AMI), "instance_type is required with state=present when any of"),
    (dict(user_data="#!/bin/sh\n"), "user_data is part of the fleet's spec"),
    (dict(security_group_ids=["sg-0123456789abcdef0"], tags=dict(a="b")), "security_group_ids, tags are part"),
    (dict(capacity=dict(min=2, max=1)), r"capacity.min \(2\) must not be greater"),
    (dict(status="broken"), "status must be one of active, failed"),
    (dict(state="absent", status="failed"), "status applies to state=present only"),
])
def test_scale_only_inputs_are_validated_before_any_call(override, message):
    with pytest.raises(FleetError, match=message):
        scale_only(**override)


def test_status_failed_tags_asg_tg_and_lt_then_is_idempotent():
    state = built()
    want = scale_only(status="failed")
    actions = F.plan_fleet(state, want)
    assert actions == [
        {"action": "tag_status", "resource": "auto_scaling_group", "name": "shop-prod-1.4.2", "status": "failed"},
        {"action": "tag_status", "resource": "target_group", "name": want["names"]["target_group"], "status": "failed"},
        {"action": "tag_status", "resource": "launch_template", "name": "shop-prod-1.4.2", "status": "failed"},
    ]
    after = F.simulate(state, actions, want)
    assert F.fleet_view(state, want)["status"] == "active"
    assert F.fleet_view(after, want)["status"] == "failed"
    assert all(after[r]["tags"]["cattle:status"] == "failed" for r in F.STATUS_RESOURCES)
    assert F.plan_fleet(after, want) == []
    assert "cattle:status" not in state["auto_scaling_group"]["tags"]  # simulate copies


def test_status_failed_and_scale_to_zero_tags_first():
    actions = F.plan_fleet(built(), scale_only(status="failed", capacity=dict(min=0, max=0, desired=0)))
    assert kinds(actions) == ["tag_status", "tag_status", "tag_status", "update_capacity"]


def test_status_tag_only_missing_where_needed_and_removed_by_active():
    state = built()
    state["auto_scaling_group"]["tags"]["cattle:status"] = "failed"
    assert [a["resource"] for a in F.plan_fleet(state, scale_only(status="failed"))] == [
        "target_group", "launch_template"]
    active = F.plan_fleet(state, scale_only(status="active"))
    assert active == [{"action": "tag_status", "resource": "auto_scaling_group", "name": "shop-prod-1.4.2",
                       "status": "active"}]
    cleared = F.simulate(state, active, scale_only(status="active"))
    assert F.fleet_view(cleared, scale_only())["status"] == "active"
    assert F.plan_fleet(cleared, scale_only(status="active")) == []
    assert F.plan_fleet(state, scale_only()) == []  # status omitted: left as it is


def test_status_with_the_spec_is_not_a_spec_change():
    assert kinds(F.plan_fleet(built(), desired(status="failed"))) == ["tag_status"] * 3
    with pytest.raises(FleetError, match="ami_id"):
        F.plan_fleet(built(), desired(status="failed", ami_id="ami-0fffffffffffffff0"))


def test_status_on_create_tags_after_the_resources_exist():
    actions = F.plan_fleet(nothing(), desired(status="failed"))
    assert kinds(actions) == ["create_launch_template", "create_target_group", "create_auto_scaling_group",
                              "tag_status", "tag_status", "tag_status"]
    assert F.plan_fleet(nothing(), desired(status="active"))[-1]["action"] == "create_auto_scaling_group"


def test_wait_for_zero_lasts_until_no_instance_is_listed():
    client = FakeAutoScaling([{"InstanceId": "i-1", "LifecycleState": "Terminating"}], [])
    now = [0.0]
    with pytest.raises(FleetError, match=r"to terminate \(1 left, 0 InService\)"):
        F.wait_for_capacity(client, "g", 0, 5, known_activities=set(),
                            sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert F.wait_for_capacity(FakeAutoScaling([], []), "g", 0, 5, sleep=pytest.fail) == 0
