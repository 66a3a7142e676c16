"""ansible's main process, loading a cattle.aws action, imports the module that action runs
(plugins/plugin_utils/direct_execution.py): each task's worker, forked from it, inherits the code."""

from __future__ import annotations

import gc
import sys

from ansible_collections.cattle.aws.plugins.module_utils._fleet import connection
from ansible_collections.cattle.aws.plugins.plugin_utils.direct_execution import DirectExecutionAction

MODULE = "ansible_collections.cattle.aws.plugins.modules.fleet_gc"
GC_UTILS = "ansible_collections.cattle.aws.plugins.module_utils._fleet.gc"


def test_loading_an_action_imports_its_module_and_freezes_it(monkeypatch):
    connection.warm_up()
    for name in (MODULE, GC_UTILS):
        monkeypatch.delitem(sys.modules, name, raising=False)
    frozen = gc.get_freeze_count()

    class ActionModule(DirectExecutionAction):  # pylint: disable=unused-variable
        __module__ = "ansible_collections.cattle.aws.plugins.action.fleet_gc"

    assert MODULE in sys.modules and GC_UTILS in sys.modules
    assert callable(sys.modules[MODULE].main)
    assert gc.get_freeze_count() > frozen, "the module's objects are frozen with the SDK's"


def test_an_action_of_another_kind_imports_nothing(monkeypatch):
    connection.warm_up()
    before = set(sys.modules)

    class ActionModule(DirectExecutionAction):  # pylint: disable=unused-variable
        __module__ = "tests.some_action"

    assert set(sys.modules) == before
