"""What the worker makes of a module's ending (plugins/plugin_utils/direct_execution.py): its JSON
result, or an exception it did not handle (a module process would die with a traceback)."""

from __future__ import annotations

import sys
import types

import pytest

from ansible.module_utils import basic

from ansible_collections.cattle.aws.plugins.plugin_utils.direct_execution import DirectExecutionAction


def _crashing_main():
    raise RuntimeError("boom in the module")


def _answering_main():
    module = basic.AnsibleModule(argument_spec={"name": {"type": "str", "required": True}})
    module.exit_json(changed=True, greeting="hello " + module.params["name"])


def _failing_main():
    module = basic.AnsibleModule(argument_spec={"name": {"type": "str", "required": True}})
    module.fail_json(msg="no " + module.params["name"])


@pytest.fixture
def action(monkeypatch):
    """The action, its module a stand-in whose main() each test chooses."""
    fake = types.ModuleType("cattle_fake_module")
    monkeypatch.setitem(sys.modules, "cattle_fake_module", fake)
    plugin = object.__new__(DirectExecutionAction)
    context = types.SimpleNamespace(plugin_resolved_name="cattle_fake_module")
    plugin._shared_loader_obj = types.SimpleNamespace(
        module_loader=types.SimpleNamespace(find_plugin_with_context=lambda name, collection_list=None: context))
    plugin._task = types.SimpleNamespace(collections=[])
    plugin._used_interpreter = None  # set by ActionBase.__init__; only a module process has one
    return plugin, fake


def _arguments(**params):
    return dict(params, _ansible_check_mode=False, _ansible_no_log=False, _ansible_remote_tmp="/tmp")


def test_an_unhandled_exception_is_a_module_failure_with_its_traceback(action):
    plugin, fake = action
    fake.main = _crashing_main

    result = plugin._run_in_this_process("cattle.aws.fake", _arguments())

    assert result["failed"] is True
    assert "boom in the module" in str(result.get("exception", "")) + result.get("msg", "") + result.get("module_stderr", "")
    assert basic._ANSIBLE_ARGS is None, "the arguments do not outlive the run"


def test_a_module_that_does_not_exit_fails(action):
    plugin, fake = action
    fake.main = lambda: None

    result = plugin._run_in_this_process("cattle.aws.fake", _arguments())

    assert result["failed"] is True
    assert "did not handle its own exit" in str(result.get("exception", "")) + result.get("msg", "") + result.get("module_stderr", "")


def test_a_result_and_a_failure_come_back_as_from_a_module_process(action):
    plugin, fake = action
    fake.main = _answering_main

    result = plugin._run_in_this_process("cattle.aws.fake", _arguments(name="cattle"))

    assert result["changed"] is True and result["greeting"] == "hello cattle" and not result.get("failed")
    assert result["invocation"]["module_args"] == {"name": "cattle"}

    fake.main = _failing_main
    stdout = sys.stdout
    result = plugin._run_in_this_process("cattle.aws.fake", _arguments(name="luck"))

    assert result["failed"] is True and result["msg"] == "no luck"
    assert sys.stdout is stdout, "the worker's own stdout is given back"
