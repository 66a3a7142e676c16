"""The release report filters rendered through ansible (tests/integration/playbooks/release_report.yml)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = Path(__file__).parent / "playbooks" / "release_report.yml"


def _record():
    def at(seconds):
        return "2026-11-26T15:%02d:%02dZ" % divmod(seconds, 60)

    return {
        "app": "shop", "environment": "prod", "version": "1.4.2", "previous_version": "1.4.1",
        "started": at(0), "finished": at(615), "result": "success",
        "phases": {"provision": {"started": at(0), "ended": at(240)},
                   "initialization": {"started": at(240), "ended": at(420)},
                   "health": {"started": at(420), "ended": at(540)},
                   "shift": {"started": at(540), "ended": at(585)},
                   "cleanup": {"started": at(585), "ended": at(615)}},
        "weights": [{"at": at(0), "weights": {"1.4.1": 1, "1.4.2": 0}},
                    {"at": at(585), "weights": {"1.4.1": 0, "1.4.2": 1}}],
        "fleets": {"1.4.1": {"instance_type": "m5.xlarge", "instance_count": 16, "up_to": at(615)},
                   "1.4.2": {"instance_type": "m5.xlarge", "instance_count": 16, "up_from": at(0)}},
        "instance_prices": {"m5.xlarge": 0.192}, "currency": "EUR", "releases_per_week": 3.5,
    }


def test_filters_render_a_given_record_through_ansible(run_playbook, tmp_path):
    extra_vars = {"release_report_record": _record(), "release_report_dir": str(tmp_path)}
    rc, out, err = run_playbook(None, PLAYBOOK, extra_vars, extra_env={"ANSIBLE_SHOW_CUSTOM_STATS": "True"})
    assert rc == 0, out + err
    assert "Release shop/prod 1.4.2: success in 10m 15s (previous version 1.4.1)" in out
    assert "4m 00s provisioning · 3m 00s initialization" in out
    assert "Cost of this release: 0.52 EUR" in out

    report = json.loads((tmp_path / "release-report.json").read_text())
    assert report["timeline"]["total_seconds"] == 615.0
    assert report["cost"]["cost"] == pytest.approx(615 / 3600 * 16 * 0.192)
    html = (tmp_path / "release-report.html").read_text()
    root = ET.fromstring(html[len("<!DOCTYPE html>\n"):])
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect[@class='bar']")) == 5
    assert "cattle_release_total_seconds" in out and "615.0" in out  # set_stats shown at the end


def test_record_built_with_set_fact_and_now_renders(run_playbook, tmp_path):
    rc, out, err = run_playbook(None, PLAYBOOK, {"release_report_dir": str(tmp_path)})
    assert rc == 0, out + err
    assert "Release shop/test 1.0.1: success in" in out
    report = json.loads((tmp_path / "release-report.json").read_text())
    assert [p["name"] for p in report["timeline"]["phases"]] == ["bake", "provision"]
    assert report["timeline"]["phases"][1]["status"] == "done"
    fleets = {f["version"]: f for f in report["cost"]["fleets"]}
    assert fleets["1.0.1"]["up_from"].endswith("Z")  # a datetime from now(utc=true) is accepted
    assert report["cost"]["currency"] == "USD"
    assert report["weights"][-1]["weights"] == {"1.0.0": 0.0, "1.0.1": 1.0}
