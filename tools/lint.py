#!/usr/bin/env python
"""Run ansible-lint (profile and options from .ansible-lint) offline.

Usage: .venv/bin/python tools/lint.py [ansible-lint args...]

ansible-lint runs from the repository root, but the playbooks and roles call our
modules by FQCN (cattle.aws.*), which ansible only resolves from a collection
tree. So this mirrors the repository to build/collections (tools/sync_collection.py)
and points ANSIBLE_COLLECTIONS_PATH there; amazon.aws comes from the venv's
site-packages. `offline: true` in .ansible-lint keeps it away from Galaxy.
"""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sync_collection  # noqa: E402  pylint: disable=wrong-import-position


def main(argv: list[str] | None = None) -> int:
    build = os.path.join(REPO, "build", "collections")
    sync_collection.main([build, "--quiet"])
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = build
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    cmd = [os.path.join(bindir, "ansible-lint"), "--offline"] + list(sys.argv[1:] if argv is None else argv)
    return subprocess.call(cmd, cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main())
