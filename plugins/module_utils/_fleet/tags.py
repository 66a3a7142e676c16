# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Ownership tags of a stack's resources (DESIGN.md, "Tags"), and the filters that find them.

Every resource cattle.aws creates (AMI, launch template, target group, auto scaling group and
the instances it launches) carries:

- ``cattle:app``, ``cattle:version``, ``cattle:managed-by = cattle.aws``, ``cattle:created-at``
  (UTC ISO 8601, ``2024-05-01T12:00:00Z``), ``Name``;
- ``cattle:environment`` only when the stack has an environment (no tag = no environment);
- ``cattle:status = failed`` once a release of that version failed;
- ``cattle:role = attach-rule`` on the listener rules that attach a version's target group to a
  load balancer without any traffic (a first release, see traffic_attach.py);
- the user's tags, which may not use the reserved prefixes ``cattle:`` and ``aws:``.

Tags, not names, are the source of truth: `is_owned` is the client-side check run on every
resource a server-side filter returned, before anything reads or changes it.
"""

from __future__ import annotations

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_tag_filter_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_specifications
from ansible_collections.amazon.aws.plugins.module_utils.transformation import ansible_dict_to_boto3_filter_list

from .errors import FleetError
from .naming import fleet_names
from .naming import normalize_environment
from .naming import validate_stack
from .naming import validate_version

TAG_PREFIX = "cattle:"
TAG_APP = "cattle:app"
TAG_ENVIRONMENT = "cattle:environment"
TAG_VERSION = "cattle:version"
TAG_MANAGED_BY = "cattle:managed-by"
TAG_CREATED_AT = "cattle:created-at"
TAG_STATUS = "cattle:status"
TAG_ROLE = "cattle:role"
TAG_NAME = "Name"

MANAGED_BY = "cattle.aws"
STATUS_FAILED = "failed"
# cattle:role of the listener rule that attaches a version's target group without traffic (traffic_attach.py).
ROLE_ATTACH_RULE = "attach-rule"

RESERVED_TAG_PREFIXES = (TAG_PREFIX, "aws:")

# Resource Groups Tagging API resource type of ELBv2 target groups.
TARGET_GROUP_RESOURCE_TYPE = "elasticloadbalancing:targetgroup"


def utc_timestamp(when=None):
    """UTC ISO 8601 with a Z and whole seconds (``2024-05-01T12:00:00Z``); now when not given."""
    if when is None:
        when = datetime.datetime.now(datetime.timezone.utc)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value):
    """Parse a cattle:created-at value (or any ISO 8601 time); None when it cannot be parsed."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def tags_to_dict(tags):
    """A boto3 tag list (``[{"Key": .., "Value": ..}]``, any casing amazon.aws knows) or a dict -> dict."""
    if not tags:
        return {}
    if isinstance(tags, dict):
        return dict(tags)
    return boto3_tag_list_to_ansible_dict(tags)


def dict_to_tag_list(tags):
    """dict -> boto3 tag list ``[{"Key": k, "Value": v}]`` (amazon.aws helper)."""
    return ansible_dict_to_boto3_tag_list(tags or {})


def validate_user_tags(tags):
    """User tags may not use the reserved prefixes; return them as a dict of strings."""
    tags = tags or {}
    if not isinstance(tags, dict):
        raise FleetError(f"tags must be a dictionary of tag keys to values; got {tags!r}.")
    reserved = sorted(k for k in tags if str(k).lower().startswith(RESERVED_TAG_PREFIXES))
    if reserved:
        raise FleetError(
            f"tags may not use the reserved prefixes {' or '.join(RESERVED_TAG_PREFIXES)}; remove "
            f"{', '.join(reserved)} from the option tags (cattle.aws sets its own cattle: tags)."
        )
    return {str(k): "" if v is None else str(v) for k, v in tags.items()}


def stack_tags(app, environment=None):
    """The tags that identify a stack: app, managed-by and (when given) environment."""
    app, environment = validate_stack(app, environment)
    tags = {TAG_APP: app, TAG_MANAGED_BY: MANAGED_BY}
    if environment is not None:
        tags[TAG_ENVIRONMENT] = environment
    return tags


def ownership_tags(app, environment, version, created_at=None, extra=None):
    """All tags of a resource of fleet (app, environment, version), as a dict.

    ``created_at`` is a datetime or an ISO 8601 string (default: now, UTC); ``extra`` are user tags,
    which cannot override the ownership tags (FleetError). ``Name`` defaults to the fleet name
    and may be overridden by the user.
    """
    version = validate_version(version)
    tags = {TAG_NAME: fleet_names(app, environment, version)["name_tag"]}
    tags.update(validate_user_tags(extra))
    tags.update(stack_tags(app, environment))
    tags[TAG_VERSION] = version
    if created_at is None or isinstance(created_at, datetime.datetime):
        tags[TAG_CREATED_AT] = utc_timestamp(created_at)
    else:
        parsed = parse_timestamp(created_at)
        if parsed is None:
            raise FleetError(f"created_at must be an ISO 8601 time such as 2024-05-01T12:00:00Z; got {created_at!r}.")
        tags[TAG_CREATED_AT] = utc_timestamp(parsed)
    return tags


def ownership_tag_specifications(tags, resource_types):
    """EC2 TagSpecifications for the given resource types (amazon.aws helper)."""
    return boto3_tag_specifications(tags, types=resource_types)


def _filter_tags(app, environment, version=None):
    tags = stack_tags(app, environment)
    if version is not None:
        tags[TAG_VERSION] = validate_version(version)
    return tags


def ec2_filters(app, environment=None, version=None):
    """EC2 ``Filters`` (describe_images / describe_launch_templates / describe_instances)."""
    return ansible_dict_to_boto3_filter_list(ansible_dict_to_tag_filter_dict(_filter_tags(app, environment, version)))


def autoscaling_filters(app, environment=None, version=None):
    """Auto Scaling ``Filters`` for describe_auto_scaling_groups (``tag:<key>`` = value)."""
    # Same shape as EC2's: [{"Name": "tag:cattle:app", "Values": ["shop"]}, ...]
    return ec2_filters(app, environment, version)


def tagging_api_filters(app, environment=None, version=None):
    """Resource Groups Tagging API ``TagFilters`` (GetResources)."""
    tags = _filter_tags(app, environment, version)
    return [{"Key": k, "Values": [v]} for k, v in tags.items()]


def is_owned(tags, app, environment=None):
    """True when tags (dict or boto3 list) mark a resource of stack (app, environment).

    managed-by must be cattle.aws, app must match, and the environment tag must match — a
    resource of the same app in another environment (or with an environment when the stack has
    none, or vice versa) is not ours.
    """
    tags = tags_to_dict(tags)
    environment = normalize_environment(environment)
    if tags.get(TAG_MANAGED_BY) != MANAGED_BY or tags.get(TAG_APP) != app:
        return False
    return normalize_environment(tags.get(TAG_ENVIRONMENT)) == environment


def is_failed(tags):
    """True when tags carry cattle:status = failed."""
    return tags_to_dict(tags).get(TAG_STATUS) == STATUS_FAILED


def version_of(tags):
    """The cattle:version of a resource, or None."""
    return tags_to_dict(tags).get(TAG_VERSION) or None
