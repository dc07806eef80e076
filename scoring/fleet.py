"""Fleet aggregation, hard gates, score and verdict, from per-device metrics and the rubric.

Pooled ratios weigh every device by its own window, so late joiners count from their window start:

- availability   = sum(slots hit) / sum(slots)
- completeness   = sum(completeness numerator) / sum(expected) (scoring.metrics.completeness: per
                   reading min(complete, expected); per measurement the mean over the declared
                   measurements of min(carried, expected))
- QC shares      = sum(pass | suspect | fail readings) / sum(QC-counted readings) (scoring.delivery:
                   v2 the delivered ones, v1 all)
- p10 device     = 10th percentile over scored devices (linear interpolation between ranks, as
                   numpy.percentile's default) of availability and of completeness
- MTTR           = sum(recovered outage time) / recovered outages; attrition = lost / scored devices
- incidents      = quality incidents of all devices (v2; None under v1)

Delivery and data quality are apart (v2): availability, completeness and outages count what was
delivered, the quality component and the `max_qc_fail_share` gate what failed QC.

Components (each 0..1): availability and completeness = (1 - p10_weight) x pooled + p10_weight x
p10; quality = 1 - fail share - suspect share / 2 (at least 0); timeliness = share of devices whose
p95 latency is at most `timeliness.target_p95_s`; battery = mean of devices' battery ratio (min(1,
projected / claimed life); 0 for a declared battery never reported: scoring.metrics) over the devices
that have one; kind-specific = mean of trackers' fix rate and switches' heartbeat regularity; residents (rubric
v3) = (mean rating - 1) / 4 when the window has enough ratings (scoring.residents), else none; switch
commands (rubric v3) = the share of the fleet's commands acknowledged by their expiry (scoring.commands).
Score = 100 x sum(weight x component) / sum(weight) over the components the pilot has.

Verdict: `invalid` if more than `gates.max_excluded_share` of the registered devices were
excluded (planned decommissions) or none is scored; otherwise `eligible` if every gate passes and
score >= bands.eligible, `conditional` if every gate passes and score >= bands.conditional, else
`not_eligible`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scoring.metrics import DeviceMetrics
from scoring.rubric import Rubric
from scoring.window import PilotWindow


@dataclass(frozen=True)
class Gate:
    name: str
    threshold: float
    value: float | None
    passed: bool


@dataclass(frozen=True)
class FleetScore:
    fleet: dict[str, Any]
    pooled: dict[str, float | None]
    components: dict[str, float]
    gates: list[Gate]
    score: float
    verdict: str


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), q in [0, 1]."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(rubric: Rubric, window: PilotWindow, metrics: list[DeviceMetrics], *,
              residents: float | None = None, switch_commands: float | None = None) -> FleetScore:
    registered = len(window.devices)
    excluded = sum(d.status == "excluded" for d in window.devices)
    not_started = sum(d.status == "not_started" for d in window.devices)
    scored = len(metrics)
    lost = sum(m.lost for m in metrics)
    kinds = sorted({d.device.kind for d in window.devices})
    per_kind = {k: sum(m.kind == k for m in metrics) for k in kinds}

    slots = sum(m.slots for m in metrics)
    expected = sum(m.expected for m in metrics)
    readings = sum(m.qc_pass + m.qc_suspect + m.qc_fail for m in metrics)  # QC-counted (scoring.delivery)
    recovered = sum(m.recovered_outages for m in metrics)
    recovered_s = sum((m.mttr_s or 0.0) * m.recovered_outages for m in metrics)
    availabilities = [m.availability for m in metrics if m.availability is not None]
    completenesses = [m.completeness for m in metrics if m.completeness is not None]
    delivery = [m.delivery_ratio for m in metrics if m.delivery_ratio is not None]
    p95s = [m.latency_p95_s for m in metrics if m.latency_p95_s is not None]

    pooled: dict[str, float | None] = {
        "availability": sum(m.slots_hit for m in metrics) / slots if slots else None,
        "availability_p10": percentile(availabilities, 0.10),
        "completeness": sum(m.completeness_numerator for m in metrics) / expected if expected else None,
        "completeness_p10": percentile(completenesses, 0.10),
        "delivery_ratio_mean": _mean(delivery),
        "qc_pass_share": sum(m.qc_pass for m in metrics) / readings if readings else None,
        "qc_suspect_share": sum(m.qc_suspect for m in metrics) / readings if readings else None,
        "qc_fail_share": sum(m.qc_fail for m in metrics) / readings if readings else None,
        "latency_p95_median_s": percentile(p95s, 0.5),
        "outages": float(sum(m.outages for m in metrics)),
        "quality_incidents": (float(sum(len(m.quality_incidents or []) for m in metrics))
                              if rubric.quality is not None else None),
        "mttr_s": recovered_s / recovered if recovered else None,
        "attrition": lost / scored if scored else None,
        "excluded_share": excluded / registered if registered else None,
    }

    components: dict[str, float] = {}
    p = rubric.p10_weight
    for name in ("availability", "completeness"):
        value, p10 = pooled[name], pooled[f"{name}_p10"]
        if value is not None and p10 is not None:
            components[name] = (1 - p) * value + p * p10
    if readings:
        components["quality"] = max(0.0, 1 - (pooled["qc_fail_share"] or 0) - (pooled["qc_suspect_share"] or 0) / 2)
    if p95s:
        components["timeliness"] = sum(v <= rubric.timeliness.target_p95_s for v in p95s) / len(p95s)
    battery = [m.battery_ratio for m in metrics if m.battery_ratio is not None]
    if battery:
        components["battery"] = sum(battery) / len(battery)
    kind_specific = [m.kind_specific for m in metrics if m.kind_specific is not None]
    if kind_specific:
        components["kind_specific"] = sum(kind_specific) / len(kind_specific)
    if residents is not None:
        components["residents"] = residents
    if switch_commands is not None:
        components["switch_commands"] = switch_commands
    weights = dict(rubric.weights)  # every weight, those a dump leaves out (scoring.rubric) included
    total_weight = sum(weights[c] for c in components)
    score = 100 * sum(weights[c] * v for c, v in components.items()) / total_weight if total_weight else 0.0

    g = rubric.gates
    duration_days = (window.end - window.start).total_seconds() / 86400
    smallest_kind = min(per_kind.values()) if per_kind else 0

    def at_least(name: str, threshold: float, value: float | None) -> Gate:
        return Gate(name, threshold, value, value is not None and value >= threshold)

    def at_most(name: str, threshold: float, value: float | None) -> Gate:
        return Gate(name, threshold, value, value is not None and value <= threshold)

    gates = [
        at_least("min_duration_days", g.min_duration_days, duration_days),
        at_least("min_fleet_per_kind", g.min_fleet_per_kind, float(smallest_kind)),
        at_least("min_availability", g.min_availability, pooled["availability"]),
        at_least("min_completeness", g.min_completeness, pooled["completeness"]),
        at_most("max_qc_fail_share", g.max_qc_fail_share, pooled["qc_fail_share"]),
        at_most("max_attrition", g.max_attrition, pooled["attrition"]),
        at_most("max_excluded_share", g.max_excluded_share, pooled["excluded_share"]),
    ]
    if scored == 0 or not gates[-1].passed:
        verdict = "invalid"
    elif all(gate.passed for gate in gates) and score >= rubric.bands.eligible:
        verdict = "eligible"
    elif all(gate.passed for gate in gates) and score >= rubric.bands.conditional:
        verdict = "conditional"
    else:
        verdict = "not_eligible"

    fleet = {"registered": registered, "scored": scored, "excluded": excluded, "not_started": not_started,
             "lost": lost, "scored_per_kind": per_kind, "duration_days": duration_days}
    return FleetScore(fleet, pooled, components, gates, score, verdict)
