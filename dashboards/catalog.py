"""Every pilotlab dashboard and panel: the one source of truth for Grafana.

Names the SQL relies on: the registry (`pilot`, `device`, `gateway`), `telemetry`, `dead_letter`
and `telemetry_hourly` (README, *Storage*), the daily score history (`score_history`, its
`summary` JSON holding components, pooled metrics and gates: store/sql/0004_scoring.sql,
scoring/scorer.py) and the LPWA link tables (`uplink_reception`, `uplink_loss_hourly`:
store/sql/0003_lpwa.sql). Every panel declares the tables it reads in `requires`; the panel-SQL
test skips a panel, saying what is missing, when its tables are not there.

Time buckets use Grafana's `$__timeGroupAlias`: the data source's `timescaledb` option, set by
`pilotlab grafana provision` from what `store.timeseries` detected at migrate time, makes Grafana
emit TimescaleDB's `time_bucket` on TimescaleDB and an epoch-floor equivalent on plain
PostgreSQL (both bucket in UTC from the epoch for widths that divide a day).

"Online" and "last seen" are the API's (store/readings.py, same factor and look-back): a message
*arrived* (ingest time, the server's clock) within 3 × the declared reporting interval of now.
Never the device's own time stamp: a reading stamped up to a day ahead would otherwise be the
newest for a day and hide the normal readings that arrive after it.
"""

from __future__ import annotations

from typing import Any

from dashboards.model import DashboardSpec, PanelSpec, Requirement, VariableSpec, geomap_layers
from store.readings import ARRIVAL_LOOKBACK, ONLINE_FACTOR

SCORING = "store/sql/0004_scoring.sql"
LPWA = "store/sql/0003_lpwa.sql"

PILOTS = VariableSpec("pilot", "Pilot", "SELECT id FROM pilot ORDER BY id", multi=True, include_all=True)
PILOT = VariableSpec("pilot", "Pilot", "SELECT id FROM pilot ORDER BY id")
DEVICE = VariableSpec("device", "Device", "SELECT id FROM device WHERE pilot_id = '$pilot' ORDER BY id")
GATEWAYS = VariableSpec("gateway", "Gateway", "SELECT id FROM gateway WHERE pilot_id = '$pilot' ORDER BY id",
                        multi=True, include_all=True)

SCORE_HISTORY = Requirement("score_history", ("pilot_id", "scored_on", "window_end", "score", "verdict", "summary"), SCORING)
# QC flags as scoring keeps them: per device and closed local day, in its rollups (scoring.daily).
SCORING_DAY = Requirement("scoring_day", ("device_id", "day_start", "day_end", "complete_to", "readings", "suspect",
                                          "fail"), "store/sql/0007_scoring_rollups.sql")
RECEPTION = Requirement("uplink_reception", ("device_id", "fcnt", "uplink_time", "gateway_id", "rssi_dbm", "snr_db"), LPWA)
LOSS = Requirement("uplink_loss_hourly", ("device_id", "hour", "received", "lost", "expected"), LPWA)
STORED_AT = Requirement("telemetry", ("stored_at",), "store/sql/0005_stored_at.sql")

# Arrivals among the readings stamped within the look-back (the (device, device_time) index bounds
# the scan, as in store.readings.device_health), and the newest reading by device time however late.
_ONLINE = f"""
SELECT d.id, d.pilot_id, d.kind, d.reporting_interval_s, greatest(recent.arrived, last.ingest_time) AS last_seen,
       coalesce(greatest(recent.arrived, last.ingest_time)
                >= now() - {ONLINE_FACTOR} * d.reporting_interval_s * INTERVAL '1 second', false) AS online
FROM device d
LEFT JOIN LATERAL (SELECT ingest_time FROM telemetry t WHERE t.device_id = d.id
                   ORDER BY device_time DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (SELECT max(t.ingest_time) AS arrived FROM telemetry t
                   WHERE t.device_id = d.id
                     AND t.device_time >= now() - greatest(INTERVAL '{int(ARRIVAL_LOOKBACK.total_seconds())} seconds',
                                                           {ONLINE_FACTOR} * d.reporting_interval_s * INTERVAL '1 second')
                   ) recent ON true
WHERE d.pilot_id IN ($pilot) AND d.decommissioned_at IS NULL
"""

# Dead letters of the chosen pilots, and those no registered pilot owns (a bad topic, a stranger).
_DEAD_LETTER_SCOPE = ("(dl.pilot_id IN ($pilot) OR dl.pilot_id IS NULL "
                      "OR NOT EXISTS (SELECT 1 FROM pilot p WHERE p.id = dl.pilot_id))")


def _bars(panel: Any) -> Any:
    from grafana_foundation_sdk.builders.common import StackingConfig
    from grafana_foundation_sdk.models.common import GraphDrawStyle, StackingMode

    return panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80).stacking(StackingConfig().mode(StackingMode.NORMAL))


def _availability_heatmap(panel: Any) -> Any:
    return panel.calculate(False)


FLEET = DashboardSpec(
    slug="fleet", title="pilotlab · Fleet overview",
    description="Devices online and offline, message rate, dead letters and ingest lag across pilots.",
    variables=(PILOTS,), per_pilot=False,
    panels=(
        PanelSpec("Devices online", "stat", f"SELECT count(*) FILTER (WHERE online) AS online, "
                  f"count(*) FILTER (WHERE NOT online) AS offline FROM ({_ONLINE}) fleet",
                  ("online", "offline"), format="table", width=6, height=6,
                  description=f"Online: a message arrived within {ONLINE_FACTOR} × the declared reporting interval "
                              "(arrival time, not the device's own time stamp)."),
        PanelSpec("Messages per minute", "timeseries", """
SELECT $__timeGroupAlias(t.device_time, $__interval), d.pilot_id AS metric,
       count(*) * 60000.0 / $__interval_ms AS messages_per_min
FROM telemetry t JOIN device d ON d.id = t.device_id
WHERE $__timeFilter(t.device_time) AND d.pilot_id IN ($pilot)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "messages_per_min"), unit="short", width=18, height=6),
        PanelSpec("Dead letters by reason", "timeseries", f"""
SELECT $__timeGroupAlias(dl.received_at, $__interval), dl.reason AS metric, count(*) AS dead_letters
FROM dead_letter dl
WHERE $__timeFilter(dl.received_at) AND {_DEAD_LETTER_SCOPE}
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "dead_letters"), tweak=_bars),
        PanelSpec("Dead letter reasons", "piechart", f"""
SELECT dl.reason, count(*) AS dead_letters
FROM dead_letter dl
WHERE $__timeFilter(dl.received_at) AND {_DEAD_LETTER_SCOPE}
GROUP BY 1 ORDER BY 2 DESC""", ("reason", "dead_letters"), format="table", width=6),
        PanelSpec("Ingest lag (device time → stored)", "timeseries", """
SELECT $__timeGroupAlias(t.device_time, $__interval),
       avg(extract(epoch FROM t.ingest_time - t.device_time)) AS mean_lag_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM t.ingest_time - t.device_time)) AS p95_lag_s
FROM telemetry t JOIN device d ON d.id = t.device_id
WHERE $__timeFilter(t.device_time) AND d.pilot_id IN ($pilot)
GROUP BY 1 ORDER BY 1""", ("time", "mean_lag_s", "p95_lag_s"), unit="s", width=6),
        PanelSpec("Devices", "table", f"""
SELECT f.pilot_id, f.id AS device_id, f.kind, f.online, f.last_seen,
       (SELECT count(*) FROM telemetry t WHERE t.device_id = f.id AND $__timeFilter(t.device_time)) AS messages
FROM ({_ONLINE}) f ORDER BY f.online, f.pilot_id, f.id""",
                  ("pilot_id", "device_id", "kind", "online", "last_seen", "messages"), format="table", width=24),
    ))

PILOT_DETAIL = DashboardSpec(
    slug="pilot", title="pilotlab · Pilot detail",
    description="The pilot's score and its components over time, per-device availability, and the gates.",
    variables=(PILOT,), per_pilot=True, time_from="now-7d",
    panels=(
        PanelSpec("Score", "timeseries", """
SELECT window_end AS "time", score FROM score_history
WHERE pilot_id = '$pilot' AND $__timeFilter(window_end) ORDER BY 1""", ("time", "score"),
                  width=12, description="Daily rescoring (score_history): 0-100, bands in the rubric.",
                  requires=(SCORE_HISTORY,)),
        PanelSpec("Score components", "timeseries", """
SELECT window_end AS "time",
       (summary -> 'components' ->> 'availability')::float8 AS availability,
       (summary -> 'components' ->> 'completeness')::float8 AS completeness,
       (summary -> 'components' ->> 'quality')::float8 AS quality,
       (summary -> 'components' ->> 'timeliness')::float8 AS timeliness,
       (summary -> 'components' ->> 'battery')::float8 AS battery,
       (summary -> 'components' ->> 'kind_specific')::float8 AS kind_specific
FROM score_history WHERE pilot_id = '$pilot' AND $__timeFilter(window_end) ORDER BY 1""",
                  ("time", "availability", "completeness", "quality", "timeliness", "battery", "kind_specific"),
                  unit="percentunit", width=12, requires=(SCORE_HISTORY,)),
        PanelSpec("Availability per device", "heatmap", """
SELECT $__timeGroupAlias(t.device_time, $__interval), t.device_id AS metric,
       least(1.0, count(*) * max(d.reporting_interval_s) / ($__interval_ms / 1000.0)) AS availability
FROM telemetry t JOIN device d ON d.id = t.device_id
WHERE d.pilot_id = '$pilot' AND t.channel = 'telemetry' AND $__timeFilter(t.device_time)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "availability"), width=24, height=10, min_interval="5m",
                  description="Telemetry messages received per bucket / expected from the declared interval (capped at 1).",
                  tweak=_availability_heatmap),
        PanelSpec("Gates (latest scoring)", "table", """
SELECT g ->> 'name' AS gate, (g ->> 'passed')::boolean AS passed, (g ->> 'value')::float8 AS observed,
       (g ->> 'threshold')::float8 AS threshold, s.window_end
FROM score_history s CROSS JOIN LATERAL jsonb_array_elements(s.summary -> 'gates') g
WHERE s.pilot_id = '$pilot'
  AND s.scored_on = (SELECT max(scored_on) FROM score_history WHERE pilot_id = '$pilot')
ORDER BY 2, 1""", ("gate", "passed", "observed", "threshold", "window_end"), format="table",
                  width=12, requires=(SCORE_HISTORY,)),
        PanelSpec("Verdict", "stat", """
SELECT verdict, score FROM score_history WHERE pilot_id = '$pilot' ORDER BY scored_on DESC, scored_at DESC LIMIT 1""",
                  ("verdict", "score"), format="table", width=6, requires=(SCORE_HISTORY,)),
        PanelSpec("Quality control shares", "timeseries", """
SELECT window_end AS "time",
       (summary -> 'metrics' ->> 'qc_pass_share')::float8 AS qc_pass,
       (summary -> 'metrics' ->> 'qc_suspect_share')::float8 AS qc_suspect,
       (summary -> 'metrics' ->> 'qc_fail_share')::float8 AS qc_fail
FROM score_history WHERE pilot_id = '$pilot' AND $__timeFilter(window_end) ORDER BY 1""",
                  ("time", "qc_pass", "qc_suspect", "qc_fail"), unit="percentunit", width=6, requires=(SCORE_HISTORY,)),
    ))

DEVICE_DRILLDOWN = DashboardSpec(
    slug="device", title="pilotlab · Device drill-down",
    description="One device: every measurement, battery, status, events and quality-control flags.",
    variables=(PILOT, DEVICE), per_pilot=True,
    panels=(
        PanelSpec("Measurements", "timeseries", """
SELECT $__timeGroupAlias(device_time, $__interval),
       avg(power_w) AS power_w, max(energy_wh) AS energy_wh, avg(speed_mps) AS speed_mps,
       avg(accuracy_m) AS accuracy_m, avg(temperature_c) AS temperature_c, avg(humidity_pct) AS humidity_pct,
       avg(pm25_ugm3) AS pm25_ugm3, avg(pm10_ugm3) AS pm10_ugm3, avg(co2_ppm) AS co2_ppm, avg(noise_dba) AS noise_dba
FROM telemetry
WHERE device_id = '$device' AND channel = 'telemetry' AND $__timeFilter(device_time)
GROUP BY 1 ORDER BY 1""", ("time", "power_w", "energy_wh", "speed_mps", "accuracy_m", "temperature_c",
                           "humidity_pct", "pm25_ugm3", "pm10_ugm3", "co2_ppm", "noise_dba"), width=24),
        PanelSpec("Battery", "timeseries", """
SELECT $__timeGroupAlias(device_time, $__interval), min(battery_pct) AS battery_pct
FROM telemetry WHERE device_id = '$device' AND battery_pct IS NOT NULL AND $__timeFilter(device_time)
GROUP BY 1 ORDER BY 1""", ("time", "battery_pct"), unit="percent", width=12),
        PanelSpec("Status", "state-timeline", """
SELECT device_time AS "time", state FROM telemetry
WHERE device_id = '$device' AND channel = 'status' AND $__timeFilter(device_time) ORDER BY 1""",
                  ("time", "state"), width=12),
        PanelSpec("Events", "table", """
SELECT device_time AS "time", event, detail::text AS detail FROM telemetry
WHERE device_id = '$device' AND channel = 'event' AND $__timeFilter(device_time) ORDER BY 1 DESC LIMIT 200""",
                  ("time", "event", "detail"), format="table", width=12),
        PanelSpec("Quality-control flags per day (QARTOD + timestamp checks)", "timeseries", """
SELECT DISTINCT ON (day_start) day_start AS "time", readings - suspect - fail AS pass, suspect, fail
FROM scoring_day
WHERE device_id = '$device' AND day_start < $__timeTo() AND day_end > $__timeFrom()
ORDER BY day_start, complete_to DESC""", ("time", "pass", "suspect", "fail"), width=12, tweak=_bars,
                  description="Readings per closed day by their worst QC flag, from the scoring rollups "
                              "(the latest rubric's); per-reading flags: GET /pilots/{id}/score/devices.",
                  requires=(SCORING_DAY,)),
    ))

TRACKERS = DashboardSpec(
    slug="trackers", title="pilotlab · Location trackers",
    description="Where the pilot's trackers are and where they went.",
    variables=(PILOT,), per_pilot=True, time_from="now-1h",
    panels=(
        PanelSpec("Trackers", "geomap", """
SELECT DISTINCT ON (t.device_id) t.device_time AS "time", t.device_id, t.lat, t.lon, t.accuracy_m, t.speed_mps,
       t.fix_type, t.battery_pct
FROM telemetry t JOIN device d ON d.id = t.device_id
WHERE d.pilot_id = '$pilot' AND d.kind = 'location_tracker' AND t.lat IS NOT NULL AND $__timeFilter(t.device_time)
ORDER BY t.device_id, t.device_time DESC""",
                  ("time", "device_id", "lat", "lon", "accuracy_m", "speed_mps", "fix_type", "battery_pct"),
                  format="table", width=16, height=14, tweak=geomap_layers(("Last position", "red"))),
        PanelSpec("Tracks", "geomap", """
SELECT t.device_time AS "time", t.device_id, t.lat, t.lon
FROM telemetry t JOIN device d ON d.id = t.device_id
WHERE d.pilot_id = '$pilot' AND d.kind = 'location_tracker' AND t.lat IS NOT NULL AND $__timeFilter(t.device_time)
ORDER BY t.device_time LIMIT 20000""", ("time", "device_id", "lat", "lon"),
                  format="table", width=8, height=14, tweak=geomap_layers(("Fixes", "blue"))),
        PanelSpec("Fix types", "timeseries", """
SELECT $__timeGroupAlias(t.device_time, $__interval), t.fix_type AS metric, count(*) AS fixes
FROM telemetry t JOIN device d ON d.id = t.device_id
WHERE d.pilot_id = '$pilot' AND d.kind = 'location_tracker' AND t.channel = 'telemetry' AND $__timeFilter(t.device_time)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "fixes"), width=24, tweak=_bars),
    ))


def _environment(quantity: str, unit: str) -> PanelSpec:
    return PanelSpec(quantity, "timeseries", f"""
SELECT $__timeGroupAlias(h.bucket, $__interval), h.device_id AS metric, avg(h.mean_{quantity}) AS {quantity}
FROM telemetry_hourly h JOIN device d ON d.id = h.device_id
WHERE d.pilot_id = '$pilot' AND d.kind = 'env_sensor' AND $__timeFilter(h.bucket) AND h.mean_{quantity} IS NOT NULL
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", quantity), unit=unit, min_interval="1h",
                     description="Hourly means from telemetry_hourly (a continuous aggregate on TimescaleDB).")


ENVIRONMENT = DashboardSpec(
    slug="environment", title="pilotlab · Environment trends",
    description="Hourly means of each environment sensor's measurements.",
    variables=(PILOT,), per_pilot=True, time_from="now-7d",
    panels=tuple(_environment(q, u) for q, u in (
        ("temperature_c", "celsius"), ("humidity_pct", "humidity"), ("pm25_ugm3", "conμgm3"),
        ("pm10_ugm3", "conμgm3"), ("co2_ppm", "ppm"), ("noise_dba", "dB"))),
)

LPWA_LINKS = DashboardSpec(
    slug="lpwa", title="pilotlab · LPWA link quality",
    description="RSSI and SNR per gateway, how many gateways hear each uplink, and uplink loss.",
    variables=(PILOT, GATEWAYS), per_pilot=True, time_from="now-24h",
    panels=(
        PanelSpec("RSSI per gateway", "timeseries", """
SELECT $__timeGroupAlias(r.uplink_time, $__interval), r.gateway_id AS metric, avg(r.rssi_dbm) AS rssi_dbm
FROM uplink_reception r JOIN device d ON d.id = r.device_id
WHERE d.pilot_id = '$pilot' AND r.gateway_id IN ($gateway) AND $__timeFilter(r.uplink_time)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "rssi_dbm"), unit="dBm", requires=(RECEPTION,)),
        PanelSpec("SNR per gateway", "timeseries", """
SELECT $__timeGroupAlias(r.uplink_time, $__interval), r.gateway_id AS metric, avg(r.snr_db) AS snr_db
FROM uplink_reception r JOIN device d ON d.id = r.device_id
WHERE d.pilot_id = '$pilot' AND r.gateway_id IN ($gateway) AND $__timeFilter(r.uplink_time)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "snr_db"), unit="dB", requires=(RECEPTION,)),
        PanelSpec("Receptions per uplink", "timeseries", """
SELECT $__timeGroupAlias(u.uplink_time, $__interval), avg(u.receptions) AS receptions_per_uplink
FROM (SELECT r.device_id, r.fcnt, r.uplink_time, count(*) AS receptions
      FROM uplink_reception r JOIN device d ON d.id = r.device_id
      WHERE d.pilot_id = '$pilot' AND $__timeFilter(r.uplink_time)
      GROUP BY r.device_id, r.fcnt, r.uplink_time) u
GROUP BY 1 ORDER BY 1""", ("time", "receptions_per_uplink"), requires=(RECEPTION,),
                  description="How many gateways heard each uplink (stored once, with one reception per gateway)."),
        PanelSpec("Uplink loss per device (frame counter gaps)", "timeseries", """
SELECT $__timeGroupAlias(l.hour, $__interval), l.device_id AS metric,
       sum(l.lost)::float8 / nullif(sum(l.expected), 0) AS loss
FROM uplink_loss_hourly l JOIN device d ON d.id = l.device_id
WHERE d.pilot_id = '$pilot' AND $__timeFilter(l.hour)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "loss"), unit="percentunit", min_interval="1h", requires=(LOSS,)),
        PanelSpec("Device-reported RSSI per gateway", "timeseries", """
SELECT $__timeGroupAlias(t.device_time, $__interval), coalesce(d.gateway_id, 'direct') AS metric,
       avg(t.rssi_dbm) AS rssi_dbm
FROM telemetry t JOIN device d ON d.id = t.device_id
WHERE d.pilot_id = '$pilot' AND d.connectivity = 'lpwa' AND t.channel = 'status' AND t.rssi_dbm IS NOT NULL
  AND $__timeFilter(t.device_time)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "rssi_dbm"), unit="dBm",
                  description="RSSI from the devices' own status messages, grouped by their registered gateway."),
    ))

INGEST = DashboardSpec(
    slug="ingest", title="pilotlab · Ingest health",
    description="What the ingest stored, how late, and what it refused (from the database; "
                "worker internals are in Prometheus: pilotlab_ingest_*).",
    variables=(), per_pilot=False, time_from="now-3h",
    panels=(
        PanelSpec("Stored messages per minute, by channel", "timeseries", """
SELECT $__timeGroupAlias(ingest_time, $__interval), channel AS metric, count(*) * 60000.0 / $__interval_ms AS per_min
FROM telemetry WHERE $__timeFilter(device_time) AND $__timeFilter(ingest_time)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "per_min"), width=12),
        PanelSpec("Delivery latency (device time → received)", "timeseries", """
SELECT $__timeGroupAlias(ingest_time, $__interval),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ingest_time - device_time)) AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ingest_time - device_time)) AS p95_s,
       max(extract(epoch FROM ingest_time - device_time)) AS max_s
FROM telemetry WHERE $__timeFilter(device_time) AND $__timeFilter(ingest_time)
GROUP BY 1 ORDER BY 1""", ("time", "p50_s", "p95_s", "max_s"), unit="s", width=12),
        PanelSpec("Time inside ingest (received → stored)", "timeseries", """
SELECT $__timeGroupAlias(ingest_time, $__interval),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - ingest_time)) AS p95_s,
       max(extract(epoch FROM stored_at - ingest_time)) AS max_s
FROM telemetry WHERE $__timeFilter(device_time) AND $__timeFilter(ingest_time)
GROUP BY 1 ORDER BY 1""", ("time", "p95_s", "max_s"), unit="s", width=12, requires=(STORED_AT,)),
        PanelSpec("Dead letters per minute, by reason", "timeseries", """
SELECT $__timeGroupAlias(received_at, $__interval), reason AS metric, count(*) * 60000.0 / $__interval_ms AS per_min
FROM dead_letter WHERE $__timeFilter(received_at)
GROUP BY 1, 2 ORDER BY 1""", ("time", "metric", "per_min"), width=12, tweak=_bars),
        PanelSpec("Latest dead letters", "table", """
SELECT received_at AS "time", reason, topic, detail, pilot_id, device_id
FROM dead_letter WHERE $__timeFilter(received_at) ORDER BY received_at DESC LIMIT 100""",
                  ("time", "reason", "topic", "detail", "pilot_id", "device_id"), format="table", width=24),
    ))

DASHBOARDS: tuple[DashboardSpec, ...] = (FLEET, PILOT_DETAIL, DEVICE_DRILLDOWN, TRACKERS, ENVIRONMENT, LPWA_LINKS, INGEST)
