"""Release hygiene: the tarball that ships, installed offline next to amazon.aws, and the EE context.

`tools/build_collection.py` builds from a clean copy of the repository (tools/sync_collection.py)
with galaxy.yml's build_ignore; the tarball is installed with `ansible-galaxy collection install
--offline --no-deps` into a temporary directory, and everything after that runs with
ANSIBLE_COLLECTIONS_PATH = that directory only (amazon.aws comes from the venv's site-packages,
as it would from an installed `ansible` package). CI has no Galaxy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from helpers.ansible import ansible_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = {"fleet_ami", "fleet_gc", "fleet_health", "fleet_info", "immutable_fleet", "packer_build",
           "release_inputs", "release_report_files", "stack_lock", "traffic_point_info", "traffic_shift"}
ROLES = {"packer_bake", "health_gate"}


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "build_collection.py"), str(out)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert path.name == f"cattle-aws-{version}.tar.gz"
    assert (out / "cattle-aws.tar.gz").read_bytes() == path.read_bytes()
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory) -> Path:
    """The tarball installed offline; returns the collections root to use as the only path."""
    root = tmp_path_factory.mktemp("installed")
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(root)}
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps",
                           "--force", "-p", str(root), str(tarball)],
                          capture_output=True, text=True, check=False, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "ansible_collections" / "cattle" / "aws" / "MANIFEST.json").is_file()
    return root


def _ansible(root: Path, *args: str) -> str:
    env = ansible_env(extra_env={"ANSIBLE_COLLECTIONS_PATH": str(root)})
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, check=False,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stderr, proc.stderr
    return proc.stdout


def test_tarball_ships_the_collection_and_no_development_files(tarball):
    with tarfile.open(tarball) as tar:
        names = [m.name for m in tar.getmembers()]
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    top = {n.split("/")[0] for n in names}
    assert {"plugins", "roles", "playbooks", "meta", "docs", "changelogs", "README.md", "LICENSE",
            "requirements.txt", "requirements.yml"} <= top
    assert top.isdisjoint({".venv", "build", "tests", "tools", "extensions", ".git", ".ci", ".local-aws",
                           ".pytest_cache", ".hypothesis", "Makefile", "pytest.ini", ".ansible-lint",
                           ".gitignore", "execution-environment.yml", "stack.yml"}), sorted(top)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".tar.gz"))]
    assert not [n for n in names if n.startswith(("changelogs/fragments", "docs/dev", "tests/output"))]
    for expected in ("meta/runtime.yml", "meta/execution-environment.yml", "playbooks/sandbox.yml",
                     "roles/packer_bake/meta/argument_specs.yml", "roles/health_gate/meta/argument_specs.yml",
                     "docs/concepts.md", "docs/walkthrough.md", "docs/strategies.md", "docs/composing.md"):
        assert expected in names
    assert {f"plugins/modules/{m}.py" for m in MODULES} <= set(names)
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("cattle", "aws")
    assert info["dependencies"] == {"amazon.aws": ">=9.0.0"}


def test_installed_copy_documents_modules_and_roles(installed):
    listed = _ansible(installed, "ansible-doc", "-t", "module", "-l", "cattle.aws")
    assert {line.split()[0] for line in listed.splitlines() if line.strip()} == {f"cattle.aws.{m}" for m in MODULES}
    roles = _ansible(installed, "ansible-doc", "-t", "role", "-l", "cattle.aws")
    assert {f"cattle.aws.{r}:" for r in ROLES} <= set(roles.split())
    for role in ROLES:
        doc = json.loads(_ansible(installed, "ansible-doc", "-t", "role", f"cattle.aws.{role}", "--json"))
        main = doc[f"cattle.aws.{role}"]["entry_points"]["main"]
        assert main["short_description"]
        assert all(opt.startswith(role + "_") and spec.get("description")
                   for opt, spec in main["options"].items()), main["options"]
    doc = json.loads(_ansible(installed, "ansible-doc", "-t", "module", "cattle.aws.fleet_info", "--json"))
    # the installed copy answers, not the repository or build/collections
    assert doc["cattle.aws.fleet_info"]["doc"]["filename"].startswith(str(installed))


def test_installed_copy_runs_a_module_next_to_amazon_aws(installed, aws, run_module):
    result = run_module(aws, "cattle.aws.fleet_info", {"app": "shop", "environment": "prod"},
                        extra_env={"ANSIBLE_COLLECTIONS_PATH": str(installed)})
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["fleets"] == []
    assert result["live_version"] is None
    assert aws.mutating_calls() == []


def test_execution_environment_context(tarball, tmp_path):
    """`ansible-builder create` (no container engine needed): Packer step, deps, the tarball itself."""
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    # the EE file names build/dist/cattle-aws.tar.gz relative to itself: run on a copy of the repo's
    # EE file next to the freshly built tarball
    (tmp_path / "build" / "dist").mkdir(parents=True)
    (tmp_path / "build" / "dist" / "cattle-aws.tar.gz").write_bytes(tarball.read_bytes())
    ee_file = tmp_path / "execution-environment.yml"
    ee_file.write_text((REPO / "execution-environment.yml").read_text())
    context = tmp_path / "context"
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(ee_file), "-c", str(context),
                           "--output-filename", "Containerfile"],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No matches" not in proc.stdout + proc.stderr

    containerfile = (context / "Containerfile").read_text()
    assert 'EE_BASE_IMAGE="quay.io/ansible/' in containerfile
    packer_step = [line for line in containerfile.splitlines() if "releases.hashicorp.com/packer" in line]
    assert len(packer_step) == 1
    assert "sha256sum -c" in packer_step[0] and "/usr/local/bin" in packer_step[0]
    assert "packer version" in packer_step[0]
    assert "ARG PACKER_VERSION=" in containerfile
    # the Packer step belongs to the final image, before it drops root
    final = containerfile[containerfile.index("FROM base AS final"):]
    assert final.index("releases.hashicorp.com") < final.index("USER 1000")

    python_reqs = (context / "_build" / "requirements.txt").read_text().split()
    assert any(r.startswith("boto3") for r in python_reqs)
    assert any(r.startswith("botocore") for r in python_reqs)
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert {"name": "amazon.aws", "version": ">=9.0.0"} in galaxy
    [ours] = [c for c in galaxy if c.get("type") == "file"]
    # the galaxy stage runs in /build, where _build/ is copied: the path must resolve there
    shipped = context / "_build" / ours["name"]
    assert shipped.read_bytes() == tarball.read_bytes()


def test_collection_metadata_for_ee_builders_is_consistent():
    """meta/execution-environment.yml points at files that exist and agree with galaxy.yml."""
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["version"] == 1
    python = (REPO / meta["dependencies"]["python"]).read_text()
    assert "boto3" in python and "botocore" in python
    galaxy_reqs = yaml.safe_load((REPO / meta["dependencies"]["galaxy"]).read_text())["collections"]
    galaxy_yml = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert {c["name"]: c["version"] for c in galaxy_reqs} == galaxy_yml["dependencies"]
