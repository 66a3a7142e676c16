"""How release_report_files keeps the report of an earlier run found in its directory (pure file work)."""

from __future__ import annotations

import json
import os
import threading

from ansible_collections.cattle.aws.plugins.action import release_report_files as rrf


def _report(dest, started, result="success"):
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "release-report.json").write_text(json.dumps({"result": result, "timeline": {"started": started}}))
    (dest / "release-report.html").write_text(f"<html>{result}</html>")


def test_the_same_run_moves_nothing_another_run_moves_both_files(tmp_path):
    _report(tmp_path, "2026-11-27T10:00:00Z")
    assert rrf.archive_earlier_run(str(tmp_path), "2026-11-27T10:00:00Z") is None
    target = tmp_path / "earlier" / "2026-11-27T100000Z"
    assert rrf.archive_earlier_run(str(tmp_path), "2026-11-27T11:00:00Z", check_mode=True) == str(target)
    assert not target.exists()
    assert rrf.archive_earlier_run(str(tmp_path), "2026-11-27T11:00:00Z") == str(target)
    assert sorted(os.listdir(target)) == ["release-report.html", "release-report.json"]
    assert sorted(os.listdir(tmp_path)) == ["earlier"]
    assert rrf.archive_earlier_run(str(tmp_path), "2026-11-27T11:00:00Z") is None, "nothing left to move"


def test_a_start_that_is_not_a_time_never_becomes_a_path(tmp_path):
    dest = tmp_path / "reports"
    _report(dest, "../../outside")
    os.utime(dest / "release-report.json", (1764237600, 1764237600))  # 2025-11-27T10:00:00Z
    os.utime(dest / "release-report.html", (1764237000, 1764237000))
    target = rrf.archive_earlier_run(str(dest), "2026-11-27T11:00:00Z")
    assert target == str(dest / "earlier" / "2025-11-27T100000Z")
    assert sorted(os.listdir(tmp_path)) == ["reports"]


def test_an_unreadable_report_or_a_lone_html_is_kept_too(tmp_path):
    (tmp_path / "release-report.json").write_text("{not json")
    os.utime(tmp_path / "release-report.json", (1764237600, 1764237600))
    assert rrf.archive_earlier_run(str(tmp_path), "2026-11-27T11:00:00Z") == str(tmp_path / "earlier" / "2025-11-27T100000Z")
    (tmp_path / "release-report.html").write_text("<html>alone</html>")
    os.utime(tmp_path / "release-report.html", (1764237601, 1764237601))
    target = rrf.archive_earlier_run(str(tmp_path), "2026-11-27T11:00:00Z")
    assert target == str(tmp_path / "earlier" / "2025-11-27T100001Z")
    assert os.listdir(target) == ["release-report.html"]


def test_two_runs_with_the_same_start_get_two_folders(tmp_path):
    _report(tmp_path, "2026-11-27T10:00:00.5Z", "rolled_back")
    first = rrf.archive_earlier_run(str(tmp_path), "2026-11-27T12:00:00Z")
    _report(tmp_path, "2026-11-27T10:00:00.500000Z", "success")
    second = rrf.archive_earlier_run(str(tmp_path), "2026-11-27T12:00:00Z")
    assert first == str(tmp_path / "earlier" / "2026-11-27T100000.500000Z") and second == first + "-2"
    assert json.loads((tmp_path / "earlier" / "2026-11-27T100000.500000Z" / "release-report.json").read_text())["result"] == "rolled_back"


def test_writers_sharing_a_directory_keep_every_report(tmp_path):
    """Stacks released in parallel forks with one report_dir: each run's report ends up in one place, none lost."""
    dest = str(tmp_path / "shared")
    starts = ["2026-11-27T10:00:%02dZ" % i for i in range(12)]

    def write(started):
        document = {"result": "success", "timeline": {"started": started}}
        with rrf.locked(dest):
            rrf.archive_earlier_run(dest, started)
            rrf.write_files(dest, {"release-report.json": json.dumps(document), "release-report.html": started})

    threads = [threading.Thread(target=write, args=(s,)) for s in starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = [json.loads(open(os.path.join(dest, "earlier", d, "release-report.json")).read())["timeline"]["started"]
            for d in os.listdir(os.path.join(dest, "earlier"))]
    latest = json.loads(open(os.path.join(dest, "release-report.json")).read())["timeline"]["started"]
    assert sorted(kept + [latest]) == starts
    for d in os.listdir(os.path.join(dest, "earlier")):
        started = json.loads(open(os.path.join(dest, "earlier", d, "release-report.json")).read())["timeline"]["started"]
        assert open(os.path.join(dest, "earlier", d, "release-report.html")).read() == started, "json and html of one run"


def test_a_directory_that_cannot_be_flocked_is_written_unlocked(tmp_path, monkeypatch):
    def no_flock(fd, operation):
        raise OSError(9, "Bad file descriptor")  # what NFS answers for a directory opened read-only

    monkeypatch.setattr(rrf.fcntl, "flock", no_flock)
    dest = str(tmp_path / "nfs")
    with rrf.locked(dest) as created:
        assert created is True
        rrf.write_files(dest, {"release-report.json": "{}", "release-report.html": ""})
    assert sorted(os.listdir(dest)) == ["release-report.html", "release-report.json"]
