# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this file is an implementation detail of the cattle.aws modules.
# It is not a public API; it may change in any release without notice.

"""fleet_info's evaluation: instance counts, target health and drift of a discovered stack. Pure.

Input is the stack `discovery.build_stack` returns plus the raw boto3 descriptions
`info_api.observe_fleet_details` fetched (target health per target group, EC2 instances, the
versions of edited launch templates); nothing here calls AWS, so every rule is unit-tested.

Drift is what differs from "one fleet = one AMI + one launch template version, never edited":

- an instance of a fleet's auto scaling group that runs another AMI, or was launched from another
  launch template or launch template version, than the fleet's (``instances``);
- a fleet whose launch template has more than one version: someone edited it
  (``launch_templates``);
- a running or pending instance tagged for the stack (``cattle:app`` / ``cattle:environment``)
  that is in none of the stack's auto scaling groups (``stray_instances``).
"""

from __future__ import annotations

from .naming import normalize_environment
from .tags import TAG_APP
from .tags import TAG_ENVIRONMENT
from .tags import TAG_MANAGED_BY
from .tags import TAG_VERSION
from .tags import MANAGED_BY
from .tags import tags_to_dict
from .tags import utc_timestamp

# Target health states as AWS reports them (elbv2 DescribeTargetHealth TargetHealth.State).
TARGET_STATES = ("initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "draining", "unavailable")

ASG_NAME_TAG = "aws:autoscaling:groupName"
LT_ID_TAG = "aws:ec2launchtemplate:id"
LT_VERSION_TAG = "aws:ec2launchtemplate:version"


def _count_key(state):
    return state.replace(".", "_")


# --------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------


def target_health_records(descriptions):
    """DescribeTargetHealth ``TargetHealthDescriptions`` -> [{target_id, port, availability_zone,
    state, reason, description}], sorted by target id."""
    records = []
    for desc in descriptions or []:
        target = desc.get("Target", {})
        health = desc.get("TargetHealth", {})
        records.append({
            "target_id": target.get("Id"),
            "port": target.get("Port"),
            "availability_zone": target.get("AvailabilityZone"),
            "state": health.get("State"),
            "reason": health.get("Reason"),
            "description": health.get("Description"),
        })
    return sorted(records, key=lambda r: (r["target_id"] or "", r["port"] or 0))


def instance_counts(fleet, target_health=None):
    """The fleet's instance counts.

    ``total`` and ``in_service`` come from the auto scaling group (every instance / lifecycle
    state InService); the target health states (``healthy``, ``unhealthy``, ``initial``,
    ``unused``, ``draining``, ``unhealthy_draining``, ``unavailable``) and ``registered`` count the
    targets of the fleet's target group as DescribeTargetHealth reports them, or are None when
    target health was not read (`target_health` None).
    """
    group = fleet.get("auto_scaling_group") or {}
    instances = group.get("instances") or []
    counts = {
        "total": len(instances),
        "in_service": sum(1 for i in instances if i.get("lifecycle_state") == "InService"),
        "registered": None,
    }
    for state in TARGET_STATES:
        counts[_count_key(state)] = None
    if target_health is not None:
        counts["registered"] = len(target_health)
        for state in TARGET_STATES:
            counts[_count_key(state)] = sum(1 for t in target_health if t["state"] == state)
    return counts


# --------------------------------------------------------------------------------------------
# Drift
# --------------------------------------------------------------------------------------------


def expected_launch_template_version(fleet):
    """The launch template version the fleet's instances should come from (int, or None):
    the one its ASG pins; ``$Latest`` / ``$Default`` resolved from the launch template."""
    template = fleet.get("launch_template") or {}
    pinned = ((fleet.get("auto_scaling_group") or {}).get("launch_template") or {}).get("version")
    if pinned is not None and str(pinned).isdigit():
        return int(pinned)
    if pinned == "$Latest":
        return template.get("latest_version")
    return template.get("default_version")


def expected_image(fleet, template_versions=None):
    """The AMI the fleet's instances should run: the image of the launch template version the ASG
    uses when known, else the fleet's AMI."""
    template = fleet.get("launch_template") or {}
    number = expected_launch_template_version(fleet)
    for version in (template_versions or {}).get(template.get("id"), []):
        if version.get("VersionNumber") == number:
            image = version.get("LaunchTemplateData", {}).get("ImageId")
            if image:
                return image
    if template.get("image_id") and (number is None or number == template.get("default_version")):
        return template["image_id"]
    return (fleet.get("ami") or {}).get("id") or template.get("image_id")


def instance_drift(fleet, instances_by_id, template_versions=None):
    """Instances of the fleet's ASG that run another AMI or come from another launch template (or
    version) than the fleet's: [{instance_id, reasons, image_id, expected_image_id,
    launch_template_id, expected_launch_template_id, launch_template_version,
    expected_launch_template_version}]. An instance EC2 did not describe is not judged on its AMI.
    """
    group = fleet.get("auto_scaling_group") or {}
    template = fleet.get("launch_template") or {}
    template_id = template.get("id") or (group.get("launch_template") or {}).get("id")
    version = expected_launch_template_version(fleet)
    image = expected_image(fleet, template_versions)
    drifted = []
    for instance in group.get("instances") or []:
        described = instances_by_id.get(instance["instance_id"])
        image_id = described.get("ImageId") if described else None
        reasons = []
        if image and image_id and image_id != image:
            reasons.append("ami")
        if template_id and instance.get("launch_template_id") != template_id:
            reasons.append("launch_template")
        elif version is not None and str(instance.get("launch_template_version")) != str(version):
            reasons.append("launch_template_version")
        if reasons:
            drifted.append({
                "instance_id": instance["instance_id"],
                "reasons": reasons,
                "image_id": image_id,
                "expected_image_id": image,
                "launch_template_id": instance.get("launch_template_id"),
                "expected_launch_template_id": template_id,
                "launch_template_version": instance.get("launch_template_version"),
                "expected_launch_template_version": version,
            })
    return drifted


def launch_template_drift(fleet, template_versions=None):
    """The fleet's launch template when it has more than one version (it was edited), else None.

    ``versions`` lists every version (number, image, instance type, default, created_at,
    created_by) when they were described.
    """
    template = fleet.get("launch_template")
    if not template or (template.get("latest_version") or 1) <= 1:
        return None
    versions = []
    for version in sorted((template_versions or {}).get(template["id"], []), key=lambda v: v.get("VersionNumber", 0)):
        data = version.get("LaunchTemplateData", {})
        created = version.get("CreateTime")
        versions.append({
            "version_number": version.get("VersionNumber"),
            "default": bool(version.get("DefaultVersion")),
            "image_id": data.get("ImageId"),
            "instance_type": data.get("InstanceType"),
            "created_at": utc_timestamp(created) if hasattr(created, "tzinfo") else created,
            "created_by": version.get("CreatedBy"),
        })
    return {
        "id": template["id"],
        "name": template.get("name"),
        "latest_version": template.get("latest_version"),
        "default_version": template.get("default_version"),
        "expected_version": expected_launch_template_version(fleet),
        "versions": versions,
    }


def stray_instances(instances, fleets, app, environment=None):
    """Running or pending instances tagged for the stack (app and environment tags match; any
    managed-by) that are in none of the stack's ASGs. Sorted by instance id."""
    environment = normalize_environment(environment)
    in_fleets = {
        i["instance_id"] for f in fleets for i in ((f.get("auto_scaling_group") or {}).get("instances") or [])
    }
    strays = []
    for instance in instances or []:
        tags = tags_to_dict(instance.get("Tags"))
        if tags.get(TAG_APP) != app or normalize_environment(tags.get(TAG_ENVIRONMENT)) != environment:
            continue
        if (instance.get("State") or {}).get("Name") not in ("pending", "running"):
            continue
        if instance["InstanceId"] in in_fleets:
            continue
        launched = instance.get("LaunchTime")
        strays.append({
            "instance_id": instance["InstanceId"],
            "state": instance["State"]["Name"],
            "image_id": instance.get("ImageId"),
            "instance_type": instance.get("InstanceType"),
            "launch_time": utc_timestamp(launched) if hasattr(launched, "tzinfo") else launched,
            "version": tags.get(TAG_VERSION),
            "managed": tags.get(TAG_MANAGED_BY) == MANAGED_BY,
            "auto_scaling_group": tags.get(ASG_NAME_TAG),
            "launch_template_id": tags.get(LT_ID_TAG),
            "launch_template_version": tags.get(LT_VERSION_TAG),
            "name": tags.get("Name"),
        })
    return sorted(strays, key=lambda s: s["instance_id"])


def _messages(version_drift, templates, strays):
    messages = []
    for entry in version_drift:
        messages.append(
            f"version {entry['version']}: instance {entry['instance_id']} differs from its fleet "
            f"({', '.join(entry['reasons'])}: runs {entry['image_id']} from launch template "
            f"{entry['launch_template_id']} version {entry['launch_template_version']}; the fleet's are "
            f"{entry['expected_image_id']}, {entry['expected_launch_template_id']} version "
            f"{entry['expected_launch_template_version']})"
        )
    for entry in templates:
        messages.append(
            f"version {entry['version']}: launch template {entry['name']} ({entry['id']}) has "
            f"{entry['latest_version']} versions; a fleet's launch template is never edited"
        )
    for entry in strays:
        messages.append(
            f"instance {entry['instance_id']} is tagged for the stack (version {entry['version']}) but is in none "
            f"of its auto scaling groups"
        )
    return messages


# --------------------------------------------------------------------------------------------
# Putting it together
# --------------------------------------------------------------------------------------------


def enrich_stack(stack, details, health=True, drift=True):
    """Add health and drift to `stack` (from `discovery.build_stack`, mutated and returned).

    `details` (from `info_api.observe_fleet_details`): ``target_health`` {target group arn:
    TargetHealthDescriptions or None when the group is gone}, ``instances`` (EC2 instance
    descriptions: the stack's tagged instances plus its ASGs' instances), ``launch_template_versions``
    {launch template id: every version} for edited launch templates.

    Every fleet gets ``instance_counts``; with `health`, ``target_health`` and each ASG instance
    its ``target_health`` state; with `drift`, ``drift`` and each ASG instance its ``image_id``.
    With `drift` the stack gets ``drift`` {detected, instances, launch_templates,
    stray_instances, messages}.
    """
    target_health = details.get("target_health") or {}
    instances_by_id = {i["InstanceId"]: i for i in details.get("instances") or []}
    template_versions = details.get("launch_template_versions") or {}
    all_instances, all_templates = [], []
    for fleet in stack["fleets"]:
        group = fleet.get("auto_scaling_group") or {}
        records = None
        if health:
            arn = (fleet.get("target_group") or {}).get("arn")
            records = target_health_records(target_health.get(arn)) if arn else []
            fleet["target_health"] = records
            states = {r["target_id"]: r["state"] for r in records}
            for instance in group.get("instances") or []:
                instance["target_health"] = states.get(instance["instance_id"])
        fleet["instance_counts"] = instance_counts(fleet, records)
        if drift:
            for instance in group.get("instances") or []:
                instance["image_id"] = (instances_by_id.get(instance["instance_id"]) or {}).get("ImageId")
            drifted = instance_drift(fleet, instances_by_id, template_versions)
            template = launch_template_drift(fleet, template_versions)
            fleet["drift"] = {"detected": bool(drifted or template), "instances": drifted, "launch_template": template}
            all_instances.extend(dict(d, version=fleet["version"]) for d in drifted)
            if template:
                all_templates.append(dict(template, version=fleet["version"]))
    if drift:
        strays = stray_instances(details.get("instances"), stack["fleets"], stack["app"], stack["environment"])
        stack["drift"] = {
            "detected": bool(all_instances or all_templates or strays),
            "instances": all_instances,
            "launch_templates": all_templates,
            "stray_instances": strays,
            "messages": _messages(all_instances, all_templates, strays),
        }
    return stack


def instance_ids_to_describe(stack, described):
    """ASG instance ids of the stack that `described` (instances already fetched) lacks. Pure."""
    seen = {i["InstanceId"] for i in described or []}
    wanted = {
        i["instance_id"]
        for f in stack["fleets"]
        for i in ((f.get("auto_scaling_group") or {}).get("instances") or [])
    }
    return sorted(wanted - seen)


def edited_launch_templates(stack):
    """Launch template ids of the stack's fleets with more than one version. Pure."""
    return sorted(
        f["launch_template"]["id"]
        for f in stack["fleets"]
        if f.get("launch_template") and (f["launch_template"].get("latest_version") or 1) > 1
    )
