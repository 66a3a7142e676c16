#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# The code is the action plugin plugins/action/release_inputs.py; this file documents it.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_inputs
version_added: 0.1.0
short_description: Read and validate the inputs of the release and rollback playbooks
description:
  - The first step of C(cattle.aws.release) and C(cattle.aws.rollback); a playbook of your own
    that composes the release's steps can use it the same way.
  - Reads the stack's inputs (the keys documented in the collection's C(playbooks/vars/release_argument_spec.yml))
    from the defaults there, then C(cattle_release_stack) (a dict, for a playbook that imports the release), then
    the stack file O(stack_file), then the host's variables one by one (extra vars such as C(-e @stack.yml) or
    C(-e version=1.4.2), inventory host vars) - each over the one before.
  - Checks them against the argument spec and the rules between options (names, versions, exactly one traffic
    point, canary steps, capacity, ...), and converts the numbers and switches given as strings
    (C(-e keep=3 -e retry_failed=false)) to what they are.
  - Sets the facts the playbooks run on - C(cattle_release) (the inputs), C(cattle_release_label),
    C(cattle_release_record) (the release record, started now) - and fails, before any change, with a
    message that names every wrong option.
author:
  - cattle.aws developers (@cattle-aws)
options:
  purpose:
    description:
      - V(release) requires the options a release needs (C(version), C(subnet_ids), C(instance_type)); V(rollback)
        does not, and its record's strategy is V(rollback).
    type: str
    required: true
    choices: [release, rollback]
  stack_file:
    description:
      - The stack file to read (as C(cattle.aws.sandbox) writes it); a relative path is relative to the
        working directory of ansible-playbook. Empty - the stack comes from the host's variables only.
      - Reading it this way rather than with C(-e @stack.yml) avoids ansible's warnings about the reserved names
        C(environment) and C(strategy).
    type: str
    default: ""
attributes:
  action:
    description: Runs as an action plugin on the controller; no module is executed on the host.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: It never changes anything.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Read and validate the release inputs (-e @stack.yml -e version=1.4.2)
  cattle.aws.release_inputs:
    purpose: release

- name: Show what will be released
  ansible.builtin.debug:
    msg: "{{ cattle_release_label }} {{ cattle_release.strategy }} release over {{ cattle_release.listener_arn }}"
"""

RETURN = r"""
ansible_facts:
  description: The facts set.
  returned: success
  type: dict
  contains:
    cattle_release:
      description: The inputs, every key of the argument spec, the defaults filled in.
      type: dict
      sample: {"app": "shop", "environment": "prod", "version": "1.4.2", "strategy": "instant", "keep": 2}
    cattle_release_label:
      description: The prefix of the run's messages.
      type: str
      sample: "[shop/prod 1.4.2]"
    cattle_release_record:
      description: The release record, started; its format is described by the P(cattle.aws.release_report#filter) filter.
      type: dict
"""
