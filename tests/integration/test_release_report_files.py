"""cattle.aws.release_report_files (an action plugin) through ansible-playbook: what it writes, when it
changes, check mode, and its errors. No AWS endpoint: it writes on the controller only."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = Path(__file__).parent / "playbooks" / "release_report_files.yml"
RECORD = {
    "app": "shop", "environment": "test", "version": "1.0.1", "previous_version": "1.0.0", "strategy": "instant",
    "started": "2026-11-27T10:00:00Z", "finished": "2026-11-27T10:06:00Z", "result": "success",
    "phases": {"provision": {"started": "2026-11-27T10:00:00Z", "ended": "2026-11-27T10:04:00Z"},
               "shift": {"started": "2026-11-27T10:04:00Z", "ended": "2026-11-27T10:06:00Z"}},
    "weights": [{"at": "2026-11-27T10:04:00Z", "weights": {"1.0.0": 0, "1.0.1": 100}}],
    "fleets": {"1.0.0": {"instance_type": "t3.micro", "instance_count": 2, "up_from": None, "up_to": None},
               "1.0.1": {"instance_type": "t3.micro", "instance_count": 2, "up_from": "2026-11-27T10:00:00Z",
                         "up_to": None}},
    "instance_prices": {"t3.micro": 0.0104}, "currency": "USD",
}


def _write(run_playbook, dest, record=None, check=False):
    rc, out, err = run_playbook(None, PLAYBOOK, {"release_report_record": record or RECORD, "release_report_dest": str(dest)},
                                check=check)
    match = re.search(r'"msg": "RESULT (.*)"\n', out)
    result = json.loads(match.group(1).encode().decode("unicode_escape")) if match else None
    return rc, out + err, result


def test_writes_both_files_then_changes_nothing(run_playbook, tmp_path):
    dest = tmp_path / "reports" / "shop-test-1.0.1"
    rc, out, result = _write(run_playbook, dest, check=True)
    assert rc == 0, out
    assert result["changed"] is True and str(dest) in result["written"]
    assert not dest.exists(), "check mode wrote nothing"

    rc, out, result = _write(run_playbook, dest)
    assert rc == 0, out
    assert result["changed"] is True
    report = json.loads((dest / "release-report.json").read_text())
    assert report["version"] == "1.0.1" and report["result"] == "success"
    assert [p["name"] for p in report["timeline"]["phases"]] == ["provision", "shift"]
    assert "<svg" in (dest / "release-report.html").read_text()
    assert oct(os.stat(dest / "release-report.json").st_mode & 0o777) == "0o644"
    assert oct(os.stat(dest).st_mode & 0o777) == "0o755"
    assert result["text"][0] == "Release shop/test 1.0.1: success in 6m 00s (previous version 1.0.0)" and any("provisioning" in line for line in result["text"])
    assert sorted(os.listdir(dest)) == ["release-report.html", "release-report.json"], "no temporary file left"

    rc, out, result = _write(run_playbook, dest)
    assert rc == 0 and result["changed"] is False and result["written"] == []

    rc, out, result = _write(run_playbook, dest, record=dict(RECORD, result="rolled_back", failed_phase="shift"))
    assert rc == 0 and result["changed"] is True
    assert result["written"] == [str(dest / "release-report.json"), str(dest / "release-report.html")]
    assert json.loads((dest / "release-report.json").read_text())["result"] == "rolled_back"

    # A file of that name that is not UTF-8 (left by something else) is replaced, not an error.
    (dest / "release-report.html").write_bytes(b"\xff\xfe not a report")
    rc, out, result = _write(run_playbook, dest, record=dict(RECORD, result="rolled_back", failed_phase="shift"))
    assert rc == 0 and result["written"] == [str(dest / "release-report.html")], out
    assert "<svg" in (dest / "release-report.html").read_text()


def test_errors_name_the_option(run_playbook, tmp_path):
    rc, out, dummy = _write(run_playbook, tmp_path / "r", record={"phases": {}})
    assert rc != 0 and "record: invalid release record" in out and "version" in out
    assert not (tmp_path / "r").exists()

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc, out, dummy = _write(run_playbook, blocker / "r")
    assert rc != 0 and f"dest: cannot write the release report in {blocker / 'r'}" in out


def test_the_report_of_an_earlier_run_is_kept_under_earlier(run_playbook, tmp_path):
    dest = tmp_path / "reports"
    rolled_back = dict(RECORD, result="rolled_back", failed_phase="shift")
    assert _write(run_playbook, dest, record=rolled_back)[2]["archived"] is None
    # The same release run again (the failure fixed): it started later.
    again = dict(RECORD, started="2026-11-27T11:00:00.250000Z", finished="2026-11-27T11:06:00Z",
                 phases={"shift": {"started": "2026-11-27T11:00:00.250000Z", "ended": "2026-11-27T11:06:00Z"}})
    earlier = dest / "earlier" / "2026-11-27T100000Z"

    rc, out, result = _write(run_playbook, dest, record=again, check=True)
    assert rc == 0 and result["archived"] == str(earlier), out
    assert not earlier.exists() and json.loads((dest / "release-report.json").read_text())["result"] == "rolled_back"

    rc, out, result = _write(run_playbook, dest, record=again)
    assert rc == 0 and result["archived"] == str(earlier), out
    assert json.loads((dest / "release-report.json").read_text())["result"] == "success"
    assert json.loads((earlier / "release-report.json").read_text())["result"] == "rolled_back"
    assert "<svg" in (earlier / "release-report.html").read_text()
    assert sorted(os.listdir(dest)) == ["earlier", "release-report.html", "release-report.json"]

    # The same run writing again moves nothing; a third run keeps the second one's report beside the first's.
    rc, out, result = _write(run_playbook, dest, record=again)
    assert rc == 0 and result["archived"] is None and result["changed"] is False
    third = dict(again, started="2026-11-28T09:00:00Z", finished="2026-11-28T09:06:00Z", phases={"shift": {"started": "2026-11-28T09:00:00Z"}})
    assert _write(run_playbook, dest, record=third)[2]["archived"] == str(dest / "earlier" / "2026-11-27T110000.250000Z")
    assert sorted(os.listdir(dest / "earlier")) == ["2026-11-27T100000Z",
                                                    "2026-11-27T110000.250000Z"]
