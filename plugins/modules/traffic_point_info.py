#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: traffic_point_info
version_added: 0.1.0
short_description: Read the ALB listener or listener rule a cattle.aws stack's traffic goes through
description:
  - Reads one traffic point, the listener (O(listener_arn)) or the listener rule (O(rule_arn)) that
    C(cattle.aws.traffic_shift) moves weights on, in one call, and returns what it does with a request
    now - forward to weighted target groups, or a fixed response. Read-only.
  - Fails, naming the option, when the listener or rule does not exist, so a playbook can check its
    input before it changes anything (the C(cattle.aws.release) playbook does so before it locks the stack).
  - Needs C(elasticloadbalancing:DescribeListeners) or C(elasticloadbalancing:DescribeRules).
author:
  - cattle.aws developers (@cattle-aws)
options:
  listener_arn:
    description:
      - ARN of the listener whose default action is the traffic point.
      - Exactly one of O(listener_arn) and O(rule_arn).
    type: str
  rule_arn:
    description:
      - ARN of the listener rule whose action is the traffic point.
    type: str
attributes:
  check_mode:
    support: full
    description: Read-only; the same in check mode.
  diff_mode:
    support: none
    description: Read-only.
  idempotent:
    support: full
    description: Read-only.
extends_documentation_fragment:
  - cattle.aws.direct_execution
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Check the listener of the release before changing anything
  cattle.aws.traffic_point_info:
    listener_arn: "{{ stack.listener_arn }}"
  register: point

- name: Say where the traffic goes
  ansible.builtin.debug:
    msg: "{{ point.traffic_point.forward | map(attribute='weight') | list if point.traffic_point.forward else 'a fixed response' }}"
"""

RETURN = r"""
traffic_point:
  description: The listener or rule.
  returned: success
  type: dict
  contains:
    type:
      description: V(listener) or V(rule).
      type: str
    arn:
      description: The listener's or the rule's ARN.
      type: str
    listener_arn:
      description: The listener (for a rule, the listener it belongs to).
      type: str
    load_balancer_arn:
      description: The load balancer of the listener.
      type: str
    priority:
      description: The rule's priority (V(default) for a listener's default rule); null for a listener.
      type: str
    forward:
      description: >-
        The target groups a request is forwarded to and their weights, in the action's order; empty
        when the point does not forward (a fixed response or a redirect).
      type: list
      elements: dict
    fixed_response:
      description: The fixed response (status_code, content_type, message_body) when the point answers one; else null.
      type: dict
    actions:
      description: The point's actions as AWS returns them (snake_case keys).
      type: list
      elements: dict
  sample: {"type": "listener", "arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
           "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
           "load_balancer_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188",
           "priority": null, "forward": [{"target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-1-4-2/73e2d6bc24d8a067",
           "weight": 100}], "fixed_response": null, "actions": []}
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory
from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.traffic import describe_point


def main():
    argument_spec = dict(
        listener_arn=dict(type="str"),
        rule_arn=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("listener_arn", "rule_arn")],
        required_one_of=[("listener_arn", "rule_arn")],
        supports_check_mode=True,
    )
    try:
        point = describe_point(client_factory(module), listener_arn=module.params["listener_arn"], rule_arn=module.params["rule_arn"])
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(changed=False, traffic_point=point)


if __name__ == "__main__":
    main()
