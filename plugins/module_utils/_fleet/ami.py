# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""The AMI of a release: find the one tagged for (app, environment, version); tag a baked one.

- `find_images(ec2, app, environment, version)`: the account's own AMIs carrying the stack's
  ownership tags and this version (server-side tag filters, checked again with `is_owned`),
  newest first. One paginated DescribeImages.
- `plan_tags(image, snapshots_tags, desired)` is pure: the tags missing on the AMI and on its
  snapshots (``cattle:created-at`` already present is kept), or a FleetError when the AMI belongs
  to another stack or version.
- `tag_image(ec2, image, tags, cleanup_on_failure)`: one CreateTags call for the AMI and its
  snapshots together; when it fails, the AMI is deregistered and its snapshots deleted (when
  asked), so no half-tagged image is left behind, then the error is raised.
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .errors import FleetAWSErrorHandler
from .errors import FleetError
from .tags import TAG_APP
from .tags import TAG_CREATED_AT
from .tags import TAG_ENVIRONMENT
from .tags import TAG_MANAGED_BY
from .tags import TAG_VERSION
from .tags import dict_to_tag_list
from .tags import ec2_filters
from .tags import is_owned
from .tags import tags_to_dict

IDENTITY_TAGS = (TAG_APP, TAG_ENVIRONMENT, TAG_VERSION, TAG_MANAGED_BY)


@FleetAWSErrorHandler.common_error_handler("describe the stack's AMIs")
def describe_owned_images(ec2, filters):
    result = paginated_query_with_retries(
        ec2, "describe_images", retry_decorator=AWSRetry.jittered_backoff(retries=10), Owners=["self"], Filters=filters
    )
    return result.get("Images", [])


@FleetAWSErrorHandler.common_error_handler("describe the AMI")
@AWSRetry.jittered_backoff(retries=10)
def describe_image(ec2, image_id):
    try:
        images = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
    except is_boto3_error_code(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"]):
        images = []  # AWS answers an unknown (well-formed) ID with this error, not an empty list
    if not images:
        raise FleetError(f"AMI {image_id} does not exist (image_id).")
    return images[0]


@FleetAWSErrorHandler.common_error_handler("describe the AMI's snapshots")
@AWSRetry.jittered_backoff(retries=10)
def describe_snapshot_tags(ec2, snapshot_ids):
    if not snapshot_ids:
        return {}
    snapshots = ec2.describe_snapshots(SnapshotIds=list(snapshot_ids)).get("Snapshots", [])
    return {s["SnapshotId"]: tags_to_dict(s.get("Tags")) for s in snapshots}


@FleetAWSErrorHandler.common_error_handler("tag the AMI and its snapshots")
@AWSRetry.jittered_backoff(retries=10)
def create_tags(ec2, resource_ids, tags):
    ec2.create_tags(Resources=list(resource_ids), Tags=dict_to_tag_list(tags))


@FleetAWSErrorHandler.common_error_handler("deregister the half-tagged AMI")
@AWSRetry.jittered_backoff(retries=10)
def deregister(ec2, image_id, snapshot_ids):
    ec2.deregister_image(ImageId=image_id)
    for snapshot_id in snapshot_ids:
        ec2.delete_snapshot(SnapshotId=snapshot_id)


def snapshot_ids(image):
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def image_record(image):
    """The AMI as the modules return it."""
    if not image:
        return None
    return {
        "id": image["ImageId"],
        "name": image.get("Name"),
        "state": image.get("State"),
        "creation_date": image.get("CreationDate"),
        "snapshot_ids": snapshot_ids(image),
        "tags": tags_to_dict(image.get("Tags")),
    }


def find_images(ec2, app, environment, version):
    """Available or pending AMIs owned by the account and tagged for this version, newest first."""
    images = describe_owned_images(ec2, ec2_filters(app, environment, version))
    images = [i for i in images if is_owned(i.get("Tags"), app, environment) and i.get("State") in ("available", "pending")]
    return sorted(images, key=lambda i: (i.get("CreationDate") or "", i["ImageId"]), reverse=True)


def plan_tags(image, snapshot_tags, desired):
    """{resource_id: missing tags} for the AMI and its snapshots; FleetError if owned by someone else."""
    current = tags_to_dict(image.get("Tags"))
    conflicts = sorted(
        k for k in IDENTITY_TAGS if k in current and current.get(k) != desired.get(k)
    )
    if TAG_ENVIRONMENT in current and TAG_ENVIRONMENT not in desired:
        conflicts = sorted(set(conflicts) | {TAG_ENVIRONMENT})
    if conflicts:
        found = ", ".join(f"{k}={current[k]}" for k in conflicts if k in current)
        raise FleetError(
            f"AMI {image['ImageId']} is already tagged for another release ({found}); bake a new image for this version.",
            conflicts=conflicts,
        )
    plan = {}
    resources = [(image["ImageId"], current)] + [(sid, snapshot_tags.get(sid, {})) for sid in snapshot_ids(image)]
    for resource_id, tags in resources:
        missing = {}
        for key, value in desired.items():
            if key == TAG_CREATED_AT and key in tags:
                continue
            if tags.get(key) != value:
                missing[key] = value
        if missing:
            plan[resource_id] = missing
    return plan


def tag_image(ec2, image, desired, cleanup_on_failure=True, check_mode=False):
    """Tag the AMI and its snapshots (one CreateTags); returns (changed, plan)."""
    desired = dict(desired)
    existing_created_at = tags_to_dict(image.get("Tags")).get(TAG_CREATED_AT)
    if existing_created_at:
        desired[TAG_CREATED_AT] = existing_created_at  # one creation time for the AMI and its snapshots
    plan = plan_tags(image, describe_snapshot_tags(ec2, snapshot_ids(image)), desired)
    if not plan or check_mode:
        return bool(plan), plan
    # Every resource gets the same values: one call for all of them.
    union = {}
    for missing in plan.values():
        union.update(missing)
    try:
        create_tags(ec2, sorted(plan), union)
    except AnsibleAWSError as e:
        if cleanup_on_failure:
            try:
                deregister(ec2, image["ImageId"], snapshot_ids(image))
            except AnsibleAWSError as cleanup_error:
                raise FleetError(
                    f"Tagging AMI {image['ImageId']} failed ({e}) and deregistering it failed too ({cleanup_error}); "
                    f"deregister it and delete its snapshots {', '.join(snapshot_ids(image))} by hand."
                ) from None
            raise FleetError(
                f"Tagging AMI {image['ImageId']} failed ({e}); the AMI was deregistered and its snapshots deleted, "
                "so no untagged image is left behind. Run the bake again."
            ) from None
        raise
    return True, plan
