# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read, validate and type the release inputs; start the release record (docs: plugins/modules/release_inputs.py).

An action plugin, not tasks: reading the inputs, the argument spec check, the typing and the rules
between options were eight tasks of the release playbooks (about 0.45 s of every run), and the rules
read better - and are tested - as Python.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.cattle.aws.plugins.plugin_utils import release_inputs as _inputs

ARGUMENT_SPEC = {
    "purpose": {"type": "str", "required": True, "choices": list(_inputs.PURPOSES)},
    "stack_file": {"type": "str", "default": ""},
}
# The inputs' argument spec and defaults, shared with the documentation of the playbooks.
SPEC_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "playbooks", "vars", "release_argument_spec.yml")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def _load(self, path):
        # Templates in a stack file are templated, as include_vars' are (ansible-core >= 2.19 marks them trusted).
        try:
            return self._loader.load_from_file(path, cache="none", trusted_as_template=True)
        except TypeError:  # ansible-core < 2.19
            return self._loader.load_from_file(path, cache="none")

    def _stack_file(self, path):
        # A relative path is the working directory's (where ansible-playbook runs), not $PWD's, which a process
        # started by another one may have inherited stale.
        path = os.path.realpath(path)
        if not os.path.isfile(path):
            raise _inputs.InputError(
                f"stack_file: {path} is not a file. Give the path of the stack file (as cattle.aws.sandbox writes it), "
                "or the stack itself with -e @stack.yml. Nothing was changed.")
        data = self._templar.template(self._load(path))
        if not isinstance(data, dict):
            raise _inputs.InputError(f"stack_file: {path} must hold the stack's keys (a mapping). Nothing was changed.")
        return data

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        purpose = args["purpose"]
        spec_file = self._loader.load_from_file(SPEC_FILE)
        spec, defaults = spec_file["cattle_release_argument_spec"], spec_file["cattle_release_defaults"]
        # `environment` is also a play keyword: every input is read through the host's variables (extra vars
        # such as -e @stack.yml, inventory host vars), never as a play variable. A playbook that imports the
        # release passes the stack as one dict, cattle_release_stack. Variables given one by one
        # (-e version=1.4.2) win over the stack file.
        given = task_vars["hostvars"][task_vars["inventory_hostname"]]
        try:
            stack_file = self._stack_file(args["stack_file"]) if args["stack_file"] else {}
            inputs = _inputs.merge_inputs(
                defaults,
                self._templar.template(task_vars.get("cattle_release_stack") or {}),
                stack_file,
                {key: given[key] for key in spec if key in given},
            )
            inputs = _inputs.validate_inputs(spec, inputs, purpose)
        except _inputs.InputError as e:
            return dict(result, failed=True, msg=str(e))
        started = _inputs.now()
        result["ansible_facts"] = {
            "cattle_release": inputs,
            "cattle_release_label": _inputs.label(inputs, purpose),
            "cattle_release_phase": "validate",
            "cattle_release_attached": False,
            "cattle_release_provisioned": False,
            "cattle_release_record": _inputs.start_record(inputs, purpose, started),
        }
        return dict(result, changed=False)
