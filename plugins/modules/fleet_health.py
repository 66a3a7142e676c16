#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_health
version_added: 0.1.0
short_description: Wait until a fleet of a cattle.aws stack is healthy, or fail with the reason
description:
  - Polls one fleet (an auto scaling group and its target groups) inside one module call until it is
    healthy, until a failure that waiting cannot fix is seen, or until O(timeout); it decides within one
    O(poll_interval) of the fact.
  - Healthy means all of the following. The auto scaling group has its desired number of instances
    C(InService) and C(Healthy). In each of its target groups, at least O(min_healthy_percent) percent of
    the desired capacity (rounded up, at least one) are C(healthy) targets that are InService instances of
    the group. None of the CloudWatch alarms named by O(alarm_names) or starting with
    O(alarm_name_prefix) is in C(ALARM). Every HTTP check of O(http_checks) has answered as expected the
    required number of consecutive times.
  - Fails at once, with the AWS reason, when the latest scaling activity failed (for example a launch
    failure; a failure followed by a newer activity, as when a fleet is scaled up again, is history),
    when an instance is being replaced for failing its health checks, when a watched alarm is in
    C(ALARM) or does not exist, or when the group has desired capacity 0.
  - Target groups report C(unused) targets while no listener forwards to them, and AWS runs no health
    checks then; attach the target group to a listener (weight 0 is enough) before gating it.
  - Read-only; makes no change in AWS.
  - Needs C(autoscaling:DescribeAutoScalingGroups), C(autoscaling:DescribeScalingActivities),
    C(elasticloadbalancing:DescribeTargetHealth) and, with alarms, C(cloudwatch:DescribeAlarms).
author:
  - cattle.aws developers (@cattle-aws)
options:
  app:
    description:
      - Name of the application; with O(version) (and O(environment)) finds the fleet's auto scaling group by its
        ownership tags.
    type: str
  environment:
    description:
      - Environment of the application. Omit it for a stack without environment.
    type: str
  version:
    description:
      - Release version of the fleet to gate. Quote it in YAML; a number (V(1.10) is read as V(1.1)) is
        refused.
    type: raw
  auto_scaling_group_name:
    description:
      - Name of the auto scaling group to gate, instead of finding it by O(app), O(environment) and O(version).
    type: str
  target_group_arns:
    description:
      - Target groups whose health is checked. Default is the target groups attached to the auto scaling group.
    type: list
    elements: str
  min_healthy_percent:
    description:
      - Percentage (0-100) of the desired capacity that must be healthy targets in each target group.
    type: int
    default: 100
  http_checks:
    description:
      - HTTP checks run at each poll, for example through a test listener that forwards only to the new version.
    type: list
    elements: dict
    default: []
    suboptions:
      url:
        description: URL to request (GET).
        type: str
        required: true
      status:
        description: Expected HTTP status code.
        type: int
        default: 200
      body_regex:
        description: Regular expression the response body must match (Python C(re.search)).
        type: str
      consecutive_successes:
        description: Number of consecutive polls on which the check must succeed.
        type: int
        default: 1
      request_timeout:
        description: Seconds to wait for the response of one request; a request that takes longer is a failed probe.
        type: float
        default: 5
      validate_certs:
        description: Whether to validate TLS certificates.
        type: bool
        default: true
  alarm_names:
    description:
      - CloudWatch alarms that must not be in C(ALARM). A name that does not exist fails the gate.
    type: list
    elements: str
    default: []
  alarm_name_prefix:
    description:
      - Every CloudWatch alarm whose name starts with this prefix must not be in C(ALARM).
    type: str
  wait:
    description:
      - Whether to poll until healthy. With V(false), one observation is made and reported (RV(status) may be
        V(waiting)); the module then fails only on a certain failure.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the fleet to become healthy.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between two polls.
    type: float
    default: 5
  watch_seconds:
    description:
      - Watch mode, for canary pauses and the post-shift watch of a release. Once the fleet is healthy (within
        O(timeout)), keep polling every O(poll_interval) for this many seconds, and fail at the first poll that
        is not healthy - an alarm in C(ALARM), healthy targets below O(min_healthy_percent), an instance being
        replaced, a failing HTTP check - with that poll's reason and RV(watch_failed=true).
      - V(0) (the default) returns as soon as the fleet is healthy. Ignored with O(wait=false).
    type: float
    default: 0
attributes:
  check_mode:
    support: full
    description: The module never changes anything; it polls in check mode too.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
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
- name: Wait until shop 1.4.2 in prod is healthy (all desired instances, every target healthy)
  cattle.aws.fleet_health:
    app: shop
    environment: prod
    version: 1.4.2
    timeout: 600
    poll_interval: 5
  register: gate

- name: Show the time to healthy
  ansible.builtin.debug:
    msg: "healthy after {{ gate.time_to_healthy }} s"

- name: Canary pause - watch 1.4.2 for 5 minutes, failing at the first alarm or unhealthy target
  cattle.aws.fleet_health:
    app: shop
    environment: prod
    version: 1.4.2
    alarm_name_prefix: shop-prod-
    poll_interval: 10
    watch_seconds: 300

- name: Gate with an HTTP check through a test listener and a set of alarms
  cattle.aws.fleet_health:
    auto_scaling_group_name: shop-prod-1.4.2
    min_healthy_percent: 50
    http_checks:
      - url: http://test-listener.example.com:8443/health
        status: 200
        body_regex: '"status":\s*"ok"'
        consecutive_successes: 3
        request_timeout: 2
    alarm_name_prefix: shop-prod-
"""

RETURN = r"""
status:
  description: V(healthy), V(failed) or V(waiting) (only with O(wait=false), or on timeout).
  returned: always
  type: str
  sample: healthy
healthy:
  description: Whether the fleet passed the gate.
  returned: always
  type: bool
timed_out:
  description: Whether the gate gave up because O(timeout) passed.
  returned: always
  type: bool
watched:
  description: Seconds the healthy fleet was watched (O(watch_seconds)); V(0) without a watch.
  returned: always
  type: float
  sample: 60.0
watch_failed:
  description: Whether the fleet was healthy, then failed a poll during the watch (O(watch_seconds)).
  returned: always
  type: bool
time_to_healthy:
  description: Seconds from the start of the call until the fleet was seen healthy; V(null) when it was not.
  returned: always
  type: float
  sample: 42.5
time_to_in_service:
  description:
    - Seconds from the start of the call until the auto scaling group was first seen with its desired
      instances C(InService) and C(Healthy); V(null) when it was not (a failure or a timeout before that
      is a failure of the instances' initialization, not of their health).
  returned: always
  type: float
  sample: 180.2
in_service_at:
  description: UTC time (ISO 8601) of that observation; V(null) when the instances were not seen C(InService).
  returned: always
  type: str
  sample: "2024-05-01T12:03:00.412345Z"
elapsed:
  description: Seconds spent in the call.
  returned: always
  type: float
polls:
  description: Number of observations made.
  returned: always
  type: int
summary:
  description: One line per check that decided the result, for example which instances are not healthy and why.
  returned: always
  type: str
  sample: >-
    target_health: 1/2 healthy (need 2, min_healthy_percent=100) in shop-prod-1-4-2-3f2a9c1d/0123;
    not healthy: i-0abc unhealthy (Target.ResponseCodeMismatch)
checks:
  description: Every check of the last poll.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: V(auto_scaling_group), V(scaling_activities), V(target_health), V(alarms) or V(http).
      type: str
    status:
      description: V(healthy), V(waiting) or V(failed).
      type: str
    detail:
      description: What was seen.
      type: str
auto_scaling_group_name:
  description: The auto scaling group gated.
  returned: when found
  type: str
desired_capacity:
  description: Its desired capacity.
  returned: when found
  type: int
target_group_arns:
  description: The target groups whose health was checked.
  returned: always
  type: list
  elements: str
instances:
  description: >-
    The instances of the group and the targets of its target groups, with instance_id, lifecycle_state,
    health_status, availability_zone and targets (target_group_arn, state, reason, description).
  returned: always
  type: list
  elements: dict
"""

from urllib.error import HTTPError

from ansible.module_utils.urls import open_url

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.health import build_spec
from ansible_collections.cattle.aws.plugins.module_utils._fleet.health import wait_healthy
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory


def make_http_get(checks):
    certs = {c["url"]: c.get("validate_certs", True) for c in checks}

    def http_get(url, timeout):
        try:
            response = open_url(url, method="GET", timeout=timeout, validate_certs=certs.get(url, True))
            return response.getcode(), response.read().decode("utf-8", "replace")
        except HTTPError as e:
            body = e.read().decode("utf-8", "replace") if e.fp else ""
            return e.code, body

    return http_get


def main():
    argument_spec = dict(
        app=dict(type="str"),
        environment=dict(type="str"),
        version=dict(type="raw"),
        auto_scaling_group_name=dict(type="str"),
        target_group_arns=dict(type="list", elements="str"),
        min_healthy_percent=dict(type="int", default=100),
        http_checks=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                url=dict(type="str", required=True),
                status=dict(type="int", default=200),
                body_regex=dict(type="str"),
                consecutive_successes=dict(type="int", default=1),
                request_timeout=dict(type="float", default=5),
                validate_certs=dict(type="bool", default=True),
            ),
        ),
        alarm_names=dict(type="list", elements="str", default=[]),
        alarm_name_prefix=dict(type="str"),
        wait=dict(type="bool", default=True),
        watch_seconds=dict(type="float", default=0),
        timeout=dict(type="int", default=600),
        poll_interval=dict(type="float", default=5),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[("auto_scaling_group_name", "version")],
        required_by={"version": "app"},
    )
    client = client_factory(module)
    params = module.params

    try:
        spec = build_spec(
            app=params["app"],
            environment=params["environment"],
            version=params["version"],
            auto_scaling_group_name=params["auto_scaling_group_name"],
            target_group_arns=params["target_group_arns"],
            min_healthy_percent=params["min_healthy_percent"],
            http_checks=params["http_checks"],
            alarm_names=params["alarm_names"],
            alarm_name_prefix=params["alarm_name_prefix"],
        )
        result = wait_healthy(
            client, spec, timeout=params["timeout"], poll_interval=params["poll_interval"], wait=params["wait"],
            http_get=make_http_get(spec["http_checks"]), watch_seconds=params["watch_seconds"],
        )
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)

    if result["watch_failed"]:
        module.fail_json(msg=f"The fleet failed the watch {result['summary']}", **result)
    if result["status"] == "failed":
        module.fail_json(msg=f"The fleet failed its health gate after {result['elapsed']} s: {result['summary']}", **result)
    if result["timed_out"]:
        module.fail_json(
            msg=f"The fleet was not healthy after {params['timeout']} s ({result['polls']} polls): {result['summary']}", **result
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
