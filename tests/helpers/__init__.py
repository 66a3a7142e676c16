"""Test helpers for cattle.aws (importable as ``helpers``: pytest.ini puts tests/ on sys.path).

- :class:`Endpoint`: a local AWS endpoint (URL, env, boto3 clients, reset, recorded calls).
- :func:`run_module` / :func:`run_playbook`: run ansible against an endpoint.

tests/conftest.py builds the fixtures (``aws_endpoint``, ``aws``, ``threaded_aws``,
``run_module``, ``run_playbook``) on top of these.
"""

from .endpoint import Endpoint, is_mutating
from .ansible import COLLECTIONS_PATH, REPO_ROOT, ansible_env, run_module, run_playbook

__all__ = [
    "COLLECTIONS_PATH",
    "REPO_ROOT",
    "Endpoint",
    "ansible_env",
    "is_mutating",
    "run_module",
    "run_playbook",
]
