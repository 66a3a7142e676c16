# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""Discovery: what a stack (app, environment) has in AWS, one record per version.

Two halves, kept apart so the logic is unit-testable without AWS:

- `observe_stack(clients, app, environment)` makes the API calls and returns the raw boto3
  descriptions (``Observed``); every list call is paginated, retried with
  ``AWSRetry.jittered_backoff`` and filtered server-side by the ownership tags, so its cost
  depends on the stack, never on the account:

  ====================================  ============================================  =========
  call                                  what for                                      calls
  ====================================  ============================================  =========
  ec2 DescribeImages (Owners=self)      AMIs tagged for the stack                     1/page
  ec2 DescribeLaunchTemplates           launch templates tagged for the stack         1/page
  ec2 DescribeLaunchTemplateVersions    image / instance type of each LT's default    1 per LT
  autoscaling DescribeAutoScalingGroups ASGs tagged for the stack (with instances)    1/page
  tag GetResources                      target groups tagged for the stack            1/page
  elbv2 DescribeTags                    tags of TGs attached to our ASGs that the     0 usually
                                        Tagging API did not return yet                (1 per 20)
  elbv2 DescribeTargetGroups            port, protocol, VPC, load balancers           1 per 20
  elbv2 DescribeListeners               listeners of the LBs our TGs are attached to  1 per LB
  elbv2 DescribeRules                   weights of the rules of those listeners       1/listener
  ====================================  ============================================  =========

  ELBv2 cannot filter target groups by tag server-side; listing every target group of the
  account and reading their tags 20 at a time would cost O(account). The Resource Groups Tagging
  API (``tag:GetResources`` with TagFilters and ResourceTypeFilters
  ``elasticloadbalancing:targetgroup``) filters server-side, works on AWS and on moto 5.2.
  It is eventually consistent (a target group created seconds ago may be missing), so the target
  groups attached to our ASGs are added too, with their tags read by DescribeTags; everything is
  still checked client-side with `is_owned`.

- `build_stack(observed, app, environment)` is pure: checks ownership client-side, groups the
  parts by ``cattle:version``, reads the traffic weights from the listener actions and rules, and
  derives ``live_version``, ``serving`` and ``previous_version``.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .connection import THROTTLING_CODES
from .errors import FleetAWSErrorHandler
from .naming import fleet_names
from .naming import validate_stack
from .tags import ROLE_ATTACH_RULE
from .tags import TAG_CREATED_AT
from .tags import TAG_ROLE
from .tags import TARGET_GROUP_RESOURCE_TYPE
from .tags import autoscaling_filters
from .tags import ec2_filters
from .tags import is_failed
from .tags import is_owned
from .tags import parse_timestamp
from .tags import tagging_api_filters
from .tags import tags_to_dict
from .tags import utc_timestamp
from .tags import version_of

SERVICES = ("ec2", "autoscaling", "elbv2", "resourcegroupstaggingapi")

# DescribeTags accepts at most 20 ARNs; DescribeTargetGroups is kept to the same batch size.
ELBV2_BATCH = 20

# The largest page each list call allows, so a stack of many versions costs as few pages as it
# can (the defaults are 50 groups, 50 tagged resources; moto 5.2's DescribeLaunchTemplates even
# stops at 15 without a NextToken when MaxResults is not given).
LAUNCH_TEMPLATES_PAGE = 200
AUTO_SCALING_GROUPS_PAGE = 100
TAGGED_RESOURCES_PAGE = 100

# The http-header condition of an attach rule (traffic_attach.py): a listener rule that forwards to
# one version's target group so that the load balancer health-checks it, and that no request
# matches (the header value is a random secret).
ATTACH_HEADER = "X-Cattle-Attach"

STATUS_OK = "ok"
STATUS_FAILED = "failed"

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


# --------------------------------------------------------------------------------------------
# AWS calls
# --------------------------------------------------------------------------------------------


def get_client(clients, service):
    """clients is a mapping service -> boto3 client, or a callable service -> client."""
    if callable(clients):
        return clients(service)
    return clients[service]


def _retry():
    return AWSRetry.jittered_backoff(retries=10, catch_extra_error_codes=THROTTLING_CODES)


def _paginate(client, operation, **params):
    return paginated_query_with_retries(client, operation, retry_decorator=_retry(), **params)


@FleetAWSErrorHandler.common_error_handler("describe the stack's AMIs")
def describe_images(client, filters):
    return _paginate(client, "describe_images", Owners=["self"], Filters=filters).get("Images", [])


@FleetAWSErrorHandler.common_error_handler("describe the stack's launch templates")
def describe_launch_templates(client, filters):
    return _paginate(client, "describe_launch_templates", Filters=filters,
                     MaxResults=LAUNCH_TEMPLATES_PAGE).get("LaunchTemplates", [])


@FleetAWSErrorHandler.common_error_handler("describe launch template versions")
def describe_launch_template_versions(client, launch_template_id, versions):
    result = _paginate(
        client, "describe_launch_template_versions", LaunchTemplateId=launch_template_id, Versions=versions
    )
    return result.get("LaunchTemplateVersions", [])


@FleetAWSErrorHandler.common_error_handler("describe the stack's auto scaling groups")
def describe_auto_scaling_groups(client, filters):
    return _paginate(client, "describe_auto_scaling_groups", Filters=filters,
                     MaxRecords=AUTO_SCALING_GROUPS_PAGE).get("AutoScalingGroups", [])


@FleetAWSErrorHandler.common_error_handler("find the stack's target groups (tag:GetResources)")
def get_tagged_resources(client, tag_filters, resource_types):
    result = _paginate(client, "get_resources", TagFilters=tag_filters, ResourceTypeFilters=resource_types,
                       ResourcesPerPage=TAGGED_RESOURCES_PAGE)
    return result.get("ResourceTagMappingList", [])


@FleetAWSErrorHandler.common_error_handler("describe target group tags")
@AWSRetry.jittered_backoff(retries=10, catch_extra_error_codes=THROTTLING_CODES)
def describe_elbv2_tags(client, arns):
    """{arn: tags dict} for up to 20 ELBv2 ARNs per call."""
    tags = {}
    for start in range(0, len(arns), ELBV2_BATCH):
        batch = arns[start:start + ELBV2_BATCH]
        for desc in client.describe_tags(ResourceArns=batch).get("TagDescriptions", []):
            tags[desc["ResourceArn"]] = tags_to_dict(desc.get("Tags"))
    return tags


@FleetAWSErrorHandler.common_error_handler("describe the stack's target groups")
def describe_target_groups(client, arns):
    """Target groups by ARN; ARNs that no longer exist (Tagging API lag after a delete) are skipped."""
    found = []
    for start in range(0, len(arns), ELBV2_BATCH):
        batch = arns[start:start + ELBV2_BATCH]
        try:
            found.extend(_paginate(client, "describe_target_groups", TargetGroupArns=batch).get("TargetGroups", []))
        except is_boto3_error_code("TargetGroupNotFound"):
            # One ARN of the batch is gone: fall back to one call per ARN for this batch only.
            for arn in batch:
                try:
                    found.extend(
                        _paginate(client, "describe_target_groups", TargetGroupArns=[arn]).get("TargetGroups", [])
                    )
                except is_boto3_error_code("TargetGroupNotFound"):
                    continue
    return found


@FleetAWSErrorHandler.common_error_handler("describe the listeners of the stack's load balancers")
def describe_listeners(client, load_balancer_arn):
    return _paginate(client, "describe_listeners", LoadBalancerArn=load_balancer_arn).get("Listeners", [])


@FleetAWSErrorHandler.common_error_handler("describe listener rules")
def describe_rules(client, listener_arn):
    return _paginate(client, "describe_rules", ListenerArn=listener_arn).get("Rules", [])


def observe_stack(clients, app, environment=None, include_launch_template_data=True, include_images=True,
                  include_listeners=True):
    """Make the discovery API calls for stack (app, environment); return the raw descriptions.

    Returns a dict with boto3 shapes: ``images``, ``launch_templates``,
    ``launch_template_versions`` ({lt id: default version description}),
    ``auto_scaling_groups``, ``target_groups`` (each with an added ``Tags`` dict),
    ``listeners`` and ``rules`` (non-default rules of those listeners).

    A caller that needs only the fleets' parts (traffic_shift: which target group is which
    version, complete, failed) leaves out the AMIs (``include_images``), the launch templates'
    data and the load balancers' listeners and rules (``include_listeners``).
    """
    app, environment = validate_stack(app, environment)
    ec2 = get_client(clients, "ec2")
    autoscaling = get_client(clients, "autoscaling")
    tagging = get_client(clients, "resourcegroupstaggingapi")

    filters = ec2_filters(app, environment)
    images = [i for i in describe_images(ec2, filters) if is_owned(i.get("Tags"), app, environment)] if include_images else []
    templates = [
        t for t in describe_launch_templates(ec2, filters) if is_owned(t.get("Tags"), app, environment)
    ]
    template_versions = {}
    if include_launch_template_data:
        for template in templates:
            versions = describe_launch_template_versions(ec2, template["LaunchTemplateId"], ["$Default"])
            if versions:
                template_versions[template["LaunchTemplateId"]] = versions[0]

    groups = [
        g
        for g in describe_auto_scaling_groups(autoscaling, autoscaling_filters(app, environment))
        if is_owned(g.get("Tags"), app, environment)
    ]

    tg_tags = {}
    for mapping in get_tagged_resources(tagging, tagging_api_filters(app, environment), [TARGET_GROUP_RESOURCE_TYPE]):
        tg_tags[mapping["ResourceARN"]] = tags_to_dict(mapping.get("Tags"))
    # Tagging API lag: target groups attached to our ASGs but not (yet) returned by GetResources.
    unseen = sorted({arn for g in groups for arn in g.get("TargetGroupARNs", [])} - set(tg_tags))
    elbv2 = get_client(clients, "elbv2") if (unseen or tg_tags) else None
    if unseen:
        tg_tags.update(describe_elbv2_tags(elbv2, unseen))
    owned_arns = sorted(arn for arn, tags in tg_tags.items() if is_owned(tags, app, environment))
    target_groups = []
    for target_group in describe_target_groups(elbv2, owned_arns) if owned_arns else []:
        target_group = dict(target_group)
        target_group["Tags"] = tg_tags.get(target_group["TargetGroupArn"], {})
        target_groups.append(target_group)

    load_balancer_arns = sorted({lb for tg in target_groups for lb in tg.get("LoadBalancerArns", [])}) if include_listeners else []
    listeners = []
    rules = []
    for load_balancer_arn in load_balancer_arns:
        for listener in describe_listeners(elbv2, load_balancer_arn):
            listeners.append(listener)
            for rule in describe_rules(elbv2, listener["ListenerArn"]):
                if not rule.get("IsDefault"):
                    rule = dict(rule)
                    rule["ListenerArn"] = listener["ListenerArn"]
                    rule["LoadBalancerArn"] = load_balancer_arn
                    rules.append(rule)
    add_attach_rule_tags(elbv2, rules)

    return {
        "images": images,
        "launch_templates": templates,
        "launch_template_versions": template_versions,
        "auto_scaling_groups": groups,
        "target_groups": target_groups,
        "listeners": listeners,
        "rules": rules,
    }


def discover_stack(clients, app, environment=None, traffic_point=None, include_launch_template_data=True,
                   include_images=True, include_listeners=True):
    """Discover stack (app, environment): `observe_stack` then `build_stack` (see there)."""
    app, environment = validate_stack(app, environment)
    observed = observe_stack(clients, app, environment, include_launch_template_data=include_launch_template_data,
                             include_images=include_images, include_listeners=include_listeners)
    return build_stack(observed, app, environment, traffic_point=traffic_point)


# --------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------


def _as_time(value):
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    return parse_timestamp(value)


def target_group_name_from_arn(arn):
    """``arn:...:targetgroup/NAME/ID`` -> NAME (None if not a target group ARN)."""
    match = re.search(r":targetgroup/([^/]+)/", arn or "")
    return match.group(1) if match else None


def version_sort_key(version):
    """Natural order of version strings: 1.10 after 1.9, digits before letters in a position."""
    parts = re.findall(r"\d+|[^\d]+", version or "")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _fleet_sort_key(record):
    created = _as_time(record.get("created_at")) or _EPOCH
    return (created, version_sort_key(record["version"]))


def sort_fleets(records):
    """Newest first: by created_at (missing = oldest), then by natural version order."""
    return sorted(records, key=_fleet_sort_key, reverse=True)


def _ami_record(image):
    return {
        "id": image["ImageId"],
        "name": image.get("Name"),
        "state": image.get("State"),
        "creation_date": image.get("CreationDate"),
        "snapshot_ids": sorted(
            m["Ebs"]["SnapshotId"]
            for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")
        ),
        "owned": True,
    }


def _launch_template_record(template, version_data):
    data = (version_data or {}).get("LaunchTemplateData", {})
    return {
        "id": template["LaunchTemplateId"],
        "name": template["LaunchTemplateName"],
        "latest_version": template.get("LatestVersionNumber"),
        "default_version": template.get("DefaultVersionNumber"),
        "created_at": utc_timestamp(_as_time(template["CreateTime"])) if template.get("CreateTime") else None,
        "image_id": data.get("ImageId"),
        "instance_type": data.get("InstanceType"),
    }


def _target_group_record(target_group):
    return {
        "arn": target_group["TargetGroupArn"],
        "name": target_group.get("TargetGroupName"),
        "port": target_group.get("Port"),
        "protocol": target_group.get("Protocol"),
        "vpc_id": target_group.get("VpcId"),
        "target_type": target_group.get("TargetType"),
        "load_balancer_arns": sorted(target_group.get("LoadBalancerArns", [])),
    }


def _instance_record(instance):
    template = instance.get("LaunchTemplate") or {}
    return {
        "instance_id": instance["InstanceId"],
        "lifecycle_state": instance.get("LifecycleState"),
        "health_status": (instance.get("HealthStatus") or "").capitalize() or None,
        "availability_zone": instance.get("AvailabilityZone"),
        "instance_type": instance.get("InstanceType"),
        "launch_template_id": template.get("LaunchTemplateId"),
        "launch_template_version": template.get("Version"),
        "protected_from_scale_in": instance.get("ProtectedFromScaleIn", False),
    }


def _asg_record(group):
    template = group.get("LaunchTemplate") or {}
    if not template:
        # Mixed instances policy: the launch template sits in the policy.
        policy = group.get("MixedInstancesPolicy") or {}
        template = policy.get("LaunchTemplate", {}).get("LaunchTemplateSpecification", {})
    instances = sorted((_instance_record(i) for i in group.get("Instances", [])), key=lambda i: i["instance_id"])
    return {
        "name": group["AutoScalingGroupName"],
        "arn": group.get("AutoScalingGroupARN"),
        "min_size": group.get("MinSize"),
        "max_size": group.get("MaxSize"),
        "desired_capacity": group.get("DesiredCapacity"),
        "created_at": utc_timestamp(_as_time(group["CreatedTime"])) if group.get("CreatedTime") else None,
        "launch_template": {
            "id": template.get("LaunchTemplateId"),
            "name": template.get("LaunchTemplateName"),
            "version": template.get("Version"),
        },
        "target_group_arns": sorted(group.get("TargetGroupARNs", [])),
        "suspended_processes": sorted(p["ProcessName"] for p in group.get("SuspendedProcesses", [])),
        "instances": instances,
        "instance_counts": {
            "total": len(instances),
            "in_service": sum(1 for i in instances if i["lifecycle_state"] == "InService"),
            "healthy": sum(1 for i in instances if i["health_status"] == "Healthy"),
            "unhealthy": sum(1 for i in instances if i["health_status"] == "Unhealthy"),
        },
    }


def _pick(candidates, expected_name, name_of, conflicts, kind, version):
    """One resource per kind and version; prefer the expected name, report the others."""
    if not candidates:
        return None
    ordered = sorted(candidates, key=lambda c: (name_of(c) != expected_name, name_of(c) or ""))
    if len(ordered) > 1:
        conflicts.append(
            f"version {version}: {len(ordered)} {kind}s carry the stack's tags "
            f"({', '.join(str(name_of(c)) for c in ordered)}); using {name_of(ordered[0])}"
        )
    return ordered[0]


def group_fleets(observed, app, environment=None):
    """Group owned parts by cattle:version; returns (records, conflicts). Pure.

    Every part is re-checked with `is_owned` (server-side filters are never trusted alone);
    parts without a cattle:version are ignored. Missing parts are None.
    """
    parts = {}

    def add(kind, resource, tags):
        if not is_owned(tags, app, environment):
            return
        version = version_of(tags)
        if version is None:
            return
        parts.setdefault(version, {}).setdefault(kind, []).append((resource, tags_to_dict(tags)))

    for image in observed.get("images", []):
        add("ami", image, image.get("Tags"))
    for template in observed.get("launch_templates", []):
        add("launch_template", template, template.get("Tags"))
    for target_group in observed.get("target_groups", []):
        add("target_group", target_group, target_group.get("Tags"))
    for group in observed.get("auto_scaling_groups", []):
        add("auto_scaling_group", group, group.get("Tags"))

    template_versions = observed.get("launch_template_versions", {})
    records = []
    conflicts = []
    for version, found in parts.items():
        try:
            names = fleet_names(app, environment, version)
        except Exception:  # a version tag we would not accept as input: still report the parts
            names = {"launch_template": None, "auto_scaling_group": None, "target_group": None}

        image = _pick(found.get("ami"), None, lambda p: p[0].get("Name"), conflicts, "AMI", version)
        template = _pick(
            found.get("launch_template"), names["launch_template"], lambda p: p[0]["LaunchTemplateName"],
            conflicts, "launch template", version,
        )
        target_group = _pick(
            found.get("target_group"), names["target_group"], lambda p: p[0].get("TargetGroupName"),
            conflicts, "target group", version,
        )
        group = _pick(
            found.get("auto_scaling_group"), names["auto_scaling_group"], lambda p: p[0]["AutoScalingGroupName"],
            conflicts, "auto scaling group", version,
        )
        chosen = [p for p in (image, template, target_group, group) if p is not None]

        lt_record = (
            _launch_template_record(template[0], template_versions.get(template[0]["LaunchTemplateId"]))
            if template
            else None
        )
        if image:
            ami = _ami_record(image[0])
        elif lt_record and lt_record["image_id"]:
            ami = {"id": lt_record["image_id"], "name": None, "state": None, "creation_date": None,
                   "snapshot_ids": [], "owned": False}
        else:
            ami = None

        # A fleet is as old as its parts (launch template, target group, group); its AMI counts only
        # when there is nothing else: an AMI baked long before (or shared by) the fleet does not make
        # it older, and readers that skip the AMIs (traffic_shift) order the versions the same way.
        parts = [p for p in (template, target_group, group) if p is not None] or chosen
        created = [_as_time(tags.get(TAG_CREATED_AT)) for dummy, tags in parts]
        created = [c for c in created if c is not None]
        if not created:
            # No (parsable) cattle:created-at tag: fall back to the resources' creation times.
            created = [
                t for t in (
                    _as_time(image[0].get("CreationDate")) if image else None,
                    _as_time(template[0].get("CreateTime")) if template else None,
                    _as_time(group[0].get("CreatedTime")) if group else None,
                ) if t is not None
            ]
        failed = any(is_failed(tags) for dummy, tags in chosen)
        records.append({
            "version": version,
            "created_at": utc_timestamp(min(created)) if created else None,
            "status": STATUS_FAILED if failed else STATUS_OK,
            "failed": failed,
            "complete": bool(template and target_group and group),
            "names": {k: names[k] for k in ("launch_template", "auto_scaling_group", "target_group")},
            "ami": ami,
            "launch_template": lt_record,
            "target_group": _target_group_record(target_group[0]) if target_group else None,
            "auto_scaling_group": _asg_record(group[0]) if group else None,
            "traffic": [],
            "weight": 0,
            "traffic_percent": 0.0,
            "serving": False,
            "live": False,
        })
    return sort_fleets(records), conflicts


def looks_like_attach_rule(rule):
    """True when a listener rule has the http-header condition of an attach rule. Pure."""
    for condition in rule.get("Conditions") or []:
        config = condition.get("HttpHeaderConfig") or {}
        if condition.get("Field") == "http-header" and (config.get("HttpHeaderName") or "").lower() == ATTACH_HEADER.lower():
            return True
    return False


def add_attach_rule_tags(elbv2, rules):
    """Read the tags (``Tags`` dict) of the rules that look like attach rules: one DescribeTags
    call per 20 of them, none when there is none (the usual case). Mutates rules."""
    candidates = [r for r in rules if looks_like_attach_rule(r) and "Tags" not in r]
    if not candidates:
        return rules
    tags = describe_elbv2_tags(elbv2, [r["RuleArn"] for r in candidates])
    for rule in candidates:
        rule["Tags"] = tags.get(rule["RuleArn"], {})
    return rules


def is_attach_rule(rule, app, environment=None):
    """True when rule is an attach rule of stack (app, environment): the attach header condition
    and our ownership tags with cattle:role = attach-rule (``rule["Tags"]``). Pure."""
    tags = rule.get("Tags") or {}
    return (looks_like_attach_rule(rule) and is_owned(tags, app, environment)
            and tags_to_dict(tags).get(TAG_ROLE) == ROLE_ATTACH_RULE)


def attach_rule_view(rule):
    """The attach rule as fleet_info / traffic_shift show it. Pure."""
    targets = forward_targets(rule.get("Actions"))
    return {
        "rule_arn": rule["RuleArn"],
        "listener_arn": rule.get("ListenerArn") or listener_arn_of_rule(rule["RuleArn"]),
        "priority": rule.get("Priority"),
        "version": version_of(rule.get("Tags")),
        "target_group_arn": targets[0][0] if targets else None,
    }


def listener_arn_of_rule(rule_arn):
    """The listener ARN of a listener rule ARN (``...:listener-rule/app/lb/id/listener-id/rule-id``)."""
    if not rule_arn or ":listener-rule/" not in rule_arn:
        return None
    return rule_arn.replace(":listener-rule/", ":listener/", 1).rsplit("/", 1)[0]


def forward_targets(actions):
    """[(target group arn, weight)] of the forward action among `actions` (listener or rule).

    A forward with ``ForwardConfig`` uses its weights (missing weight = 1, AWS' default); a plain
    ``TargetGroupArn`` forward is weight 1 of 1, i.e. all the traffic.
    """
    for action in sorted(actions or [], key=lambda a: a.get("Order", 0)):
        if action.get("Type") != "forward":
            continue
        config = action.get("ForwardConfig") or {}
        if config.get("TargetGroups"):
            return [(tg["TargetGroupArn"], int(tg.get("Weight", 1))) for tg in config["TargetGroups"]]
        if action.get("TargetGroupArn"):
            return [(action["TargetGroupArn"], 1)]
    return []


def traffic_points(listeners, rules):
    """Every listener default action and listener rule that forwards somewhere. Pure."""
    points = []
    for listener in listeners or []:
        targets = forward_targets(listener.get("DefaultActions"))
        if targets:
            points.append({
                "type": "listener",
                "arn": listener["ListenerArn"],
                "listener_arn": listener["ListenerArn"],
                "rule_arn": None,
                "load_balancer_arn": listener.get("LoadBalancerArn"),
                "priority": "default",
                "targets": targets,
            })
    for rule in rules or []:
        targets = forward_targets(rule.get("Actions"))
        if targets:
            points.append({
                "type": "rule",
                "arn": rule["RuleArn"],
                "listener_arn": rule.get("ListenerArn"),
                "rule_arn": rule["RuleArn"],
                "load_balancer_arn": rule.get("LoadBalancerArn"),
                "priority": rule.get("Priority"),
                "targets": targets,
            })
    return points


def _percent(weight, total):
    return round(100.0 * weight / total, 2) if total else 0.0


def attach_traffic(records, points):
    """Fill each record's ``traffic`` from the traffic points; return (stack points, foreign TGs).

    Only points that forward to at least one of the stack's target groups are kept; the other
    target groups of those points are the foreign target groups. Pure (mutates records).
    """
    by_arn = {r["target_group"]["arn"]: r for r in records if r.get("target_group")}
    stack_points = []
    foreign = []
    for point in points:
        if not any(arn in by_arn for arn, dummy in point["targets"]):
            continue
        total = sum(weight for dummy, weight in point["targets"])
        where = {k: point[k] for k in ("type", "listener_arn", "rule_arn", "load_balancer_arn", "priority")}
        summary = dict(where, arn=point["arn"], total_weight=total, target_groups=[])
        for arn, weight in point["targets"]:
            entry = dict(
                where, point_arn=point["arn"], weight=weight, total_weight=total, percent=_percent(weight, total)
            )
            record = by_arn.get(arn)
            summary["target_groups"].append({
                "arn": arn,
                "name": target_group_name_from_arn(arn),
                "version": record["version"] if record else None,
                "weight": weight,
                "percent": entry["percent"],
            })
            if record is not None:
                record["traffic"].append(entry)
            else:
                foreign.append(dict(entry, arn=arn, name=target_group_name_from_arn(arn)))
        stack_points.append(summary)
    return stack_points, foreign


def choose_traffic_point(stack_points, wanted=None):
    """The traffic point that decides `live`: `wanted` (listener or rule ARN) when given, else the
    one forwarding to most of the stack's target groups (listener default before rules)."""
    if wanted:
        for point in stack_points:
            if point["arn"] == wanted:
                return point
        return None
    if not stack_points:
        return None

    def key(point):
        owned = sum(1 for tg in point["target_groups"] if tg["version"] is not None)
        return (-owned, point["type"] != "listener", point["arn"])

    return sorted(stack_points, key=key)[0]


def compute_live(records, point_arn=None):
    """Set ``weight``/``traffic_percent``/``serving``/``live`` on records; return live_version. Pure.

    serving: weight > 0 on any traffic point. live: the largest share of traffic (weight / total
    weight of its point) > 0, counting only the point `point_arn` when given; ties go to the
    newest version.
    """
    best = None
    best_share = 0.0
    for record in sort_fleets(records):  # newest first
        traffic = record.get("traffic", [])
        record["serving"] = any(t["weight"] > 0 for t in traffic)
        record["weight"] = max((t["weight"] for t in traffic), default=0)
        record["traffic_percent"] = max((t["percent"] for t in traffic), default=0.0)
        record["live"] = False
        shares = [
            t["weight"] / float(t["total_weight"])
            for t in traffic
            if t["weight"] > 0 and (point_arn is None or t["point_arn"] == point_arn)
        ]
        share = max(shares, default=0.0)
        if share > best_share:  # strict: on a tie the newer record, seen first, stays live
            best, best_share = record, share
    if best is None:
        return None
    best["live"] = True
    return best["version"]


def previous_version(records, live_version):
    """The newest non-failed, complete (LT + TG + ASG) version older than the live one. Pure."""
    if live_version is None:
        return None
    records = sort_fleets(records)
    seen_live = False
    for record in records:
        if record["version"] == live_version:
            seen_live = True
            continue
        if seen_live and not record["failed"] and record["complete"]:
            return record["version"]
    return None


def build_stack(observed, app, environment=None, traffic_point=None):
    """Pure: raw observations -> the stack's fleets (newest first), live/previous, foreign TGs."""
    app, environment = validate_stack(app, environment)
    records, conflicts = group_fleets(observed, app, environment)
    rules = observed.get("rules") or []
    attach_rules = [attach_rule_view(r) for r in rules if is_attach_rule(r, app, environment)]
    attach_arns = {a["rule_arn"] for a in attach_rules}
    for record in records:
        arn = (record.get("target_group") or {}).get("arn")
        record["attach_rules"] = [a for a in attach_rules if arn and a["target_group_arn"] == arn]
    stack_points, foreign = attach_traffic(
        records, traffic_points(observed.get("listeners"), [r for r in rules if r.get("RuleArn") not in attach_arns]))
    point = choose_traffic_point(stack_points, traffic_point)
    if point is None and traffic_point:
        live = compute_live(records, point_arn=traffic_point)  # the point does not serve the stack
    else:
        live = compute_live(records, point_arn=point["arn"] if point else None)
    return {
        "app": app,
        "environment": environment,
        "fleets": records,
        "live_version": live,
        "previous_version": previous_version(records, live),
        "traffic_point": point["arn"] if point else None,
        "traffic_points": stack_points,
        "foreign_target_groups": foreign,
        "attach_rules": attach_rules,
        "conflicts": conflicts,
    }
