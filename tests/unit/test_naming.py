"""Naming: every valid (app, environment, version) yields names AWS accepts, deterministically,
without collisions between versions; invalid input is refused with a message saying what is allowed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.cattle.aws.plugins.module_utils._fleet import naming
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError

pytestmark = pytest.mark.unit


# --- AWS's own rules, written independently of the implementation -------------------------

def aws_accepts_launch_template_name(name):
    # CreateLaunchTemplate: 3-128 characters, [a-zA-Z0-9().\-/_]+
    return 3 <= len(name) <= 128 and re.fullmatch(r"[a-zA-Z0-9().\-/_]+", name) is not None


def aws_accepts_auto_scaling_group_name(name):
    # CreateAutoScalingGroup: 1-255 characters, XmlStringMaxLen255; ':' would break the ARN form.
    return 1 <= len(name) <= 255 and ":" not in name and name == name.strip()


def aws_accepts_target_group_name(name):
    # CreateTargetGroup: at most 32 alphanumerics or hyphens, must not begin or end with a
    # hyphen, must not begin with "internal-".
    return (
        1 <= len(name) <= 32
        and re.fullmatch(r"[A-Za-z0-9-]+", name) is not None
        and not name.startswith("-")
        and not name.endswith("-")
        and not name.lower().startswith("internal-")
    )


# --- strategies of valid input ---------------------------------------------------------------

def slug(max_size):
    word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
    return (
        st.tuples(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), st.lists(word, max_size=6))
        .map(lambda t: t[0] + "".join("-" + w if i % 2 else w for i, w in enumerate(t[1])))
        .filter(lambda s: len(s) <= max_size)
    )


apps = slug(naming.APP_MAX_LENGTH) | st.sampled_from(["internal", "a", "a" * 32, "order-api"])
environments = st.none() | st.just("") | slug(naming.ENVIRONMENT_MAX_LENGTH) | st.just("e" * 24)
_alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
versions = st.one_of(
    st.text(alphabet=_alnum, min_size=1, max_size=1),
    st.tuples(
        st.text(alphabet=_alnum, min_size=1, max_size=1),
        st.text(alphabet=_alnum + "._-", max_size=62),
        st.text(alphabet=_alnum, min_size=1, max_size=1),
    ).map("".join),
    st.sampled_from(["1.4.2", "v2", "2024.05.01-rc_1", "0" * 64, "1..2", "a--b", "x__y"]),
)


@settings(max_examples=500)
@given(apps, environments, versions)
def test_valid_input_gives_names_aws_accepts(app, environment, version):
    names = naming.fleet_names(app, environment, version)
    assert aws_accepts_launch_template_name(names["launch_template"]), names
    assert aws_accepts_auto_scaling_group_name(names["auto_scaling_group"]), names
    assert aws_accepts_target_group_name(names["target_group"]), names


@settings(max_examples=300)
@given(apps, environments, versions)
def test_same_input_same_names(app, environment, version):
    assert naming.fleet_names(app, environment, version) == naming.fleet_names(app, environment, version)


@settings(max_examples=300)
@given(apps, environments, st.lists(versions, min_size=2, max_size=20, unique=True))
def test_distinct_versions_never_collide(app, environment, version_list):
    all_names = [naming.fleet_names(app, environment, v) for v in version_list]
    for kind in ("launch_template", "auto_scaling_group", "target_group"):
        produced = [n[kind] for n in all_names]
        assert len(set(produced)) == len(produced), (kind, produced)


def test_target_group_name_is_readable_prefix_plus_hash():
    names = naming.fleet_names("shop", "prod", "1.4.2")
    assert names["launch_template"] == names["auto_scaling_group"] == "shop-prod-1.4.2"
    assert re.fullmatch(r"shop-prod-1-4-2-[0-9a-f]{8}", names["target_group"])
    # The hash covers app/environment/version: environment None and "" are the same stack.
    assert naming.fleet_names("shop", None, "1")["target_group"] == naming.fleet_names("shop", "", "1")["target_group"]
    assert naming.fleet_names("shop", None, "1")["launch_template"] == "shop-1"


def test_versions_differing_only_in_punctuation_get_distinct_target_groups():
    # "1.4.2" and "1-4-2" have the same readable prefix; the hash keeps them apart.
    a = naming.fleet_names("shop", "prod", "1.4.2")["target_group"]
    b = naming.fleet_names("shop", "prod", "1-4-2")["target_group"]
    assert a != b
    assert a.rsplit("-", 1)[0] == b.rsplit("-", 1)[0]


def test_internal_prefix_is_avoided():
    name = naming.fleet_names("internal", None, "1")["target_group"]
    assert not name.startswith("internal-")
    assert aws_accepts_target_group_name(name)


def test_longest_input_fits():
    names = naming.fleet_names("a" * 32, "b" * 24, "c" * 64)
    assert len(names["launch_template"]) == 122
    assert len(names["target_group"]) == 32


def test_stack_name():
    assert naming.stack_name("shop", "prod") == "shop-prod"
    assert naming.stack_name("shop", None) == "shop"


@pytest.mark.parametrize(
    "app, message",
    [
        ("Shop", "Invalid app 'Shop': app must be 1 to 32 characters: lowercase letters (a-z), digits and single hyphens"),
        ("1shop", "starting with a letter"),
        ("shop-", "not ending with a hyphen"),
        ("sh--op", "single hyphens"),
        ("", "Invalid app ''"),
        ("a" * 33, "1 to 32 characters"),
        ("shop_x", "Invalid app 'shop_x'"),
        ("shop\n", "Invalid app"),
        (None, "app must be a string"),
    ],
)
def test_invalid_app_says_what_is_allowed(app, message):
    with pytest.raises(FleetError) as exc:
        naming.fleet_names(app, "prod", "1")
    assert message in str(exc.value)


@pytest.mark.parametrize("environment", ["Prod", "prod_1", "e" * 25, "-prod"])
def test_invalid_environment_says_what_is_allowed(environment):
    with pytest.raises(FleetError) as exc:
        naming.fleet_names("shop", environment, "1")
    assert f"Invalid environment {environment!r}: environment must be 1 to 24 characters" in str(exc.value)


@pytest.mark.parametrize("version", ["", ".1", "1.", "1 2", "1/2", "v" * 65, "1+build", "-rc", "1\n"])
def test_invalid_version_says_what_is_allowed(version):
    with pytest.raises(FleetError) as exc:
        naming.fleet_names("shop", "prod", version)
    assert f"Invalid version {version!r}: version must be 1 to 64 characters: letters, digits, '.', '_' and '-'" in str(exc.value)


def test_numeric_version_tells_to_quote_it():
    with pytest.raises(FleetError) as exc:
        naming.validate_version(1.4)
    assert "Quote it in YAML (version: '1.4')" in str(exc.value)


@given(st.text(max_size=80))
def test_any_text_is_either_valid_and_accepted_or_refused_with_fleet_error(text):
    try:
        names = naming.fleet_names("shop", None, text)
    except FleetError as e:
        assert "version" in str(e)
    else:
        assert aws_accepts_launch_template_name(names["launch_template"])
        assert aws_accepts_target_group_name(names["target_group"])
