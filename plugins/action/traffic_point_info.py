# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.cattle.aws.plugins.plugin_utils.direct_execution import DirectExecutionAction


class ActionModule(DirectExecutionAction):
    """Runs cattle.aws.traffic_point_info in the task's worker process when that is the same (plugin_utils/direct_execution.py)."""
