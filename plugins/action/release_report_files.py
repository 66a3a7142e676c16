# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Write release-report.json and release-report.html on the controller (docs: plugins/modules/release_report_files.py).

An action plugin, not a module: the release playbooks run on the controller, and writing two
files there does not need the module start-up ``file`` + ``copy`` (stat, copy per file) cost.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
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


def _earlier_name(dest):
    """(start of the run whose report is in dest or None, name of its folder under earlier/).

    The folder is named after that run's start (UTC, without colons): a report that tells none
    (unreadable, not ours) after its files' modification time. Never a path: the start is parsed.
    """
    started = None
    try:
        with open(os.path.join(dest, REPORT_FILES[0]), encoding="utf-8") as f:
            started = run_started(json.load(f))
        moment = _report.parse_time(started)
    except (OSError, ValueError, _report.ReportError):
        moment = None
    if moment is None:
        started = None
        mtimes = [os.stat(os.path.join(dest, n)).st_mtime for n in REPORT_FILES if os.path.exists(os.path.join(dest, n))]
        moment = datetime.datetime.fromtimestamp(max(mtimes), tz=datetime.timezone.utc)
    return started, moment.strftime("%Y-%m-%dT%H%M%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H%M%SZ")


def archive_earlier_run(dest, started, check_mode=False, dir_mode=0o755):
    """Move the report files of another run (one that started at another time) out of ``dest``.

    They go to ``dest``/earlier/<that run's start>/, so that re-running a release (after a failure), a
    second rollback to the same version or a report_dir shared by several runs keeps every run's report.
    The same run writing again (its report updated) moves nothing. Returns the directory the files went
    to (or would, in check mode), or None. The caller holds the directory's lock (see ``locked``).
    """
    if not any(os.path.exists(os.path.join(dest, name)) for name in REPORT_FILES):
        return None
    earlier, name = _earlier_name(dest)
    if earlier is not None and earlier == started:
        return None
    target = os.path.join(dest, EARLIER_DIR, name)
    suffix = 1
    while os.path.exists(target):  # two runs that started in the same microsecond, or a folder made by hand
        suffix += 1
        target = os.path.join(dest, EARLIER_DIR, "%s-%d" % (name, suffix))
    if check_mode:
        return target
    os.makedirs(target, mode=dir_mode)
    # The JSON last: it is what tells a report to keep, should a move fail half way.
    for name in reversed(REPORT_FILES):
        if os.path.exists(os.path.join(dest, name)):
            shutil.move(os.path.join(dest, name), os.path.join(target, name))
    return target


@contextlib.contextmanager
def locked(dest, check_mode=False, dir_mode=0o755):
    """Hold an exclusive lock on the directory ``dest`` (made when missing, unless in check mode).

    Several hosts of one play (stacks released in parallel forks) may share a report_dir: without
    it, one could move the report another has just written. Yields whether dest was created.
    """
    if check_mode:
        yield False
        return
    created = not os.path.isdir(dest)
    os.makedirs(dest, mode=dir_mode, exist_ok=True)
    fd = os.open(dest, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # NFS emulates flock() with write locks, which a directory opened read-only cannot take: unlocked
        yield created
    finally:
        os.close(fd)


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
        check_mode = self._task.check_mode
        try:
            with locked(dest, check_mode=check_mode) as created:
                archived = archive_earlier_run(dest, run_started(json.loads(contents[REPORT_FILES[0]])), check_mode=check_mode)
                changed = ([dest] if created else []) + write_files(dest, contents, check_mode=check_mode)
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
