"""Client side of the local AWS endpoint (tools/local_aws.py)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
READ_PREFIXES = ("Describe", "List", "Get")
OBSERVER_MARK = "cattle-test-observer"  # helpers.observer's user agent mark


def is_mutating(action: str) -> bool:
    """True for an action that is not Describe*/List*/Get* (the check-mode rule)."""
    return not action.startswith(READ_PREFIXES)


class Endpoint:
    """A running local AWS endpoint.

    ``url``, ``env`` (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID=testing, AWS_SECRET_ACCESS_KEY=testing,
    AWS_DEFAULT_REGION / AWS_REGION=us-east-1), ``client(service)`` (cached boto3 client),
    ``reset()`` (moto state reset; seeded AMIs stay), ``calls()`` -> [(service, action), ...] since the
    last ``clear_calls()``, ``mutating_calls()`` (actions not Describe*/List*/Get*), ``call_log()``
    (dicts with method, path and HTTP status too).
    """

    def __init__(self, url: str, region: str = REGION, server: Any = None) -> None:
        self.url = url.rstrip("/")
        self.region = region
        self.server = server  # the in-process server (threaded_aws) or None
        self.env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r})"

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` talking to this endpoint (cached when no kwargs)."""
        if kwargs:
            return self._session.client(service, endpoint_url=self.url, **kwargs)
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, endpoint_url=self.url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self._clients[service]

    def _request(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(self.url + path, method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (local URL)
            return json.loads(resp.read() or b"null")

    def reset(self) -> None:
        """Reset every moto backend (the MOTO_AMIS_PATH AMIs are reloaded)."""
        self._request("/moto-api/reset", "POST")

    def call_log(self) -> list[dict[str, Any]]:
        """Recorded calls as dicts: service, action, method, path, status, user_agent, time.

        The zero-downtime observer's own reads (helpers.observer, user agent mark
        ``cattle-test-observer``) are left out: they run in a background thread during a test
        and are not calls of the code under test."""
        return [c for c in self._request("/_cattle/calls") if OBSERVER_MARK not in (c.get("user_agent") or "")]

    def calls(self) -> list[tuple[str, str]]:
        """[(service, action), ...] in request order since the last clear_calls()."""
        return [(c["service"], c["action"]) for c in self.call_log()]

    def clear_calls(self) -> None:
        self._request("/_cattle/calls/reset", "POST")

    def mutating_calls(self) -> list[tuple[str, str]]:
        return [c for c in self.calls() if is_mutating(c[1])]
