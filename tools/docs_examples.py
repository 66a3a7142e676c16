#!/usr/bin/env python
"""Copy docs/examples/*.yml into the markdown pages that show them.

Usage: tools/docs_examples.py [--check]

A page shows an example as a fenced ```yaml block right after `<!-- example: docs/examples/NAME.yml -->`;
this rewrites each such block with the file's current content (--check: only report pages that
differ, exit 1). tests/integration/test_docs_examples.py runs the files and fails when a page
differs from its file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
BLOCK = re.compile(r"(<!--\s*example:\s*(.*?)\s*-->\s*\n```ya?ml\n)(.*?)(```)", re.S)


def render(text: str) -> str:
    def replace(match: re.Match) -> str:
        with open(os.path.join(REPO, match.group(2)), encoding="utf-8") as f:
            return match.group(1) + f.read() + match.group(4)
    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report pages that differ, change nothing")
    args = parser.parse_args(argv)
    stale = []
    for name in sorted(os.listdir(DOCS)):
        if not name.endswith(".md"):
            continue
        path = os.path.join(DOCS, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = render(text)
        if new != text:
            stale.append(name)
            if not args.check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(new)
    for name in stale:
        print(("differs: docs/" if args.check else "updated: docs/") + name)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
