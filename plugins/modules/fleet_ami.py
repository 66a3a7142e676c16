#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_ami
version_added: 0.1.0
short_description: Find or tag the AMI of one release of a cattle.aws stack
description:
  - Without O(image_id), finds the AMI owned by the account and tagged with the stack's ownership tags
    (C(cattle:app), C(cattle:environment), C(cattle:managed-by=cattle.aws)) and C(cattle:version=)O(version);
    read-only. The C(cattle.aws.packer_bake) role uses this to skip a bake whose image exists.
  - With O(image_id), tags that AMI and its EBS snapshots with the ownership tags of the release (and O(tags)),
    in one C(CreateTags) call. If tagging fails, the AMI is deregistered and its snapshots deleted
    (O(cleanup_on_failure)), so no half-tagged image is left behind.
  - An AMI already tagged for another stack or version is never re-tagged; the module fails instead.
  - Needs C(ec2:DescribeImages), C(ec2:DescribeSnapshots), C(ec2:CreateTags) and, for the clean-up,
    C(ec2:DeregisterImage) and C(ec2:DeleteSnapshot).
author:
  - cattle.aws developers (@cattle-aws)
options:
  version:
    description:
      - Release version the AMI is for.
      - A string. A YAML number is refused (V(1.10) would be read as V(1.1)), so quote it.
    type: raw
    required: true
  image_id:
    description:
      - AMI to tag for the release, for example the one Packer just built.
      - Omit it to look up the AMI of the release.
    type: str
  tags:
    description:
      - Extra tags for the AMI and its snapshots. Keys may not start with C(cattle:) or C(aws:).
      - V(Name) overrides the default name tag (the fleet name).
    type: dict
    default: {}
  cleanup_on_failure:
    description:
      - Deregister the AMI and delete its snapshots when tagging them fails.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports the tags that would be added, without adding them.
  diff_mode:
    support: none
    description: The tags to add are returned in RV(tags_added).
  idempotent:
    support: full
    description: An AMI carrying the tags already is not changed.
extends_documentation_fragment:
  - cattle.aws.direct_execution
  - cattle.aws.stack
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Is there an AMI for shop 1.4.2 in prod?
  cattle.aws.fleet_ami:
    app: shop
    environment: prod
    version: 1.4.2
  register: existing

- name: Tag the AMI Packer built
  cattle.aws.fleet_ami:
    app: shop
    environment: prod
    version: 1.4.2
    image_id: ami-0123456789abcdef0
    tags:
      team: payments
"""

RETURN = r"""
exists:
  description: Whether an AMI tagged for the release exists (after tagging, when O(image_id) is given).
  returned: always
  type: bool
image:
  description: The AMI of the release (the newest when several carry the tags); V(null) if none.
  returned: always
  type: dict
  contains:
    id:
      description: AMI id.
      type: str
      sample: ami-0123456789abcdef0
    name:
      description: AMI name.
      type: str
    state:
      description: AMI state.
      type: str
    creation_date:
      description: When the AMI was created.
      type: str
    snapshot_ids:
      description: Its EBS snapshots.
      type: list
      elements: str
    tags:
      description: Its tags.
      type: dict
image_ids:
  description: Every AMI tagged for the release, newest first (lookup only).
  returned: when O(image_id) is not given
  type: list
  elements: str
tags_added:
  description: The tags added (or, in check mode, to add) per resource id.
  returned: when O(image_id) is given
  type: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.ami import describe_image
from ansible_collections.cattle.aws.plugins.module_utils._fleet.ami import find_images
from ansible_collections.cattle.aws.plugins.module_utils._fleet.ami import image_record
from ansible_collections.cattle.aws.plugins.module_utils._fleet.ami import tag_image
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.tags import ownership_tags
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory


def run(ec2, params, check_mode):
    app, environment, version = params["app"], params["environment"], params["version"]
    desired = ownership_tags(app, environment, version, extra=params["tags"])
    if not params["image_id"]:
        images = find_images(ec2, app, environment, version)
        return dict(changed=False, exists=bool(images), image=image_record(images[0] if images else None),
                    image_ids=[i["ImageId"] for i in images])
    image = describe_image(ec2, params["image_id"])
    changed, plan = tag_image(ec2, image, desired, cleanup_on_failure=params["cleanup_on_failure"], check_mode=check_mode)
    if changed and not check_mode:
        image = describe_image(ec2, params["image_id"])
    return dict(changed=changed, exists=not check_mode or not changed, image=image_record(image), tags_added=plan)


def main():
    argument_spec = dict(
        app=dict(type="str", required=True),
        environment=dict(type="str"),
        version=dict(type="raw", required=True),
        image_id=dict(type="str"),
        tags=dict(type="dict", default={}),
        cleanup_on_failure=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    ec2 = client_factory(module)("ec2")
    try:
        result = run(ec2, module.params, module.check_mode)
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
