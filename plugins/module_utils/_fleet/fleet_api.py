# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""One wrapper per boto3 call that immutable_fleet makes (retried, errors made readable).

Every function takes a boto3 client and plain values. Botocore errors come out as amazon.aws
``AnsibleAWSError("Failed to <description>")``; "not found" answers of describe/delete calls
come out as ``None`` / ``False``.
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_message
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .errors import FleetAWSErrorHandler

_LT_MISSING = (
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.NotFoundException",
)
_TG_MISSING = ("TargetGroupNotFound",)
_AMI_MISSING = ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable")


class _LaunchTemplateErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(list(_LT_MISSING))


class _TargetGroupErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(list(_TG_MISSING))


class _ImageErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(list(_AMI_MISSING))


class _SubnetErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"])


class _AutoScalingErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        # AWS answers "AutoScalingGroup name not found" as a ValidationError.
        return is_boto3_error_message("not found")


_retry = AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=20)


# ---- EC2: images and launch templates -------------------------------------------------------


@_ImageErrors.list_error_handler("describe image", default_value=None)
@_retry
def describe_image(client, image_id):
    images = client.describe_images(ImageIds=[image_id]).get("Images", [])
    return images[0] if images else None


@_LaunchTemplateErrors.list_error_handler("describe launch template", default_value=None)
@_retry
def describe_launch_template(client, name):
    templates = client.describe_launch_templates(LaunchTemplateNames=[name]).get("LaunchTemplates", [])
    return templates[0] if templates else None


@_LaunchTemplateErrors.list_error_handler("describe launch template version", default_value=None)
@_retry
def describe_launch_template_version(client, template_id, version):
    versions = client.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[str(version)]).get(
        "LaunchTemplateVersions", []
    )
    return versions[0] if versions else None


@_SubnetErrors.list_error_handler("describe subnets", default_value=None)
@_retry
def describe_subnets(client, subnet_ids):
    return client.describe_subnets(SubnetIds=subnet_ids).get("Subnets", [])


@FleetAWSErrorHandler.common_error_handler("create launch template")
@_retry
def create_launch_template(client, name, data, tag_specifications):
    return client.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData=data, TagSpecifications=tag_specifications
    )["LaunchTemplate"]


@_LaunchTemplateErrors.deletion_error_handler("delete launch template")
@_retry
def delete_launch_template(client, template_id):
    client.delete_launch_template(LaunchTemplateId=template_id)
    return True


# ---- ELBv2: target groups and the listeners that forward to them ---------------------------


@_TargetGroupErrors.list_error_handler("describe target group", default_value=None)
@_retry
def describe_target_group(client, name):
    groups = client.describe_target_groups(Names=[name]).get("TargetGroups", [])
    return groups[0] if groups else None


@_TargetGroupErrors.list_error_handler("describe target group tags", default_value=[])
@_retry
def describe_target_group_tags(client, arn):
    descriptions = client.describe_tags(ResourceArns=[arn]).get("TagDescriptions", [])
    return descriptions[0].get("Tags", []) if descriptions else []


@_TargetGroupErrors.list_error_handler("describe target group attributes", default_value=[])
@_retry
def describe_target_group_attributes(client, arn):
    return client.describe_target_group_attributes(TargetGroupArn=arn).get("Attributes", [])


@FleetAWSErrorHandler.common_error_handler("create target group")
@_retry
def create_target_group(client, **params):
    return client.create_target_group(**params)["TargetGroups"][0]


@FleetAWSErrorHandler.common_error_handler("modify target group attributes")
@_retry
def modify_target_group_attributes(client, arn, attributes):
    client.modify_target_group_attributes(TargetGroupArn=arn, Attributes=attributes)


@_TargetGroupErrors.deletion_error_handler("delete target group")
@_retry
def delete_target_group(client, arn):
    client.delete_target_group(TargetGroupArn=arn)
    return True


@FleetAWSErrorHandler.list_error_handler("describe listeners", default_value=[])
@_retry
def describe_listeners(client, load_balancer_arn):
    paginator = client.get_paginator("describe_listeners")
    return paginator.paginate(LoadBalancerArn=load_balancer_arn).build_full_result().get("Listeners", [])


@FleetAWSErrorHandler.list_error_handler("describe listener rules", default_value=[])
@_retry
def describe_rules(client, listener_arn):
    rules, marker = [], None
    while True:
        params = {"ListenerArn": listener_arn}
        if marker:
            params["Marker"] = marker
        page = client.describe_rules(**params)
        rules.extend(page.get("Rules", []))
        marker = page.get("NextMarker")
        if not marker:
            return rules


# ---- Auto Scaling ---------------------------------------------------------------------------


@FleetAWSErrorHandler.common_error_handler("describe auto scaling group")
@_retry
def describe_auto_scaling_group(client, name):
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name]).get("AutoScalingGroups", [])
    return groups[0] if groups else None


@FleetAWSErrorHandler.common_error_handler("create auto scaling group")
@_retry
def create_auto_scaling_group(client, **params):
    client.create_auto_scaling_group(**params)


@FleetAWSErrorHandler.common_error_handler("update auto scaling group")
@_retry
def update_auto_scaling_group(client, name, **params):
    client.update_auto_scaling_group(AutoScalingGroupName=name, **params)


@FleetAWSErrorHandler.common_error_handler("attach target group to auto scaling group")
@_retry
def attach_target_groups(client, name, target_group_arns):
    client.attach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=target_group_arns)


@_AutoScalingErrors.deletion_error_handler("detach target group from auto scaling group")
@_retry
def detach_target_groups(client, name, target_group_arns):
    client.detach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=target_group_arns)
    return True


@_AutoScalingErrors.deletion_error_handler("delete auto scaling group")
@_retry
def delete_auto_scaling_group(client, name):
    client.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    return True


@FleetAWSErrorHandler.common_error_handler("describe scaling activities")
@_retry
def describe_scaling_activities(client, name, max_records=20):
    return client.describe_scaling_activities(AutoScalingGroupName=name, MaxRecords=max_records).get(
        "Activities", []
    )


# ---- Tags added or removed after creation (the release status) ------------------------------


@_LaunchTemplateErrors.list_error_handler("describe launch template tags", default_value=[])
@_retry
def describe_launch_template_tags(client, template_id):
    """The launch template's tags as EC2 DescribeTags sees them (tags added after creation included)."""
    paginator = client.get_paginator("describe_tags")
    return paginator.paginate(
        Filters=[{"Name": "resource-id", "Values": [template_id]}]
    ).build_full_result().get("Tags", [])


@FleetAWSErrorHandler.common_error_handler("tag launch template")
@_retry
def tag_launch_template(client, template_id, tags):
    client.create_tags(Resources=[template_id], Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])


@_LaunchTemplateErrors.deletion_error_handler("untag launch template")
@_retry
def untag_launch_template(client, template_id, keys):
    client.delete_tags(Resources=[template_id], Tags=[{"Key": k} for k in sorted(keys)])
    return True


@FleetAWSErrorHandler.common_error_handler("tag target group")
@_retry
def tag_target_group(client, arn, tags):
    client.add_tags(ResourceArns=[arn], Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])


@_TargetGroupErrors.deletion_error_handler("untag target group")
@_retry
def untag_target_group(client, arn, keys):
    client.remove_tags(ResourceArns=[arn], TagKeys=sorted(keys))
    return True


@FleetAWSErrorHandler.common_error_handler("tag auto scaling group")
@_retry
def tag_auto_scaling_group(client, name, tags, propagate_at_launch=False):
    client.create_or_update_tags(Tags=[
        {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v,
         "PropagateAtLaunch": propagate_at_launch}
        for k, v in sorted(tags.items())
    ])


@_AutoScalingErrors.deletion_error_handler("untag auto scaling group")
@_retry
def untag_auto_scaling_group(client, name, keys):
    client.delete_tags(Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k} for k in sorted(keys)])
    return True
