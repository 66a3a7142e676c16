#!/usr/bin/env python
"""Mirror this repository into DEST/ansible_collections/cattle/aws as a real copy.

Usage: tools/sync_collection.py DEST [--source DIR] [--with-deps]

The repository root is the collection root, but ansible (and ansible-test) need
the collection inside an ``ansible_collections/<namespace>/<name>`` tree. This
script keeps such a tree up to date:

- files come from ``git ls-files --cached --others --exclude-standard`` (tracked
  plus untracked-but-not-ignored files) when the source is a git work tree,
  otherwise from a directory walk with the exclusions in ``EXCLUDE_DIRS`` /
  ``EXCLUDE_GLOBS``;
- it is a mirror: files and directories in the destination that are not in the
  source are removed; unchanged files (same size and mtime) are not rewritten;
- symlinks in the source are copied as the files they point to, so the result
  never contains a symlink.

``--with-deps`` also mirrors collection dependencies that the running Python can
import (amazon.aws from the venv's site-packages) next to ours, so that tools
which only look at one collection root (ansible-test) find them.

Standard library only.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import stat
import subprocess
import sys

NAMESPACE = "cattle"
NAME = "aws"

# Directory names excluded anywhere in the tree (walk fallback and git output alike).
EXCLUDE_DIRS = {
    ".venv",
    ".git",
    ".local-aws",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
}
# Paths (relative to the repository root) excluded with everything below them.
EXCLUDE_TOP = {"build", "tests/output"}
EXCLUDE_GLOBS = ("*.tar.gz", "*.pyc", "*.pyo")
# Generated output inside the destination that the mirror leaves alone (ansible-test results).
PRESERVE_IN_DEST = {"tests/output"}

# Collection dependencies mirrored by --with-deps: (namespace, name).
DEPENDENCIES = (("amazon", "aws"),)


def _excluded(rel: str) -> bool:
    parts = rel.split("/")
    if any(part in EXCLUDE_DIRS for part in parts[:-1]):
        return True
    for top in EXCLUDE_TOP:
        if rel == top or rel.startswith(top + "/"):
            return True
    return any(fnmatch.fnmatch(parts[-1], pattern) for pattern in EXCLUDE_GLOBS)


def _git_files(source: str) -> list[str] | None:
    if not os.path.exists(os.path.join(source, ".git")):
        return None
    try:
        out = subprocess.run(
            ["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    files = []
    for raw in out.split(b"\0"):
        if not raw:
            continue
        rel = raw.decode("utf-8", "surrogateescape")
        # deleted-but-tracked files are still listed by --cached; skip what is not there
        if os.path.isfile(os.path.join(source, rel)):
            files.append(rel)
    return files


def _walk_files(source: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(source, followlinks=True):
        rel_root = os.path.relpath(root, source)
        rel_root = "" if rel_root == "." else rel_root.replace(os.sep, "/") + "/"
        dirs[:] = [d for d in dirs if d not in EXCLUDE_DIRS and (rel_root + d) not in EXCLUDE_TOP]
        for name in names:
            if os.path.isfile(os.path.join(root, name)):
                files.append(rel_root + name)
    return files


def list_files(source: str, use_git: bool = True) -> list[str]:
    files = _git_files(source) if use_git else None
    if files is None:
        files = _walk_files(source)
    return sorted(f for f in files if not _excluded(f))


def mirror(source: str, dest: str, files: list[str], preserve: set[str] | frozenset[str] = frozenset()) -> tuple[int, int]:
    """Make ``dest`` contain exactly ``files`` copied from ``source``. Return (copied, removed).

    Relative paths in ``preserve`` (and everything below them) are left untouched in ``dest``.
    """
    copied = removed = 0
    wanted = set(files)
    wanted_dirs = {""}
    for rel in files:
        parent = os.path.dirname(rel)
        while parent and parent not in wanted_dirs:
            wanted_dirs.add(parent)
            parent = os.path.dirname(parent)

    # remove stale entries (including any symlink), deepest first
    if os.path.lexists(dest) and (os.path.islink(dest) or not os.path.isdir(dest)):
        os.unlink(dest)
    os.makedirs(dest, exist_ok=True)
    for root, dirs, names in os.walk(dest, topdown=True):
        rel_root = os.path.relpath(root, dest)
        rel_root = "" if rel_root == "." else rel_root.replace(os.sep, "/") + "/"
        dirs[:] = [d for d in dirs if (rel_root + d) not in preserve]
        for name in names:
            rel = rel_root + name
            path = os.path.join(root, name)
            if rel not in wanted or os.path.islink(path):
                os.unlink(path)
                removed += 1
        for name in dirs:
            rel = rel_root + name
            path = os.path.join(root, name)
            if os.path.islink(path):
                os.unlink(path)
                removed += 1
            elif rel not in wanted_dirs:
                shutil.rmtree(path)
                removed += 1
        dirs[:] = [d for d in dirs if os.path.isdir(os.path.join(root, d)) and not os.path.islink(os.path.join(root, d))]

    for rel in files:
        src = os.path.join(source, rel)
        dst = os.path.join(dest, rel)
        st = os.stat(src)  # follows symlinks: the copy holds the content
        try:
            dst_st = os.lstat(dst)
        except FileNotFoundError:
            dst_st = None
        if (
            dst_st is not None
            and stat.S_ISREG(dst_st.st_mode)
            and dst_st.st_size == st.st_size
            and int(dst_st.st_mtime) == int(st.st_mtime)
            and stat.S_IMODE(dst_st.st_mode) == stat.S_IMODE(st.st_mode)
        ):
            continue
        if dst_st is not None and stat.S_ISDIR(dst_st.st_mode):
            shutil.rmtree(dst)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
        copied += 1
    return copied, removed


def find_installed_collection(namespace: str, name: str, exclude_root: str) -> str | None:
    """Locate an installed collection on sys.path (e.g. site-packages/ansible_collections)."""
    for entry in sys.path:
        candidate = os.path.join(entry or ".", "ansible_collections", namespace, name)
        if os.path.isdir(candidate) and not os.path.realpath(candidate).startswith(exclude_root):
            return candidate
    return None


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", help="directory that receives ansible_collections/%s/%s" % (NAMESPACE, NAME))
    parser.add_argument("--source", default=here, help="collection source (default: this repository)")
    parser.add_argument("--with-deps", action="store_true", help="also mirror %s" % ", ".join(".".join(d) for d in DEPENDENCIES))
    parser.add_argument("--no-git", action="store_true", help="walk the source tree instead of asking git")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)

    source = os.path.abspath(args.source)
    dest_root = os.path.abspath(os.path.join(args.dest, "ansible_collections"))
    target = os.path.join(dest_root, NAMESPACE, NAME)
    if os.path.realpath(source) == os.path.realpath(target):
        parser.error("source and destination are the same directory")

    copied, removed = mirror(source, target, list_files(source, use_git=not args.no_git), PRESERVE_IN_DEST)
    if not args.quiet:
        print("synced %s.%s -> %s (%d copied, %d removed)" % (NAMESPACE, NAME, target, copied, removed))

    if args.with_deps:
        for namespace, name in DEPENDENCIES:
            dep = find_installed_collection(namespace, name, os.path.realpath(dest_root))
            if dep is None:
                print("warning: collection %s.%s not found on sys.path" % (namespace, name), file=sys.stderr)
                continue
            dep_target = os.path.join(dest_root, namespace, name)
            copied, removed = mirror(dep, dep_target, list_files(dep, use_git=False))
            if not args.quiet:
                print("synced %s.%s -> %s (%d copied, %d removed)" % (namespace, name, dep_target, copied, removed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
