# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters that turn the release record into the release report.

Each filter is documented in its own YAML file next to this one (``release_timeline.yml``, ...).
The logic lives in ``plugins/plugin_utils/release_report.py``.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cattle.aws.plugins.plugin_utils import release_report as _report


def _wrap(function):
    def run(record):
        try:
            return function(record)
        except _report.ReportError as e:
            raise AnsibleFilterError("%s: invalid release record: %s" % (function.__name__, e)) from e

    run.__name__ = function.__name__
    run.__doc__ = function.__doc__
    return run


release_timeline = _wrap(_report.phase_timeline)
release_cost = _wrap(_report.overlap_cost)
release_report = _wrap(_report.release_report)
release_report_text = _wrap(_report.release_report_text)
release_report_html = _wrap(_report.release_report_html)
release_stats = _wrap(_report.release_stats)


class FilterModule:
    """The cattle.aws release report filters."""

    def filters(self):
        return {
            "release_timeline": release_timeline,
            "release_cost": release_cost,
            "release_report": release_report,
            "release_report_text": release_report_text,
            "release_report_html": release_report_html,
            "release_stats": release_stats,
        }
