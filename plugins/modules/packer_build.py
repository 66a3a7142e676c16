#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: packer_build
version_added: 0.1.0
short_description: Build an AMI with Packer using the AWS connection settings of the other modules
description:
  - Runs Packer on the target host in one module call - C(packer version), C(packer plugins install) (JSON templates,
    Packer 1.10 and later, which no longer bundle the Amazon builder) or C(packer init) (HCL2 templates, Packer 1.7 and
    later), C(packer validate), then C(packer build) - and returns the AMI id read from the manifest post-processor's
    output. Used by the C(cattle.aws.packer_bake) role, which also skips the bake when the version's AMI exists and
    tags the AMI.
  - Variables are passed in one JSON var file - C(app), C(environment), C(version), C(region), C(aws_endpoint_url),
    C(skip_region_validation), C(skip_metadata_api_check), C(manifest_path), then O(vars). JSON templates ignore
    variables they do not declare; HCL2 templates print a warning for them.
  - Packer ignores C(AWS_ENDPOINT_URL). When an endpoint is configured (O(endpoint_url), C(AWS_ENDPOINT_URL_EC2) or
    C(AWS_ENDPOINT_URL)), it is passed as the variable C(aws_endpoint_url), which the template must give to
    C(custom_endpoint_ec2); C(skip_region_validation) and C(skip_metadata_api_check) are then V(true).
  - The credentials (O(access_key), O(secret_key), O(session_token), O(profile)) and the region reach Packer as the
    standard C(AWS_*) environment variables.
  - Always reports a change when it builds; the build is not idempotent (the role decides whether to build).
author:
  - cattle.aws developers (@cattle-aws)
options:
  app:
    description: Name of the application (variable C(app)).
    type: str
    required: true
  environment:
    description: Environment of the application (variable C(environment), empty when omitted).
    type: str
  version:
    description:
      - Release version (variable C(version)).
      - A string. A YAML number is refused (V(1.10) would be read as V(1.1)), so quote it.
    type: raw
    required: true
  template:
    description:
      - Path of the Packer template, a C(.json) file, a C(.pkr.hcl) file or a directory of HCL2 files.
      - Exactly one of O(template) and O(template_content) is required.
    type: path
  template_content:
    description:
      - A JSON Packer template, written to C(app-image.json) in O(work_dir) and built.
    type: str
  vars:
    description: Extra variables; non-string values are passed as JSON text.
    type: dict
    default: {}
  sensitive_vars:
    description:
      - Extra variables whose values are secrets (tokens, passwords), added to the var file after O(vars).
      - Never shown in the module's arguments or results (C(no_log)), masked as C(********) in Packer's output
        returned on failure and in the build log written to O(work_dir); the var file is readable by its owner only.
      - Declare them C(sensitive) in the template too (C(sensitive-variables) in JSON, C(sensitive = true) in HCL2)
        so that Packer masks them in its own debug log.
    type: dict
    default: {}
  work_dir:
    description: Directory for the var file, the manifest, Packer's output and its debug log (created if needed).
    type: path
    required: true
  manifest_path:
    description: Where the template's manifest post-processor writes; default C(packer-manifest.json) in O(work_dir).
    type: path
  packer_path:
    description: The Packer executable.
    type: str
    default: packer
  plugins:
    description: Plugins installed for JSON templates on Packer 1.10 and later.
    type: list
    elements: str
    default:
      - github.com/hashicorp/amazon
  build_timeout:
    description: Seconds C(packer build) may take.
    type: int
    default: 3600
  log_lines:
    description: Lines of Packer's output included in an error message.
    type: int
    default: 30
attributes:
  check_mode:
    support: partial
    description: Can run in check mode.
    details: Runs C(packer validate) but not C(packer build); RV(ami_id) is V(null).
  diff_mode:
    support: none
    description: No diff.
  idempotent:
    support: none
    description: Every run builds a new AMI; the C(cattle.aws.packer_bake) role skips the build when the AMI exists.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Build the AMI of shop 1.4.2 from the team's template
  cattle.aws.packer_build:
    app: shop
    environment: prod
    version: 1.4.2
    template: packer/shop.pkr.hcl
    vars:
      base_image: ami-0123456789abcdef0
    sensitive_vars:
      artifact_token: "{{ vault_artifact_token }}"
    work_dir: /tmp/bake/shop-prod-1.4.2
  register: bake

- name: Show the AMI
  ansible.builtin.debug:
    msg: "{{ bake.ami_id }}"
"""

RETURN = r"""
ami_id:
  description: The AMI built in the region (the last one of the manifest's last run); V(null) in check mode.
  returned: always
  type: str
  sample: ami-0123456789abcdef0
ami_ids:
  description: Every AMI of the last run in the region.
  returned: when built
  type: list
  elements: str
packer_version:
  description: Version of Packer.
  returned: always
  type: str
  sample: 1.6.6
commands:
  description: The Packer commands run.
  returned: always
  type: list
  elements: str
var_file:
  description: The var file passed to Packer.
  returned: always
  type: str
log_path:
  description: Packer's output of the build.
  returned: when built
  type: str
debug_log_path:
  description: Packer's debug log (C(PACKER_LOG)) of the build.
  returned: when built
  type: str
manifest_path:
  description: The manifest read.
  returned: always
  type: str
"""

import os

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.naming import validate_version
from ansible_collections.cattle.aws.plugins.module_utils._fleet.packer import bake
from ansible_collections.cattle.aws.plugins.module_utils._fleet.packer import template_vars
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import identify

_CREDENTIAL_ENV = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "profile_name": "AWS_PROFILE",
}


def packer_environment(region, boto_params):
    env = dict(os.environ)
    for key, name in _CREDENTIAL_ENV.items():
        if boto_params.get(key):
            env[name] = boto_params[key]
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


def main():
    argument_spec = dict(
        app=dict(type="str", required=True),
        environment=dict(type="str"),
        version=dict(type="raw", required=True),
        template=dict(type="path"),
        template_content=dict(type="str"),
        vars=dict(type="dict", default={}),
        sensitive_vars=dict(type="dict", default={}, no_log=True),
        work_dir=dict(type="path", required=True),
        manifest_path=dict(type="path"),
        packer_path=dict(type="str", default="packer"),
        plugins=dict(type="list", elements="str", default=["github.com/hashicorp/amazon"]),
        build_timeout=dict(type="int", default=3600),
        log_lines=dict(type="int", default=30),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("template", "template_content")],
        required_one_of=[("template", "template_content")],
    )
    identify(module)
    params = module.params
    region, endpoint_url, boto_params = get_aws_connection_info(module)
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_EC2") or os.environ.get("AWS_ENDPOINT_URL")
    work_dir = params["work_dir"]
    manifest_path = params["manifest_path"] or os.path.join(work_dir, "packer-manifest.json")
    try:
        validate_version(params["version"])
        template = params["template"]
        if params["template_content"] is not None:
            os.makedirs(work_dir, mode=0o700, exist_ok=True)
            template = os.path.join(work_dir, "app-image.json")
            with open(template, "w", encoding="utf-8") as f:
                f.write(params["template_content"])
        elif not os.path.exists(template):
            raise FleetError(f"The Packer template {template} does not exist (template).")
        variables = template_vars(
            params["app"], params["environment"], params["version"], region, endpoint_url, manifest_path,
            dict(params["vars"], **params["sensitive_vars"]),
        )
        secrets = [variables[str(name)] for name in params["sensitive_vars"]]
        result = bake(
            params["packer_path"], template, work_dir, variables, region, manifest_path, plugins=params["plugins"],
            env=packer_environment(region, boto_params), build_timeout=params["build_timeout"],
            log_lines=params["log_lines"], check_mode=module.check_mode, secrets=secrets,
        )
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except OSError as e:
        module.fail_json(msg=f"Cannot prepare the Packer work directory {work_dir}: {e}")
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
