"""The release report: timeline, overlap cost, text / JSON / HTML / set_stats renderings."""

from __future__ import annotations

import copy
import datetime
import json
import xml.etree.ElementTree as ET

import pytest
from botocore.session import Session
from botocore.stub import Stubber

from ansible_collections.cattle.aws.plugins.plugin_utils import release_report as rr

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime.datetime(2026, 11, 26, 15, 0, 0, tzinfo=datetime.timezone.utc)


def at(seconds):
    """ISO timestamp T0 + seconds, as the playbook writes it (now(utc=true).isoformat())."""
    return (T0 + datetime.timedelta(seconds=seconds)).isoformat()


def article_record(**overrides):
    """A release shaped like the article's production example: 16 x m5.xlarge at 0.192/h,
    4m provisioning, 3m init, 2m health/warm-up, 45s switch, 30s cleanup (615 s)."""
    record = {
        "app": "shop", "environment": "prod", "version": "1.4.2", "previous_version": "1.4.1",
        "strategy": "canary", "started": at(0), "finished": at(615), "result": "success",
        "phases": {
            "bake": {"skipped": True},
            "provision": {"started": at(0), "ended": at(240)},
            "initialization": {"started": at(240), "ended": at(420)},
            "health": {"started": at(420), "ended": at(540)},
            "shift": {"started": at(540), "ended": at(585)},
            "cleanup": {"started": at(585), "ended": at(615)},
        },
        "weights": [
            {"at": at(0), "weights": {"1.4.1": 1}},
            {"at": at(420), "weights": {"1.4.1": 1, "1.4.2": 0}},
            {"at": at(540), "weights": {"1.4.1": 90, "1.4.2": 10}},
            {"at": at(560), "weights": {"1.4.1": 50, "1.4.2": 50}},
            {"at": at(585), "weights": {"1.4.1": 0, "1.4.2": 100}},
        ],
        "fleets": {
            "1.4.1": {"instance_type": "m5.xlarge", "instance_count": 16, "up_from": None, "up_to": at(615)},
            "1.4.2": {"instance_type": "m5.xlarge", "instance_count": 16, "up_from": at(0), "up_to": None},
        },
        "instance_prices": {"m5.xlarge": 0.192},
        "currency": "EUR",
        "releases_per_week": 3.5,
    }
    record.update(overrides)
    return record


# ------------------------------------------------------------------ timeline

def test_timeline_durations_in_release_order_and_total():
    timeline = rr.phase_timeline(article_record())
    assert [(p["name"], p["seconds"], p["status"]) for p in timeline["phases"]] == [
        ("bake", 0.0, "skipped"),
        ("provision", 240.0, "done"),
        ("initialization", 180.0, "done"),
        ("health", 120.0, "done"),
        ("shift", 45.0, "done"),
        ("cleanup", 30.0, "done"),
    ]
    assert timeline["total_seconds"] == 615.0  # 10m 15s
    assert timeline["started"] == "2026-11-26T15:00:00Z"
    assert timeline["phases"][1]["label"] == "provisioning"


def test_phases_as_a_list_and_mixed_timestamp_forms_give_the_same_timeline():
    record = article_record()
    as_list = [dict(v, name=k) for k, v in record["phases"].items()]
    as_list[1]["started"] = T0  # a datetime object
    as_list[1]["ended"] = (T0 + datetime.timedelta(seconds=240)).timestamp()  # epoch seconds
    as_list[2]["started"] = "2026-11-26T15:04:00Z"  # Z suffix
    as_list[2]["ended"] = "2026-11-26T15:07:00"  # naive = UTC
    other = article_record(phases=list(reversed(as_list)))
    assert rr.phase_timeline(other) == rr.phase_timeline(record)


def test_missing_phases_and_record_window_default_to_the_phases():
    record = article_record(phases={"provision": {"started": at(10), "ended": at(70)},
                                    "shift": {"started": at(80), "ended": at(100)}})
    del record["started"], record["finished"]
    timeline = rr.phase_timeline(record)
    assert [p["name"] for p in timeline["phases"]] == ["provision", "shift"]
    assert timeline["total_seconds"] == 90.0
    assert rr.phase_timeline(article_record(phases=None))["phases"] == []


def test_a_phase_without_end_is_incomplete_and_runs_until_finished():
    record = article_record(result="rolled_back", failed_phase="health", failure_reason="2 of 16 targets unhealthy",
                            finished=at(500))
    record["phases"]["health"] = {"started": at(420)}
    del record["phases"]["shift"], record["phases"]["cleanup"]
    health = [p for p in rr.phase_timeline(record)["phases"] if p["name"] == "health"][0]
    assert health == {"name": "health", "label": "health validation & warm-up", "started": "2026-11-26T15:07:00Z",
                      "ended": "2026-11-26T15:08:20Z", "seconds": 80.0, "status": "incomplete"}


def test_an_interrupted_phase_ends_where_the_rollback_starts():
    record = article_record(result="rolled_back", failed_phase="shift", failure_reason="alarm", finished=at(600))
    record["phases"]["shift"] = {"started": at(540)}
    del record["phases"]["cleanup"]
    record["phases"]["rollback"] = {"started": at(575), "ended": at(600)}
    phases = {p["name"]: p for p in rr.phase_timeline(record)["phases"]}
    assert (phases["shift"]["seconds"], phases["shift"]["status"]) == (35.0, "incomplete")
    assert list(phases) == ["bake", "provision", "initialization", "health", "shift", "rollback"]
    assert "35s traffic switching · 25s rollback" in rr.release_report_text(record)


@pytest.mark.parametrize("change, message", [
    ({"version": None}, "no 'version'"),
    ({"result": "maybe"}, "result: 'maybe' is not one of success, rolled_back, failed"),
    ({"phases": {"shift": {"started": at(50), "ended": at(40)}}}, "phases.shift: ended"),
    ({"phases": {"shift": {"ended": at(40)}}}, "phases.shift: has 'ended' but no 'started'"),
    ({"phases": {"shift": {"started": "yesterday"}}}, "phases.shift.started: 'yesterday' is not an ISO 8601"),
    ({"phases": "fast"}, "phases: expected a dict or a list"),
    ({"finished": at(-5)}, "finished"),
])
def test_malformed_records_are_refused_naming_the_key(change, message):
    with pytest.raises(rr.ReportError, match=message.replace("(", r"\(")):
        rr.release_report(article_record(**change))


# ------------------------------------------------------------------ cost

def test_article_figures_one_hour_of_overlap_and_the_monthly_formula():
    # 16 x m5.xlarge at 0.192/h side by side for one hour: 16 * 0.192 = 3.072 per release.
    record = article_record(finished=at(3600))
    record["fleets"]["1.4.1"]["up_to"] = at(3600)
    cost = rr.overlap_cost(record)
    assert cost["overlap_seconds"] == 3600.0
    assert cost["cost"] == pytest.approx(16 * 0.192)
    assert cost["cost"] == pytest.approx(3.072)
    # 3.5 releases a week, 52/12 weeks a month: 3.072 * 3.5 * 52 / 12 = 46.592
    assert cost["monthly_cost"] == pytest.approx(46.592)
    assert cost["weeks_per_month"] == pytest.approx(4.3333333)
    assert rr.monthly_projection(3.072, 3.5) == pytest.approx(3.072 * 3.5 * 52 / 12)
    assert cost["currency"] == "EUR"


def test_overlap_cost_of_the_article_timeline_is_billed_per_second():
    cost = rr.overlap_cost(article_record())  # new fleet up for all 615 s beside the old one
    assert cost["overlap_seconds"] == 615.0
    assert cost["cost"] == pytest.approx(615 / 3600 * 16 * 0.192)  # 0.5248
    assert round(cost["cost"], 4) == 0.5248
    assert cost["monthly_cost"] == pytest.approx(0.5248 * 3.5 * 52 / 12)
    fleets = {f["version"]: f for f in cost["fleets"]}
    assert fleets["1.4.1"]["cost"] == 0.0 and fleets["1.4.1"]["extra_seconds"] == 0.0  # the baseline
    assert fleets["1.4.2"]["extra_instance_hours"] == pytest.approx(615 / 3600 * 16)
    assert fleets["1.4.2"]["still_up"] is True


def test_overlap_is_only_the_time_both_fleets_were_up():
    record = article_record()
    record["fleets"]["1.4.2"]["up_from"] = at(100)
    record["fleets"]["1.4.1"]["up_to"] = at(400)
    cost = rr.overlap_cost(record)
    assert cost["overlap_seconds"] == 300.0
    assert cost["cost"] == pytest.approx(300 / 3600 * 16 * 0.192)


def test_different_instance_types_are_priced_separately():
    record = article_record(instance_prices={"m5.xlarge": 0.192, "m5.large": 0.096})
    record["fleets"]["1.4.2"].update(instance_type="m5.large", instance_count=4)
    cost = rr.overlap_cost(record)
    assert cost["cost"] == pytest.approx(615 / 3600 * 4 * 0.096)


@pytest.mark.parametrize("prices", [None, {}, {"t3.micro": 0.0104}])
def test_a_missing_price_makes_the_cost_unknown_never_invented(prices):
    cost = rr.overlap_cost(article_record(instance_prices=prices))
    assert cost["cost"] == "unknown"
    assert cost["monthly_cost"] == "unknown"
    assert {f["version"]: f["hourly_price"] for f in cost["fleets"]} == {"1.4.1": "unknown", "1.4.2": "unknown"}
    assert "unknown" in rr.release_report_text(article_record(instance_prices=prices))
    assert rr.release_stats(article_record(instance_prices=prices))["cattle_release_cost"] == "unknown"


def test_first_release_has_no_overlap_and_costs_nothing():
    record = article_record(previous_version=None, instance_prices=None,
                            fleets={"1.4.2": {"instance_type": "m5.xlarge", "instance_count": 16, "up_from": at(0)}})
    cost = rr.overlap_cost(record)
    assert cost["overlap_seconds"] == 0.0
    assert cost["cost"] == 0.0
    assert cost["monthly_cost"] == 0.0


def test_without_releases_per_week_the_projection_is_unknown():
    cost = rr.overlap_cost(article_record(releases_per_week=None))
    assert cost["releases_per_week"] is None
    assert cost["monthly_cost"] == "unknown"
    assert cost["cost"] == pytest.approx(0.5248, abs=1e-4)


# ------------------------------------------------------------------ pricing API

def _price_list_item(price):
    return json.dumps({
        "product": {"productFamily": "Compute instance",
                    "attributes": {"instanceType": "m5.xlarge", "regionCode": "eu-west-1", "operatingSystem": "Linux"}},
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {"ABC.JRTCKXETXF": {"priceDimensions": {"ABC.JRTCKXETXF.6YS6EN2CT7": {
                "unit": "Hrs", "pricePerUnit": {"USD": price}, "description": "$%s per On Demand Linux m5.xlarge" % price}}}},
            "Reserved": {"ABC.38NPMPTW36": {"priceDimensions": {"ABC.38NPMPTW36.2TG2D8R56U": {
                "unit": "Quantity", "pricePerUnit": {"USD": "1000"}}}}},
        },
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z",
    })


def _pricing_client():
    return Session().create_client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing")


def test_price_from_pricing_api_filters_and_reads_the_on_demand_hourly_price():
    client = _pricing_client()
    expected_filters = [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in (
        ("instanceType", "m5.xlarge"), ("regionCode", "eu-west-1"), ("operatingSystem", "Linux"),
        ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"), ("marketoption", "OnDemand"))]
    with Stubber(client) as stub:
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [_price_list_item("0.2140000000")]},
                          {"ServiceCode": "AmazonEC2", "Filters": expected_filters, "FormatVersion": "aws_v1",
                           "MaxResults": 10})
        assert rr.price_from_pricing_api(client, "m5.xlarge", "eu-west-1") == (0.214, "USD")
        stub.assert_no_pending_responses()


def test_price_from_pricing_api_returns_none_when_aws_lists_nothing():
    client = _pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
        assert rr.price_from_pricing_api(client, "x9.nothing", "eu-west-1") is None


# ------------------------------------------------------------------ renderings

def test_text_report_has_the_one_line_timeline_table_and_cost():
    text = rr.release_report_text(article_record())
    lines = text.splitlines()
    assert lines[0] == "Release shop/prod 1.4.2: success in 10m 15s (previous version 1.4.1)"
    assert lines[1] == ("4m 00s provisioning · 3m 00s initialization · 2m 00s health validation & warm-up"
                        " · 45s traffic switching · 30s cleanup")
    rows = {line.split("  ")[0]: line.split() for line in lines if line and not line.startswith(("Release", "4m"))}
    assert rows["provisioning"][-4:] == ["4m", "00s", "39%", "done"]
    assert rows["bake"][-1] == "skipped"
    assert rows["total"][-2:] == ["10m", "15s"]
    assert "Cost of this release: 0.52 EUR" in text
    assert "Monthly at 3.5 releases/week (x 52/12 weeks a month): 7.96 EUR" in text  # 0.5248*3.5*52/12
    assert "16 x m5.xlarge (1.4.2) for 10m 15s" in text


def test_text_report_of_a_rollback_names_the_phase_and_reason():
    record = article_record(result="rolled_back", failed_phase="health", failure_reason="2 of 16 targets unhealthy")
    text = rr.release_report_text(record)
    assert "Release shop/prod 1.4.2: rolled back in 10m 15s" in text
    assert "Failed in health validation & warm-up: 2 of 16 targets unhealthy" in text


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45, "45s"), (59.6, "1m 00s"), (242, "4m 02s"),
                                           (3723, "1h 02m 03s")])
def test_format_duration(seconds, text):
    assert rr.format_duration(seconds) == text


def _parse_html(document):
    assert document.startswith("<!DOCTYPE html>\n")
    return ET.fromstring(document[len("<!DOCTYPE html>\n"):])  # raises on malformed markup


def test_html_is_well_formed_self_contained_with_one_bar_per_phase_and_one_line_per_version():
    document = rr.release_report_html(article_record())
    root = _parse_html(document)
    svgs = root.findall(".//" + SVG + "svg")
    assert len(svgs) == 2
    bars = svgs[0].findall(SVG + "rect[@class='bar']")
    assert [b.get("data-phase") for b in bars] == ["provision", "initialization", "health", "shift", "cleanup"]
    widths = {b.get("data-phase"): float(b.get("width")) for b in bars}
    assert widths["provision"] == pytest.approx(560 * 240 / 615, abs=0.1)
    lines = svgs[1].findall(SVG + "polyline[@class='weight-line']")
    assert [line.get("data-version") for line in lines] == ["1.4.1", "1.4.2"]
    new_points = [tuple(map(float, p.split(","))) for p in lines[1].get("points").split()]
    assert new_points[-1][1] == pytest.approx(12)  # ends at 100 % (top of the plot)
    # no script, no external asset
    lowered = document.lower()
    for needle in ("<script", "src=", "href=", "@import", "url("):
        assert needle not in lowered


def test_html_escapes_user_text():
    record = article_record(failure_reason="<b>&boom</b>", result="failed", failed_phase="shift")
    root = _parse_html(rr.release_report_html(record))
    assert "<b>&boom</b>" in "".join(root.itertext())


def test_html_with_no_phases_or_weights_still_renders():
    record = article_record(phases={}, weights=[], fleets={})
    root = _parse_html(rr.release_report_html(record))
    assert not root.findall(".//" + SVG + "rect[@class='bar']")
    assert "no weight samples recorded" in "".join(root.itertext())


def test_json_report_and_stats():
    record = article_record()
    before = copy.deepcopy(record)
    report = rr.release_report(record)
    assert record == before  # pure: the record is not modified
    json.dumps(report)  # serialisable as is
    assert report["schema_version"] == 1
    assert report["weights"][-1] == {"at": "2026-11-26T15:09:45Z", "weights": {"1.4.1": 0.0, "1.4.2": 100.0}}
    stats = rr.release_stats(record)
    assert stats == {
        "cattle_release_app": "shop",
        "cattle_release_environment": "prod",
        "cattle_release_version": "1.4.2",
        "cattle_release_previous_version": "1.4.1",
        "cattle_release_result": "success",
        "cattle_release_failed_phase": None,
        "cattle_release_failure_reason": None,
        "cattle_release_durations": {"bake": 0.0, "provision": 240.0, "initialization": 180.0, "health": 120.0,
                                     "shift": 45.0, "cleanup": 30.0},
        "cattle_release_total_seconds": 615.0,
        "cattle_release_overlap_seconds": 615.0,
        "cattle_release_cost": 0.5248,
        "cattle_release_monthly_cost": 7.9595,
        "cattle_release_currency": "EUR",
    }
