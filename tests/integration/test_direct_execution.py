"""cattle.aws modules run in ansible's worker process on the controller (plugins/plugin_utils/direct_execution.py).

The same tasks run both ways in one playbook; what a user sees (results, messages, check mode,
the task's environment) must not depend on the way, and the way must be the module process
whenever running in the worker could differ.
"""

from __future__ import annotations

import json

import pytest

from helpers.ansible import PYTHON

pytestmark = pytest.mark.integration

LOCK = {"app": "shop", "environment": "prod", "version": "1.0", "ttl": 600}
NAME = "/cattle/locks/shop/prod"
PROCESS = {"cattle_aws_direct_execution": False}
# ansible-playbook's Python (the test venv's, or CATTLE_ANSIBLE_BIN_DIR's: make test-compat).
CONTROLLER_PYTHON = PYTHON
CONTROLLER_BIN = PYTHON.rsplit("/", 1)[0]


def _task(name, module_args, register, **extra):
    task = {"name": name, "cattle.aws.stack_lock": module_args, "register": register}
    task.update(extra)
    return task


def _playbook(results_path):
    bob = dict(LOCK, holder="bob")
    return [{
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [
            _task("acquire (worker)", dict(LOCK, holder="alice"), "acquired"),
            _task("acquire held (module process)", bob, "held_process", ignore_errors=True, vars=PROCESS),
            _task("acquire held (worker)", bob, "held_worker", ignore_errors=True),
            _task("release in check mode (worker)",
                  {"app": "shop", "environment": "prod", "state": "released", "token": "{{ acquired.lock.token }}"},
                  "check_release", check_mode=True),
            _task("unknown option (module process)", {"app": "shop", "colour": "red"}, "unknown_process",
                  ignore_errors=True, vars=PROCESS),
            _task("unknown option (worker)", {"app": "shop", "colour": "red"}, "unknown_worker", ignore_errors=True),
            _task("the task's environment (worker)", dict(LOCK, holder="carol", app="other"), "environment_worker",
                  ignore_errors=True, environment={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}),
            # Another interpreter than the controller's (the venv's python3 beside its python): a module process.
            _task("release (other interpreter)",
                  {"app": "shop", "environment": "prod", "state": "released", "token": "{{ acquired.lock.token }}"},
                  "released", vars={"ansible_python_interpreter": "{{ ansible_playbook_python | dirname }}/python3"}),
            {"name": "an inventory host of the stack", "ansible.builtin.add_host": {
                "name": "stack-host", "ansible_connection": "ssh", "ansible_host": "192.0.2.1"}},
            {"name": "keep the results",
             "ansible.builtin.copy": {"dest": str(results_path), "content": (
                 "{{ {'acquired': acquired, 'held_process': held_process, 'held_worker': held_worker,"
                 " 'check_release': check_release, 'unknown_process': unknown_process,"
                 " 'unknown_worker': unknown_worker, 'environment_worker': environment_worker,"
                 " 'released': released} | to_json }}")}},
        ],
    }, {
        # The usual way to run AWS modules for inventory hosts: delegated to the controller.
        "hosts": "stack-host",
        "gather_facts": False,
        "tasks": [{"name": "read the fleets (delegated, worker)", "cattle.aws.fleet_info": {"app": "shop"},
                   "delegate_to": "localhost", "register": "delegated"},
                  {"name": "keep the result", "ansible.builtin.copy": {
                      "dest": str(results_path) + ".delegated", "content": "{{ delegated | to_json }}"},
                   "delegate_to": "localhost"}],
    }]


def _decisions(stdout):
    """[(module, way)] in task order, from the -vvv lines of the action."""
    decisions = []
    for line in stdout.splitlines():
        if line.startswith("cattle.aws: running "):
            module, _space, way = line[len("cattle.aws: running "):].partition(" ")
            decisions.append((module, way))
    return decisions


def test_the_same_results_in_the_worker_as_in_a_module_process(aws, run_playbook, tmp_path):
    playbook, results_path = tmp_path / "play.yml", tmp_path / "results.json"
    playbook.write_text(json.dumps(_playbook(results_path)))

    rc, out, err = run_playbook(aws, playbook, verbosity=3)

    assert rc == 0, out + err
    results = json.loads(results_path.read_text())
    ways = [way for _module, way in _decisions(out)]
    assert ways == [
        "in the worker process",
        "as a module process (cattle_aws_direct_execution is false)",
        "in the worker process",
        "in the worker process",
        "as a module process (cattle_aws_direct_execution is false)",
        "in the worker process",
        "in the worker process",
        "as a module process (interpreter %s/python3 is not the controller's %s)" % (CONTROLLER_BIN, CONTROLLER_PYTHON),
        "in the worker process",
    ], out
    assert [module for module, _way in _decisions(out)][-1] == "cattle.aws.fleet_info"
    # Every module run in a worker found the AWS SDK loaded by ansible's main process before the fork.
    assert out.count("cattle.aws: the AWS SDK was preloaded by ansible's main process") == ways.count("in the worker process")
    delegated = json.loads((tmp_path / "results.json.delegated").read_text())
    assert delegated.get("failed") is not True and delegated["fleets"] == [], delegated

    acquired = results["acquired"]
    assert acquired["changed"] is True and acquired["outcome"] == "acquired" and acquired["lock"]["holder"] == "alice"
    # A refused lock: the same failure, message and lock shown either way.
    for key in ("held_process", "held_worker"):
        assert results[key]["failed"] is True and "alice" in results[key]["msg"], results[key]
    assert results["held_worker"]["msg"] == results["held_process"]["msg"]
    # Check mode reaches the module in the worker: it would release, and did not.
    assert results["check_release"]["changed"] is True
    # Ansible's own argument checking, the same message.
    assert results["unknown_worker"]["failed"] is True and "colour" in results["unknown_worker"]["msg"]
    assert results["unknown_worker"]["msg"] == results["unknown_process"]["msg"]
    # The task's environment is the module's: the endpoint it names does not answer.
    environment = results["environment_worker"]
    assert environment["failed"] is True and "127.0.0.1:9" in environment["msg"], environment
    assert results["released"]["changed"] is True
    assert not aws.client("ssm").get_parameters(Names=[NAME])["Parameters"]
    assert aws.client("ssm").get_parameters(Names=["/cattle/locks/other/prod"])["Parameters"] == []
