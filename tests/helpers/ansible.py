"""Run cattle.aws modules and playbooks through ansible-core against an endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import ansible

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = REPO_ROOT / "build" / "collections"
# The venv's bin (ansible-playbook lives next to python), or CATTLE_ANSIBLE_BIN_DIR: the bin of a
# venv with another ansible-core (and boto3), to run the same tests against it (make test-compat).
BIN_DIR = Path(os.environ.get("CATTLE_ANSIBLE_BIN_DIR") or Path(sys.executable).parent)
PYTHON = str(BIN_DIR / "python") if os.environ.get("CATTLE_ANSIBLE_BIN_DIR") else sys.executable
# The collections the test venv's `ansible` package bundles (amazon.aws, ...), for that other ansible-core.
BUNDLED_COLLECTIONS = Path(ansible.__file__).resolve().parents[1]

# Variables that would point ansible/boto3 somewhere else than the test endpoint.
_SCRUB = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_URL", "EC2_URL", "S3_URL", "AWS_CA_BUNDLE", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "EC2_ACCESS_KEY", "EC2_SECRET_KEY", "EC2_REGION",
    "ANSIBLE_CONFIG",
)


def ansible_env(endpoint: Any = None, extra_env: dict[str, str] | None = None,
                stdout_callback: str | None = None) -> dict[str, str]:
    """The environment for an ansible process: endpoint env + collection path + quiet defaults."""
    env = {k: v for k, v in os.environ.items()
           if k not in _SCRUB and not k.startswith(("AWS_ENDPOINT_URL_",))}
    if endpoint is not None:
        env.update(endpoint.env)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": f"{COLLECTIONS_PATH}{os.pathsep}{BUNDLED_COLLECTIONS}",
        "ANSIBLE_PYTHON_INTERPRETER": PYTHON,
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    if stdout_callback:
        env["ANSIBLE_STDOUT_CALLBACK"] = stdout_callback
        env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "True"
    if extra_env:
        env.update(extra_env)
    return env


def _playbook_cmd(playbook: str, check: bool, diff: bool, verbosity: int) -> list[str]:
    cmd = [str(BIN_DIR / "ansible-playbook"), "-i", "localhost,", "-c", "local", playbook]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    return cmd


def run_module(endpoint: Any, module: str, args: dict[str, Any] | None = None, check: bool = False,
               diff: bool = False, extra_env: dict[str, str] | None = None,
               timeout: float = 300) -> dict[str, Any]:
    """Run one module (FQCN) on localhost through ansible-playbook; return its result dict.

    The result is what the module returned plus ansible's keys (``changed``, ``failed``,
    ``msg``, ``diff`` when ``diff=True``, ...). A failing module returns its result with
    ``failed: true`` (no exception); an ansible-level error (unknown module, bad YAML)
    raises AssertionError with ansible's output. ``args`` are written into a generated
    one-task playbook, so Jinja in string values is templated.
    """
    play = [{
        "name": "run_module",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "module", module: args or {}}],
    }]
    with tempfile.TemporaryDirectory(prefix="cattle-run-module-") as tmp:
        path = os.path.join(tmp, "play.yml")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(play, f)
        proc = subprocess.run(
            _playbook_cmd(path, check, diff, 0), capture_output=True, text=True, timeout=timeout,
            check=False,
            env=ansible_env(endpoint, extra_env, stdout_callback="ansible.posix.json"),
            cwd=tmp,
        )
    try:
        out = json.loads(proc.stdout)
        return out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(
            f"ansible did not run {module} (rc={proc.returncode})\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        ) from None


def run_playbook(endpoint: Any, playbook: str | os.PathLike, extra_vars: dict[str, Any] | None = None,
                 check: bool = False, diff: bool = False, extra_env: dict[str, str] | None = None,
                 cwd: str | os.PathLike | None = None, verbosity: int = 0,
                 timeout: float = 600, extra_args: list[str] | None = None) -> tuple[int, str, str]:
    """Run a playbook (a path, or an FQCN like ``cattle.aws.sandbox``); return (rc, stdout, stderr).

    Uses the default stdout callback (human-readable). ``extra_vars`` are passed as a JSON
    file (``-e @file``), so types survive; ``extra_args`` go on the command line after it (for
    example ``["-e", "keep=3"]``: a string, as a user typing it gives it).
    """
    playbook = str(playbook)
    with tempfile.TemporaryDirectory(prefix="cattle-run-playbook-") as tmp:
        cmd = _playbook_cmd(playbook, check, diff, verbosity)
        if extra_vars:
            vars_path = os.path.join(tmp, "extra_vars.json")
            with open(vars_path, "w", encoding="utf-8") as f:
                json.dump(extra_vars, f)
            cmd += ["-e", "@" + vars_path]
        cmd += list(extra_args or [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              env=ansible_env(endpoint, extra_env), cwd=cwd or REPO_ROOT)
    return proc.returncode, proc.stdout, proc.stderr
