"""The readable breakdown `pilotlab score` prints: verdict and gates, the fleet's figures, one row
per device, then QC fails per test and rejected messages per reason. It reads the same JSON-ready
breakdown (scoring.breakdown) that `--json`, the API and a record's evidence carry.
"""

from __future__ import annotations

from typing import Any


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _count(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _ratio(part: dict[str, Any]) -> str:
    return f"{_count(part['numerator'])}/{_count(part['denominator'])} = {_num(part['value'])}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _events(part: dict[str, Any] | None, noun: str) -> str:
    if part is None:
        return f"no {noun} (rubric v1)"
    down = part.get("down_s", part.get("duration_s", 0.0))
    return f"{part['count']} {noun} ({part['open']} open, {_duration(down)})"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
            .rstrip() for row in rows]


SHOWN_PERIODS = 5  # per device and kind; --json has them all


def _periods(d: dict[str, Any]) -> list[str]:
    found = []
    incidents = d["quality_incidents"]["periods"] if d["quality_incidents"] else []
    for noun, periods in (("outage", d["outages"]["periods"]), ("incident", incidents)):
        for p in periods[:SHOWN_PERIODS]:
            tests = f" [{', '.join(p['tests'])}]" if "tests" in p else ""
            found.append(f"  {d['device_id']} {noun} {p['start']} to {p['end']}{' (open)' if p['open'] else ''}, "
                         f"{_duration(p['duration_s'])}{tests}")
        if len(periods) > SHOWN_PERIODS:
            found.append(f"  {d['device_id']}: {len(periods) - SHOWN_PERIODS} more {noun}s (--json lists them all)")
    return found


def render(summary: dict[str, Any], devices: list[dict[str, Any]], elapsed_s: float) -> list[str]:
    fleet = summary["breakdown"]
    lines = [f"pilot {summary['pilot_id']}: score {summary['score']:.2f}, verdict {summary['verdict']} "
             f"({fleet['devices']} devices scored, rubric v{summary['rubric_version']}, {elapsed_s:.2f} s)",
             f"window {summary['window']['start']} to {summary['window']['end']}"]
    for gate in summary["gates"]:
        lines.append(f"  {'pass' if gate['passed'] else 'FAIL'}  {gate['name']}: {_num(gate['value'])} "
                     f"(threshold {gate['threshold']:g})")
    latency, qc, deliveries = fleet["latency"], fleet["qc"], fleet["deliveries"]
    lines += [
        "fleet:",
        f"  availability {_ratio(fleet['availability'])} slots (p10 device {_num(fleet['availability']['p10'])}); "
        f"completeness {_ratio(fleet['completeness'])} (p10 device {_num(fleet['completeness']['p10'])})",
        f"  latency median of devices' p50 {_num(latency['p50_median_s'])} s, p95 {_num(latency['p95_median_s'])} s "
        f"({latency['method']})",
        f"  QC of {qc['counted']} delivered readings: {qc['pass']} pass, {qc['suspect']} suspect, {qc['fail']} fail",
        f"  deliveries: {deliveries['stored']} stored, {deliveries['delivered']} delivered; duplicates "
        f"{deliveries['duplicates']['dropped_at_ingest']} dropped at ingest, "
        f"{deliveries['duplicates']['repeated_device_time']} repeated device times; "
        f"{deliveries['rejected']['total']} rejected",
        f"  {_events(fleet['outages'], 'outages')}, {fleet['outages']['lost']} devices lost; "
        f"{_events(fleet['quality_incidents'], 'quality incidents')}",
    ]
    rows = [["device", "availability", "completeness", "p50 s", "p95 s", "QC fail", "dup", "rejected",
             "outages", "incidents", "battery"]]
    for d in devices:
        incidents = d["quality_incidents"]
        battery = d["battery"]["ratio"]
        rows.append([
            d["device_id"], _ratio(d["availability"]), _ratio(d["completeness"]),
            _num(d["latency"]["p50_s"]), _num(d["latency"]["p95_s"]), f"{d['qc']['fail']}/{d['qc']['counted']}",
            str(sum(d["deliveries"]["duplicates"].values())), str(d["deliveries"]["rejected"]["total"]),
            f"{d['outages']['count']} ({d['outages']['open']} open)",
            "-" if incidents is None else f"{incidents['count']} ({incidents['open']} open)",
            "-" if battery is None else f"{battery:.2f}"])
    lines += ["devices:", *("  " + line for line in _table(rows))]
    periods = [line for d in devices for line in _periods(d)]
    if periods:
        lines += ["outages and quality incidents:", *periods]
    failed = {name: c["fail"] for name, c in qc["tests"].items() if c["fail"]}
    if failed:
        lines.append("QC fails by test: " + ", ".join(f"{name} {n}" for name, n in failed.items()))
    if deliveries["rejected"]["by_reason"]:
        lines.append("rejected by reason: " + ", ".join(
            f"{reason} {n}" for reason, n in deliveries["rejected"]["by_reason"].items()))
    return lines
