"""Session summary lines for the README's "Guarantees" section (numbers printed by the tests), and the
``observe_traffic`` fixture (the zero-downtime observer of the release tests)."""

from __future__ import annotations

import pytest

from helpers.observer import TrafficObserver

BAD_INPUT_TEST = "test_bad_inputs.py::test_bad_input_fails_naming_the_option_without_changes["
OBSERVER_PROPERTY = "cattle_traffic_observer"


@pytest.fixture
def observe_traffic(request):
    """``observe_traffic(endpoint, stack)`` starts a :class:`helpers.observer.TrafficObserver` on the
    stack's listener (or its ``rule_arn``) and returns it; it samples until the end of the test, which
    then fails (in its call phase) when any sample violated zero downtime, when it took fewer than 3
    samples, or when it never saw the listener forward traffic (``require_forward=False`` for a test
    whose listener must never forward, e.g. a first release that fails its gate). Call it right after
    making the stack, before the first release: it watches every release and rollback of the test and
    the time between."""
    observers = []
    request.node._cattle_traffic_observers = observers

    def observe(endpoint, stack, require_forward=True):
        rule_arn = stack.get("rule_arn")
        observer = TrafficObserver(endpoint, listener_arn=None if rule_arn else stack["listener_arn"],
                                   rule_arn=rule_arn)
        observer.require_forward = require_forward
        observers.append(observer)
        return observer.start()

    yield observe
    for observer in observers:  # the test failed before its check (or never reached it)
        observer.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After a test body that used ``observe_traffic``: stop its observers, record their numbers for
    the session summary and fail the test on a violation (a test body that failed keeps its error)."""
    try:
        result = yield
    except BaseException:
        _record_observers(item)
        raise
    for observer in _record_observers(item):
        observer.assert_zero_downtime(min_samples=3, require_forward=getattr(observer, "require_forward", True))
    return result


def _record_observers(item):
    observers = getattr(item, "_cattle_traffic_observers", None) or []
    for observer in observers:
        observer.stop()
    if observers:
        item.user_properties.append((OBSERVER_PROPERTY, {
            "observers": len(observers), "samples": sum(o.samples for o in observers),
            "violations": sum(len(o.violations) for o in observers),
            "seconds": round(sum(o.duration for o in observers), 3),
            "max_gap_ms": round(max(o.max_gap for o in observers) * 1000)}))
        print("zero-downtime observer: " + "; ".join(o.summary() for o in observers))
    return observers


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    _guarantees_summary(terminalreporter)
    # (pytest only takes hooks named pytest_*: one hook calls both summaries)
    _fault_matrix_summary(terminalreporter)


def _guarantees_summary(terminalreporter):
    reports = [r for r in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
               if getattr(r, "when", "call") == "call" and BAD_INPUT_TEST in r.nodeid]
    gaps = sum(1 for r in terminalreporter.stats.get("xfailed", []) if BAD_INPUT_TEST in r.nodeid)
    observed = [dict(r.user_properties)[OBSERVER_PROPERTY]
                for r in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
                if getattr(r, "when", "call") == "call" and OBSERVER_PROPERTY in dict(r.user_properties or [])]
    if not reports and not gaps and not observed:
        return
    terminalreporter.write_sep("-", "cattle.aws guarantees")
    if reports or gaps:
        passed = sum(1 for r in reports if r.passed and not hasattr(r, "wasxfail"))
        terminalreporter.write_line(f"{passed} bad inputs rejected with a message naming the option and no AWS change "
                                    f"({len(reports) + gaps} in the catalogue, {gaps} known gap(s) marked xfail)")
    if observed:
        samples = sum(o["samples"] for o in observed)
        seconds = sum(o["seconds"] for o in observed)
        terminalreporter.write_line(
            f"zero-downtime observer: {len(observed)} release tests, {samples} samples "
            f"({samples / seconds if seconds else 0:.0f}/s, longest gap {max(o['max_gap_ms'] for o in observed)} ms), "
            f"{sum(o['violations'] for o in observed)} violations")


FAULT_MATRIX_FILES = ("test_faults_api.py::", "test_faults_release.py::", "test_faults_kill.py::")


def _fault_matrix_summary(terminalreporter):
    """One line for the fault matrix (issue #8): its cases, each asserting a re-run converges."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
               if getattr(r, "when", "call") == "call" and any(f in r.nodeid for f in FAULT_MATRIX_FILES)]
    if not reports:
        return
    passed = sum(1 for r in reports if r.passed)
    terminalreporter.write_sep("-", "cattle.aws fault matrix")
    terminalreporter.write_line(f"fault matrix: {len(reports)} cases, {passed} converged on re-run"
                                + (f", {len(reports) - passed} FAILED" if passed < len(reports) else ""))
