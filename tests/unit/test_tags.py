"""Ownership tags, server-side filters and the client-side ownership check."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cattle.aws.plugins.module_utils._fleet import tags as T
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit

WHEN = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def test_ownership_tags_of_design():
    tags = T.ownership_tags("shop", "prod", "1.4.2", created_at=WHEN, extra={"team": "web"})
    assert tags == {
        "Name": "shop-prod-1.4.2",
        "team": "web",
        "cattle:app": "shop",
        "cattle:environment": "prod",
        "cattle:version": "1.4.2",
        "cattle:managed-by": "cattle.aws",
        "cattle:created-at": "2024-05-01T12:00:00Z",
    }


def test_no_environment_means_no_environment_tag():
    tags = T.ownership_tags("shop", None, "1", created_at=WHEN)
    assert "cattle:environment" not in tags
    assert T.ownership_tags("shop", "", "1", created_at=WHEN) == tags


def test_created_at_defaults_to_now_utc_and_accepts_iso_strings():
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    stamp = T.ownership_tags("shop", None, "1")["cattle:created-at"]
    assert stamp.endswith("Z")
    assert T.parse_timestamp(stamp) >= before
    assert T.ownership_tags("shop", None, "1", created_at="2024-05-01T14:00:00+02:00")["cattle:created-at"] == "2024-05-01T12:00:00Z"
    with pytest.raises(FleetError, match="created_at must be an ISO 8601 time"):
        T.ownership_tags("shop", None, "1", created_at="yesterday")


def test_user_tags_cannot_override_ownership():
    with pytest.raises(FleetError) as exc:
        T.ownership_tags("shop", "prod", "1", extra={"cattle:app": "other", "aws:foo": "x"})
    assert "tags may not use the reserved prefixes cattle: or aws:" in str(exc.value)
    assert "aws:foo, cattle:app" in str(exc.value)
    # Name may be set by the user.
    assert T.ownership_tags("shop", "prod", "1", extra={"Name": "web"})["Name"] == "web"


def test_filters_for_each_service():
    assert T.ec2_filters("shop", "prod") == [
        {"Name": "tag:cattle:app", "Values": ["shop"]},
        {"Name": "tag:cattle:managed-by", "Values": ["cattle.aws"]},
        {"Name": "tag:cattle:environment", "Values": ["prod"]},
    ]
    assert T.autoscaling_filters("shop", None, "1") == [
        {"Name": "tag:cattle:app", "Values": ["shop"]},
        {"Name": "tag:cattle:managed-by", "Values": ["cattle.aws"]},
        {"Name": "tag:cattle:version", "Values": ["1"]},
    ]
    assert T.tagging_api_filters("shop", "prod") == [
        {"Key": "cattle:app", "Values": ["shop"]},
        {"Key": "cattle:managed-by", "Values": ["cattle.aws"]},
        {"Key": "cattle:environment", "Values": ["prod"]},
    ]
    assert T.TARGET_GROUP_RESOURCE_TYPE == "elasticloadbalancing:targetgroup"


def test_filters_validate_their_input():
    with pytest.raises(FleetError, match="Invalid app"):
        T.ec2_filters("Shop")


OWNED = {"cattle:app": "shop", "cattle:environment": "prod", "cattle:managed-by": "cattle.aws"}


@pytest.mark.parametrize(
    "tags, app, environment, expected",
    [
        (OWNED, "shop", "prod", True),
        (T.dict_to_tag_list(OWNED), "shop", "prod", True),
        ([dict(t, ResourceId="asg", PropagateAtLaunch=True) for t in T.dict_to_tag_list(OWNED)], "shop", "prod", True),
        (dict(OWNED, **{"cattle:managed-by": "someone"}), "shop", "prod", False),
        ({k: v for k, v in OWNED.items() if k != "cattle:managed-by"}, "shop", "prod", False),
        (dict(OWNED, **{"cattle:app": "shop2"}), "shop", "prod", False),
        (OWNED, "shop", "staging", False),
        (OWNED, "shop", None, False),  # a prod resource is not the environment-less stack's
        ({k: v for k, v in OWNED.items() if k != "cattle:environment"}, "shop", None, True),
        ({k: v for k, v in OWNED.items() if k != "cattle:environment"}, "shop", "prod", False),
        (dict(OWNED, **{"cattle:environment": ""}), "shop", None, True),
        ({}, "shop", None, False),
        (None, "shop", None, False),
        ({"Name": "shop-prod-1"}, "shop", "prod", False),
    ],
)
def test_is_owned(tags, app, environment, expected):
    assert T.is_owned(tags, app, environment) is expected


def test_failed_and_version_helpers():
    assert T.is_failed({"cattle:status": "failed"})
    assert not T.is_failed({"cattle:status": "ok"})
    assert not T.is_failed([])
    assert T.version_of([{"Key": "cattle:version", "Value": "1.2"}]) == "1.2"
    assert T.version_of({}) is None


def test_conversions_round_trip_through_amazon_aws_helpers():
    tags = {"a": "1", "cattle:app": "shop"}
    assert T.tags_to_dict(T.dict_to_tag_list(tags)) == tags
    assert T.tags_to_dict([{"key": "a", "value": "1"}]) == {"a": "1"}
    assert T.ownership_tag_specifications({"a": "1"}, ["instance", "volume"]) == [
        {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "1"}]},
        {"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "1"}]},
    ]


def test_timestamps():
    assert T.utc_timestamp(WHEN) == "2024-05-01T12:00:00Z"
    assert T.utc_timestamp(datetime.datetime(2024, 5, 1, 12, 0, 0)) == "2024-05-01T12:00:00Z"
    assert T.parse_timestamp("2024-05-01T12:00:00Z") == WHEN
    assert T.parse_timestamp("2024-05-01T12:00:00") == WHEN
    assert T.parse_timestamp("not a time") is None
    assert T.parse_timestamp(None) is None
