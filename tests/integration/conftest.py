"""Session summary lines for the README's "Guarantees" section (numbers printed by the tests)."""

from __future__ import annotations

BAD_INPUT_TEST = "test_bad_inputs.py::test_bad_input_fails_naming_the_option_without_changes["


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    reports = [r for r in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
               if getattr(r, "when", "call") == "call" and BAD_INPUT_TEST in r.nodeid]
    gaps = sum(1 for r in terminalreporter.stats.get("xfailed", []) if BAD_INPUT_TEST in r.nodeid)
    if not reports and not gaps:
        return
    passed = sum(1 for r in reports if r.passed and not hasattr(r, "wasxfail"))
    terminalreporter.write_sep("-", "cattle.aws guarantees")
    terminalreporter.write_line(f"{passed} bad inputs rejected with a message naming the option and no AWS change "
                                f"({len(reports) + gaps} in the catalogue, {gaps} known gap(s) marked xfail)")
