#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# The code is the action plugin plugins/action/release_report_files.py; this file documents it.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_report_files
version_added: 0.1.0
short_description: Write the release report files of a release record
description:
  - Writes C(release-report.json) (the document of the P(cattle.aws.release_report#filter) filter) and
    C(release-report.html) (P(cattle.aws.release_report_html#filter)) into the directory O(dest), creating it
    (mode C(0755)) when missing. Each file (mode C(0644)) is replaced atomically, and only when its content
    changed.
  - The report of another run found in O(dest) (its C(release-report.json) tells another start time; the release
    run again after a failure, a second rollback to the same version, a directory several runs share) is moved
    first into C(earlier/<its start time>/) under O(dest), so that every run's report is kept and the newest one
    is always at the same path. The same run writing its report again replaces it. Files whose run cannot be told
    (not a release report) are kept the same way, named after their modification time.
  - Holds an exclusive lock on O(dest) (where the file system allows one) while it moves and writes, so that
    several runs sharing O(dest) (stacks released in parallel by one play) keep each report whole.
  - "Runs on the controller, like the release playbooks (C(connection: local)): O(dest) is a path on the
    machine that runs ansible-playbook, whatever the host of the task."
  - Returns the terminal report (P(cattle.aws.release_report_text#filter)) as RV(text), so a play shows it
    without rendering the record again.
author:
  - cattle.aws developers (@cattle-aws)
options:
  record:
    description:
      - The release record the release and rollback playbooks build as they run; its format is described by the
        P(cattle.aws.release_report#filter) filter.
    type: dict
    required: true
  dest:
    description:
      - The directory to write the two files in; a relative path is relative to the working directory of
        ansible-playbook on the controller.
    type: path
    required: true
attributes:
  action:
    description: Runs as an action plugin on the controller; no module is executed on the host.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: Nothing is written or moved; RV(written) and RV(archived) tell what would be.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - An invalid record fails the task naming what is wrong in it; an unwritable O(dest) fails it naming the
    directory and the error.
"""

EXAMPLES = r"""
- name: Write the report of a release
  cattle.aws.release_report_files:
    record: "{{ cattle_release_record }}"
    dest: "{{ playbook_dir }}/release-reports/shop-prod-1.4.2"
  register: report

- name: Show it
  ansible.builtin.debug:
    msg: "{{ report.text }}"
"""

RETURN = r"""
dest:
  description: The directory of the report, as an absolute path.
  returned: success
  type: str
  sample: /srv/ci/release-reports/shop-prod-1.4.2
files:
  description: The paths of C(release-report.json) and C(release-report.html).
  returned: success
  type: list
  elements: str
written:
  description: The paths written (or, in check mode, that would be), the directory first when it was created.
  returned: success
  type: list
  elements: str
archived:
  description:
    - Where the report of an earlier run found in O(dest) was moved (or, in check mode, would be); null when there
      was none.
  returned: success
  type: str
  sample: /srv/ci/release-reports/shop-prod-1.4.2/earlier/2026-11-26T150000.123456Z
text:
  description: The report for the terminal, one line per element.
  returned: success
  type: list
  elements: str
  sample: ["Release shop/prod 1.4.2: success in 6m 12s (previous version 1.4.1)", "4m 00s provisioning · 1m 02s initialization"]
"""
