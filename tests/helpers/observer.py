"""Zero-downtime observer: samples what a listener serves while a release runs (issue #8).

    from helpers.observer import TrafficObserver

    with TrafficObserver(aws, listener_arn=stack["listener_arn"]) as observer:
        ok(release(aws, run_playbook, stack, "1.1.0"))
    observer.assert_zero_downtime()

A daemon thread takes one sample every ``interval`` seconds (default 50 ms; when a sample takes
longer than that, the next one starts at once). A sample reads the serving action (the listener's
default action, or the rule ``rule_arn`` when the stack is served by a rule; never any other rule)
with DescribeListeners / DescribeRules, then DescribeTargetHealth of every target group that action
forwards to with a weight > 0 (a target group without ``Weight`` counts as weight 1, as on AWS).
On the in-process endpoint (``threaded_aws``) the same answers are read from moto's models
directly, without the HTTP round trips (~10 us instead of ~5 ms per call).

A sample is a violation when

- the action gives weight > 0 to a target group with no target in state ``healthy`` (states:
  healthy, initial, unhealthy, unused, draining, unavailable; an empty group has none), or
- the listener forwarded in an earlier sample and now forwards to nothing: an action other than
  ``forward`` (e.g. the fixed 503 again) or a forward whose weights are all 0.

A listener that never forwarded yet (a stack's first release: the fixed-response 503 of
tests/helpers/release.py make_stack) is not a violation. A sample that suggests a violation is
confirmed by reading the action once more: if it changed meanwhile (the release moved traffic
between the two reads) the sample is torn and is dropped (counted in ``torn``), not reported.

Results: ``samples`` (complete samples), ``forward_samples`` (those in which traffic was
forwarded), ``violations`` (human-readable: time offset, weights, health), ``errors`` (samples that
failed with an API error, e.g. the endpoint was reset; not violations), ``rate`` (samples per
second achieved), ``max_gap`` (longest time between two sample starts, s).

The observer's boto3 client (from ``endpoint.client``) carries the user agent mark
:data:`OBSERVER_MARK`: ``Endpoint.calls()`` / ``call_log()`` / ``mutating_calls()`` leave those
calls out (assertions such as "no API call" keep meaning the collection's calls), and
tools/check_iam_policy.py ignores them anyway (not a ``cattle.aws/`` or Packer user agent).
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from botocore.config import Config

from .endpoint import OBSERVER_MARK


def _tg_name(arn: str) -> str:
    """arn:...:targetgroup/<name>/<id> -> <name> (the version is in the name, e.g. shop-test-1-1-0)."""
    parts = arn.split(":targetgroup/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else arn


def forward_weights(actions: list[dict[str, Any]]) -> dict[str, int] | None:
    """Target group ARN -> weight of the forward action among ``actions``; None when none forwards."""
    for action in sorted(actions or [], key=lambda a: a.get("Order", 0)):
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 1}
        return {}
    return None


def _plain_actions(actions: list[Any]) -> list[dict[str, Any]]:
    """moto's FakeAction objects as the API shows them (a copy: the server thread may change them)."""
    plain = []
    for action in actions:
        data = copy.deepcopy(action.data)
        if "Order" in data:
            data["Order"] = int(data["Order"])
        plain.append(data)
    return plain


class TrafficObserver:
    """Context manager sampling a listener's (or a rule's) traffic in a daemon thread."""

    def __init__(self, endpoint: Any, listener_arn: str | None = None, rule_arn: str | None = None,
                 interval: float = 0.05) -> None:
        if (listener_arn is None) == (rule_arn is None):
            raise ValueError("TrafficObserver needs exactly one of listener_arn and rule_arn")
        self.endpoint = endpoint
        self.listener_arn = listener_arn
        self.rule_arn = rule_arn
        self.interval = interval
        # Own client (made here, in the caller's thread: boto3 sessions are not thread-safe to build).
        self._client = endpoint.client("elbv2", config=Config(
            user_agent_extra=OBSERVER_MARK, retries={"max_attempts": 1},
            connect_timeout=5, read_timeout=10))
        self.samples = 0
        self.forward_samples = 0
        self.torn = 0
        self.violations: list[str] = []
        self.errors: list[str] = []
        self.weights_seen: list[dict[str, int]] = []  # each distinct {tg name: weight} in order
        self._starts: list[float] = []
        self._forwarded = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._t_end: float | None = None
        self.cpu_seconds = 0.0  # CPU time of the sampling thread (its client side cost)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "TrafficObserver":
        if self._thread is not None:
            return self
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="traffic-observer")
        self._thread.start()
        return self

    def stop(self) -> "TrafficObserver":
        if self._thread is not None and self._t_end is None:
            self._stop.set()
            self._thread.join(timeout=30)
            self._t_end = time.monotonic()
        return self

    def __enter__(self) -> "TrafficObserver":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ sampling
    def _action(self) -> list[dict[str, Any]]:
        backend = self._backend()
        if backend is not None:
            # The load balancer's own state, not the Describe* answers: a test may patch those to
            # emulate AWS' eventual consistency (a stale read-back), which must reach the module's
            # read, not the observer's.
            # (list() copies in one step: the server's threads may add a load balancer meanwhile.)
            listeners = [listener for lb in list(backend.load_balancers.values()) for listener in list(lb.listeners.values())]
            if self.rule_arn:
                [rule] = [r for listener in listeners for r in list(listener.rules.values()) if r.arn == self.rule_arn]
                return _plain_actions(rule.actions)
            [listener] = [listener for listener in listeners if listener.arn == self.listener_arn]
            return _plain_actions(listener.default_actions)
        if self.rule_arn:
            [rule] = self._client.describe_rules(RuleArns=[self.rule_arn])["Rules"]
            return rule["Actions"]
        [listener] = self._client.describe_listeners(ListenerArns=[self.listener_arn])["Listeners"]
        return listener["DefaultActions"]

    def _health(self, tg_arn: str) -> list[str]:
        backend = self._backend()
        if backend is not None:
            return [status.status for status in backend.describe_target_health(tg_arn, [])]
        descriptions = self._client.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
        return [d["TargetHealth"]["State"] for d in descriptions]

    def _backend(self) -> Any:
        """moto's ELBv2 backend when the endpoint is the in-process server (threaded_aws), else None.

        In process, a sample reads the same models DescribeListeners / DescribeTargetHealth answer
        from (patched target health included) without an HTTP round trip: a few microseconds instead
        of ~5 ms per call, so sampling every 50 ms does not slow down the release it watches."""
        if getattr(self.endpoint, "server", None) is None:
            return None
        from moto.elbv2.models import elbv2_backends

        # arn:aws:elasticloadbalancing:<region>:<account>:listener[-rule]/...
        region, account = (self.listener_arn or self.rule_arn).split(":")[3:5]
        return elbv2_backends[account][region]

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_at:
                if self._stop.wait(next_at - now):
                    break
            started = time.monotonic()
            self._starts.append(started)
            next_at = max(started + self.interval, next_at + self.interval)
            cpu = time.thread_time()
            try:
                self._sample(started - self._t0)
            except Exception as exc:  # noqa: BLE001 (an endpoint reset or a torn read: not a violation)
                self.errors.append(f"t=+{started - self._t0:.3f}s {type(exc).__name__}: {exc}")
            self.cpu_seconds += time.thread_time() - cpu

    def _sample(self, offset: float) -> None:
        actions = self._action()
        weights = forward_weights(actions)
        health: dict[str, list[str]] = {}
        problems: list[str] = []
        if weights is None or not any(w > 0 for w in weights.values()):
            if self._forwarded:
                what = "forwards to nothing" if weights is None else "gives every target group weight 0"
                problems.append(f"the serving action {what} ({_describe(actions)})")
        else:
            for arn, weight in weights.items():
                if weight <= 0:
                    continue
                states = self._health(arn)
                health[_tg_name(arn)] = states
                if "healthy" not in states:
                    problems.append(f"weight {weight} to {_tg_name(arn)} with no healthy target "
                                    f"({len(states)} target(s): {', '.join(states) or 'none'})")
        if problems and self._action() != actions:
            self.torn += 1  # the release changed the action between our reads: no consistent view
            return
        self.samples += 1
        if weights and any(w > 0 for w in weights.values()):
            self._forwarded = True
            self.forward_samples += 1
            named = {_tg_name(a): w for a, w in weights.items()}
            if not self.weights_seen or self.weights_seen[-1] != named:
                self.weights_seen.append(named)
        if problems:
            shown = {_tg_name(a): w for a, w in (weights or {}).items()}
            self.violations.append(f"t=+{offset:.3f}s weights {shown} health {health}: {'; '.join(problems)}")

    # ------------------------------------------------------------------ results
    @property
    def duration(self) -> float:
        end = self._t_end if self._t_end is not None else time.monotonic()
        return max(end - self._t0, 0.0) if self._thread is not None else 0.0

    @property
    def rate(self) -> float:
        """Samples per second achieved (complete samples over the observed time)."""
        return self.samples / self.duration if self.duration else 0.0

    @property
    def max_gap(self) -> float:
        """Longest time between the starts of two consecutive samples (s)."""
        starts = list(self._starts)
        return max((b - a for a, b in zip(starts, starts[1:])), default=0.0)

    def summary(self) -> str:
        return (f"{self.samples} samples in {self.duration:.1f} s ({self.rate:.0f}/s, longest gap "
                f"{self.max_gap * 1000:.0f} ms), {self.forward_samples} forwarding, {len(self.violations)} "
                f"violation(s), {self.torn} torn, {len(self.errors)} error(s); weights seen {self.weights_seen}")

    def assert_zero_downtime(self, min_samples: int = 3, require_forward: bool = False) -> None:
        """Stop sampling; fail listing the violations, or when too few samples were taken (so the check
        cannot pass vacuously). ``require_forward``: also fail when no sample saw traffic forwarded
        (the observer watched a listener that never served a release)."""
        self.stop()
        target = self.rule_arn or self.listener_arn
        if self.violations:
            shown = self.violations[:10]
            more = f"\n  ... and {len(self.violations) - 10} more" if len(self.violations) > 10 else ""
            raise AssertionError(f"downtime on {target}: {len(self.violations)} sample(s) of {self.samples} "
                                 f"violate zero downtime:\n  " + "\n  ".join(shown) + more)
        if self.samples < min_samples:
            raise AssertionError(f"the traffic observer took {self.samples} sample(s) (< {min_samples}) of "
                                 f"{target}: {self.summary()}; errors: {self.errors[:5]}")
        if require_forward and not self.forward_samples:
            raise AssertionError(f"the traffic observer never saw {target} forward traffic: {self.summary()}")


def _describe(actions: list[dict[str, Any]]) -> str:
    types = [a.get("Type") for a in actions or []]
    fixed = [a["FixedResponseConfig"].get("StatusCode") for a in actions or [] if a.get("FixedResponseConfig")]
    return ", ".join(map(str, types)) + (f" {fixed[0]}" if fixed else "")
