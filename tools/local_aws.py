#!/usr/bin/env python
"""Embedded default AWS endpoint for cattle.aws demos and tests.

A local AWS API (moto in server mode) on 127.0.0.1, wrapped in a small WSGI
middleware that records every AWS API call as ``(service, action)``.  Nothing
in ``plugins/`` or ``playbooks/`` knows about it: clients reach it only through
the standard endpoint settings (``AWS_ENDPOINT_URL`` / ``endpoint_url``).

Command line (run with the project's venv python, which has moto[server])::

    python tools/local_aws.py start  [--state-dir .local-aws] [--port 0] [--host 127.0.0.1]
    python tools/local_aws.py status [--state-dir .local-aws]
    python tools/local_aws.py env    [--state-dir .local-aws]   # eval "$(... env)"
    python tools/local_aws.py stop   [--state-dir .local-aws]
    python tools/local_aws.py serve  [--port 0] [--url-file F]  # foreground (used by start)

``start`` is idempotent: when the state dir names a live server it prints its
URL and exits 0.  It otherwise starts ``serve`` as a detached process (its own
session, output in ``STATE_DIR/server.log``), waits until it answers on
``/_cattle/health`` and prints the URL.  The state dir holds ``pid`` and
``endpoint`` (the URL).  ``--port 0`` lets the server bind a free port itself
(no race between choosing and binding).  ``stop`` sends SIGTERM, waits, then
SIGKILL, and removes the state files.  ``status`` exits 0 when running, 3 when
not.  ``env`` prints ``export AWS_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=testing
...`` lines.

Extra HTTP routes served next to the AWS APIs:

- ``GET  /_cattle/health``       ``{"ok": true, "pid": ..., "moto": "5.2.5"}``
- ``GET  /_cattle/calls``        JSON list of ``{"service", "action", "method",
  "path", "status", "user_agent", "time"}`` in request order (every SigV4-signed
  request; ``time`` is the epoch second it arrived)
- ``POST /_cattle/calls/reset``  clears that list
- ``POST /moto-api/reset``       moto's own state reset (the seeded AMIs stay)

Call journal: when the environment variable ``CATTLE_CALL_JOURNAL`` names a
file (read when the app is made), every recorded call is also appended to it
as one JSON line; ``/_cattle/calls/reset`` does not touch the journal.  The
test suite uses it to collect the API actions the whole suite made
(tools/check_iam_policy.py compares them with docs/iam-policy.json).

``service`` is the boto3 client name (``ec2``, ``elbv2``, ``autoscaling``,
``ssm``, ``route53``, ``cloudwatch``, ...), derived from the SigV4 credential
scope; ``action`` is the API operation name (``CreateTargetGroup``).

Seeded AMIs: ``MOTO_AMIS_PATH`` defaults to ``tools/local_aws_amis.json`` (an
Amazon-Linux-like x86_64 HVM ``ebs`` AMI whose root device /dev/xvda is an EBS
snapshot, so Packer's amazon-ebs builder accepts it as ``source_ami``).  It must
be set before moto is imported, which :func:`make_app` takes care of.

Importable pieces (tests use the same code): :func:`make_app`,
:class:`CallRecorder`, :func:`serve_in_thread`, :func:`aws_env`,
:func:`is_mutating`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

HERE = Path(__file__).resolve().parent
DEFAULT_AMIS_PATH = HERE / "local_aws_amis.json"
DEFAULT_STATE_DIR = ".local-aws"
DEFAULT_REGION = "us-east-1"
READ_PREFIXES = ("Describe", "List", "Get")

# SigV4 signing name -> boto3 client name, where they differ.
_SIGNING_TO_CLIENT = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "execute-api": "apigateway",
    "states": "stepfunctions",
    "elasticmapreduce": "emr",
    "es": "opensearch",
}
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_SMITHY_RPC_RE = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")


def aws_env(url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """The environment every process talking to the local endpoint gets."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def is_mutating(action: str) -> bool:
    """True for an action that is not Describe*/List*/Get*."""
    return not action.startswith(READ_PREFIXES)


# --------------------------------------------------------------------------- recorder
class _RestMatcher:
    """Maps (method, path) to an operation name from botocore's model (rest-xml/json)."""

    def __init__(self) -> None:
        self._routes: dict[str, list[tuple[str, re.Pattern[str], list[str], int, str]] | None] = {}
        self._lock = threading.Lock()

    def _load(self, service: str):
        with self._lock:
            if service in self._routes:
                return self._routes[service]
            routes = None
            try:
                import botocore.session

                model = botocore.session.get_session().get_service_model(service)
                if model.protocol.startswith("rest"):
                    routes = []
                    for name in model.operation_names:
                        http = model.operation_model(name).http
                        uri = http.get("requestUri", "/")
                        path_t, _sep, query_t = uri.partition("?")
                        pattern = ""
                        literal = 0
                        for part in re.split(r"(\{[^}]+\})", path_t):
                            if part.startswith("{"):
                                pattern += ".+" if part.endswith("+}") else "[^/]+"
                            else:
                                pattern += re.escape(part)
                                literal += len(part)
                        query_keys = [
                            q.split("=", 1)[0] for q in query_t.split("&") if q and "{" not in q
                        ]
                        routes.append(
                            (http.get("method", "GET"), re.compile(pattern.rstrip("/") + "/?$"),
                             query_keys, literal + len(query_keys), name)
                        )
            except Exception:  # unknown service: record the method and path instead
                routes = None
            self._routes[service] = routes
            return routes

    def match(self, service: str, method: str, path: str, query: dict[str, list[str]]) -> str | None:
        routes = self._load(service)
        if not routes:
            return None
        best = None
        for r_method, regex, query_keys, score, name in routes:
            if r_method == method and regex.match(path) and all(k in query for k in query_keys):
                if best is None or score > best[0]:
                    best = (score, name)
        return best[1] if best else None


_REST = _RestMatcher()


def classify(environ: dict[str, Any], body: bytes) -> tuple[str, str] | None:
    """(service, action) of one AWS API request, or None when it is not SigV4-signed."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _CREDENTIAL_RE.search(auth)
    if not m and "X-Amz-Credential" in query:  # presigned URL
        m = _CREDENTIAL_RE.search("Credential=" + query["X-Amz-Credential"][0])
    if not m:
        return None
    signing = m.group(4)
    form: dict[str, list[str]] = {}
    if body and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    params = {**query, **form}

    if signing == "elasticloadbalancing":
        version = (params.get("Version") or [""])[0]
        service = "elbv2" if version == "2015-12-01" else "elb"
    else:
        service = _SIGNING_TO_CLIENT.get(signing, signing)

    action = None
    target = environ.get("HTTP_X_AMZ_TARGET")
    path = environ.get("PATH_INFO", "") or "/"
    method = environ.get("REQUEST_METHOD", "GET")
    if target:  # JSON protocols: "AmazonSSM.PutParameter"
        action = target.rsplit(".", 1)[-1]
    elif (sm := _SMITHY_RPC_RE.match(path)) :  # smithy-rpc-v2-cbor (cloudwatch)
        action = sm.group(2)
    elif "Action" in params:  # query / ec2 protocols
        action = params["Action"][0]
    else:  # REST protocols (route53, s3, ...)
        action = _REST.match(service, method, path, query)
    if not action:
        action = f"{method} {path}"
    return service, action


class CallRecorder:
    """WSGI middleware recording every signed AWS call; serves /_cattle/*."""

    def __init__(self, app: Callable, journal: str | None = None) -> None:
        self.app = app
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.journal = journal if journal is not None else os.environ.get("CATTLE_CALL_JOURNAL") or None

    def _write_journal(self, call: dict[str, Any]) -> None:
        if not self.journal:
            return
        try:
            with open(self.journal, "a", encoding="utf-8") as f:
                f.write(json.dumps(call) + "\n")
        except OSError as exc:  # never break the request because of the journal
            print(f"local_aws: cannot write the call journal {self.journal}: {exc}", file=sys.stderr)

    # in-process access (threaded server)
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def _json(self, start_response, payload: Any, status: str = "200 OK") -> Iterable[bytes]:
        data = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/_cattle/"):
            if path == "/_cattle/health":
                from moto import __version__ as moto_version

                return self._json(start_response, {"ok": True, "pid": os.getpid(),
                                                   "moto": moto_version})
            if path == "/_cattle/calls" and method == "GET":
                return self._json(start_response, self.calls())
            if path == "/_cattle/calls/reset" and method == "POST":
                self.clear()
                return self._json(start_response, {"ok": True})
            return self._json(start_response, {"error": "not found"}, "404 Not Found")

        body = self._read_body(environ)
        call = None
        try:
            found = classify(environ, body)
        except Exception as exc:  # never break the request because of the recorder
            found = ("unknown", f"recorder error: {exc}")
        if found:
            call = {"service": found[0], "action": found[1], "method": method,
                    "path": path, "status": None,
                    "user_agent": environ.get("HTTP_USER_AGENT", ""), "time": time.time()}
            with self._lock:
                self._calls.append(call)

        def _start_response(status, headers, exc_info=None):
            if call is not None:
                call["status"] = int(status.split(" ", 1)[0])
                with self._lock:
                    self._write_journal(call)
            return start_response(status, headers, exc_info)

        return self.app(environ, _start_response)

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            body = stream.read(length)
        elif environ.get("wsgi.input_terminated"):  # chunked transfer encoding
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body


def make_app() -> CallRecorder:
    """moto's server-mode WSGI app wrapped in the recorder.

    Sets MOTO_AMIS_PATH (default: tools/local_aws_amis.json) before importing
    moto; if moto was already imported in this process without it, the seeded
    AMI is missing (a warning is printed).
    """
    if "MOTO_AMIS_PATH" not in os.environ:
        if "moto.ec2.models.amis" in sys.modules:
            print("local_aws: moto already imported; seeded AMIs may be missing", file=sys.stderr)
        os.environ["MOTO_AMIS_PATH"] = str(DEFAULT_AMIS_PATH)
    from moto.server import DomainDispatcherApplication, create_backend_app

    patch_moto_like_aws()
    return CallRecorder(DomainDispatcherApplication(create_backend_app))


def _resync_target_group_load_balancers(backend: Any) -> None:
    """Recompute every target group's LoadBalancerArns from the listeners' forward actions."""
    referenced: dict[str, list[str]] = {arn: [] for arn in backend.target_groups}
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            for rule in listener.rules.values():
                for action in rule.actions:
                    if action.type != "forward":
                        continue
                    for arn in backend._get_target_group_arns_from(action_data=action.data):
                        if arn in referenced and balancer.arn not in referenced[arn]:
                            referenced[arn].append(balancer.arn)
    for arn, target_group in backend.target_groups.items():
        target_group.load_balancer_arns = referenced[arn]


def patch_moto_like_aws() -> None:
    """Make moto answer like AWS where our tools depend on it (idempotent).

    moto 5.2 fills a target group's LoadBalancerArns when a listener or rule is created, but
    not when ModifyListener/ModifyRule (the way traffic moves) changes its forward action, nor
    when a rule or listener is deleted. AWS always reports the load balancers that currently
    route to the group; discovery relies on that, so recompute it after each of those calls.
    """
    from moto.elbv2.models import ELBv2Backend

    if getattr(ELBv2Backend, "_cattle_patched", False):
        return

    def resyncing(method: Callable) -> Callable:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = method(self, *args, **kwargs)
            _resync_target_group_load_balancers(self)
            return result

        wrapper.__name__ = method.__name__
        wrapper.__doc__ = method.__doc__
        return wrapper

    for name in ("create_listener", "create_rule", "modify_listener", "modify_rule", "delete_rule", "delete_listener", "delete_load_balancer"):
        setattr(ELBv2Backend, name, resyncing(getattr(ELBv2Backend, name)))
    ELBv2Backend._cattle_patched = True


def _make_server(host: str, port: int, app: Callable, quiet: bool = False):
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    handler = MotoRequestHandler
    if quiet:
        class _QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        handler = _QuietHandler
    return make_server(host, port, app, threaded=True, request_handler=handler)


class ThreadedServer:
    """An in-process server (see :func:`serve_in_thread`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = make_app()
        self._server = _make_server(host, port, self.app, quiet=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="local-aws")
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def serve_in_thread(port: int = 0, host: str = "127.0.0.1") -> ThreadedServer:
    """Start the recorder-wrapped moto app in a daemon thread of this process.

    Backends live in this process, so tests can monkeypatch them.  Returns an
    object with ``.url``, ``.app`` (the :class:`CallRecorder`) and ``.stop()``.
    """
    return ThreadedServer(host, port)


# --------------------------------------------------------------------------- launcher
def _http(url: str, method: str = "GET", timeout: float = 2.0) -> Any:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (local URL)
        return json.loads(resp.read() or b"null")


def health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        return _http(url.rstrip("/") + "/_cattle/health", timeout=timeout)
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child (we started it and nobody reaped it) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _read_state(state_dir: Path) -> tuple[int | None, str | None]:
    try:
        pid = int((state_dir / "pid").read_text().strip())
    except (OSError, ValueError):
        pid = None
    try:
        url = (state_dir / "endpoint").read_text().strip() or None
    except OSError:
        url = None
    return pid, url


def running(state_dir: Path) -> tuple[int, str] | None:
    """(pid, url) of the live server this state dir names, else None."""
    pid, url = _read_state(state_dir)
    if pid is None or url is None or not _pid_alive(pid):
        return None
    info = health(url)
    if not info or info.get("pid") != pid:
        return None
    return pid, url


def start(state_dir: Path, port: int = 0, host: str = "127.0.0.1", timeout: float = 30.0) -> str:
    """Start (or reuse) the detached server; return its URL."""
    state_dir.mkdir(parents=True, exist_ok=True)
    live = running(state_dir)
    if live:
        return live[1]
    url_file = state_dir / "endpoint"
    url_file.unlink(missing_ok=True)
    env = dict(os.environ)
    env.setdefault("MOTO_AMIS_PATH", str(DEFAULT_AMIS_PATH))
    log = open(state_dir / "server.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "serve", "--host", host,
         "--port", str(port), "--url-file", str(url_file)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
        start_new_session=True, close_fds=True,
    )
    log.close()
    (state_dir / "pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"local AWS endpoint exited with {proc.returncode}; "
                               f"see {state_dir / 'server.log'}")
        url = _read_state(state_dir)[1]
        if url and (info := health(url, timeout=1.0)) and info.get("pid") == proc.pid:
            return url
        time.sleep(0.05)
    _terminate(proc.pid)
    raise RuntimeError(f"local AWS endpoint not ready after {timeout}s; see {state_dir / 'server.log'}")


def _terminate(pid: int, grace: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _attempt in range(100):
        _reap(pid)
        if not _pid_alive(pid):
            return
        time.sleep(0.05)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(state_dir: Path) -> bool:
    """Stop the server this state dir names; True if one was running."""
    pid, url = _read_state(state_dir)
    was_running = False
    if pid is not None and _pid_alive(pid):
        info = health(url) if url else None
        # only kill what we started: the health answer or the command line must match
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            cmdline = ""
        if (info and info.get("pid") == pid) or "local_aws.py" in cmdline:
            _terminate(pid)
            was_running = True
    for name in ("pid", "endpoint"):
        (state_dir / name).unlink(missing_ok=True)
    return was_running


def serve(host: str, port: int, url_file: str | None) -> None:
    """Foreground server; writes its URL to url_file once bound."""
    app = make_app()
    server = _make_server(host, port, app)
    url = f"http://{host}:{server.server_port}"

    def _on_term(signum, frame):  # serve_forever runs in this thread: leave it
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _on_term)
    if url_file:
        tmp = Path(url_file + ".tmp")
        tmp.write_text(url + "\n")
        tmp.replace(url_file)
    print(f"local AWS endpoint (moto) serving on {url}, pid {os.getpid()}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("start", "stop", "status", "env", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--state-dir", default=os.environ.get("CATTLE_LOCAL_AWS_DIR",
                                                             DEFAULT_STATE_DIR))
        if name in ("start", "serve"):
            p.add_argument("--port", type=int, default=0, help="0 = any free port")
            p.add_argument("--host", default="127.0.0.1")
        if name == "serve":
            p.add_argument("--url-file")
        if name == "env":
            p.add_argument("--region", default=DEFAULT_REGION)
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir)

    if args.cmd == "serve":
        serve(args.host, args.port, args.url_file)
        return 0
    if args.cmd == "start":
        print(start(state_dir, args.port, args.host))
        return 0
    if args.cmd == "stop":
        print("stopped" if stop(state_dir) else "not running")
        return 0
    live = running(state_dir)
    if args.cmd == "status":
        if live:
            print(f"running pid {live[0]} at {live[1]}")
            return 0
        print("not running")
        return 3
    if args.cmd == "env":
        if not live:
            print(f"local AWS endpoint not running (state dir {state_dir})", file=sys.stderr)
            return 1
        for key, value in aws_env(live[1], args.region).items():
            print(f"export {key}={value}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
