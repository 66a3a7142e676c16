# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""One immutable fleet: launch template + target group + auto scaling group of one version.

The steps, each a plain function (no module anywhere):

- `build_desired(params)`: validate the options and normalise them (pure, before any AWS call).
- `observe(clients, desired)`: read the fleet's resources by name and check their ownership tags;
  a same-named resource without our tags is "foreign": reported, never adopted nor touched.
- `plan_fleet(observed, desired)`: pure; the ordered list of actions (dicts), or FleetError when
  the request cannot be honoured (foreign resource, immutable spec changed, traffic on absent...).
- `apply(clients, actions, desired, observed)` runs the actions; `simulate(observed, actions,
  desired)` computes the same resulting state without any call (check mode).
- `wait_for_capacity(...)`: until the desired instances are InService (with a desired capacity of
  0: until the group has no instances left); stops at the first failed scaling activity with AWS'
  reason.
- `ensure_fleet(clients, desired, check_mode)`: all of the above, returns the module's result.

Without the spec (``ami_id``, ``instance_type``, ``subnet_ids`` all omitted) a run may only scale
and (re)tag the status of an existing, complete fleet: ``desired["spec"]`` is None, nothing is
compared, and a missing or half-built fleet is an error before any change.

An action is a JSON-friendly dict, ``{"action": "create_launch_template", "name": ...}``; see
`ACTIONS` for the vocabulary. Actions never carry the user data.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import time

from . import fleet_api as api
from . import traffic_attach
from .discovery import add_attach_rule_tags
from .discovery import attach_rule_view
from .discovery import describe_listeners
from .discovery import describe_rules
from .discovery import discover_stack
from .discovery import is_attach_rule
from .discovery import traffic_points
from .errors import FleetError
from .naming import fleet_names
from .naming import validate_stack
from .naming import validate_version
from .tags import TAG_CREATED_AT
from .tags import STATUS_FAILED
from .tags import TAG_NAME
from .tags import TAG_STATUS
from .tags import TAG_VERSION
from .tags import RESERVED_TAG_PREFIXES
from .tags import dict_to_tag_list
from .tags import is_owned
from .tags import ownership_tags
from .tags import tags_to_dict
from .tags import utc_timestamp
from .tags import validate_user_tags

# Stored on the launch template only: the sha256 of the user data, so that a re-run can tell
# whether the user data changed without ever reading it back or echoing it.
TAG_USER_DATA_SHA256 = "cattle:user-data-sha256"

ACTIONS = (
    "create_launch_template",
    "create_target_group",
    "create_auto_scaling_group",
    "attach_target_group",
    "tag_status",
    "update_capacity",
    "detach_target_group",
    "delete_auto_scaling_group",
    "delete_attach_rule",
    "delete_target_group",
    "delete_launch_template",
)

# Defaults of the options (the module's argument spec and documentation use the same values).
DEFAULT_METADATA_OPTIONS = {
    "http_tokens": "required",
    "http_endpoint": "enabled",
    "http_put_response_hop_limit": 1,
    "instance_metadata_tags": "disabled",
}
DEFAULT_HEALTH_CHECK = {
    "path": "/health",
    "interval": 10,
    "timeout": 5,
    "healthy_threshold": 2,
    "unhealthy_threshold": 2,
    "matcher": "200",
}
DEFAULT_TARGET_GROUP = {"port": 8080, "protocol": "HTTP", "vpc_id": None, "deregistration_delay": 30}
DEFAULT_VOLUME = {"volume_type": "gp3", "encrypted": True, "delete_on_termination": True}
DEFAULT_HEALTH_CHECK_TYPE = "ELB"
DEFAULT_HEALTH_CHECK_GRACE_PERIOD = 60
DEFAULT_WAIT_TIMEOUT = 600

# Without all of these a run can only scale / re-tag an existing fleet (the "spec" is omitted).
SPEC_REQUIRED = ("ami_id", "instance_type", "subnet_ids")
# Spec options without a default in the argument spec: meaningless without SPEC_REQUIRED.
SPEC_OPTIONAL = ("user_data", "security_group_ids", "key_name", "iam_instance_profile", "volumes",
                 "metadata_options", "target_group", "tags")
STATUS_ACTIVE = "active"
STATUS_CHOICES = (STATUS_ACTIVE, STATUS_FAILED)
# The resources that carry cattle:status, in the order they are tagged. Not the AMI: it may be
# shared by several versions (a failed release does not make its AMI bad for the others).
STATUS_RESOURCES = ("auto_scaling_group", "target_group", "launch_template")

# The order in which differing fields are reported.
SPEC_FIELDS = (
    "ami_id",
    "instance_type",
    "user_data",
    "subnet_ids",
    "security_group_ids",
    "key_name",
    "iam_instance_profile",
    "volumes",
    "metadata_options",
    "tags",
    "health_check_type",
    "health_check_grace_period",
    "target_group.port",
    "target_group.protocol",
    "target_group.vpc_id",
    "target_group.health_check.path",
    "target_group.health_check.interval",
    "target_group.health_check.timeout",
    "target_group.health_check.healthy_threshold",
    "target_group.health_check.unhealthy_threshold",
    "target_group.health_check.matcher",
    "target_group.deregistration_delay",
    "launch_template",
)

_NOT_COMPARED = object()

_ID_PATTERNS = {
    "ami_id": re.compile(r"^ami-[0-9a-f]{8,17}$"),
    "subnet_ids": re.compile(r"^subnet-[0-9a-f]{8,17}$"),
    "security_group_ids": re.compile(r"^sg-[0-9a-f]{8,17}$"),
    "target_group.vpc_id": re.compile(r"^vpc-[0-9a-f]{8,17}$"),
}
_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_TERMINATING = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated", "Detaching", "Detached")
_ACTIVITY_FAILED = ("Failed", "Cancelled")
_ACTIVITY_DONE = ("Successful", "Failed", "Cancelled")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _value(params, key, default=None):
    value = (params or {}).get(key)
    return default if value is None else value


def user_data_sha256(user_data):
    """sha256 hex of the user data text ("" when none): what the launch template's tag stores."""
    return hashlib.sha256((user_data or "").encode("utf-8")).hexdigest()


def _normalize_volumes(volumes, errors):
    if volumes is None:
        return None
    result = []
    seen = set()
    for index, volume in enumerate(volumes):
        device = (volume or {}).get("device_name")
        if not device:
            errors.append(f"volumes[{index}].device_name is required (for example /dev/xvda).")
            continue
        if device in seen:
            errors.append(f"volumes: device_name {device} is given twice.")
        seen.add(device)
        size = volume.get("volume_size")
        if size is not None and size < 1:
            errors.append(f"volumes[{index}].volume_size must be at least 1 (GiB); got {size}.")
        result.append({
            "device_name": device,
            "volume_size": size,
            "volume_type": _value(volume, "volume_type", DEFAULT_VOLUME["volume_type"]),
            "iops": volume.get("iops"),
            "throughput": volume.get("throughput"),
            "encrypted": _value(volume, "encrypted", DEFAULT_VOLUME["encrypted"]),
            "kms_key_id": volume.get("kms_key_id"),
            "delete_on_termination": _value(volume, "delete_on_termination", DEFAULT_VOLUME["delete_on_termination"]),
        })
    return sorted(result, key=lambda v: v["device_name"])


def _normalize_capacity(capacity, errors):
    if not capacity:
        return None
    result = {k: capacity.get(k) for k in ("min", "max", "desired")}
    if all(v is None for v in result.values()):
        return None
    for key, value in result.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            errors.append(f"capacity.{key} must be a whole number >= 0; got {value!r}.")
    if errors:
        return result
    errors.extend(capacity_errors(result))
    return result


def capacity_errors(capacity):
    """Messages for an inconsistent (possibly partial) capacity {min, max, desired}."""
    low, high, desired = capacity.get("min"), capacity.get("max"), capacity.get("desired")
    errors = []
    if low is not None and high is not None and low > high:
        errors.append(f"capacity.min ({low}) must not be greater than capacity.max ({high}).")
    elif desired is not None and low is not None and desired < low:
        errors.append(f"capacity.desired ({desired}) must be within capacity.min ({low}) and capacity.max ({high}).")
    elif desired is not None and high is not None and desired > high:
        errors.append(f"capacity.desired ({desired}) must be within capacity.min ({low}) and capacity.max ({high}).")
    return errors


def _build_scale_only(params, desired, errors):
    """build_desired without the spec: only capacity, capacity_from_live and status apply."""
    extra = [option for option in SPEC_OPTIONAL if params.get(option) not in (None, [], {}, "")]
    if extra:
        errors.append(
            f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} part of the fleet's spec and need "
            f"{', '.join(SPEC_REQUIRED)}; without them immutable_fleet only scales an existing fleet or sets its "
            "status, and changes or checks nothing else."
        )
    capacity = _normalize_capacity(params.get("capacity"), errors)
    if errors:
        raise FleetError("Invalid options: " + " ".join(errors), errors=errors)
    desired.update({
        "spec": None,
        "user_data": None,
        "capacity": capacity,
        "capacity_from_live": bool(params.get("capacity_from_live")),
    })
    return desired


def build_desired(params):
    """Validate and normalise the module options; raise FleetError listing every problem. Pure."""
    app, environment = validate_stack(params.get("app"), params.get("environment"))
    version = validate_version(params.get("version"))
    names = fleet_names(app, environment, version)
    state = params.get("state") or "present"
    wait_timeout = _value(params, "wait_timeout", DEFAULT_WAIT_TIMEOUT)
    desired = {
        "app": app,
        "environment": environment,
        "version": version,
        "names": names,
        "state": state,
        "wait": bool(_value(params, "wait", True)),
        "wait_timeout": wait_timeout,
    }
    errors = []
    if wait_timeout < 1:
        errors.append(f"wait_timeout must be at least 1 (seconds); got {wait_timeout}.")
    status = params.get("status")
    if status is not None and status not in STATUS_CHOICES:
        errors.append(f"status must be one of {', '.join(STATUS_CHOICES)}; got {status!r}.")
    desired["status"] = status
    if state == "absent":
        if status is not None:
            errors.append("status applies to state=present only (state=absent deletes the fleet).")
        if errors:
            raise FleetError("Invalid options: " + " ".join(errors))
        return desired

    given = [option for option in SPEC_REQUIRED if params.get(option)]
    if not given:
        return _build_scale_only(params, desired, errors)
    for option in SPEC_REQUIRED:
        if not params.get(option):
            errors.append(
                f"{option} is required with state=present when any of {', '.join(SPEC_REQUIRED)} is given "
                "(omit all three to only scale or re-tag an existing fleet)."
            )
    if params.get("instance_type") and not _INSTANCE_TYPE_RE.match(params["instance_type"]):
        errors.append(f"instance_type {params['instance_type']!r} is not an EC2 instance type (for example t3.micro).")

    target_group = dict(DEFAULT_TARGET_GROUP)
    target_group.update({k: v for k, v in (params.get("target_group") or {}).items() if v is not None and k != "health_check"})
    health_check = dict(DEFAULT_HEALTH_CHECK)
    health_check.update({k: v for k, v in ((params.get("target_group") or {}).get("health_check") or {}).items() if v is not None})
    target_group["health_check"] = health_check
    if not 1 <= target_group["port"] <= 65535:
        errors.append(f"target_group.port must be within 1 and 65535; got {target_group['port']}.")
    if not str(health_check["path"]).startswith("/"):
        errors.append(f"target_group.health_check.path must start with /; got {health_check['path']!r}.")
    if health_check["timeout"] >= health_check["interval"]:
        errors.append(
            f"target_group.health_check.timeout ({health_check['timeout']}) must be less than "
            f"target_group.health_check.interval ({health_check['interval']})."
        )

    for option, pattern in _ID_PATTERNS.items():
        if option == "target_group.vpc_id":
            values = [target_group["vpc_id"]] if target_group["vpc_id"] else []
        else:
            value = params.get(option)
            values = value if isinstance(value, list) else ([value] if value else [])
        bad = [v for v in values if not pattern.match(str(v))]
        if bad:
            errors.append(f"{option}: {', '.join(map(str, bad))} {'is' if len(bad) == 1 else 'are'} not a valid ID.")

    metadata = dict(DEFAULT_METADATA_OPTIONS)
    metadata.update({k: v for k, v in (params.get("metadata_options") or {}).items() if v is not None})
    if not 1 <= metadata["http_put_response_hop_limit"] <= 64:
        errors.append("metadata_options.http_put_response_hop_limit must be within 1 and 64.")

    capacity = _normalize_capacity(params.get("capacity"), errors)
    volumes = _normalize_volumes(params.get("volumes"), errors)
    try:
        tags = validate_user_tags(params.get("tags"))
    except FleetError as e:
        errors.append(e.msg)
        tags = {}
    grace = _value(params, "health_check_grace_period", DEFAULT_HEALTH_CHECK_GRACE_PERIOD)
    if grace < 0:
        errors.append(f"health_check_grace_period must be >= 0; got {grace}.")
    if errors:
        raise FleetError("Invalid options: " + " ".join(errors), errors=errors)

    user_data = params.get("user_data")
    desired.update({
        "spec": {
            "ami_id": params["ami_id"],
            "instance_type": params["instance_type"],
            "user_data_sha256": user_data_sha256(user_data),
            "subnet_ids": sorted(set(params["subnet_ids"])),
            "security_group_ids": sorted(set(params.get("security_group_ids") or [])),
            "key_name": params.get("key_name") or None,
            "iam_instance_profile": params.get("iam_instance_profile") or None,
            "volumes": volumes,
            "metadata_options": metadata,
            "tags": tags,
            "health_check_type": _value(params, "health_check_type", DEFAULT_HEALTH_CHECK_TYPE),
            "health_check_grace_period": grace,
            "target_group": target_group,
        },
        "user_data": user_data,
        "capacity": capacity,
        "capacity_from_live": bool(params.get("capacity_from_live")),
    })
    return desired


# --------------------------------------------------------------------------------------------
# Observe
# --------------------------------------------------------------------------------------------


def _client(clients, service):
    return clients(service) if callable(clients) else clients[service]


def _ownership_problem(tags, desired):
    """Why a resource found by the fleet's name is not this fleet's (None when it is)."""
    tags = tags_to_dict(tags)
    if not is_owned(tags, desired["app"], desired["environment"]):
        return "it does not carry this stack's cattle.aws ownership tags"
    if tags.get(TAG_VERSION) != desired["version"]:
        return f"it is tagged for version {tags.get(TAG_VERSION)!r}, not {desired['version']!r}"
    return None


def _health_check_of(target_group):
    return {
        "path": target_group.get("HealthCheckPath"),
        "interval": target_group.get("HealthCheckIntervalSeconds"),
        "timeout": target_group.get("HealthCheckTimeoutSeconds"),
        "healthy_threshold": target_group.get("HealthyThresholdCount"),
        "unhealthy_threshold": target_group.get("UnhealthyThresholdCount"),
        "matcher": (target_group.get("Matcher") or {}).get("HttpCode"),
    }


def _launch_template_version_number(template, group):
    """The version the fleet uses: the one its ASG pins, else the default version."""
    pinned = ((group or {}).get("LaunchTemplate") or {}).get("Version")
    if pinned and str(pinned).isdigit():
        return int(pinned)
    return template.get("DefaultVersionNumber") or 1


def observe(clients, desired):
    """Read the fleet's launch template, target group and auto scaling group (by name, then
    ownership tags), plus what planning needs: traffic on the target group (absent), the live
    fleet's capacity (capacity_from_live), the AMI's root device and the subnets' VPC (create).
    """
    ec2 = _client(clients, "ec2")
    autoscaling = _client(clients, "autoscaling")
    elbv2 = _client(clients, "elbv2")
    names = desired["names"]
    observed = {
        "launch_template": None,
        "target_group": None,
        "auto_scaling_group": None,
        "foreign": [],
        "traffic": [],
        "attach_rules": [],
        "live": None,
        "image": None,
        "subnets": None,
    }

    group = api.describe_auto_scaling_group(autoscaling, names["auto_scaling_group"])
    template = api.describe_launch_template(ec2, names["launch_template"])
    if template is not None:
        problem = _ownership_problem(template.get("Tags"), desired)
        if problem:
            observed["foreign"].append({
                "resource": "launch_template", "name": template["LaunchTemplateName"],
                "id": template["LaunchTemplateId"], "reason": problem,
            })
        else:
            number = _launch_template_version_number(template, group)
            version = api.describe_launch_template_version(ec2, template["LaunchTemplateId"], number) or {}
            lt_tags = tags_to_dict(template.get("Tags"))
            if desired.get("status") is not None:
                # Tags added after creation (cattle:status) are in DescribeTags on AWS and moto alike.
                lt_tags.update({
                    t["Key"]: t.get("Value", "")
                    for t in api.describe_launch_template_tags(ec2, template["LaunchTemplateId"]) or []
                })
            observed["launch_template"] = {
                "id": template["LaunchTemplateId"],
                "name": template["LaunchTemplateName"],
                "version": number,
                "latest_version": template.get("LatestVersionNumber"),
                "data": version.get("LaunchTemplateData", {}),
                "tags": lt_tags,
            }

    target_group = api.describe_target_group(elbv2, names["target_group"])
    if target_group is not None:
        tags = tags_to_dict(api.describe_target_group_tags(elbv2, target_group["TargetGroupArn"]))
        problem = _ownership_problem(tags, desired)
        if problem:
            observed["foreign"].append({
                "resource": "target_group", "name": target_group["TargetGroupName"],
                "id": target_group["TargetGroupArn"], "reason": problem,
            })
        else:
            attributes = {
                a["Key"]: a["Value"] for a in api.describe_target_group_attributes(elbv2, target_group["TargetGroupArn"])
            }
            delay = attributes.get("deregistration_delay.timeout_seconds")
            observed["target_group"] = {
                "arn": target_group["TargetGroupArn"],
                "name": target_group["TargetGroupName"],
                "port": target_group.get("Port"),
                "protocol": target_group.get("Protocol"),
                "vpc_id": target_group.get("VpcId"),
                "health_check": _health_check_of(target_group),
                "deregistration_delay": int(delay) if delay is not None else None,
                "load_balancer_arns": sorted(target_group.get("LoadBalancerArns", [])),
                "tags": tags,
            }

    if group is not None:
        problem = _ownership_problem(group.get("Tags"), desired)
        if problem:
            observed["foreign"].append({
                "resource": "auto_scaling_group", "name": group["AutoScalingGroupName"],
                "id": group.get("AutoScalingGroupARN"), "reason": problem,
            })
        else:
            template_ref = group.get("LaunchTemplate") or {}
            observed["auto_scaling_group"] = {
                "name": group["AutoScalingGroupName"],
                "capacity": {"min": group["MinSize"], "max": group["MaxSize"], "desired": group["DesiredCapacity"]},
                "target_group_arns": sorted(group.get("TargetGroupARNs", [])),
                "launch_template": {
                    "id": template_ref.get("LaunchTemplateId"),
                    "name": template_ref.get("LaunchTemplateName"),
                    "version": template_ref.get("Version"),
                },
                "subnet_ids": sorted(s for s in (group.get("VPCZoneIdentifier") or "").split(",") if s),
                "health_check_type": group.get("HealthCheckType"),
                "health_check_grace_period": group.get("HealthCheckGracePeriod"),
                "instances": [
                    {"instance_id": i["InstanceId"], "lifecycle_state": i.get("LifecycleState")}
                    for i in group.get("Instances", [])
                ],
                "tags": tags_to_dict(group.get("Tags")),
            }

    if desired["state"] == "absent":
        if observed["target_group"] is not None:
            observed["traffic"], observed["attach_rules"] = target_group_traffic(
                elbv2, observed["target_group"], desired["app"], desired["environment"])
        return observed
    if observed["foreign"]:
        return observed  # planning refuses; nothing else to read

    spec = desired["spec"]
    if spec is None:
        pass  # scale / status only: nothing of the spec to check
    elif observed["launch_template"] is None and spec["volumes"] is None:
        image = api.describe_image(ec2, spec["ami_id"])
        root = (image or {}).get("RootDeviceName")
        root_ebs = next(
            (m.get("Ebs") or {} for m in (image or {}).get("BlockDeviceMappings", []) if m.get("DeviceName") == root), {}
        )
        observed["image"] = {"id": spec["ami_id"], "found": image is not None, "root_device_name": root,
                             "root_volume_size": root_ebs.get("VolumeSize")}
    if spec is not None and (observed["target_group"] is None or observed["auto_scaling_group"] is None):
        subnets = api.describe_subnets(ec2, spec["subnet_ids"])
        observed["subnets"] = {
            "found": sorted(s["SubnetId"] for s in subnets or []),
            "vpc_ids": sorted({s["VpcId"] for s in subnets or []}),
        }
    if desired["capacity_from_live"]:
        stack = discover_stack(clients, desired["app"], desired["environment"], include_launch_template_data=False)
        live = stack.get("live_version")
        for record in stack.get("fleets", []):
            if record["version"] == live and live != desired["version"] and record.get("auto_scaling_group"):
                asg = record["auto_scaling_group"]
                observed["live"] = {
                    "version": live,
                    "capacity": {"min": asg["min_size"], "max": asg["max_size"], "desired": asg["desired_capacity"]},
                }
    return observed


def target_group_traffic(elbv2, target_group, app, environment=None):
    """(traffic, attach rules) of the target group: every listener default action / rule of its
    load balancers that forwards to it, ``[{"type", "listener_arn", "rule_arn", "priority",
    "weight"}]`` (weight 0 included), except the stack's attach rules, returned apart (their
    `discovery.attach_rule_view`): those are deleted with the target group."""
    listeners, rules = [], []
    for load_balancer_arn in target_group.get("load_balancer_arns", []):
        for listener in describe_listeners(elbv2, load_balancer_arn):
            listeners.append(listener)
            for rule in describe_rules(elbv2, listener["ListenerArn"]):
                if not rule.get("IsDefault"):
                    rules.append(dict(rule, ListenerArn=listener["ListenerArn"], LoadBalancerArn=load_balancer_arn))
    add_attach_rule_tags(elbv2, rules)
    attach = [attach_rule_view(r) for r in rules if is_attach_rule(r, app, environment)]
    attach = [a for a in attach if a["target_group_arn"] == target_group["arn"]]
    rules = [r for r in rules if r["RuleArn"] not in {a["rule_arn"] for a in attach}]
    found = []
    for point in traffic_points(listeners, rules):
        for arn, weight in point["targets"]:
            if arn == target_group["arn"]:
                found.append({
                    "type": point["type"], "listener_arn": point["listener_arn"], "rule_arn": point["rule_arn"],
                    "priority": point["priority"], "weight": weight,
                })
    return found, attach


# --------------------------------------------------------------------------------------------
# Compare and plan (pure)
# --------------------------------------------------------------------------------------------


def _instance_profile(value):
    if not value:
        return None
    return {"Arn": value} if value.startswith("arn:") else {"Name": value}


def _volumes_to_mappings(volumes):
    mappings = []
    for volume in volumes:
        ebs = {
            "Encrypted": volume["encrypted"],
            "DeleteOnTermination": volume["delete_on_termination"],
            "VolumeType": volume["volume_type"],
        }
        for key, name in (("volume_size", "VolumeSize"), ("iops", "Iops"), ("throughput", "Throughput"),
                          ("kms_key_id", "KmsKeyId")):
            if volume.get(key) is not None:
                ebs[name] = volume[key]
        mappings.append({"DeviceName": volume["device_name"], "Ebs": ebs})
    return mappings


def _mappings_to_volumes(mappings):
    volumes = []
    for mapping in mappings or []:
        ebs = mapping.get("Ebs") or {}
        volumes.append({
            "device_name": mapping.get("DeviceName"),
            "volume_size": ebs.get("VolumeSize"),
            "volume_type": ebs.get("VolumeType"),
            "iops": ebs.get("Iops"),
            "throughput": ebs.get("Throughput"),
            "encrypted": ebs.get("Encrypted"),
            "kms_key_id": ebs.get("KmsKeyId"),
            "delete_on_termination": ebs.get("DeleteOnTermination"),
        })
    return sorted(volumes, key=lambda v: v["device_name"] or "")


def _metadata_to_api(metadata):
    return {
        "HttpTokens": metadata["http_tokens"],
        "HttpEndpoint": metadata["http_endpoint"],
        "HttpPutResponseHopLimit": metadata["http_put_response_hop_limit"],
        "InstanceMetadataTags": metadata["instance_metadata_tags"],
    }


def _metadata_from_api(options):
    options = options or {}
    return {
        "http_tokens": options.get("HttpTokens"),
        "http_endpoint": options.get("HttpEndpoint"),
        "http_put_response_hop_limit": options.get("HttpPutResponseHopLimit"),
        "instance_metadata_tags": options.get("InstanceMetadataTags"),
    }


def _user_tags(tags, default_name):
    """The user's tags among a resource's tags (the reserved ones and the default Name left out)."""
    return {
        k: v for k, v in (tags or {}).items()
        if not k.lower().startswith(RESERVED_TAG_PREFIXES) and not (k == TAG_NAME and v == default_name)
    }


def _desired_flat(desired):
    spec = desired["spec"]
    target_group = spec["target_group"]
    flat = {
        "ami_id": spec["ami_id"],
        "instance_type": spec["instance_type"],
        "user_data": spec["user_data_sha256"],
        "subnet_ids": spec["subnet_ids"],
        "security_group_ids": spec["security_group_ids"],
        "key_name": spec["key_name"],
        "iam_instance_profile": _instance_profile(spec["iam_instance_profile"]),
        "volumes": spec["volumes"] if spec["volumes"] is not None else _NOT_COMPARED,
        "metadata_options": spec["metadata_options"],
        "tags": _user_tags(spec["tags"], desired["names"]["name_tag"]),
        "health_check_type": spec["health_check_type"],
        "health_check_grace_period": spec["health_check_grace_period"],
        "target_group.port": target_group["port"],
        "target_group.protocol": target_group["protocol"],
        "target_group.vpc_id": target_group["vpc_id"] or _NOT_COMPARED,
        "target_group.deregistration_delay": target_group["deregistration_delay"],
    }
    for key, value in target_group["health_check"].items():
        flat[f"target_group.health_check.{key}"] = value
    return flat


def _observed_flat(observed, desired):
    flat = {}
    template = observed.get("launch_template")
    if template is not None:
        data = template.get("data") or {}
        tags = template.get("tags") or {}
        if TAG_USER_DATA_SHA256 in tags:
            user_data = tags[TAG_USER_DATA_SHA256]
        else:  # not written by us: hash what the template holds
            raw = base64.b64decode(data["UserData"]).decode("utf-8", "replace") if data.get("UserData") else None
            user_data = user_data_sha256(raw)
        flat.update({
            "ami_id": data.get("ImageId"),
            "instance_type": data.get("InstanceType"),
            "user_data": user_data,
            "security_group_ids": sorted(set(data.get("SecurityGroupIds") or [])),
            "key_name": data.get("KeyName"),
            "iam_instance_profile": data.get("IamInstanceProfile") or None,
            "volumes": _mappings_to_volumes(data.get("BlockDeviceMappings")),
            "metadata_options": _metadata_from_api(data.get("MetadataOptions")),
            "tags": _user_tags(tags, desired["names"]["name_tag"]),
        })
    target_group = observed.get("target_group")
    if target_group is not None:
        flat.update({
            "target_group.port": target_group["port"],
            "target_group.protocol": target_group["protocol"],
            "target_group.vpc_id": target_group["vpc_id"],
            "target_group.deregistration_delay": target_group["deregistration_delay"],
        })
        for key, value in target_group["health_check"].items():
            flat[f"target_group.health_check.{key}"] = value
    group = observed.get("auto_scaling_group")
    if group is not None:
        flat.update({
            "subnet_ids": group["subnet_ids"],
            "health_check_type": group["health_check_type"],
            "health_check_grace_period": group["health_check_grace_period"],
        })
        if template is not None:
            ref = group["launch_template"]
            flat["launch_template"] = (ref.get("id"), str(ref.get("version")))
    return flat


def differing_fields(observed, desired):
    """The option names whose requested value differs from the existing fleet's, in SPEC_FIELDS
    order. Fields of resources that do not exist yet, and options left to defaults that depend on
    AWS (volumes, target_group.vpc_id when not given), are not compared. Pure."""
    wanted = _desired_flat(desired)
    template = observed.get("launch_template")
    if template is not None:
        wanted["launch_template"] = (template["id"], str(template["version"]))
    existing = _observed_flat(observed, desired)
    return [
        field for field in SPEC_FIELDS
        if field in existing and field in wanted and wanted[field] is not _NOT_COMPARED
        and existing[field] != wanted[field]
    ]


def _foreign_error(foreign, desired):
    parts = [f"{f['resource'].replace('_', ' ')} {f['name']} ({f['id']}): {f['reason']}" for f in foreign]
    return FleetError(
        f"Cannot build fleet {desired['names']['launch_template']}: resources with its names already exist and are not "
        f"this fleet's — {'; '.join(parts)}. cattle.aws never adopts or changes resources it did not create: rename or "
        "delete them, or release another version.",
        foreign=foreign,
    )


def _check_subnets(observed, desired):
    subnets = observed.get("subnets")
    if subnets is None:
        return
    missing = sorted(set(desired["spec"]["subnet_ids"]) - set(subnets["found"]))
    if missing:
        raise FleetError(f"subnet_ids: {', '.join(missing)} not found in this region; give existing subnets.")
    if len(subnets["vpc_ids"]) > 1:
        raise FleetError(f"subnet_ids must all be in one VPC; they are in {', '.join(subnets['vpc_ids'])}.")
    vpc_id = desired["spec"]["target_group"]["vpc_id"]
    if vpc_id and subnets["vpc_ids"] and vpc_id != subnets["vpc_ids"][0]:
        raise FleetError(
            f"target_group.vpc_id {vpc_id} is not the VPC of subnet_ids ({subnets['vpc_ids'][0]}); "
            "give the subnets' VPC or leave target_group.vpc_id out."
        )


def resolve_capacity(observed, desired):
    """The capacity to apply: the live fleet's (capacity_from_live and one exists), else the
    option merged over the existing group's. None = leave capacity alone. Raises FleetError."""
    group = observed.get("auto_scaling_group")
    live = observed.get("live")
    if desired.get("capacity_from_live") and live:
        wanted = dict(live["capacity"])
    elif desired.get("capacity"):
        wanted = dict((group or {}).get("capacity") or {})
        wanted.update({k: v for k, v in desired["capacity"].items() if v is not None})
    else:
        wanted = None
    if group is None:
        if wanted is None or wanted.get("min") is None or wanted.get("max") is None:
            source = " and no live fleet was found to copy it from" if desired.get("capacity_from_live") else ""
            raise FleetError(
                f"capacity with min and max is required to create fleet {desired['names']['auto_scaling_group']}"
                f"{source}: set capacity (for example capacity: {{min: 1, max: 2, desired: 1}})."
            )
        if wanted.get("desired") is None:
            wanted["desired"] = wanted["min"]
    if wanted is not None:
        errors = capacity_errors(wanted)
        if errors:
            raise FleetError("Invalid capacity: " + " ".join(errors))
    return wanted


def _stack_label(desired):
    return f"{desired['app']}/{desired['environment']}" if desired.get("environment") else desired["app"]


def is_complete(observed):
    """Launch template, target group and auto scaling group all exist, the target group attached."""
    template = observed.get("launch_template")
    target_group = observed.get("target_group")
    group = observed.get("auto_scaling_group")
    return bool(template and target_group and group and target_group.get("arn") in group.get("target_group_arns", []))


def status_actions(observed, desired):
    """tag_status actions that make every fleet resource carry (failed) or not carry (active)
    cattle:status=failed. A resource missing from `observed` is about to be created without it. Pure."""
    status = desired.get("status")
    if status is None:
        return []
    names = desired["names"]
    actions = []
    for resource in STATUS_RESOURCES:
        tags = (observed.get(resource) or {}).get("tags") or {}
        if status == STATUS_FAILED and tags.get(TAG_STATUS) != STATUS_FAILED:
            actions.append({"action": "tag_status", "resource": resource, "name": names[resource], "status": status})
        elif status == STATUS_ACTIVE and TAG_STATUS in tags:
            actions.append({"action": "tag_status", "resource": resource, "name": names[resource], "status": status})
    return actions


def _plan_scale_only(observed, desired):
    """The plan without a spec: the fleet must exist and be complete; only capacity and status."""
    names = desired["names"]
    template = observed.get("launch_template")
    target_group = observed.get("target_group")
    group = observed.get("auto_scaling_group")
    needs = ", ".join(SPEC_REQUIRED)
    if template is None and target_group is None and group is None:
        raise FleetError(
            f"Version {desired['version']} of {_stack_label(desired)} does not exist; creating it needs {needs}.",
            missing_options=list(SPEC_REQUIRED),
        )
    if not is_complete(observed):
        missing = [label for label, part in (("launch template", template), ("target group", target_group),
                                             ("auto scaling group", group)) if part is None]
        what = f"no {', no '.join(missing)}" if missing else "its target group is not attached to its auto scaling group"
        raise FleetError(
            f"Version {desired['version']} of {_stack_label(desired)} is incomplete ({what}); completing it needs "
            f"{needs} (or remove it with state=absent).",
            missing_options=list(SPEC_REQUIRED),
        )
    capacity = resolve_capacity(observed, desired)
    actions = status_actions(observed, desired)
    if capacity is not None and capacity != group["capacity"]:
        actions.append({"action": "update_capacity", "name": names["auto_scaling_group"],
                        "before": dict(group["capacity"]), "after": capacity})
    return actions


def plan_fleet(observed, desired):
    """Observed state + desired fleet -> ordered list of actions (empty: nothing to do). Pure.

    Raises FleetError when the request cannot be honoured: a foreign same-named resource, a
    changed spec on an existing version, traffic on a fleet to delete, an impossible capacity.
    """
    names = desired["names"]
    template = observed.get("launch_template")
    target_group = observed.get("target_group")
    group = observed.get("auto_scaling_group")

    if desired["state"] == "absent":
        serving = [t for t in observed.get("traffic", []) if t["weight"] > 0]
        attached = observed.get("traffic", [])
        if attached:
            where = "; ".join(
                (f"listener {t['listener_arn']}" if t["type"] == "listener" else f"rule {t['rule_arn']}")
                + f" (weight {t['weight']})"
                for t in (serving or attached)
            )
            if serving:
                raise FleetError(
                    f"Refusing to delete fleet {names['launch_template']}: its target group {target_group['name']} "
                    f"carries traffic — {where}. Shift the traffic to another version first (cattle.aws.traffic_shift).",
                    traffic=attached,
                )
            raise FleetError(
                f"Refusing to delete fleet {names['launch_template']}: its target group {target_group['name']} is still "
                f"forwarded to at weight 0 by {where}. Remove it from the listener first (cattle.aws.traffic_shift).",
                traffic=attached,
            )
        actions = []
        if group is not None and target_group is not None and target_group["arn"] in group["target_group_arns"]:
            actions.append({"action": "detach_target_group", "auto_scaling_group": group["name"],
                            "target_group": target_group["name"], "target_group_arn": target_group["arn"]})
        if group is not None:
            actions.append({"action": "delete_auto_scaling_group", "name": group["name"]})
        for rule in observed.get("attach_rules") or []:
            # AWS refuses to delete a target group a rule forwards to (ResourceInUse).
            actions.append({"action": "delete_attach_rule", "rule_arn": rule["rule_arn"], "priority": rule["priority"],
                            "listener_arn": rule["listener_arn"], "target_group": target_group["name"]})
        if target_group is not None:
            actions.append({"action": "delete_target_group", "name": target_group["name"], "arn": target_group["arn"]})
        if template is not None:
            actions.append({"action": "delete_launch_template", "name": template["name"], "id": template["id"]})
        return actions

    if observed.get("foreign"):
        raise _foreign_error(observed["foreign"], desired)
    if desired.get("spec") is None:
        return _plan_scale_only(observed, desired)
    differing = differing_fields(observed, desired)
    if differing:
        existing = _observed_flat(observed, desired)
        wanted = _desired_flat(desired)
        details = {
            f: {"existing": existing[f], "requested": wanted[f]} for f in differing if f not in ("user_data", "launch_template")
        }
        raise FleetError(
            f"Cannot change version {desired['version']}: these options differ from the existing fleet "
            f"{names['launch_template']}: {', '.join(differing)}. Fleets are immutable: release a new version. "
            "Only capacity may change on an existing fleet.",
            differing_fields=differing,
            differences=details,
        )
    if group is not None and template is None:
        raise FleetError(
            f"Fleet {names['launch_template']} is broken: its auto scaling group exists but its launch template "
            "does not (deleted outside cattle.aws). Remove the fleet with state=absent and release again."
        )
    image = observed.get("image")
    if template is None and image is not None and not image["found"]:
        raise FleetError(
            f"ami_id {image['id']} does not exist in this region or is not visible to this account; give an "
            "existing AMI (or bake one first)."
        )
    _check_subnets(observed, desired)
    capacity = resolve_capacity(observed, desired)

    actions = []
    if template is None:
        actions.append({"action": "create_launch_template", "name": names["launch_template"]})
    if target_group is None:
        actions.append({"action": "create_target_group", "name": names["target_group"]})
    if group is None:
        actions.append({"action": "create_auto_scaling_group", "name": names["auto_scaling_group"],
                        "capacity": capacity, "target_group": names["target_group"]})
        return actions + status_actions(observed, desired)
    if target_group is None or target_group["arn"] not in group["target_group_arns"]:
        actions.append({"action": "attach_target_group", "auto_scaling_group": group["name"],
                        "target_group": names["target_group"]})
    actions.extend(status_actions(observed, desired))
    if capacity is not None and capacity != group["capacity"]:
        actions.append({"action": "update_capacity", "name": group["name"],
                        "before": dict(group["capacity"]), "after": capacity})
    return actions


# --------------------------------------------------------------------------------------------
# Apply / simulate
# --------------------------------------------------------------------------------------------


def fleet_created_at(observed):
    """The fleet's cattle:created-at: the earliest on its resources; None for a new fleet."""
    stamps = sorted(
        r["tags"][TAG_CREATED_AT]
        for r in (observed.get("launch_template"), observed.get("target_group"), observed.get("auto_scaling_group"))
        if r is not None and r.get("tags", {}).get(TAG_CREATED_AT)
    )
    return stamps[0] if stamps else None


def _tags(desired, created_at):
    return ownership_tags(desired["app"], desired["environment"], desired["version"], created_at=created_at,
                          extra=desired["spec"]["tags"])


def launch_template_data(desired, observed, tags):
    """The LaunchTemplateData of the fleet's single launch template version. Pure."""
    spec = desired["spec"]
    if spec["volumes"] is not None:
        mappings = _volumes_to_mappings(spec["volumes"])
    else:
        # The AMI's root device, encrypted, at the AMI's size (explicit: some APIs want a size).
        image = observed.get("image") or {}
        ebs = {"Encrypted": DEFAULT_VOLUME["encrypted"], "DeleteOnTermination": DEFAULT_VOLUME["delete_on_termination"],
               "VolumeType": DEFAULT_VOLUME["volume_type"]}
        if image.get("root_volume_size"):
            ebs["VolumeSize"] = image["root_volume_size"]
        mappings = [{"DeviceName": image.get("root_device_name") or "/dev/xvda", "Ebs": ebs}]
    tag_list = dict_to_tag_list(tags)
    data = {
        "ImageId": spec["ami_id"],
        "InstanceType": spec["instance_type"],
        "MetadataOptions": _metadata_to_api(spec["metadata_options"]),
        "BlockDeviceMappings": mappings,
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": tag_list},
        ],
    }
    if spec["security_group_ids"]:
        data["SecurityGroupIds"] = spec["security_group_ids"]
    if spec["key_name"]:
        data["KeyName"] = spec["key_name"]
    if spec["iam_instance_profile"]:
        data["IamInstanceProfile"] = _instance_profile(spec["iam_instance_profile"])
    if desired.get("user_data"):
        data["UserData"] = base64.b64encode(desired["user_data"].encode("utf-8")).decode("ascii")
    return data


def _target_group_params(desired, observed, tags):
    target_group = desired["spec"]["target_group"]
    health_check = target_group["health_check"]
    vpc_id = target_group["vpc_id"] or ((observed.get("subnets") or {}).get("vpc_ids") or [None])[0]
    return {
        "Name": desired["names"]["target_group"],
        "Protocol": target_group["protocol"],
        "Port": target_group["port"],
        "VpcId": vpc_id,
        "TargetType": "instance",
        "HealthCheckEnabled": True,
        "HealthCheckProtocol": target_group["protocol"],
        "HealthCheckPort": "traffic-port",
        "HealthCheckPath": health_check["path"],
        "HealthCheckIntervalSeconds": health_check["interval"],
        "HealthCheckTimeoutSeconds": health_check["timeout"],
        "HealthyThresholdCount": health_check["healthy_threshold"],
        "UnhealthyThresholdCount": health_check["unhealthy_threshold"],
        "Matcher": {"HttpCode": health_check["matcher"]},
        "Tags": dict_to_tag_list(tags),
    }


def _state_after(observed, action, desired, created_at, result=None):
    """Update `observed` (a copy) as `action` leaves it; `result` holds ids/ARNs when applied."""
    result = result or {}
    names = desired["names"]
    kind = action["action"]
    tags = _tags(desired, created_at) if kind.startswith("create") else None
    if kind == "create_launch_template":
        lt_tags = dict(tags, **{TAG_USER_DATA_SHA256: desired["spec"]["user_data_sha256"]})
        observed["launch_template"] = {
            "id": result.get("id"), "name": names["launch_template"], "version": 1, "latest_version": 1,
            "data": launch_template_data(desired, observed, tags), "tags": lt_tags,
        }
    elif kind == "create_target_group":
        params = _target_group_params(desired, observed, tags)
        observed["target_group"] = {
            "arn": result.get("arn"), "name": names["target_group"], "port": params["Port"],
            "protocol": params["Protocol"], "vpc_id": params["VpcId"],
            "health_check": dict(desired["spec"]["target_group"]["health_check"]),
            "deregistration_delay": desired["spec"]["target_group"]["deregistration_delay"],
            "load_balancer_arns": [], "tags": tags,
        }
    elif kind == "create_auto_scaling_group":
        template = observed["launch_template"]
        observed["auto_scaling_group"] = {
            "name": names["auto_scaling_group"], "capacity": dict(action["capacity"]),
            "target_group_arns": [observed["target_group"]["arn"]],
            "launch_template": {"id": template["id"], "name": template["name"], "version": str(template["version"])},
            "subnet_ids": list(desired["spec"]["subnet_ids"]),
            "health_check_type": desired["spec"]["health_check_type"],
            "health_check_grace_period": desired["spec"]["health_check_grace_period"],
            "instances": [], "tags": tags,
        }
    elif kind == "attach_target_group":
        group = observed["auto_scaling_group"]
        group["target_group_arns"] = sorted(set(group["target_group_arns"]) | {observed["target_group"]["arn"]})
    elif kind == "tag_status":
        resource = observed[action["resource"]]
        resource["tags"] = dict(resource.get("tags") or {})
        if action["status"] == STATUS_FAILED:
            resource["tags"][TAG_STATUS] = STATUS_FAILED
        else:
            resource["tags"].pop(TAG_STATUS, None)
    elif kind == "update_capacity":
        observed["auto_scaling_group"]["capacity"] = dict(action["after"])
    elif kind == "detach_target_group":
        group = observed["auto_scaling_group"]
        group["target_group_arns"] = [a for a in group["target_group_arns"] if a != action["target_group_arn"]]
    elif kind == "delete_auto_scaling_group":
        observed["auto_scaling_group"] = None
    elif kind == "delete_attach_rule":
        observed["attach_rules"] = [r for r in observed.get("attach_rules") or [] if r["rule_arn"] != action["rule_arn"]]
    elif kind == "delete_target_group":
        observed["target_group"] = None
    elif kind == "delete_launch_template":
        observed["launch_template"] = None
    return observed


def simulate(observed, actions, desired, created_at=None):
    """The state `actions` would leave, without any AWS call (check mode). Unknown IDs are None."""
    state = copy.deepcopy(observed)
    created_at = created_at or fleet_created_at(observed) or utc_timestamp()
    for action in actions:
        _state_after(state, action, desired, created_at)
    return state


def _apply_status(ec2, autoscaling, elbv2, state, action):
    resource = state[action["resource"]]
    failed = action["status"] == STATUS_FAILED
    if action["resource"] == "auto_scaling_group":
        if failed:
            api.tag_auto_scaling_group(autoscaling, resource["name"], {TAG_STATUS: STATUS_FAILED})
        else:
            api.untag_auto_scaling_group(autoscaling, resource["name"], [TAG_STATUS])
    elif action["resource"] == "target_group":
        if failed:
            api.tag_target_group(elbv2, resource["arn"], {TAG_STATUS: STATUS_FAILED})
        else:
            api.untag_target_group(elbv2, resource["arn"], [TAG_STATUS])
    elif failed:
        api.tag_launch_template(ec2, resource["id"], {TAG_STATUS: STATUS_FAILED})
    else:
        api.untag_launch_template(ec2, resource["id"], [TAG_STATUS])


def apply(clients, actions, desired, observed, created_at=None):
    """Run `actions` in order; return the resulting state (as `observe` would see it)."""
    ec2 = _client(clients, "ec2")
    autoscaling = _client(clients, "autoscaling")
    elbv2 = _client(clients, "elbv2")
    state = copy.deepcopy(observed)
    created_at = created_at or fleet_created_at(observed) or utc_timestamp()
    spec = desired.get("spec")
    for action in actions:
        kind = action["action"]
        result = {}
        if kind == "create_launch_template":
            tags = _tags(desired, created_at)
            lt_tags = dict(tags, **{TAG_USER_DATA_SHA256: spec["user_data_sha256"]})
            created = api.create_launch_template(
                ec2, action["name"], launch_template_data(desired, state, tags),
                [{"ResourceType": "launch-template", "Tags": dict_to_tag_list(lt_tags)}],
            )
            result["id"] = created["LaunchTemplateId"]
        elif kind == "create_target_group":
            params = _target_group_params(desired, state, _tags(desired, created_at))
            created = api.create_target_group(elbv2, **params)
            result["arn"] = created["TargetGroupArn"]
            api.modify_target_group_attributes(elbv2, result["arn"], [{
                "Key": "deregistration_delay.timeout_seconds",
                "Value": str(spec["target_group"]["deregistration_delay"]),
            }])
        elif kind == "create_auto_scaling_group":
            template = state["launch_template"]
            tags = _tags(desired, created_at)
            api.create_auto_scaling_group(
                autoscaling,
                AutoScalingGroupName=action["name"],
                LaunchTemplate={"LaunchTemplateId": template["id"], "Version": str(template["version"])},
                MinSize=action["capacity"]["min"],
                MaxSize=action["capacity"]["max"],
                DesiredCapacity=action["capacity"]["desired"],
                VPCZoneIdentifier=",".join(spec["subnet_ids"]),
                TargetGroupARNs=[state["target_group"]["arn"]],
                HealthCheckType=spec["health_check_type"],
                HealthCheckGracePeriod=spec["health_check_grace_period"],
                Tags=[
                    {"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": action["name"],
                     "ResourceType": "auto-scaling-group"}
                    for k, v in sorted(tags.items())
                ],
            )
        elif kind == "attach_target_group":
            api.attach_target_groups(autoscaling, action["auto_scaling_group"], [state["target_group"]["arn"]])
        elif kind == "tag_status":
            _apply_status(ec2, autoscaling, elbv2, state, action)
        elif kind == "update_capacity":
            after = action["after"]
            api.update_auto_scaling_group(autoscaling, action["name"], MinSize=after["min"], MaxSize=after["max"],
                                          DesiredCapacity=after["desired"])
        elif kind == "detach_target_group":
            api.detach_target_groups(autoscaling, action["auto_scaling_group"], [action["target_group_arn"]])
        elif kind == "delete_auto_scaling_group":
            api.delete_auto_scaling_group(autoscaling, action["name"])
            wait_until_deleted(autoscaling, action["name"], desired["wait_timeout"])
        elif kind == "delete_attach_rule":
            traffic_attach.delete_attach_rules(elbv2, desired["app"], desired["environment"], [action["rule_arn"]])
        elif kind == "delete_target_group":
            api.delete_target_group(elbv2, action["arn"])
        elif kind == "delete_launch_template":
            api.delete_launch_template(ec2, action["id"])
        else:  # pragma: no cover - the planner only emits ACTIONS
            raise FleetError(f"Unknown action {kind!r}.")
        _state_after(state, action, desired, created_at, result)
    return state


# --------------------------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------------------------


def _poll(timeout, sleep, clock, check, on_timeout):
    deadline = clock() + timeout
    delay = 1.0
    while True:
        outcome = check()
        if outcome is not None:
            return outcome
        remaining = deadline - clock()
        if remaining <= 0:
            raise FleetError(on_timeout())
        sleep(min(delay, remaining))
        delay = min(delay * 2, 5.0)


def wait_until_deleted(autoscaling, name, timeout, sleep=time.sleep, clock=time.monotonic):
    """Poll until the auto scaling group is gone (ForceDelete terminates its instances first)."""
    return _poll(
        timeout, sleep, clock,
        lambda: True if api.describe_auto_scaling_group(autoscaling, name) is None else None,
        lambda: f"Timed out after {timeout}s waiting for auto scaling group {name} to be deleted; run again to resume.",
    )


def wait_for_capacity(autoscaling, name, desired_capacity, timeout, known_activities=None,
                      sleep=time.sleep, clock=time.monotonic):
    """Poll until exactly `desired_capacity` instances are InService; return their count.

    With a desired capacity of 0, poll until the group lists no instance at all (terminating ones
    included), so that a fleet scaled to zero really runs (and costs) nothing when this returns.

    Fails at once (FleetError with AWS' StatusMessage) when a scaling activity not in
    `known_activities` (IDs already finished before this run changed anything) has failed;
    ``None`` takes that baseline at the first poll that finds the group short of capacity.
    """
    last = {"in_service": 0, "total": 0, "known": None if known_activities is None else set(known_activities)}

    def check():
        group = api.describe_auto_scaling_group(autoscaling, name)
        if group is None:
            raise FleetError(f"Auto scaling group {name} disappeared while waiting for its instances.")
        listed = group.get("Instances", [])
        instances = [i for i in listed if i.get("LifecycleState") not in _TERMINATING]
        in_service = sum(1 for i in instances if i.get("LifecycleState") == "InService")
        last.update(in_service=in_service, total=len(instances), listed=len(listed))
        if desired_capacity == 0:
            if not listed:
                return 0
        elif in_service == desired_capacity and len(instances) == desired_capacity:
            return in_service
        activities = api.describe_scaling_activities(autoscaling, name)
        failures = [a for a in activities if a.get("StatusCode") in _ACTIVITY_FAILED]
        if failures:  # AWS lists the newest first
            last["failed"] = failures[0].get("StatusMessage") or failures[0].get("Description") or failures[0].get("StatusCode")
        if last["known"] is None:
            last["known"] = {a["ActivityId"] for a in activities if a.get("StatusCode") in _ACTIVITY_DONE}
        for activity in activities:
            if activity.get("StatusCode") in _ACTIVITY_FAILED and activity.get("ActivityId") not in last["known"]:
                reason = activity.get("StatusMessage") or activity.get("Description") or activity.get("StatusCode")
                raise FleetError(
                    f"Auto scaling group {name} could not launch its instances ({in_service} of {desired_capacity} "
                    f"InService): scaling activity {activity.get('StatusCode')}: {reason}",
                    activity={k: activity.get(k) for k in ("ActivityId", "Description", "Cause", "StatusCode", "StatusMessage")},
                )
        return None

    def on_timeout():
        if desired_capacity == 0:
            return (
                f"Timed out after {timeout}s waiting for the instances of auto scaling group {name} to terminate "
                f"({last.get('listed', 0)} left, {last['in_service']} InService); run again to resume waiting."
            )
        # A failure from before the baseline (e.g. between the group's creation and this wait) is
        # still the likely cause: name it.
        cause = f" Its latest failed scaling activity: {last['failed']}" if last.get("failed") else ""
        return (
            f"Timed out after {timeout}s waiting for {desired_capacity} InService instances in auto scaling group "
            f"{name} ({last['in_service']} InService of {last['total']}); run again to resume waiting.{cause}"
        )

    return _poll(timeout, sleep, clock, check, on_timeout)


def finished_activity_ids(autoscaling, name):
    """IDs of the group's scaling activities that have already finished (ignored by the wait)."""
    return {
        a["ActivityId"] for a in api.describe_scaling_activities(autoscaling, name)
        if a.get("StatusCode") in _ACTIVITY_DONE
    }


# --------------------------------------------------------------------------------------------
# The module's entry point
# --------------------------------------------------------------------------------------------


def fleet_status(state):
    """V(failed) when any of the fleet's resources carries cattle:status=failed, else V(active)."""
    failed = any(
        ((state.get(resource) or {}).get("tags") or {}).get(TAG_STATUS) == STATUS_FAILED for resource in STATUS_RESOURCES
    )
    return STATUS_FAILED if failed else STATUS_ACTIVE


def fleet_view(state, desired, created_at=None):
    """The ``fleet`` return value for a state ({} when nothing of the fleet exists)."""
    template = state.get("launch_template")
    target_group = state.get("target_group")
    group = state.get("auto_scaling_group")
    if template is None and target_group is None and group is None:
        return {}
    return {
        "app": desired["app"],
        "environment": desired["environment"],
        "version": desired["version"],
        "ami_id": (template or {}).get("data", {}).get("ImageId"),
        "instance_type": (template or {}).get("data", {}).get("InstanceType"),
        "launch_template": (
            {"id": template["id"], "name": template["name"], "version": template["version"]} if template else None
        ),
        "target_group_arn": (target_group or {}).get("arn"),
        "target_group_name": (target_group or {}).get("name"),
        "auto_scaling_group_name": (group or {}).get("name"),
        "capacity": dict(group["capacity"]) if group else None,
        "created_at": created_at or fleet_created_at(state),
        "complete": is_complete(state),
        "status": fleet_status(state),
    }


def ensure_fleet(clients, desired, check_mode=False):
    """Observe, plan, apply (or simulate), wait; return the module result (without ``msg``)."""
    observed = observe(clients, desired)
    try:
        actions = plan_fleet(observed, desired)
    except FleetError as e:
        # Refused before any change: a caller rolling back (cattle.aws.release) leaves the fleet as it is.
        e.details["refused"] = True
        raise
    created_at = fleet_created_at(observed) or utc_timestamp()
    before = fleet_view(observed, desired)
    if check_mode:
        after_state = simulate(observed, actions, desired, created_at)
    else:
        autoscaling = _client(clients, "autoscaling")
        group = observed.get("auto_scaling_group")
        wait = desired["state"] == "present" and desired["wait"]
        # Failed activities from before this run are history: only new ones stop the wait. A group
        # created now has no history; an untouched one gets its baseline lazily (see the wait).
        known = set() if group is None else None
        if wait and group is not None and actions:
            known = finished_activity_ids(autoscaling, group["name"])
        after_state = apply(clients, actions, desired, observed, created_at)
        after_group = after_state.get("auto_scaling_group")
        if wait and after_group is not None:
            wait_for_capacity(autoscaling, after_group["name"], after_group["capacity"]["desired"],
                              desired["wait_timeout"], known_activities=known)
    after = fleet_view(after_state, desired, created_at if after_state.get("launch_template") else None)
    result = {
        "changed": bool(actions),
        "actions": actions,
        "fleet": after,
        "diff": {"before": before, "after": after},
    }
    if observed.get("foreign"):
        result["foreign"] = observed["foreign"]
    return result
