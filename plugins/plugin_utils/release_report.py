# -*- coding: utf-8 -*-

# Copyright: Contributors to the cattle.aws project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: controller-side helpers of the cattle.aws.release_* filters.
# It is not a public API; it may change in any release without notice.

"""The release report: phase timeline, overlap cost, text / JSON / HTML renderings, AWX stats.

Everything here is a pure function of the *release record*, a plain structure the release
playbook builds with ``set_fact`` as it goes (timestamps from ``now(utc=true).isoformat()``):

.. code-block:: yaml

    app: shop                         # optional
    environment: prod                 # optional
    version: "1.4.2"                  # required
    previous_version: "1.4.1"         # optional (null on the first release)
    strategy: canary                  # optional, shown as is
    started: "2026-11-26T15:00:00Z"   # optional: defaults to the first phase start
    finished: "2026-11-26T15:10:15Z"  # optional: defaults to the last phase end
    result: success                   # success | rolled_back | failed (default: success)
    failed_phase: health              # optional (set by the rescue)
    failure_reason: "2 of 4 targets unhealthy"   # optional
    phases:                           # a dict name -> {started, ended, skipped}, or a list of
      provision: {started: ..., ended: ...}      # {name, started, ended, skipped}
      bake: {skipped: true}
    weights:                          # samples: time -> weight per version (ALB weights 0-999,
      - {at: ..., weights: {"1.4.1": 1, "1.4.2": 0}}       # shown as a share of their sum)
    fleets:                           # a dict version -> {...}, or a list of {version, ...}
      "1.4.1": {instance_type: m5.xlarge, instance_count: 16, up_from: null, up_to: ...}
      "1.4.2": {instance_type: m5.xlarge, instance_count: 16, up_from: ..., up_to: null}
    instance_prices: {m5.xlarge: 0.192}   # per instance hour; from the stack file
    currency: EUR
    releases_per_week: 3.5

A phase with a start and no end is the phase that failed (or was interrupted): it ends where
the next phase (the rescue's ``rollback``) starts, or at ``finished``. ``up_from: null`` means
"up before the release started", ``up_to: null`` "still up when the release finished"; both are
clipped to the release window, which is all a report can measure. Timestamps are ISO 8601 strings (``Z`` or an offset; naive ones are UTC), datetime
objects, or epoch seconds.

Overlap cost: in every stretch of the release window where two or more fleets were up, each fleet
other than the one the stack would run anyway (the previous version's, or when it is not up, the
oldest one up) is duplicate capacity, billed per second: seconds / 3600 x instance_count x the
hourly price of its instance type (Linux On-Demand is billed per second; the 60-second minimum
per launched instance is not modelled). A price missing from ``instance_prices`` makes the cost
``"unknown"``: prices are never guessed. The monthly projection is the release cost x
``releases_per_week`` x 52 / 12 (the average number of weeks in a month).
"""

from __future__ import annotations

import datetime
import html
import json

SCHEMA_VERSION = 1
UNKNOWN = "unknown"
WEEKS_PER_MONTH = 52.0 / 12.0
RESULTS = ("success", "rolled_back", "failed")

# Canonical phases, in release order: (record name, label shown to people).
PHASES = (
    ("validate", "validation"),
    ("lock", "lock"),
    ("bake", "bake"),
    ("provision", "provisioning"),
    ("initialization", "initialization"),
    ("health", "health validation & warm-up"),
    ("shift", "traffic switching"),
    ("watch", "post-shift watch"),
    ("cleanup", "cleanup"),
    ("rollback", "rollback"),
)
PHASE_LABELS = dict(PHASES)
PHASE_ORDER = {name: index for index, (name, _label) in enumerate(PHASES)}

PHASE_COLOURS = ("#6c757d", "#8d6e63", "#ab47bc", "#1e88e5", "#039be5", "#00897b", "#43a047",
                 "#7cb342", "#fb8c00", "#e53935")
VERSION_COLOURS = ("#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#e53935", "#00897b")
TIMELINE_LABEL_WIDTH, TIMELINE_BAR_WIDTH = 210, 560
RESULT_COLOURS = {"success": "#2e7d32", "rolled_back": "#ef6c00", "failed": "#c62828"}


class ReportError(ValueError):
    """The release record is malformed; the message names the offending key."""


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def parse_time(value, what="timestamp"):
    """An aware UTC datetime from an ISO 8601 string, a datetime or epoch seconds; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, bool):
        raise ReportError("%s: expected a timestamp, got %r" % (what, value))
    elif isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ReportError("%s: %r is not an ISO 8601 timestamp" % (what, value)) from None
    else:
        raise ReportError("%s: expected a timestamp, got %r" % (what, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def _iso(moment):
    if moment is None:
        return None
    text = moment.astimezone(datetime.timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def _number(value, what, integer=False):
    if value is None or isinstance(value, bool):
        raise ReportError("%s: expected a number, got %r" % (what, value))
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ReportError("%s: expected a number, got %r" % (what, value)) from None
    if number < 0:
        raise ReportError("%s: must not be negative, got %r" % (what, value))
    return number


def _entries(value, key_name, what):
    """A dict keyed by name, or a list of dicts holding the name: a list of (name, dict)."""
    if value is None:
        return []
    if isinstance(value, dict):
        items = []
        for name, entry in value.items():
            if entry is None:
                entry = {}
            if not isinstance(entry, dict):
                raise ReportError("%s.%s: expected a dict, got %r" % (what, name, entry))
            items.append((str(name), entry))
        return items
    if isinstance(value, (list, tuple)):
        items = []
        for index, entry in enumerate(value):
            if not isinstance(entry, dict) or entry.get(key_name) in (None, ""):
                raise ReportError("%s[%d]: expected a dict with a %r key" % (what, index, key_name))
            items.append((str(entry[key_name]), entry))
        return items
    raise ReportError("%s: expected a dict or a list, got %r" % (what, value))


def _window(record, phases):
    """(start, end) of the release: the record's started/finished, else the phases' extent."""
    starts = [p["_start"] for p in phases if p["_start"] is not None]
    ends = [p["_end"] for p in phases if p["_end"] is not None]
    start = parse_time(record.get("started"), "started") or (min(starts) if starts else None)
    end = parse_time(record.get("finished"), "finished") or (max(ends + starts) if ends + starts else None)
    if start is not None and end is not None and end < start:
        raise ReportError("finished (%s) is before started (%s)" % (_iso(end), _iso(start)))
    return start, end


def _check_record(record):
    if not isinstance(record, dict):
        raise ReportError("the release record must be a dict, got %s" % type(record).__name__)
    if record.get("version") in (None, ""):
        raise ReportError("the release record has no 'version'")
    result = record.get("result") or "success"
    if result not in RESULTS:
        raise ReportError("result: %r is not one of %s" % (result, ", ".join(RESULTS)))
    return result


def _raw_phases(record):
    phases = []
    for name, entry in _entries(record.get("phases"), "name", "phases"):
        start = parse_time(entry.get("started"), "phases.%s.started" % name)
        end = parse_time(entry.get("ended"), "phases.%s.ended" % name)
        skipped = bool(entry.get("skipped")) or (start is None and end is None)
        if start is None and end is not None:
            raise ReportError("phases.%s: has 'ended' but no 'started'" % name)
        if start is not None and end is not None and end < start:
            raise ReportError("phases.%s: ended (%s) is before started (%s)" % (name, _iso(end), _iso(start)))
        phases.append({"name": name, "_start": start, "_end": end, "skipped": skipped})
    # Phases that ran, in the order they ran; skipped ones after the last phase that comes before
    # them in the canonical order (so "bake: skipped" stays between lock and provisioning).
    ran = sorted((p for p in phases if p["_start"] is not None),
                 key=lambda p: (p["_start"], PHASE_ORDER.get(p["name"], len(PHASE_ORDER))))
    for phase in (p for p in phases if p["_start"] is None):
        order = PHASE_ORDER.get(phase["name"], len(PHASE_ORDER))
        at = 0
        for index, other in enumerate(ran):
            if PHASE_ORDER.get(other["name"], len(PHASE_ORDER)) < order:
                at = index + 1
        ran.insert(at, phase)
    return ran


# --------------------------------------------------------------------------------------------
# Timeline
# --------------------------------------------------------------------------------------------

def phase_timeline(record):
    """Durations per phase and in total.

    Returns ``{started, finished, total_seconds, phases: [{name, label, started, ended, seconds,
    status}]}`` with status ``done``, ``incomplete`` (started, never ended: it runs until
    ``finished``) or ``skipped``; phases are in the order they ran.
    """
    _check_record(record)
    raw = _raw_phases(record)
    start, end = _window(record, raw)
    phases = []
    for phase in raw:
        status = "skipped" if phase["skipped"] else "done"
        p_end = phase["_end"]
        if not phase["skipped"] and p_end is None:
            # Interrupted: it ran until the next phase (the rescue's rollback) began, or the end.
            status = "incomplete"
            later = [p["_start"] for p in raw if p["_start"] is not None and p["_start"] > phase["_start"]]
            later += [end] if end is not None and end >= phase["_start"] else [phase["_start"]]
            p_end = min(later)
        seconds = (p_end - phase["_start"]).total_seconds() if phase["_start"] is not None else 0.0
        phases.append({
            "name": phase["name"],
            "label": PHASE_LABELS.get(phase["name"], phase["name"].replace("_", " ")),
            "started": _iso(phase["_start"]),
            "ended": _iso(p_end),
            "seconds": round(seconds, 3),
            "status": status,
        })
    total = (end - start).total_seconds() if start is not None and end is not None else 0.0
    return {"started": _iso(start), "finished": _iso(end), "total_seconds": round(total, 3), "phases": phases}


# --------------------------------------------------------------------------------------------
# Cost
# --------------------------------------------------------------------------------------------

def monthly_projection(release_cost, releases_per_week):
    """Cost per month of releasing ``releases_per_week`` times a week: cost x rpw x 52 / 12."""
    if release_cost == UNKNOWN or releases_per_week is None:
        return UNKNOWN
    return float(release_cost) * float(releases_per_week) * WEEKS_PER_MONTH


def _fleets(record, start, end):
    fleets = []
    for version, entry in _entries(record.get("fleets"), "version", "fleets"):
        count = _number(entry.get("instance_count", 0), "fleets.%s.instance_count" % version, integer=True)
        up_from = parse_time(entry.get("up_from"), "fleets.%s.up_from" % version)
        up_to = parse_time(entry.get("up_to"), "fleets.%s.up_to" % version)
        # Clip to the release window: before/after it the report measures nothing.
        lo = max(x for x in (up_from, start) if x is not None) if (up_from or start) else None
        hi = min(x for x in (up_to, end) if x is not None) if (up_to or end) else None
        fleets.append({
            "version": version,
            "instance_type": entry.get("instance_type"),
            "instance_count": count,
            "up_from": _iso(up_from),
            "up_to": _iso(up_to),
            "still_up": up_to is None,
            "_lo": lo,
            "_hi": hi,
        })
    return fleets


def overlap_cost(record):
    """The cost of running fleets side by side during this release, and its monthly projection.

    Returns ``{overlap_seconds, currency, cost, monthly_cost, releases_per_week, weeks_per_month,
    fleets: [{version, instance_type, instance_count, hourly_price, up_from, up_to, still_up,
    extra_seconds, extra_instance_hours, cost}]}``; ``cost``/``monthly_cost``/``hourly_price`` are
    ``"unknown"`` when a needed price is not in ``instance_prices``. Numbers are not rounded.
    """
    _check_record(record)
    start, end = _window(record, _raw_phases(record))
    fleets = _fleets(record, start, end)
    prices = record.get("instance_prices") or {}
    if not isinstance(prices, dict):
        raise ReportError("instance_prices: expected a dict of instance type -> hourly price")
    previous = record.get("previous_version")
    previous = str(previous) if previous not in (None, "") else None

    # Sweep the boundaries; in each stretch with 2+ fleets up, all but the baseline are extra.
    bounded = [f for f in fleets if f["_lo"] is not None and f["_hi"] is not None and f["_hi"] > f["_lo"]]
    points = sorted({f["_lo"] for f in bounded} | {f["_hi"] for f in bounded})
    extra = dict((f["version"], 0.0) for f in fleets)
    overlap = 0.0
    for lo, hi in zip(points, points[1:]):
        up = [f for f in bounded if f["_lo"] <= lo and f["_hi"] >= hi]
        if len(up) < 2:
            continue
        seconds = (hi - lo).total_seconds()
        overlap += seconds
        versions = [f["version"] for f in up]
        baseline = previous if previous in versions else min(up, key=lambda f: f["_lo"])["version"]
        for version in versions:
            if version != baseline:
                extra[version] += seconds

    total = 0.0
    known = True
    out_fleets = []
    for fleet in fleets:
        price = prices.get(fleet["instance_type"]) if fleet["instance_type"] else None
        if price is not None:
            price = _number(price, "instance_prices.%s" % fleet["instance_type"])
        hours = extra[fleet["version"]] / 3600.0 * fleet["instance_count"]
        if hours == 0:
            cost = 0.0
        elif price is None:
            cost = UNKNOWN
            known = False
        else:
            cost = hours * price
            total += cost
        out_fleets.append({
            "version": fleet["version"],
            "instance_type": fleet["instance_type"],
            "instance_count": fleet["instance_count"],
            "hourly_price": UNKNOWN if price is None else price,
            "up_from": fleet["up_from"],
            "up_to": fleet["up_to"],
            "still_up": fleet["still_up"],
            "extra_seconds": extra[fleet["version"]],
            "extra_instance_hours": hours,
            "cost": cost,
        })
    release_cost = total if known else UNKNOWN
    rpw = record.get("releases_per_week")
    rpw = None if rpw in (None, "") else _number(rpw, "releases_per_week")
    return {
        "overlap_seconds": overlap,
        "currency": record.get("currency") or "USD",
        "cost": release_cost,
        "releases_per_week": rpw,
        "weeks_per_month": WEEKS_PER_MONTH,
        "monthly_cost": monthly_projection(release_cost, rpw),
        "fleets": out_fleets,
    }


def price_from_pricing_api(pricing_client, instance_type, region):
    """The On-Demand hourly price of a Linux instance type in a region, from the AWS Price List API.

    ``pricing_client`` is a boto3 ``pricing`` client (the service answers in us-east-1, eu-central-1
    and ap-south-1 whatever ``region`` is asked about). Returns ``(price, currency)`` or ``None``
    when AWS lists no such product. Filters: Linux, shared tenancy, no pre-installed software,
    capacity status Used, On-Demand.
    """
    filters = [
        ("instanceType", instance_type),
        ("regionCode", region),
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("preInstalledSw", "NA"),
        ("capacitystatus", "Used"),
        ("marketoption", "OnDemand"),
    ]
    response = pricing_client.get_products(
        ServiceCode="AmazonEC2",
        Filters=[{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in filters],
        FormatVersion="aws_v1",
        MaxResults=10,
    )
    for item in response.get("PriceList", []):
        product = json.loads(item) if isinstance(item, str) else item
        for term in (product.get("terms", {}).get("OnDemand") or {}).values():
            for dimension in (term.get("priceDimensions") or {}).values():
                if dimension.get("unit") != "Hrs":
                    continue
                for currency, amount in (dimension.get("pricePerUnit") or {}).items():
                    if float(amount) > 0:
                        return float(amount), currency
    return None


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------

def weight_samples(record):
    """Weight samples sorted by time: ``[{at, weights: {version: weight}, shares: {version: %}}]``."""
    samples = []
    raw = record.get("weights") or []
    if not isinstance(raw, (list, tuple)):
        raise ReportError("weights: expected a list of {at, weights}")
    for index, sample in enumerate(raw):
        if not isinstance(sample, dict) or not isinstance(sample.get("weights"), dict):
            raise ReportError("weights[%d]: expected {at: <time>, weights: {version: weight}}" % index)
        at = parse_time(sample.get("at"), "weights[%d].at" % index)
        if at is None:
            raise ReportError("weights[%d]: has no 'at' time" % index)
        weights = dict((str(v), _number(w, "weights[%d].weights.%s" % (index, v)))
                       for v, w in sample["weights"].items())
        total = sum(weights.values())
        shares = dict((v, (100.0 * w / total) if total else 0.0) for v, w in weights.items())
        samples.append({"_at": at, "at": _iso(at), "weights": weights, "shares": shares})
    samples.sort(key=lambda s: s["_at"])
    return samples


def _versions_in(record, samples):
    versions = []
    for candidate in ([str(record.get("previous_version"))] if record.get("previous_version") else []):
        versions.append(candidate)
    for sample in samples:
        for version in sample["weights"]:
            if version not in versions:
                versions.append(version)
    return versions


# --------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------

def release_report(record):
    """The JSON document (``release-report.json``): record facts + timeline + cost + weights."""
    result = _check_record(record)
    samples = weight_samples(record)
    return {
        "schema_version": SCHEMA_VERSION,
        "app": record.get("app"),
        "environment": record.get("environment"),
        "version": str(record["version"]),
        "previous_version": None if record.get("previous_version") in (None, "") else str(record["previous_version"]),
        "strategy": record.get("strategy"),
        "result": result,
        "failed_phase": record.get("failed_phase"),
        "failure_reason": record.get("failure_reason"),
        "timeline": phase_timeline(record),
        "cost": overlap_cost(record),
        "weights": [{"at": s["at"], "weights": s["weights"]} for s in samples],
    }


def release_stats(record):
    """Flat data for ``set_stats`` (AWX workflow artifacts)."""
    report = release_report(record)
    cost = report["cost"]
    return {
        "cattle_release_app": report["app"],
        "cattle_release_environment": report["environment"],
        "cattle_release_version": report["version"],
        "cattle_release_previous_version": report["previous_version"],
        "cattle_release_result": report["result"],
        "cattle_release_failed_phase": report["failed_phase"],
        "cattle_release_failure_reason": report["failure_reason"],
        "cattle_release_durations": dict((p["name"], p["seconds"]) for p in report["timeline"]["phases"]),
        "cattle_release_total_seconds": report["timeline"]["total_seconds"],
        "cattle_release_overlap_seconds": round(cost["overlap_seconds"], 3),
        "cattle_release_cost": _round_money(cost["cost"]),
        "cattle_release_monthly_cost": _round_money(cost["monthly_cost"]),
        "cattle_release_currency": cost["currency"],
    }


def _round_money(value):
    return value if value == UNKNOWN else round(value, 4)


def format_duration(seconds):
    """``45s``, ``4m 02s``, ``1h 02m 03s`` (whole seconds, rounded)."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh %02dm %02ds" % (hours, minutes, secs)
    if minutes:
        return "%dm %02ds" % (minutes, secs)
    return "%ds" % secs


def format_money(value, currency):
    if value == UNKNOWN:
        return "unknown (no price for the instance type in instance_prices)"
    return "%.2f %s" % (value, currency)


def _title(report):
    stack = "/".join(str(x) for x in (report["app"], report["environment"]) if x)
    return ("%s %s" % (stack, report["version"])).strip()


def _headline(report):
    text = "Release %s: %s in %s" % (_title(report), report["result"].replace("_", " "),
                                     format_duration(report["timeline"]["total_seconds"]))
    if report["previous_version"]:
        text += " (previous version %s)" % report["previous_version"]
    return text


def _failure_line(report):
    if not (report["failed_phase"] or report["failure_reason"]):
        return None
    phase = report["failed_phase"]
    label = PHASE_LABELS.get(phase, phase) if phase else "unknown phase"
    return "Failed in %s: %s" % (label, report["failure_reason"] or "no reason recorded")


def _cost_lines(cost):
    lines = []
    extra = [f for f in cost["fleets"] if f["extra_seconds"] > 0]
    if not extra:
        lines.append("Overlap: no two fleets ran side by side during the release; cost %s"
                     % format_money(0.0, cost["currency"]))
        return lines
    parts = ["%d x %s (%s) for %s" % (f["instance_count"], f["instance_type"] or "unknown type", f["version"],
                                      format_duration(f["extra_seconds"])) for f in extra]
    lines.append("Overlap: %s of fleets side by side; duplicate capacity %s"
                 % (format_duration(cost["overlap_seconds"]), ", ".join(parts)))
    lines.append("Cost of this release: %s" % format_money(cost["cost"], cost["currency"]))
    if cost["releases_per_week"] is not None:
        lines.append("Monthly at %g releases/week (x 52/12 weeks a month): %s"
                     % (cost["releases_per_week"], format_money(cost["monthly_cost"], cost["currency"])))
    still = [f["version"] for f in cost["fleets"] if f["still_up"] and f["instance_count"]]
    if len(still) > 1:
        lines.append("Note: %s were still running side by side when the release ended; only the release "
                     "window is counted" % " and ".join(still))
    return lines


def release_report_text(record):
    """A terminal summary: headline, one-line timeline, a phase table, the cost lines."""
    report = release_report(record)
    timeline = report["timeline"]
    ran = [p for p in timeline["phases"] if p["status"] != "skipped"]
    lines = [_headline(report)]
    failure = _failure_line(report)
    if failure:
        lines.append(failure)
    if ran:
        lines.append(" · ".join("%s %s" % (format_duration(p["seconds"]), p["label"]) for p in ran))
    lines.append("")
    width = max([len(p["label"]) for p in timeline["phases"]] + [len("phase")]) + 2
    lines.append("%-*s%-10s%10s%8s  %s" % (width, "phase", "start", "duration", "share", "status"))
    total = timeline["total_seconds"] or 0.0
    for phase in timeline["phases"]:
        start = phase["started"][11:19] if phase["started"] else "-"
        share = ("%d%%" % round(100.0 * phase["seconds"] / total)) if total and phase["status"] != "skipped" else "-"
        duration = format_duration(phase["seconds"]) if phase["status"] != "skipped" else "-"
        lines.append("%-*s%-10s%10s%8s  %s" % (width, phase["label"], start, duration, share, phase["status"]))
    lines.append("%-*s%-10s%10s" % (width, "total", (timeline["started"] or "-")[11:19] or "-",
                                    format_duration(total)))
    lines.append("")
    lines.extend(_cost_lines(report["cost"]))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# HTML with inline SVG
# --------------------------------------------------------------------------------------------

def _esc(value):
    return html.escape("" if value is None else str(value), quote=True)


def _axis(x0, width, y, total, height):
    """Tick marks and labels along the time axis (every 'nice' interval)."""
    steps = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
    step = next((s for s in steps if total / s <= 8), steps[-1]) if total > 0 else 60
    parts = []
    tick = 0
    while tick <= total + 1e-9:
        x = x0 + (width * tick / total if total else 0)
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>' % (x, y - height, x, y))
        parts.append('<text x="%.1f" y="%d" class="tick">%s</text>' % (x, y + 14, _esc(format_duration(tick))))
        tick += step
    return parts


def _timeline_svg(timeline, result):
    phases = timeline["phases"]
    start = parse_time(timeline["started"])
    total = timeline["total_seconds"] or 0.0
    label_w, bar_w, row_h, top = TIMELINE_LABEL_WIDTH, TIMELINE_BAR_WIDTH, 26, 10
    height = top + row_h * max(len(phases), 1) + 30
    width = label_w + bar_w + 90
    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="%d" height="%d" '
           'viewBox="0 0 %d %d" role="img" aria-label="release phase timeline">' % (width, height, width, height)]
    out.extend(_axis(label_w, bar_w, top + row_h * len(phases) + 4, total, row_h * len(phases) + 4))
    for index, phase in enumerate(phases):
        y = top + index * row_h
        colour = PHASE_COLOURS[PHASE_ORDER.get(phase["name"], index) % len(PHASE_COLOURS)]
        out.append('<text x="%d" y="%d" class="label">%s</text>' % (label_w - 8, y + 17, _esc(phase["label"])))
        if phase["status"] == "skipped" or start is None or not total:
            out.append('<text x="%d" y="%d" class="muted">skipped</text>' % (label_w + 4, y + 17))
            continue
        offset = (parse_time(phase["started"]) - start).total_seconds()
        x = label_w + bar_w * max(offset, 0) / total
        w = max(bar_w * phase["seconds"] / total, 2.0)
        if phase["status"] == "incomplete" and result != "success":
            colour = RESULT_COLOURS["failed"]
        out.append('<rect class="bar" data-phase="%s" x="%.1f" y="%d" width="%.1f" height="%d" rx="3" fill="%s">'
                   '<title>%s: %s</title></rect>'
                   % (_esc(phase["name"]), x, y + 4, w, row_h - 8, colour, _esc(phase["label"]),
                      _esc(format_duration(phase["seconds"]))))
        out.append('<text x="%.1f" y="%d" class="value">%s%s</text>'
                   % (x + w + 5, y + 17, _esc(format_duration(phase["seconds"])),
                      " (failed)" if phase["status"] == "incomplete" and result != "success" else ""))
    out.append("</svg>")
    return "\n".join(out)


def _weights_svg(record, samples, timeline):
    start = parse_time(timeline["started"]) or (samples[0]["_at"] if samples else None)
    end = parse_time(timeline["finished"]) or (samples[-1]["_at"] if samples else None)
    total = (end - start).total_seconds() if start is not None and end is not None else 0.0
    versions = _versions_in(record, samples)
    # Same x scale as the phase timeline above it, so the two pictures line up.
    x0, plot_w, top, plot_h = TIMELINE_LABEL_WIDTH, TIMELINE_BAR_WIDTH, 12, 180
    width, height = x0 + plot_w + 90, top + plot_h + 30
    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="weights" width="%d" height="%d" '
           'viewBox="0 0 %d %d" role="img" aria-label="traffic weight per version over time"> '
           % (width, height, width, height)]
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h - plot_h * pct / 100.0
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>' % (x0, y, x0 + plot_w, y))
        out.append('<text x="%d" y="%.1f" class="label">%d%%</text>' % (x0 - 6, y + 4, pct))
    for phase in timeline["phases"]:  # shade the traffic switching phase behind the lines
        if phase["name"] == "shift" and phase["status"] != "skipped" and total:
            bx = x0 + plot_w * (parse_time(phase["started"]) - start).total_seconds() / total
            bw = max(plot_w * phase["seconds"] / total, 1.0)
            out.append('<rect class="band" x="%.1f" y="%d" width="%.1f" height="%d" fill="#43a047" fill-opacity="0.08">'
                       '<title>traffic switching</title></rect>' % (bx, top, bw, plot_h))
    out.extend(_axis(x0, plot_w, top + plot_h, total, 0))

    def xpos(moment):
        if not total:
            return float(x0)
        return x0 + plot_w * min(max((moment - start).total_seconds(), 0.0), total) / total

    for index, version in enumerate(versions):
        colour = VERSION_COLOURS[index % len(VERSION_COLOURS)]
        points = []
        last = None
        for sample in samples:
            share = sample["shares"].get(version, 0.0)
            x = xpos(sample["_at"])
            y = top + plot_h - plot_h * share / 100.0
            if last is not None:
                points.append("%.1f,%.1f" % (x, last))  # hold the previous weight until now: a step
            points.append("%.1f,%.1f" % (x, y))
            last = y
        if last is not None:
            points.append("%.1f,%.1f" % (x0 + plot_w, last))
        if points:
            out.append('<polyline class="weight-line" data-version="%s" fill="none" stroke="%s" stroke-width="%d" '
                       'points="%s"><title>%s</title></polyline>'
                       % (_esc(version), colour, 3 if version == str(record.get("version")) else 2,
                          " ".join(points), _esc("version %s" % version)))
        lx = 10
        ly = top + 10 + 20 * index
        role = " (new)" if version == str(record.get("version")) else (
            " (previous)" if version == str(record.get("previous_version")) else "")
        out.append('<rect x="%d" y="%d" width="14" height="4" fill="%s"/>' % (lx, ly - 5, colour))
        out.append('<text x="%d" y="%d" class="legend">%s</text>' % (lx + 20, ly, _esc("v" + version + role)))
    if not samples:
        out.append('<text x="%d" y="%d" class="muted">no weight samples recorded</text>' % (x0 + 10, top + plot_h / 2))
    out.append("</svg>")
    return "\n".join(out)


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#212529;max-width:960px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.result{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-size:13px;vertical-align:middle}
.sub{color:#6c757d;margin:4px 0 0}.failure{color:#c62828;font-weight:600}
table{border-collapse:collapse;font-size:14px}td,th{padding:4px 12px;border-bottom:1px solid #dee2e6;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:12px;fill:#343a40}svg .label{text-anchor:end}svg .tick{text-anchor:middle;fill:#6c757d;font-size:11px}
svg .grid{stroke:#e9ecef;stroke-width:1}svg .muted{fill:#adb5bd;font-style:italic}svg .value{fill:#495057}
"""


def release_report_html(record):
    """A self-contained HTML page (no script, no external asset): summary, SVG timeline, SVG weights, cost."""
    report = release_report(record)
    timeline, cost = report["timeline"], report["cost"]
    samples = weight_samples(record)
    result = report["result"]
    body = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8"/>',
            '<title>%s</title>' % _esc("Release " + _title(report)), '<style>%s</style>' % _CSS, '</head>', '<body>']
    body.append('<h1>Release %s <span class="result" style="background:%s">%s</span></h1>'
                % (_esc(_title(report)), RESULT_COLOURS[result], _esc(result.replace("_", " "))))
    sub = "total %s" % format_duration(timeline["total_seconds"])
    if report["previous_version"]:
        sub += " · previous version %s" % report["previous_version"]
    if report["strategy"]:
        sub += " · strategy %s" % report["strategy"]
    if timeline["started"]:
        sub += " · %s to %s" % (timeline["started"], timeline["finished"])
    body.append('<p class="sub">%s</p>' % _esc(sub))
    failure = _failure_line(report)
    if failure:
        body.append('<p class="failure">%s</p>' % _esc(failure))
    body.append('<h2>Phases</h2>')
    body.append(_timeline_svg(timeline, result))
    body.append('<h2>Traffic weight per version</h2>')
    body.append(_weights_svg(record, samples, timeline))
    body.append('<h2>Phase durations</h2>')
    body.append('<table><tr><th>phase</th><th>start (UTC)</th><th class="num">duration</th><th>status</th></tr>')
    for phase in timeline["phases"]:
        body.append('<tr><td>%s</td><td>%s</td><td class="num">%s</td><td>%s</td></tr>'
                    % (_esc(phase["label"]), _esc((phase["started"] or "-")[11:19] or "-"),
                       _esc(format_duration(phase["seconds"]) if phase["status"] != "skipped" else "-"),
                       _esc(phase["status"])))
    body.append('<tr><th>total</th><th></th><th class="num">%s</th><th></th></tr></table>'
                % _esc(format_duration(timeline["total_seconds"])))
    body.append('<h2>Overlap cost</h2>')
    body.append('<table><tr><th>version</th><th>instances</th><th class="num">hourly price</th>'
                '<th class="num">ran as duplicate</th><th class="num">cost</th></tr>')
    for fleet in cost["fleets"]:
        price = fleet["hourly_price"]
        body.append('<tr><td>%s</td><td>%d x %s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>'
                    % (_esc(fleet["version"]), fleet["instance_count"], _esc(fleet["instance_type"] or "?"),
                       _esc(price if price == UNKNOWN else "%g %s" % (price, cost["currency"])),
                       _esc(format_duration(fleet["extra_seconds"]) if fleet["extra_seconds"] else "-"),
                       _esc(fleet["cost"] if fleet["cost"] == UNKNOWN else "%.2f" % fleet["cost"])))
    body.append('</table>')
    body.append('<ul>%s</ul>' % "".join("<li>%s</li>" % _esc(line) for line in _cost_lines(cost)))
    body.append('</body>')
    body.append('</html>')
    return "\n".join(body) + "\n"
