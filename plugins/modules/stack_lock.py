#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stack_lock
version_added: 0.1.0
short_description: Acquire or release the lock of a cattle.aws stack
description:
  - Makes sure only one release or rollback of a stack (one O(app) in one O(environment)) runs at a
    time. The lock is an SSM String parameter, by default C(/cattle/locks/{app}/{environment}) or
    C(/cattle/locks/{app}/_) for a stack without environment.
  - Its value is a JSON document with the C(holder), the C(version) being released, the C(purpose),
    C(acquired_at), C(expires_at) (O(ttl) seconds later), C(ttl) and a random C(token).
  - Acquiring a free lock creates the parameter with C(Overwrite=false); of several runs acquiring at
    the same time exactly one wins; the others fail at once naming the holder (or retry for O(wait)
    seconds).
  - A lock past its C(expires_at) (its run crashed) is taken over with a warning naming the previous
    holder. Taking over is guarded by a second short-lived parameter C({lock name}.takeover), so two
    runs taking over the same expired lock cannot both win.
  - Acquiring again with the O(token) of the lock it holds changes nothing and does B(not) extend
    the expiry; choose a O(ttl) longer than the longest release. Acquiring with that O(token) after
    the lock expired (and nobody took it over) acquires it again with a new expiry.
  - The parameter is tagged C(cattle:app), C(cattle:environment) (when given),
    C(cattle:managed-by=cattle.aws) and C(cattle:created-at); not C(cattle:version), since the lock
    belongs to the stack, not to one fleet.
  - Needs the IAM permissions C(ssm:GetParameter), C(ssm:PutParameter), C(ssm:DeleteParameter) and
    C(ssm:AddTagsToResource) on the lock parameters.
author:
  - cattle.aws developers (@cattle-aws)
options:
  state:
    description:
      - V(acquired) takes the lock, V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  holder:
    description:
      - Who holds the lock, shown to anybody who finds the stack locked. Use something that leads to
        the run, such as an AWX job URL or C(user@host).
      - Default C(user@host:pid) of the process running the module.
      - Only used with O(state=acquired).
    type: str
  version:
    description:
      - The version being released or rolled back to, recorded in the lock.
      - Only used with O(state=acquired).
      - A string. A YAML number is refused (V(1.10) would be read as V(1.1)), so quote it.
    type: raw
  purpose:
    description:
      - Why the lock is held. Only used with O(state=acquired).
    type: str
    choices: [release, rollback]
    default: release
  ttl:
    description:
      - Seconds after which the lock expires and may be taken over by another run without
        O(force_unlock). Only used with O(state=acquired).
    type: int
    default: 3600
  token:
    description:
      - With O(state=released), the token of the lock (RV(lock.token) of the acquiring task); the lock
        is only released when it matches, unless O(force_unlock=true).
      - With O(state=acquired), the token to give the new lock (default random); when the stack is
        already locked with this token, the lock is ours and nothing changes.
      - The token guards against releasing another run's lock by mistake; it is not a secret (anyone
        who may read the parameter sees it).
    type: str
  force_unlock:
    description:
      - With O(state=acquired), take the lock over even when another run holds it and it has not expired.
      - With O(state=released), release the lock whoever holds it.
      - Either way a warning names the previous holder. Use it only when you know that run is dead.
    type: bool
    default: false
  wait:
    description:
      - Seconds to keep retrying while another run holds the lock, before failing. V(0) fails at once.
      - Only used with O(state=acquired).
    type: int
    default: 0
  parameter_prefix:
    description:
      - SSM parameter path under which the locks live.
    type: str
    default: /cattle/locks
attributes:
  check_mode:
    support: full
    description: Reads the lock and reports what would happen (acquire, take over, release, or fail); changes nothing.
  diff_mode:
    support: full
    description: Before and after are the lock documents (empty when free).
  idempotent:
    support: partial
    description: Running the same task twice with the same O(token) gives the same result.
    details: >-
      Acquiring with the O(token) of the current lock and releasing a free lock change nothing;
      acquiring without O(token) twice fails the second time, since the first run holds the lock.
extends_documentation_fragment:
  - cattle.aws.direct_execution
  - cattle.aws.stack
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Lock the stack for the release of 1.4.2
  cattle.aws.stack_lock:
    app: shop
    environment: prod
    version: 1.4.2
    holder: "pipeline run {{ run_id | default('manual') }}"
    ttl: 3600
  register: stack_lock

- name: Release the lock
  cattle.aws.stack_lock:
    app: shop
    environment: prod
    state: released
    token: "{{ stack_lock.lock.token }}"

- name: Wait up to 5 minutes for a running release of the stack to finish, then lock it
  cattle.aws.stack_lock:
    app: shop
    environment: prod
    version: 1.4.3
    wait: 300

- name: Clear the lock of a release known to be dead
  cattle.aws.stack_lock:
    app: shop
    environment: prod
    state: released
    force_unlock: true
"""

RETURN = r"""
outcome:
  description: >-
    What happened (or would happen in check mode): V(acquired), V(taken_over) (an expired lock, or
    O(force_unlock)), V(unchanged) (already held with O(token)), V(released) or V(not_held).
  returned: always
  type: str
  sample: acquired
name:
  description: Name of the lock's SSM parameter.
  returned: always
  type: str
  sample: /cattle/locks/shop/prod
lock:
  description: The lock now held (V(null) after releasing).
  returned: always
  type: dict
  contains:
    name:
      description: Name of the SSM parameter.
      type: str
      sample: /cattle/locks/shop/prod
    holder:
      description: Who holds the lock.
      type: str
      sample: alice@ci-7:4242
    version:
      description: The version being released, V(null) if not given.
      type: str
      sample: 1.4.2
    purpose:
      description: V(release) or V(rollback).
      type: str
      sample: release
    acquired_at:
      description: When the lock was acquired, UTC ISO 8601.
      type: str
      sample: "2024-05-01T12:00:00Z"
    expires_at:
      description: When the lock expires, UTC ISO 8601.
      type: str
      sample: "2024-05-01T13:00:00Z"
    ttl:
      description: Lifetime of the lock in seconds.
      type: int
      sample: 3600
    token:
      description: The lock's token, needed to release it.
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015
previous:
  description: >-
    The lock document that was released or taken over (same keys as RV(lock)); V(null) when nothing
    was replaced.
  returned: always
  type: dict
"""

import getpass
import os
import socket

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cattle.aws.plugins.module_utils._fleet.errors import FleetError
from ansible_collections.cattle.aws.plugins.module_utils._fleet.lock import acquire
from ansible_collections.cattle.aws.plugins.module_utils._fleet.lock import release
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import client_factory


def default_holder():
    """``user@host:pid`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def main():
    argument_spec = dict(
        app=dict(type="str", required=True),
        environment=dict(type="str"),
        state=dict(type="str", default="acquired", choices=["acquired", "released"]),
        holder=dict(type="str"),
        version=dict(type="raw"),
        purpose=dict(type="str", default="release", choices=["release", "rollback"]),
        ttl=dict(type="int", default=3600),
        token=dict(type="str", no_log=False),
        force_unlock=dict(type="bool", default=False),
        wait=dict(type="int", default=0),
        parameter_prefix=dict(type="str", default="/cattle/locks"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    common = dict(app=p["app"], environment=p["environment"], token=p["token"], force=p["force_unlock"],
                  prefix=p["parameter_prefix"], check_mode=module.check_mode)
    try:
        client = client_factory(module, retry=False)("ssm")
        if p["state"] == "acquired":
            result = acquire(client, holder=p["holder"] or default_holder(), version=p["version"],
                             purpose=p["purpose"], ttl=p["ttl"], wait=p["wait"], **common)
        else:
            result = release(client, **common)
    except FleetError as e:
        module.fail_json(msg=e.msg, **e.details)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)

    for warning in result.pop("warnings"):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
