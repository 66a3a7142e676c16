# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""One wrapper per boto3 call that traffic_shift makes (retried, errors made readable).

Every function takes a boto3 client and plain values. Botocore errors come out as amazon.aws
``AnsibleAWSError("Failed to <description>")``; "not found" answers of describe calls come out
as ``None``.
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .errors import FleetAWSErrorHandler

_retry = AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=20)


class _ListenerErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["ListenerNotFound", "ValidationError"])


class _RuleErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["RuleNotFound", "ValidationError"])


class _ZoneErrors(FleetAWSErrorHandler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["NoSuchHostedZone"])


@_ListenerErrors.list_error_handler("describe listener", default_value=None)
@_retry
def describe_listener(client, listener_arn):
    listeners = client.describe_listeners(ListenerArns=[listener_arn]).get("Listeners", [])
    return listeners[0] if listeners else None


@_RuleErrors.list_error_handler("describe listener rule", default_value=None)
@_retry
def describe_rule(client, rule_arn):
    rules = client.describe_rules(RuleArns=[rule_arn]).get("Rules", [])
    return rules[0] if rules else None


@FleetAWSErrorHandler.common_error_handler("describe target health")
@_retry
def describe_target_health(client, target_group_arn):
    return client.describe_target_health(TargetGroupArn=target_group_arn).get("TargetHealthDescriptions", [])


@FleetAWSErrorHandler.common_error_handler("modify listener default action")
@_retry
def modify_listener(client, listener_arn, actions):
    return client.modify_listener(ListenerArn=listener_arn, DefaultActions=actions)


@FleetAWSErrorHandler.common_error_handler("modify listener rule actions")
@_retry
def modify_rule(client, rule_arn, actions):
    return client.modify_rule(RuleArn=rule_arn, Actions=actions)


@_ListenerErrors.list_error_handler("describe the rules of the listener", default_value=None)
@_retry
def describe_listener_rules(client, listener_arn):
    """Every rule of listener_arn (default rule included), following the pages; None when the
    listener does not exist."""
    rules = []
    params = {"ListenerArn": listener_arn}
    while True:
        page = client.describe_rules(**params)
        rules.extend(page.get("Rules", []))
        if not page.get("NextMarker"):
            return rules
        params["Marker"] = page["NextMarker"]


@FleetAWSErrorHandler.common_error_handler("describe listener rule tags")
@_retry
def describe_tags(client, arns):
    """{arn: boto3 tag list} of up to 20 ELBv2 ARNs."""
    return {d["ResourceArn"]: d.get("Tags", []) for d in client.describe_tags(ResourceArns=arns).get("TagDescriptions", [])}


@FleetAWSErrorHandler.common_error_handler("create the attach rule (listener rule)")
@AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=20)
def create_rule(client, listener_arn, priority, conditions, actions, tags):
    return client.create_rule(ListenerArn=listener_arn, Priority=priority, Conditions=conditions, Actions=actions,
                              Tags=tags)["Rules"][0]


@_RuleErrors.list_error_handler("delete the attach rule (listener rule)", default_value=False)
@_retry
def delete_rule(client, rule_arn):
    """Delete a listener rule; False when it is already gone."""
    client.delete_rule(RuleArn=rule_arn)
    return True


@_retry
def _list_record_sets_page(client, **params):
    return client.list_resource_record_sets(**params)


@_ZoneErrors.list_error_handler("list Route53 record sets", default_value=None)
def list_record_sets(client, zone_id, record_name, record_type, same_name_type):
    """Record sets of zone_id named record_name of record_type; None when the zone does not exist.

    Starts at (record_name, record_type) and follows the pages only while they still hold that
    name and type, so the cost does not grow with the zone. ``same_name_type(record)`` decides.
    """
    params = {"HostedZoneId": zone_id, "StartRecordName": record_name, "StartRecordType": record_type}
    found = []
    while True:
        page = _list_record_sets_page(client, **params)
        records = page.get("ResourceRecordSets", [])
        matching = [r for r in records if same_name_type(r)]
        found.extend(matching)
        if not page.get("IsTruncated") or len(matching) < len(records):
            return found
        params["StartRecordName"] = page["NextRecordName"]
        params["StartRecordType"] = page["NextRecordType"]
        if page.get("NextRecordIdentifier"):
            params["StartRecordIdentifier"] = page["NextRecordIdentifier"]


@FleetAWSErrorHandler.common_error_handler("change Route53 record sets")
@_retry
def change_record_sets(client, zone_id, changes, comment):
    return client.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Comment": comment, "Changes": changes}
    )["ChangeInfo"]


@FleetAWSErrorHandler.common_error_handler("get Route53 change status")
@_retry
def get_change(client, change_id):
    return client.get_change(Id=change_id)["ChangeInfo"]
