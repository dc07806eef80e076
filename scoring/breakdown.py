"""The breakdown: what a score is made of, per device and for the fleet, so a firm can see exactly
why it passed or failed. The same dicts go to the API, `pilotlab score` and a record's evidence.

Per device: availability and completeness with numerator and denominator (completeness per
measurement: carried and expected of each), deliveries (stored, delivered, duplicates dropped at
ingest and repeated device times, rejected by reason), latency p50 / p95 with how they were
computed, QC pass / suspect / fail and per test (pass / suspect / fail / not evaluated), outages
and quality incidents with start, end, duration and whether open (scoring.metrics), and the
battery trend against the claim. For the fleet: the same pooled (scoring.fleet), the median of
the devices' p50 and p95, and the outages and incidents counted. Switches and the fleet also get
`commands` when the scorer gives them: the round trip of commands (scoring.commands).
"""

from __future__ import annotations

from typing import Any

from scoring.fleet import FleetScore, percentile
from scoring.metrics import DeviceMetrics, Incident, Period

# how latency percentiles were computed
HISTOGRAM = "histogram: percentile_cont within 1 % (or 1 ms below 1 ms)"
EXACT = "exact: percentile_cont over the window's raw readings"


def _period(p: Period) -> dict[str, Any]:
    found = {"start": p.start, "end": p.end, "duration_s": p.duration_s, "open": p.open}
    if isinstance(p, Incident):
        found["tests"] = p.tests
    return found


def _ratio(numerator: float, denominator: float, value: float | None) -> dict[str, Any]:
    return {"numerator": numerator, "denominator": denominator, "value": value}


def _rejected(total: int, by_reason: dict[str, int]) -> dict[str, Any]:
    return {"total": total, "by_reason": dict(sorted(by_reason.items()))}


def device(m: DeviceMetrics, latency_method: str, commands: dict[str, Any] | None = None) -> dict[str, Any]:
    incidents = m.quality_incidents
    return {**({"commands": commands} if commands is not None else {}),
        "device_id": m.device_id, "kind": m.kind, "window": {"start": m.window_start, "end": m.window_end},
        "availability": {**_ratio(m.slots_hit, m.slots, m.availability), "unit": "slots"},
        "completeness": {
            **_ratio(m.completeness_numerator, m.expected, m.completeness), "rule": m.completeness_rule,
            "complete_readings": m.complete,
            "measurements": ({name: {"carried": n, "expected": m.expected} for name, n in m.measurement_carried.items()}
                             if m.measurement_carried is not None else None)},
        "deliveries": {"stored": m.readings, "delivered": m.delivered,
                       "duplicates": {"dropped_at_ingest": m.redelivered, "repeated_device_time": m.duplicates},
                       "rejected": _rejected(m.rejected, m.rejected_by_reason)},
        "latency": {"p50_s": m.latency_p50_s, "p95_s": m.latency_p95_s, "method": latency_method},
        "qc": {"counted": m.qc_pass + m.qc_suspect + m.qc_fail, "pass": m.qc_pass, "suspect": m.qc_suspect,
               "fail": m.qc_fail, "tests": m.qc_tests},
        "outages": {"count": m.outages, "open": m.outages - m.recovered_outages, "down_s": m.down_s,
                    "mttr_s": m.mttr_s, "lost": m.lost, "periods": [_period(p) for p in m.outage_periods]},
        "quality_incidents": (None if incidents is None else {
            "count": len(incidents), "open": sum(i.open for i in incidents),
            "duration_s": sum(i.duration_s for i in incidents), "periods": [_period(i) for i in incidents]}),
        "battery": {"slope_pct_per_day": m.battery_slope_pct_per_day, "projected_days": m.projected_battery_days,
                    "claimed_days": m.claimed_battery_days, "ratio": m.battery_ratio, "reason": m.battery_reason},
    }


def fleet(metrics: list[DeviceMetrics], score: FleetScore, latency_method: str,
          commands: dict[str, Any] | None = None) -> dict[str, Any]:
    pooled = score.pooled
    by_test: dict[str, dict[str, int]] = {}
    rejected: dict[str, int] = {}
    for m in metrics:
        for name, counts in m.qc_tests.items():
            into = by_test.setdefault(name, dict.fromkeys(counts, 0))
            for k, n in counts.items():
                into[k] += n
        for reason, n in m.rejected_by_reason.items():
            rejected[reason] = rejected.get(reason, 0) + n
    incidents = [i for m in metrics for i in m.quality_incidents or []]
    recovered = sum(m.recovered_outages for m in metrics)
    battery = [m.battery_ratio for m in metrics if m.battery_ratio is not None]
    return {**({"commands": commands} if commands is not None else {}),
        "devices": len(metrics),
        "availability": {**_ratio(sum(m.slots_hit for m in metrics), sum(m.slots for m in metrics),
                                  pooled["availability"]), "unit": "slots", "p10": pooled["availability_p10"]},
        "completeness": {**_ratio(sum(m.completeness_numerator for m in metrics), sum(m.expected for m in metrics),
                                  pooled["completeness"]), "p10": pooled["completeness_p10"]},
        "deliveries": {"stored": sum(m.readings for m in metrics), "delivered": sum(m.delivered for m in metrics),
                       "duplicates": {"dropped_at_ingest": sum(m.redelivered for m in metrics),
                                      "repeated_device_time": sum(m.duplicates for m in metrics)},
                       "rejected": _rejected(sum(m.rejected for m in metrics), rejected)},
        "latency": {"p50_median_s": percentile([m.latency_p50_s for m in metrics if m.latency_p50_s is not None], 0.5),
                    "p95_median_s": pooled["latency_p95_median_s"], "method": latency_method},
        "qc": {"counted": sum(m.qc_pass + m.qc_suspect + m.qc_fail for m in metrics),
               "pass": sum(m.qc_pass for m in metrics), "suspect": sum(m.qc_suspect for m in metrics),
               "fail": sum(m.qc_fail for m in metrics), "tests": dict(sorted(by_test.items()))},
        "outages": {"count": sum(m.outages for m in metrics), "open": sum(m.outages - m.recovered_outages for m in metrics),
                    "down_s": sum(m.down_s for m in metrics), "mttr_s": pooled["mttr_s"],
                    "lost": score.fleet["lost"], "recovered": recovered},
        "quality_incidents": (None if pooled["quality_incidents"] is None else {
            "count": len(incidents), "open": sum(i.open for i in incidents),
            "duration_s": sum(i.duration_s for i in incidents)}),
        "battery": {"devices": len(battery), "meeting_claim": sum(r >= 1.0 for r in battery),
                    "mean_ratio": sum(battery) / len(battery) if battery else None},
    }
