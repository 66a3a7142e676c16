# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""fleet_info's AWS calls on top of discovery: target health, instances, edited launch templates.

`describe_fleets` = `discovery.discover_stack` + `observe_fleet_details` + `info.enrich_stack`.
The extra calls depend on the stack's size, never on the account's:

==========================================  ===========================================  ==========
call                                        what for                                     calls
==========================================  ===========================================  ==========
elbv2 DescribeTargetHealth (``health``)     target states of each fleet's target group   1 per TG
ec2 DescribeInstances (``drift``)           running/pending instances tagged             1/page
                                            cattle:app (+ cattle:environment)
ec2 DescribeInstances (``drift``)           ASG instances the tagged query missed        0 usually
                                            (e.g. attached untagged ones), by id         (1 per 200)
ec2 DescribeLaunchTemplateVersions          every version of a launch template with      0 usually
(``drift``)                                 more than one version (edited)               (1 per LT)
==========================================  ===========================================  ==========
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_tag_filter_dict
from ansible_collections.amazon.aws.plugins.module_utils.transformation import ansible_dict_to_boto3_filter_list

from .discovery import discover_stack
from .discovery import get_client
from .errors import FleetAWSErrorHandler
from .errors import FleetError
from .info import edited_launch_templates
from .info import enrich_stack
from .info import instance_ids_to_describe
from .naming import validate_stack
from .tags import TAG_APP
from .tags import TAG_ENVIRONMENT

# EC2 accepts at most 200 values per filter.
EC2_FILTER_BATCH = 200


def _retry():
    return AWSRetry.jittered_backoff(retries=10)


def _paginate(client, operation, **params):
    return paginated_query_with_retries(client, operation, retry_decorator=_retry(), **params)


@FleetAWSErrorHandler.common_error_handler("describe target health")
def describe_target_health(client, target_group_arn):
    """TargetHealthDescriptions of one target group; None when the target group is gone."""
    try:
        result = _retry()(client.describe_target_health)(TargetGroupArn=target_group_arn)
    except is_boto3_error_code("TargetGroupNotFound"):
        return None
    return result.get("TargetHealthDescriptions", [])


@FleetAWSErrorHandler.common_error_handler("describe instances")
def describe_instances(client, filters):
    result = _paginate(client, "describe_instances", Filters=filters)
    return [i for r in result.get("Reservations", []) for i in r.get("Instances", [])]


@FleetAWSErrorHandler.common_error_handler("describe launch template versions")
def describe_all_launch_template_versions(client, launch_template_id):
    result = _paginate(client, "describe_launch_template_versions", LaunchTemplateId=launch_template_id)
    return result.get("LaunchTemplateVersions", [])


def stack_instance_filters(app, environment=None):
    """DescribeInstances filters: tagged cattle:app (and cattle:environment), running or pending.

    cattle:managed-by is not required: an instance someone launched by hand with the stack's tags
    is exactly the stray this looks for.
    """
    tags = {TAG_APP: app}
    if environment is not None:
        tags[TAG_ENVIRONMENT] = environment
    filters = ansible_dict_to_boto3_filter_list(ansible_dict_to_tag_filter_dict(tags))
    filters.append({"Name": "instance-state-name", "Values": ["pending", "running"]})
    return filters


def observe_fleet_details(clients, stack, health=True, drift=True):
    """The extra descriptions `info.enrich_stack` evaluates (see there), for a discovered stack."""
    details = {"target_health": {}, "instances": [], "launch_template_versions": {}}
    if health:
        arns = sorted({f["target_group"]["arn"] for f in stack["fleets"] if f.get("target_group")})
        for arn in arns:
            details["target_health"][arn] = describe_target_health(get_client(clients, "elbv2"), arn)
    if drift:
        ec2 = get_client(clients, "ec2")
        instances = describe_instances(ec2, stack_instance_filters(stack["app"], stack["environment"]))
        missing = instance_ids_to_describe(stack, instances)
        for start in range(0, len(missing), EC2_FILTER_BATCH):
            batch = missing[start:start + EC2_FILTER_BATCH]
            instances.extend(describe_instances(ec2, [{"Name": "instance-id", "Values": batch}]))
        details["instances"] = instances
        for template_id in edited_launch_templates(stack):
            details["launch_template_versions"][template_id] = describe_all_launch_template_versions(ec2, template_id)
    return details


def describe_fleets(clients, app, environment=None, traffic_point=None, health=True, drift=True, include_images=True,
                    include_launch_template_data=True):
    """What fleet_info returns: the discovered stack, with instance counts, target health and drift.

    Drift compares the instances with the fleets' AMIs and launch templates: it needs both read."""
    app, environment = validate_stack(app, environment)
    if drift and not (include_images and include_launch_template_data):
        raise FleetError(
            "drift=true compares the instances with the fleets' AMIs and launch templates: keep include_images and "
            "include_launch_template_data true (their default), or set drift=false."
        )
    stack = discover_stack(clients, app, environment, traffic_point=traffic_point, include_images=include_images,
                           include_launch_template_data=include_launch_template_data)
    details = observe_fleet_details(clients, stack, health=health, drift=drift)
    return enrich_stack(stack, details, health=health, drift=drift)
