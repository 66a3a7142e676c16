# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Run a cattle.aws module inside the task's worker process on the controller.

A module task normally costs a module start-up: a temporary directory made and removed through
the shell, the AnsiballZ payload written and run by a new interpreter, which imports
``ansible.module_utils.basic``, boto3 and amazon.aws' module_utils again, compiled from the zip
every time. Our modules only talk to AWS APIs, and they nearly always run on the controller
(``connection: local``). There the action runs the module's ``main()`` in the worker process
ansible forked for the task, the way ansible.netcommon runs network modules (``import_modules``):
the same module code, the same arguments (``_ansible_check_mode``, ``no_log``, ``diff``... set
by ansible itself), the result parsed by ansible's own code. The worker is a fork per task, so
nothing the module does outlives the task (a task ``environment`` is set in the worker's own).

The module runs the usual way whenever running it here could differ: another connection than
``local`` (the module runs on that host), ``become``, ``async``, a task ``timeout``, an
interpreter other than the controller's own (``ansible_python_interpreter``), or
``cattle_aws_direct_execution: false`` (for example to keep the module's files with
``ANSIBLE_KEEP_REMOTE_FILES``).
"""

from __future__ import annotations

import gc
import importlib
import inspect
import io
import json
import os
import sys
import traceback

from ansible import constants as C
from ansible.module_utils import basic
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.utils.display import Display
from ansible.vars.clean import remove_internal_keys

from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import is_warm
from ansible_collections.cattle.aws.plugins.module_utils._fleet.connection import warm_up

display = Display()

# ansible's strategy imports a task's action plugin in the controller's main process (to read its
# BYPASS_HOST_LOOP) before it forks the task's worker: loading the AWS SDK here loads it once for
# every cattle.aws module the play runs in a worker, instead of once per task.
warm_up()

ENABLE_VAR = "cattle_aws_direct_execution"
# Modules without METADATA (ours) are (de)serialized with ansible's legacy profile.
SERIALIZATION_PROFILE = "legacy"

try:  # ansible-core >= 2.19: the arguments are serialized by profile
    from ansible.module_utils.common.json import Direction, get_module_encoder

    _ARGUMENTS_ENCODER = get_module_encoder(SERIALIZATION_PROFILE, Direction.CONTROLLER_TO_MODULE)
    _ARGUMENTS_ENCODER_OPTIONS = {}
except ImportError:  # ansible-core 2.17, 2.18: as module_common encodes them
    from ansible.module_utils.common.json import AnsibleJSONEncoder as _ARGUMENTS_ENCODER

    _ARGUMENTS_ENCODER_OPTIONS = {"vault_to_text": True}


def _encode_arguments(module_args):
    """The bytes a module process reads as its arguments."""
    return json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=_ARGUMENTS_ENCODER, **_ARGUMENTS_ENCODER_OPTIONS).encode()


try:  # ansible-core >= 2.19: what the AnsiballZ wrapper prints for an exception a module did not handle
    from ansible.module_utils._internal._ansiballz._loader import _handle_exception
except ImportError:  # ansible-core 2.17, 2.18: the interpreter prints the traceback
    _handle_exception = None


def preload_module(name):
    """Import the module ``name`` runs, here: in ansible's main process, when it loads the action.

    Each task's worker then inherits the module's code and its module_utils (and amazon.aws' that
    they import), instead of importing them again: about 45 ms less a module task (bench/README.md).
    Best effort: a failing import is left to the worker, which reports it as the module's failure.
    """
    if is_warm() and ".plugins.modules." in name:
        try:
            importlib.import_module(name)
        except Exception:  # pylint: disable=broad-exception-caught
            return
        gc.freeze()  # as warm_up() does: the garbage collector of the workers does not walk them


def _exit_status(exit_):
    return 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1


def _unhandled_exception(exception):
    """Report an exception the module did not handle as its process would (on the captured streams); its exit status."""
    if _handle_exception is not None:
        try:
            _handle_exception(exception, SERIALIZATION_PROFILE)
        except SystemExit as exit_:
            return _exit_status(exit_)
        except Exception:  # pylint: disable=broad-except
            pass  # ansible-core changed it: fall back to the traceback
    sys.stderr.write(traceback.format_exc())
    return 1


class DirectExecutionAction(NormalAction):
    """The normal action of a module, with the module run in this process when that is the same."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        preload_module(cls.__module__.replace(".plugins.action.", ".plugins.modules.", 1))

    def _direct_execution_refused(self, task_vars, wrap_async):
        """Why the module must run the usual way; None when it can run here."""
        templar = self._templar
        if not boolean(templar.template(task_vars.get(ENABLE_VAR, True)), strict=False):
            return "%s is false" % ENABLE_VAR
        if self._connection.transport != "local":
            return "connection %s" % self._connection.transport
        if self._play_context.become:
            return "become"
        if wrap_async or self._task.async_val:
            return "async"
        if self._task.timeout:
            # The task timeout interrupts the worker; a module process is what it was made for.
            return "a task timeout"
        interpreter = self._module_interpreter(task_vars)
        if interpreter != sys.executable:
            return "interpreter %s is not the controller's %s" % (interpreter or "(to be discovered)", sys.executable)
        return None

    def _module_interpreter(self, task_vars):
        """The Python the module process would run under, as ansible resolves it (None: not known yet)."""
        if self._task.delegate_to:
            task_vars = task_vars.get("ansible_delegated_vars", {}).get(self._task.delegate_to, task_vars)
        # ansible_python_interpreter, else the configured interpreter_python (ANSIBLE_PYTHON_INTERPRETER)
        interpreter = self._templar.template(C.config.get_config_value("INTERPRETER_PYTHON", variables=task_vars))
        if not interpreter or str(interpreter).startswith("auto"):
            # Discovery: known only once ansible has run it for this host.
            interpreter = task_vars.get("ansible_facts", {}).get("discovered_interpreter_python")
        return interpreter and str(interpreter).strip()

    def _execute_module(self, module_name=None, module_args=None, tmp=None, task_vars=None, persist_files=False,
                        delete_remote_tmp=None, wrap_async=False, **kwargs):
        task_vars = task_vars if task_vars is not None else {}
        refused = self._direct_execution_refused(task_vars, wrap_async)
        if refused:
            display.vvv("cattle.aws: running %s as a module process (%s)" % (module_name or self._task.action, refused))
            return super()._execute_module(module_name=module_name, module_args=module_args, tmp=tmp, task_vars=task_vars,
                                           persist_files=persist_files, delete_remote_tmp=delete_remote_tmp,
                                           wrap_async=wrap_async, **kwargs)
        module_name = module_name or self._task.action
        module_args = self._task.args if module_args is None else module_args
        self._update_module_args(module_name, module_args, task_vars, **kwargs)
        # The task's `environment` is what the module process would have had on top of ours.
        environment = {}
        self._compute_environment_string(raw_environment_out=environment)
        os.environ.update({str(name): str(value) for name, value in environment.items()})
        display.vvv("cattle.aws: running %s in the worker process" % module_name)
        preloaded = "was preloaded by ansible's main process" if is_warm() else "was not preloaded: the module loads it"
        display.vvv("cattle.aws: the AWS SDK %s" % preloaded)
        return self._run_in_this_process(module_name, module_args)

    def _run_in_this_process(self, module_name, module_args):
        context = self._shared_loader_obj.module_loader.find_plugin_with_context(
            module_name, collection_list=self._task.collections)
        module = importlib.import_module(context.plugin_resolved_name)

        basic._ANSIBLE_ARGS = _encode_arguments(module_args)
        if hasattr(basic, "_ANSIBLE_PROFILE"):
            basic._ANSIBLE_PROFILE = SERIALIZATION_PROFILE
        stdout, stderr = io.StringIO(), io.StringIO()
        saved = sys.stdout, sys.stderr
        rc = 0
        try:
            sys.stdout, sys.stderr = stdout, stderr
            module.main()
            raise RuntimeError("New-style module did not handle its own exit.")
        except SystemExit as exit_:
            rc = _exit_status(exit_)
        except Exception as ex:  # pylint: disable=broad-except
            rc = _unhandled_exception(ex)
        finally:
            sys.stdout, sys.stderr = saved
            basic._ANSIBLE_ARGS = None

        res = {"rc": rc, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
        if "profile" in inspect.signature(self._parse_returned_data).parameters:
            data = self._parse_returned_data(res, SERIALIZATION_PROFILE)
        else:
            data = self._parse_returned_data(res)
        remove_internal_keys(data)
        for stream in ("stdout", "stderr"):
            if stream in data and stream + "_lines" not in data:
                data[stream + "_lines"] = (data.get(stream) or "").splitlines()
        return data
