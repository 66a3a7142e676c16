#!/usr/bin/env python
"""Build the collection tarball that ships: `ansible-galaxy collection build` from a clean copy.

Usage: tools/build_collection.py [OUTPUT_DIR]   (default build/dist)

The copy is made by tools/sync_collection.py (git-tracked and untracked-but-not-ignored files
only), so local state in the work tree (stack files, reports, Packer output) cannot end up in the
tarball; galaxy.yml's build_ignore then leaves out what is for development only (tests/, tools/,
extensions/, CI and lint glue). Writes OUTPUT_DIR/cattle-aws-<version>.tar.gz and a copy named
OUTPUT_DIR/cattle-aws.tar.gz, the stable name execution-environment.yml installs from. Prints the
versioned path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sync_collection  # noqa: E402  pylint: disable=wrong-import-position


def build(output_dir: str) -> str:
    """Build the tarball into ``output_dir``; return its (versioned) path."""
    output_dir = os.path.abspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    if not os.path.exists(galaxy):
        galaxy = "ansible-galaxy"
    with tempfile.TemporaryDirectory(prefix="cattle-build-") as tmp:
        sync_collection.main([tmp, "--quiet"])
        src = os.path.join(tmp, "ansible_collections", sync_collection.NAMESPACE, sync_collection.NAME)
        out = subprocess.run([galaxy, "collection", "build", "--force", "--output-path", output_dir],
                             cwd=src, check=True, capture_output=True, text=True).stdout
    # "Created collection for cattle.aws at /path/cattle-aws-0.1.0.tar.gz"
    path = out.strip().splitlines()[-1].rsplit(" at ", 1)[-1]
    shutil.copy2(path, os.path.join(output_dir, "%s-%s.tar.gz" % (sync_collection.NAMESPACE, sync_collection.NAME)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", nargs="?", default=os.path.join(REPO, "build", "dist"))
    args = parser.parse_args(argv)
    print(build(args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
