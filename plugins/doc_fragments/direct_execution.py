# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where the cattle.aws AWS modules run (plugins/plugin_utils/direct_execution.py)."""


class ModuleDocFragment:
    # A fragment must declare options or attributes to be merged: it adds only notes.
    DOCUMENTATION = r"""
options: {}
notes:
  - On the controller (C(connection=local), or C(delegate_to=localhost)), this module runs in the
    worker process ansible forks for the task rather than as a module process of its own, with the
    AWS SDK loaded once by ansible's main process; the arguments, check mode, diff, C(no_log) and
    the result are the same. A module process is used with another connection, C(become),
    C(async), a task C(timeout), another Python than ansible-playbook's, or when the variable
    C(cattle_aws_direct_execution) is V(false). With C(-vvv) each task says which way it ran.
"""
