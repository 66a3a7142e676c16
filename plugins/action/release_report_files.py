# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Write release-report.json and release-report.html on the controller (docs: plugins/modules/release_report_files.py).

An action plugin, not a module: the release playbooks run on the controller, and writing two
files there does not need the module start-up ``file`` + ``copy`` (stat, copy per file) cost.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.cattle.aws.plugins.plugin_utils import release_report as _report

REPORT_FILES = ("release-report.json", "release-report.html")
# Under dest: the reports of earlier runs that wrote to the same directory.
EARLIER_DIR = "earlier"

ARGUMENT_SPEC = {
    "record": {"type": "dict", "required": True},
    "dest": {"type": "path", "required": True},
}


def render(record):
    """{file name: content} of the report of ``record``; raises ReportError for an invalid record."""
    return {
        "release-report.json": json.dumps(_report.release_report(record), indent=4, sort_keys=True) + "\n",
        "release-report.html": _report.release_report_html(record),
    }


def _current(path):
    """(content as bytes, mode) of the file at path; (None, None) when there is none."""
    try:
        with open(path, "rb") as f:
            return f.read(), os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return None, None


def run_started(document):
    """The start of the run a release-report.json document (parsed) reports; None when it tells none."""
    try:
        return document["timeline"]["started"] or None
    except (KeyError, TypeError):
        return None


def archive_earlier_run(dest, started, check_mode=False, dir_mode=0o755):
    """Move the report files of another run (one that started at another time) out of ``dest``.

    They go to ``dest``/earlier/<that run's start>/, so that re-running a release (after a failure), a
    second rollback to the same version or a report_dir shared by several runs keeps every run's report.
    The same run writing again (its report updated) moves nothing. Returns the directory the files went
    to (or would, in check mode), or None.
    """
    try:
        with open(os.path.join(dest, REPORT_FILES[0]), encoding="utf-8") as f:
            earlier = run_started(json.load(f))
    except (OSError, ValueError):
        return None
    if earlier is None or earlier == started:
        return None
    target = os.path.join(dest, EARLIER_DIR, str(earlier).replace(":", ""))
    if check_mode:
        return target
    os.makedirs(target, mode=dir_mode, exist_ok=True)
    for name in REPORT_FILES:
        if os.path.exists(os.path.join(dest, name)):
            os.replace(os.path.join(dest, name), os.path.join(target, name))
    return target


def write_files(dest, contents, check_mode=False, dir_mode=0o755, file_mode=0o644):
    """Write each content to ``dest``/name atomically; return the paths that changed (or would)."""
    changed = []
    if not os.path.isdir(dest):
        changed.append(dest)
        if not check_mode:
            os.makedirs(dest, mode=dir_mode, exist_ok=True)
    for name, content in contents.items():
        path = os.path.join(dest, name)
        current, mode = _current(path)
        # Compared as bytes: a file of that name that is not UTF-8 is simply replaced.
        if current == content.encode("utf-8") and mode == file_mode:
            continue
        changed.append(path)
        if check_mode:
            continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix="." + name + ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(content)
            os.chmod(tmp, file_mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return changed


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        # A relative dest is the controller's working directory's (where ansible-playbook runs), not $PWD's,
        # which a process started by another one (a CI agent, ansible-runner) may have inherited stale.
        dest = os.path.abspath(args["dest"])
        try:
            contents = render(args["record"])
        except _report.ReportError as e:
            return dict(result, failed=True, msg="record: invalid release record: %s" % e)
        try:
            archived = archive_earlier_run(dest, run_started(json.loads(contents[REPORT_FILES[0]])),
                                           check_mode=self._task.check_mode)
            changed = write_files(dest, contents, check_mode=self._task.check_mode)
        except OSError as e:
            return dict(result, failed=True,
                        msg="dest: cannot write the release report in %s: %s (choose another report_dir)" % (dest, e))
        return dict(
            result,
            changed=bool(changed),
            dest=dest,
            files=[os.path.join(dest, name) for name in REPORT_FILES],
            written=changed,
            archived=archived,
            text=_report.release_report_text(args["record"]).splitlines(),
        )
