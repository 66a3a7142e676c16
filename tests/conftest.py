"""Test harness for cattle.aws (the contract is in the project plan; summary here).

Fixtures
- ``aws_endpoint`` (session): the local AWS endpoint, a moto server subprocess started by
  ``tools/local_aws.py start`` in a temporary state dir and stopped at the end of the session;
  or, when the environment variable ``CATTLE_TEST_ENDPOINT`` holds a URL, that already-running
  server (not stopped). A :class:`helpers.Endpoint`: ``.url``, ``.env``, ``.client(service)``,
  ``.reset()``, ``.calls()``, ``.clear_calls()``, ``.mutating_calls()``, ``.call_log()``.
- ``aws`` (function): ``aws_endpoint`` after ``reset()`` and ``clear_calls()``.
- ``threaded_aws`` (function): the same API served by a server thread inside the test
  process (``tools.local_aws.serve_in_thread``), reset and cleared; moto backends live in this
  process, so ``monkeypatch`` works on them (e.g. ``moto.elbv2.models.FakeTargetGroup.health_for``).
  The server is started once per session and reused.
- ``run_module`` / ``run_playbook`` (function): the functions ``helpers.run_module`` and
  ``helpers.run_playbook`` (also importable: ``from helpers import run_module``):
  ``run_module(endpoint, "cattle.aws.fleet_info", {args}, check=False, diff=False)`` -> result
  dict; ``run_playbook(endpoint, path_or_fqcn, extra_vars=None, check=False, diff=False)`` ->
  (rc, stdout, stderr).

Session setup (pytest_configure): the repository is mirrored into
build/collections/ansible_collections/cattle/aws with tools/sync_collection.py (skip with
CATTLE_SKIP_SYNC=1) and build/collections is put on sys.path, so unit tests can import
``ansible_collections.cattle.aws.plugins...``. MOTO_AMIS_PATH defaults to
tools/local_aws_amis.json before anything imports moto.

API-call journal (for the least-privilege check): every endpoint this session starts (the
subprocess and the threaded one) appends each AWS call it serves, with its User-Agent, to
build/api-calls/<worker>[-threaded].jsonl (directory: env CATTLE_API_CALLS_DIR), whatever the
tests reset or clear. The controller empties the directory when the session starts.
``tools/check_iam_policy.py build/api-calls docs/iam-policy.json`` compares the calls made by
our modules, roles and playbooks (Ansible's and Packer's user agents; the tests' own boto3
setup calls are left out) with the policy, after a full run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = REPO_ROOT / "tools"
COLLECTIONS = REPO_ROOT / "build" / "collections"
API_CALLS_DIR = Path(os.environ.get("CATTLE_API_CALLS_DIR") or REPO_ROOT / "build" / "api-calls")

# Must happen before moto is imported anywhere in this process (threaded_aws, unit tests).
os.environ.setdefault("MOTO_AMIS_PATH", str(TOOLS / "local_aws_amis.json"))

from helpers import Endpoint, run_module as _run_module, run_playbook as _run_playbook  # noqa: E402


def _sync_collection() -> None:
    if os.environ.get("CATTLE_SKIP_SYNC") == "1":
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # pytest-xdist: the controller synced before starting the workers
    script = TOOLS / "sync_collection.py"
    if script.exists():
        subprocess.run([sys.executable, str(script), str(COLLECTIONS), "-q"], check=True,
                       cwd=REPO_ROOT)
        return
    import shutil  # fallback until the sync tool exists: a plain copy

    dest = COLLECTIONS / "ansible_collections" / "cattle" / "aws"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(REPO_ROOT, dest, ignore=shutil.ignore_patterns(
        ".venv", "build", ".git", ".local-aws", "__pycache__", ".pytest_cache", ".hypothesis",
        "output", "*.pyc"))


def _api_calls_journal(suffix: str = "") -> str:
    """This worker's call journal file (see the module docstring)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER") or "main"
    API_CALLS_DIR.mkdir(parents=True, exist_ok=True)
    return str(API_CALLS_DIR / f"{worker}{suffix}.jsonl")


# The longest files first: pytest-xdist (--dist loadfile) hands files out in collection order, so
# these start at once and the short ones fill the gaps at the end, instead of one worker running a
# long file alone while the other idles (minutes of CI on 2 cores).
LONGEST_FIRST = ("test_faults_release.py", "test_faults_kill.py", "test_release_rollback.py", "test_release.py",
                 "test_bad_inputs.py", "test_traffic_shift.py", "test_docs_examples.py", "test_many_stacks.py",
                 "test_awx_runner.py")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the others stays


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # controller (or no xdist): a fresh journal
        import shutil

        shutil.rmtree(API_CALLS_DIR, ignore_errors=True)
    _sync_collection()
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))


def _launcher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOLS / "local_aws.py"), *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """Session-wide local AWS endpoint (subprocess, or CATTLE_TEST_ENDPOINT)."""
    url = os.environ.get("CATTLE_TEST_ENDPOINT")
    if url:
        yield Endpoint(url)
        return
    state_dir = tmp_path_factory.mktemp("local-aws")
    proc = _launcher("start", "--state-dir", str(state_dir),
                     env={"CATTLE_CALL_JOURNAL": _api_calls_journal()})
    if proc.returncode != 0:
        log = state_dir / "server.log"
        pytest.fail(f"local AWS endpoint did not start: {proc.stderr}\n"
                    f"{log.read_text() if log.exists() else ''}")
    endpoint = Endpoint(proc.stdout.strip().splitlines()[-1])
    endpoint.state_dir = state_dir
    try:
        yield endpoint
    finally:
        _launcher("stop", "--state-dir", str(state_dir))


@pytest.fixture
def aws(aws_endpoint: Endpoint) -> Endpoint:
    """The session endpoint, reset and with its call record cleared."""
    aws_endpoint.reset()
    aws_endpoint.clear_calls()
    return aws_endpoint


@pytest.fixture(scope="session")
def _threaded_server():
    sys.path.insert(0, str(TOOLS))
    try:
        import local_aws
    finally:
        sys.path.remove(str(TOOLS))
    server = local_aws.serve_in_thread()
    server.app.journal = _api_calls_journal("-threaded")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def threaded_aws(_threaded_server) -> Endpoint:
    """An in-process endpoint whose moto backends the test can monkeypatch."""
    endpoint = Endpoint(_threaded_server.url, server=_threaded_server)
    endpoint.reset()
    endpoint.clear_calls()
    yield endpoint
    endpoint.reset()  # leave no patched-in state behind for the next test


@pytest.fixture
def run_module():
    """helpers.run_module(endpoint, fqcn, args=None, check=False, diff=False, extra_env=None)."""
    return _run_module


@pytest.fixture
def run_playbook():
    """helpers.run_playbook(endpoint, path_or_fqcn, extra_vars=None, check=False, diff=False, ...)."""
    return _run_playbook
