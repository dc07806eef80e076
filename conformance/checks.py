"""The conformance checks: what a run saw (conformance.observations) against the thresholds
(conformance.thresholds), each pass / fail / not applicable with its evidence and a message that
says what to fix in a firmware engineer's words.

    credentials      the device's broker account is active and its messages arrived (native MQTT)
    topics           nothing refused for its topic: only pilotlab/v1/<pilot>/<device>/<channel>
    payloads         every message decoded (contract v1 or the device's profile) and validated
    measurements     every measurement the profile declares carried by some reading
    interval         the p95 of the gaps between telemetry readings within ±tolerance of the declared interval
    clock            |pilotlab's receive time − the reading's ts| within the limit (not LoRaWAN: the
                     network server stamps those)
    sequence         seq (LoRaWAN: the frame counter) strictly increasing, skipped values within the budget
    qos              no contract message arrived at QoS 0 (native MQTT and Wi-Fi gateways)
    lorawan_session  a join or uplink frames heard (LoRaWAN)
    codec_mapping    no codec failure and no reading of unmapped codec output only (LoRaWAN)
    battery          battery_pct reported, where the profile declares it

Pure functions: the same observations give the same results.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from conformance.observations import Observations, Reading
from conformance.thresholds import Thresholds
from devices.contract import topic_for
from devices.kinds import Channel
from devices.telemetry import SEQ_MAX
from pilotlab.errors import RejectReason

MAX_EXAMPLES = 3
TOPIC_REASONS = frozenset({RejectReason.TOPIC_INVALID.value, RejectReason.PILOT_MISMATCH.value})
CODEC_REASONS = frozenset({RejectReason.BAD_BASE64.value, RejectReason.CODEC_ERROR.value,
                           RejectReason.UNKNOWN_FPORT.value, RejectReason.PROFILE_INVALID.value}
                          | {r.value for r in RejectReason if r.value.startswith("codec_")})


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)  # at most MAX_EXAMPLES


def _na(name: str, message: str) -> CheckResult:
    return CheckResult(name, Outcome.NOT_APPLICABLE, message)


def _contract_topics(o: Observations) -> str:
    d = o.device
    return ", ".join(topic_for(d.pilot_id, d.id, c) for c in Channel)


def _rejection(r: Any) -> dict[str, Any]:
    return {"received_at": r.received_at, "topic": r.topic, "reason": r.reason, "detail": r.detail}


def _quoted(examples: Sequence[dict[str, Any]]) -> str:
    first = examples[0]
    return f"{first['reason']} on {first['topic']}: {first['detail']}"


def credentials(o: Observations, t: Thresholds) -> CheckResult:
    d = o.device
    if d.transport == "lorawan":
        return _na("credentials", "a LoRaWAN device joins its network server with its own keys; pilotlab hears it "
                                  "through the network server (see lorawan_session)")
    username = d.gateway_id or d.id
    whose = f"gateway {username!r}, which publishes for this device," if d.gateway_id else f"device {d.id!r}"
    account = o.account
    arrived = len(o.readings) + len(o.rejections)
    evidence = {"username": username, "client_id": username, "account_of": o.account_owner, "messages_arrived": arrived,
                "account_created_at": account.created_at if account else None,
                "account_rotated_at": account.rotated_at if account else None}
    if account is None:
        return CheckResult("credentials", Outcome.FAIL, f"{whose} has no broker account: issue one (`pilotlab "
                           f"credentials issue {username}` or POST /devices/{username}/credentials) and configure it "
                           f"as MQTT username and client id {username!r} with that password", evidence)
    if not account.active:
        return CheckResult("credentials", Outcome.FAIL, f"the broker account of {whose} was revoked at "
                           f"{account.revoked_at} ({account.revoke_reason}): the broker refuses its CONNECT (CONNACK "
                           f"0x86 bad username or password); issue new credentials", evidence)
    if arrived == 0:
        return CheckResult("credentials", Outcome.FAIL, f"nothing from {whose} reached pilotlab during the run: the "
                           f"broker refuses a CONNECT whose username, password or client id is wrong (the client id "
                           f"must be the username {username!r}); read the CONNACK reason code in the device's log",
                           evidence)
    return CheckResult("credentials", Outcome.PASS, f"connected as {username!r}: {arrived} messages arrived", evidence)


def topics(o: Observations, t: Thresholds) -> CheckResult:
    if o.device.transport == "lorawan":
        return _na("topics", "the network server publishes a LoRaWAN device's uplinks on its own topics")
    wrong = [_rejection(r) for r in o.rejections if r.reason in TOPIC_REASONS]
    by_channel = Counter(r.channel for r in o.readings)
    evidence = {"contract_topics": _contract_topics(o), "arrived_by_channel": dict(sorted(by_channel.items())),
                "refused_for_topic": len(wrong)}
    if wrong:
        return CheckResult("topics", Outcome.FAIL, f"{len(wrong)} messages were published on topics outside the "
                           f"contract, e.g. {_quoted(wrong)}; the contract topics are {_contract_topics(o)}",
                           evidence, wrong[:MAX_EXAMPLES])
    if not o.readings:
        return CheckResult("topics", Outcome.FAIL, f"no message arrived on the contract topics {_contract_topics(o)}; "
                           "a publish to any other topic is refused by the broker (PUBACK 0x87 not authorized on "
                           "MQTT 5) and never reaches pilotlab", evidence)
    return CheckResult("topics", Outcome.PASS, f"{len(o.readings)} messages arrived, all on the contract topics; "
                       "publishes elsewhere are refused by the broker and seen only by the device (PUBACK 0x87)",
                       evidence)


def payloads(o: Observations, t: Thresholds) -> CheckResult:
    refused = [_rejection(r) for r in o.rejections if r.reason not in TOPIC_REASONS]
    evidence = {"stored": len(o.readings), "refused": len(refused), "max_refused": t.payloads.max_rejected,
                "refused_by_reason": dict(sorted(Counter(r["reason"] for r in refused).items()))}
    decoder = f"device profile {o.device.profile_id!r}" if o.device.profile_id else "contract v1 (`pilotlab contract schema`)"
    if len(refused) > t.payloads.max_rejected:
        return CheckResult("payloads", Outcome.FAIL, f"{len(refused)} of {len(refused) + len(o.readings)} messages were "
                           f"refused, e.g. {_quoted(refused)}; every payload must decode and validate against "
                           f"{decoder}", evidence, refused[:MAX_EXAMPLES])
    if not o.readings:
        return CheckResult("payloads", Outcome.FAIL, "no payload arrived to decode", evidence)
    return CheckResult("payloads", Outcome.PASS, f"all {len(o.readings)} messages decoded with {decoder} and validated"
                       + (f" ({len(refused)} refused, within {t.payloads.max_rejected})" if refused else ""), evidence)


def _carrying(o: Observations, name: str) -> int:
    return sum(1 for r in o.readings if name in r.carried)


def measurements(o: Observations, t: Thresholds) -> CheckResult:
    d = o.device
    if d.declared is None:
        return _na("measurements", f"device {d.id!r} has no device profile, so it declares no measurements "
                                   "(give it one to have them checked)")
    carried = {m: _carrying(o, m) for m in d.declared}
    missing = [m for m, n in carried.items() if n < t.measurements.min_readings]
    evidence = {"profile": f"{d.profile_id} v{d.profile_version}", "declared": list(d.declared),
                "readings": len(o.readings), "readings_carrying": carried}
    if missing:
        lacking = [{"seq": r.seq, "device_time": r.device_time, "channel": r.channel, "carried": sorted(r.carried)}
                   for r in o.readings if not set(missing) <= r.carried][:MAX_EXAMPLES]
        return CheckResult("measurements", Outcome.FAIL, f"declared but not reported: {', '.join(missing)} (carried by "
                           f"{', '.join(str(carried[m]) for m in missing)} of {len(o.readings)} readings); profile "
                           f"{d.profile_id!r} declares {', '.join(d.declared)}: send each of them, or take it out of "
                           "the profile", evidence, lacking)
    return CheckResult("measurements", Outcome.PASS, f"every declared measurement reported ({', '.join(d.declared)})",
                       evidence)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def interval(o: Observations, t: Thresholds) -> CheckResult:
    declared = o.device.reporting_interval_s
    times = sorted(r.ingest_time for r in o.readings if r.channel == Channel.TELEMETRY.value)
    gaps = [((b - a).total_seconds(), a, b) for a, b in zip(times, times[1:], strict=False)]
    low, high = declared * (1 - t.interval.tolerance), declared * (1 + t.interval.tolerance)
    evidence: dict[str, Any] = {"declared_s": declared, "allowed_s": [low, high], "telemetry_readings": len(times),
                                "gaps": len(gaps)}
    if o.device.profile_interval_s is not None and o.device.profile_interval_s != declared:
        evidence["profile_declares_s"] = o.device.profile_interval_s
    if len(gaps) < 2:
        return CheckResult("interval", Outcome.FAIL, f"{len(times)} telemetry readings arrived: too few to measure an "
                           f"interval; the device should report telemetry every {declared} s", evidence)
    p = percentile([g for g, _, _ in gaps], t.interval.percentile)
    median = percentile([g for g, _, _ in gaps], 50)
    evidence.update(p_s=p, percentile=t.interval.percentile, median_s=median)
    said = f"p{t.interval.percentile:g} of {len(gaps)} gaps {p:.3g} s, median {median:.3g} s"
    if low <= p <= high:
        return CheckResult("interval", Outcome.PASS, f"telemetry every {median:.3g} s ({said}); declared {declared} s "
                           f"± {t.interval.tolerance:.0%}", evidence)
    slow = p > high
    extreme = sorted(gaps, key=lambda g: -g[0] if slow else g[0])[:MAX_EXAMPLES]
    examples = [{"gap_s": g, "from": a, "to": b} for g, a, b in extreme]
    advice = (f"the device reports {'less' if slow else 'more'} often than declared: set its reporting period to "
              f"{declared} s, or register the interval it really has")
    return CheckResult("interval", Outcome.FAIL, f"telemetry gaps out of {low:.3g}-{high:.3g} s ({declared} s ± "
                       f"{t.interval.tolerance:.0%}): {said}; {advice}", evidence, examples)


def clock(o: Observations, t: Thresholds) -> CheckResult:
    if o.device.transport == "lorawan":
        return _na("clock", "a LoRaWAN reading is stamped with the network server's time of the uplink, not a "
                            "device clock")
    if not o.readings:
        return CheckResult("clock", Outcome.FAIL, "no reading arrived to compare the device clock with")
    offsets = [((r.ingest_time - r.device_time).total_seconds(), r) for r in o.readings]
    worst = max(offsets, key=lambda x: abs(x[0]))
    limit = t.clock.max_offset_s
    values = [x for x, _ in offsets]
    evidence = {"max_offset_s": limit, "readings": len(offsets), "worst_s": worst[0],
                "median_s": percentile(values, 50), "first_s": values[0], "last_s": values[-1]}
    if abs(worst[0]) <= limit:
        return CheckResult("clock", Outcome.PASS, f"device time within {abs(worst[0]):.3g} s of pilotlab's "
                           f"(limit ±{limit:g} s)", evidence)
    way = "behind" if worst[0] > 0 else "ahead of"
    drift = abs(values[-1] - values[0]) > limit / 2
    how = (f"it drifted from {values[0]:+.3g} s to {values[-1]:+.3g} s during the run" if drift
           else f"it is off by about {evidence['median_s']:+.3g} s")
    bad = sorted(offsets, key=lambda x: -abs(x[0]))[:MAX_EXAMPLES]
    examples = [{"seq": r.seq, "ts": r.device_time, "received_at": r.ingest_time, "offset_s": x} for x, r in bad]
    return CheckResult("clock", Outcome.FAIL, f"the device clock is up to {abs(worst[0]):.3g} s {way} pilotlab's "
                       f"(limit ±{limit:g} s; {how}): set it from NTP at boot and at least daily, and send ts in UTC "
                       "(RFC 3339 with Z or an offset)", evidence, examples)


def _walk(values: Sequence[tuple[int, datetime]], restarts: Sequence[datetime]) -> tuple[int, list[dict[str, Any]], int]:
    """(skipped values, steps back, steps at a restart) over counter values in order."""
    skipped, back, restarted = 0, [], 0
    for (prev, prev_at), (cur, at) in zip(values, values[1:], strict=False):
        if cur == prev + 1 or (prev == SEQ_MAX and cur == 0):
            continue
        if any(prev_at < r <= at for r in restarts):
            restarted += 1
        elif cur > prev:
            skipped += cur - prev - 1
        else:
            back.append({"from": prev, "to": cur, "at": at})
    return skipped, back, restarted


def sequence(o: Observations, t: Thresholds) -> CheckResult:
    lorawan = o.device.transport == "lorawan"
    name = "frame counter" if lorawan else "seq"
    values = [(f.fcnt, f.uplink_time) for f in o.frames] if lorawan else [(r.seq, r.ingest_time) for r in o.readings]
    if len(values) < 2:
        return CheckResult("sequence", Outcome.FAIL, f"{len(values)} messages arrived: too few to follow the {name}")
    skipped, back, restarted = _walk(values, o.joins if lorawan else [])
    expected = len(values) + skipped
    share = skipped / expected
    evidence = {"messages": len(values), "first": values[0][0], "last": values[-1][0], "skipped": skipped,
                "skipped_share": share, "max_skipped_share": t.sequence.max_missing_share, "went_back": len(back)}
    if lorawan:
        evidence["restarted_at_join"] = restarted
    if back:
        first = back[0]
        rule = ("a frame counter restarts at 0 only with a new join (OTAA) or session" if lorawan else
                f"{name} must grow by 1 with every message on every channel and continue across reboots (keep it in "
                f"non-volatile memory); it wraps from {SEQ_MAX} to 0 only")
        times = f"{len(back)} time{'s' if len(back) > 1 else ''}"
        return CheckResult("sequence", Outcome.FAIL, f"the {name} went back {times}, first from {first['from']} "
                           f"to {first['to']} at {first['at']:%H:%M:%S}: {rule}", evidence, back[:MAX_EXAMPLES])
    if share > t.sequence.max_missing_share:
        return CheckResult("sequence", Outcome.FAIL, f"{skipped} {name} values were skipped ({share:.1%} of {expected}, "
                           f"budget {t.sequence.max_missing_share:.0%}): messages were lost or never sent; publish "
                           "every message with QoS 1 and resend until the broker acknowledges it", evidence)
    return CheckResult("sequence", Outcome.PASS, f"{name} increased from {values[0][0]} to {values[-1][0]} over "
                       f"{len(values)} messages, {skipped} skipped", evidence)


def qos(o: Observations, t: Thresholds) -> CheckResult:
    if o.device.transport == "lorawan":
        return _na("qos", "the network server's integration, not the device, publishes a LoRaWAN uplink to pilotlab")
    arrived = len(o.readings)
    # ingest counts QoS 0 per device and day (qos0_day): a run sees its counts from its start until its report
    evidence = {"messages": arrived, "at_qos_0_until_report": o.qos0, "min_qos": t.qos.min_qos}
    if t.qos.min_qos == 0:
        return CheckResult("qos", Outcome.PASS, "any QoS is accepted by this conformance profile", evidence)
    publisher = "the Wi-Fi gateway" if o.device.transport == "gateway" else "the device"
    if o.qos0:
        return CheckResult("qos", Outcome.FAIL, f"messages arrived at QoS 0 ({o.qos0} from the run's start to its "
                           f"report): {publisher} must publish with QoS 1 and keep a message until its PUBACK, or a "
                           "dropped connection loses it", evidence)
    if not arrived:
        return CheckResult("qos", Outcome.FAIL, "no message arrived to see its QoS", evidence)
    return CheckResult("qos", Outcome.PASS, f"all {arrived} messages arrived at QoS 1 or above", evidence)


def lorawan_session(o: Observations, t: Thresholds) -> CheckResult:
    d = o.device
    if d.transport != "lorawan":
        return _na("lorawan_session", "not a LoRaWAN device (no DevEUI registered)")
    evidence = {"dev_eui": d.dev_eui, "joins_in_run": len(o.joins), "frames": len(o.frames), "last_join": o.last_join}
    if o.joins:
        return CheckResult("lorawan_session", Outcome.PASS, f"joined at {o.joins[-1]:%H:%M:%S}; {len(o.frames)} uplink "
                           "frames heard", evidence)
    if o.frames:
        since = f"last join {o.last_join:%Y-%m-%d %H:%M}" if o.last_join else "joined before pilotlab heard it"
        return CheckResult("lorawan_session", Outcome.PASS, f"session active: {len(o.frames)} uplink frames heard "
                           f"({since})", evidence)
    return CheckResult("lorawan_session", Outcome.FAIL, f"no join and no uplink of DevEUI {d.dev_eui} reached pilotlab: "
                       "register the device under that DevEUI in the network-server application registered to pilot "
                       f"{d.pilot_id!r}, and check the network server forwards its events to pilotlab", evidence)


def _unmapped_only(o: Observations) -> list[Reading]:
    return [r for r in o.readings if r.has_extra and not r.carried and r.channel != Channel.EVENT.value]


def codec_mapping(o: Observations, t: Thresholds) -> CheckResult:
    d = o.device
    if d.transport != "lorawan":
        return _na("codec_mapping", "not a LoRaWAN device: its payloads are checked by `payloads`")
    failed = [_rejection(r) for r in o.rejections if r.reason in CODEC_REASONS]
    unmapped = _unmapped_only(o)
    decoder = f"profile {d.profile_id!r} v{d.profile_version}" if d.profile_id else "pilotlab's default fPort layouts"
    evidence = {"decoder": decoder, "readings": len(o.readings), "codec_failures": len(failed),
                "unmapped_only": len(unmapped), "with_unmapped_fields": sum(1 for r in o.readings if r.has_extra)}
    if failed:
        return CheckResult("codec_mapping", Outcome.FAIL, f"{len(failed)} uplinks could not be decoded by {decoder}, "
                           f"e.g. {failed[0]['reason']}: {failed[0]['detail']}; give every fPort the device sends a "
                           "codec in the profile", evidence, failed[:MAX_EXAMPLES])
    if unmapped:
        examples = [{"seq": r.seq, "device_time": r.device_time} for r in unmapped[:MAX_EXAMPLES]]
        return CheckResult("codec_mapping", Outcome.FAIL, f"{len(unmapped)} readings hold only codec output the "
                           f"mapping of {decoder} does not name (kept in telemetry.extra): map those fields to "
                           "measurements", evidence, examples)
    if not o.readings:
        return CheckResult("codec_mapping", Outcome.FAIL, "no uplink payload was decoded during the run", evidence)
    return CheckResult("codec_mapping", Outcome.PASS, f"{len(o.readings)} uplinks decoded and mapped by {decoder}",
                       evidence)


def battery(o: Observations, t: Thresholds) -> CheckResult:
    d = o.device
    if d.declared is None or "battery_pct" not in d.declared:
        return _na("battery", "the device's profile does not declare battery_pct" if d.declared is not None
                   else "no device profile declares a battery")
    n = _carrying(o, "battery_pct")
    evidence = {"readings": len(o.readings), "carrying_battery_pct": n, "min_readings": t.measurements.min_readings}
    if n < t.measurements.min_readings:
        return CheckResult("battery", Outcome.FAIL, f"profile {d.profile_id!r} declares battery_pct but {n} of "
                           f"{len(o.readings)} readings carried it: report the charge in percent (0-100) in "
                           "telemetry or status", evidence)
    return CheckResult("battery", Outcome.PASS, f"battery_pct reported in {n} of {len(o.readings)} readings", evidence)


CHECKS: tuple[Callable[[Observations, Thresholds], CheckResult], ...] = (
    credentials, topics, payloads, measurements, interval, clock, sequence, qos, lorawan_session, codec_mapping, battery)


def evaluate(o: Observations, t: Thresholds) -> list[CheckResult]:
    """Every check, in CHECKS' order."""
    return [check(o, t) for check in CHECKS]
