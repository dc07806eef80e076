"""Scoring from per-day summaries equals scoring from raw rows, across midnights, rubric changes
and late data (scoring.daily)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from scoring.daily import rubric_digest
from scoring.metrics import DeviceMetrics, device_metrics, raw_device_metrics
from scoring.rubric import load_rubric_bytes
from scoring.window import load_pilot, pilot_window
from store.migrate import migrate
from tests.scoring.conftest import ENV_OK

SEOUL = "Asia/Seoul"  # local midnight = 15:00 UTC
HISTOGRAM = {"latency_p50_s", "latency_p95_s", "accuracy_p50_m", "accuracy_p95_m"}  # 1 % (scoring.histogram)
LEAST_SQUARES = {"battery_slope_pct_per_day", "projected_battery_days", "battery_ratio"}  # float sums vs regr_slope

# Env sensor at 60 s from 2024-01-01 00:00 Seoul (2023-12-31T15:00Z), i = minutes since then:
# - silent 23:50 -> 00:20 local on the first night (i 1430..1459): an outage across midnight;
# - a temperature spike on the last reading before the second midnight (i 2879) and on the first
#   after it (i 2880);
#   (the readings next to a spike fail the spike test too: 2878..2881 fail, a 5-minute outage);
# - humidity stuck 18:40 -> 02:40 local across the third midnight (i 4000..4480): flat-line
#   suspect after 3 h, fail after 6 h, so the 121 fails start after midnight, carried over;
# - a duplicate at noon on Jan 3; battery draining 0.001 % a minute.
ENV = ("CASE WHEN i = 2879 THEN 45 WHEN i = 2880 THEN 44 ELSE 20 + (i % 7) * 0.1 END AS temperature_c, "
       "CASE WHEN i BETWEEN 4000 AND 4480 THEN 49 ELSE 50 + (i % 5) END AS humidity_pct, "
       "100 - i * 0.001 AS battery_pct")
TRACKER = ("CASE WHEN i % 4 = 0 THEN 'none' ELSE '3d' END AS fix_type, "
           "CASE WHEN i % 4 = 0 THEN NULL ELSE 3 + (i % 11) * 1.7 END AS accuracy_m, 80 - i * 0.0005 AS battery_pct")
SWITCH = "true AS relay_on, 10 + (i % 3) AS power_w, i AS energy_wh, 'heartbeat' AS trigger"


def _minute(i: int) -> datetime:
    """The time of reading i of a series started at 2024-01-01 00:00 Seoul, at 60 s."""
    return datetime(2023, 12, 31, 15, tzinfo=UTC) + timedelta(minutes=i)


def _assert_same(summed: list[DeviceMetrics], raw: list[DeviceMetrics]) -> None:
    assert [m.device_id for m in summed] == [m.device_id for m in raw]
    for s, r in zip(summed, raw, strict=True):
        for field in dataclasses.fields(DeviceMetrics):
            a, b = getattr(s, field.name), getattr(r, field.name)
            if field.name in HISTOGRAM and b is not None:
                assert a == pytest.approx(b, rel=0.01), (s.device_id, field.name)
            elif field.name in LEAST_SQUARES and b is not None:
                assert a == pytest.approx(b, rel=1e-9), (s.device_id, field.name)
            else:
                assert a == b, (s.device_id, field.name, a, b)


def _both(db, rubric, pilot, as_of: datetime) -> tuple[list[DeviceMetrics], list[DeviceMetrics]]:
    window = pilot_window(db, load_pilot(db, pilot.pilot_id), rubric, as_of)
    return (device_metrics(db, rubric, window.scored, {}, timezone=SEOUL),
            raw_device_metrics(db, rubric, window.scored, {}))


@pytest.fixture
def seoul_pilot(make_pilot):
    pilot = make_pilot(starts_at="2024-01-01T00:00+09:00", ends_at=None, status="running", timezone=SEOUL)
    env = pilot.device("env", claimed_battery_days=30)
    pilot.series(env, "2023-12-31T15:00Z", 5 * 1440, 60, ENV, skip="i BETWEEN 1430 AND 1459")
    pilot.series(env, "2024-01-03T03:00Z", 1, 60, ENV, first_seq=90000)  # a duplicate on Jan 3
    # a late joiner: window from 2024-01-01T13:01Z, so its 3-minute slots straddle local midnight
    tracker = pilot.device("tracker", "location_tracker", commissioned_at="2023-12-31T13:01Z")
    pilot.series(tracker, "2023-12-31T15:00Z", 5 * 1440, 60, TRACKER, skip="i BETWEEN 1435 AND 1447")
    # heartbeats every 300 s, every 7th one 100 s late, silent across the second midnight
    switch = pilot.device("switch", "smart_switch", 300)
    pilot.series(switch, "2023-12-31T15:00Z", 5 * 288, 300, SWITCH, skip="i % 7 = 3 OR i BETWEEN 570 AND 580")
    pilot.series(switch, "2023-12-31T15:06:40Z", 5 * 288 // 7, 2100, SWITCH, first_seq=9000)
    return pilot


def test_summaries_give_the_raw_metrics_across_midnights_outages_spikes_flat_lines_and_drain(db, rubric,
                                                                                           seoul_pilot):
    for as_of in ("2024-01-05T00:00+09:00",   # midnight: every day from summaries
                  "2024-01-04T13:30+09:00",   # mid-day: the current day from raw rows
                  "2024-01-03T00:00+09:00"):  # ends after a spike whose flag looked past midnight
        summed, raw = _both(db, rubric.rubric, seoul_pilot, datetime.fromisoformat(as_of))
        _assert_same(summed, raw)
    # the spike at 23:59 fails only when the reading after midnight is in the window
    env_id = f"{seoul_pilot.pilot_id}-env"
    assert db.execute("SELECT tail_needs_next FROM scoring_day WHERE device_id = %s AND day = '2024-01-02'",
                      (env_id,)).fetchone() == (True,)
    full, _ = _both(db, rubric.rubric, seoul_pilot, datetime.fromisoformat("2024-01-05T00:00+09:00"))
    env = {m.device_id: m for m in full}[env_id]
    assert {m.device_id: m for m in summed}[env_id].qc_fail == 1  # 23:58, next to the spike; 23:59 not evaluated
    assert env.qc_fail == 4 + 121 and env.qc_suspect >= 180   # spikes, flat line after midnight (a repeat is no fail)
    assert (env.recovered_outages, env.mttr_s, env.duplicates) == (1, 31 * 60, 1)  # the silence only
    # the runs of QC fails are quality incidents (v2), to the next valid reading: 2878..2881 and 4360..4480
    assert [(i.start, i.duration_s, i.tests) for i in env.quality_incidents or []] == [
        (_minute(2878), 4 * 60, ["temperature_c__spike"]), (_minute(4360), 121 * 60, ["humidity_pct__flat"])]
    assert env.battery_slope_pct_per_day == pytest.approx(-1.44)
    rows = db.execute("SELECT count(*), count(DISTINCT day) FROM scoring_day WHERE device_id LIKE %s",
                      (f"{seoul_pilot.pilot_id}-%",)).fetchone()
    assert rows == (12, 4)  # 3 devices x 4 local days, stored once and reused


def test_two_scorers_building_the_same_days_at_once_both_succeed_with_the_same_figures(database_url, rubric,
                                                                                       seoul_pilot):
    """The API and the daily pass may score one pilot together: the later builder replaces the
    earlier one's days instead of colliding with them."""
    def build() -> list[DeviceMetrics]:
        with psycopg.connect(database_url, autocommit=True) as own:
            window = pilot_window(own, load_pilot(own, seoul_pilot.pilot_id), rubric.rubric,
                                  datetime.fromisoformat("2024-01-05T00:00+09:00"))
            return device_metrics(own, rubric.rubric, window.scored, {}, timezone=SEOUL)

    with ThreadPoolExecutor(4) as pool:
        results = [f.result() for f in [pool.submit(build) for _ in range(4)]]
    assert all(r == results[0] for r in results)


def test_summaries_are_per_rubric_and_a_changed_rubric_gets_its_own(db, rubric, seoul_pilot):
    as_of = datetime.fromisoformat("2024-01-05T00:00+09:00")
    v1 = (Path(__file__).parents[2] / "scoring" / "rubrics" / "v1.yaml").read_text()
    other = load_rubric_bytes(v1.replace("slot_factor: 3", "slot_factor: 5")
                              .replace("spike: {suspect: 3, fail: 8}", "spike: {suspect: 20, fail: 30}").encode(),
                              "other.yaml").rubric
    first, _ = _both(db, rubric.rubric, seoul_pilot, as_of)
    summed, raw = _both(db, other, seoul_pilot, as_of)
    _assert_same(summed, raw)
    env = {m.device_id: m for m in first}[f"{seoul_pilot.pilot_id}-env"]
    env_other = {m.device_id: m for m in summed}[f"{seoul_pilot.pilot_id}-env"]
    assert env_other.slots != env.slots and env_other.qc_fail < env.qc_fail  # really the other rubric's figures
    digests = {r[0] for r in db.execute("SELECT rubric_digest FROM scoring_day WHERE device_id LIKE %s",
                                        (f"{seoul_pilot.pilot_id}-%",))}
    assert digests == {rubric_digest(rubric.rubric), rubric_digest(other)}


def test_late_data_for_a_summarised_day_recomputes_that_day_and_reuses_the_others(db, rubric, seoul_pilot):
    as_of = datetime.fromisoformat("2024-01-05T00:00+09:00")
    _both(db, rubric.rubric, seoul_pilot, as_of)
    env = f"{seoul_pilot.pilot_id}-env"

    def stamps() -> dict[str, datetime]:
        return {str(d): c for d, c in db.execute(
            "SELECT day, complete_to FROM scoring_day WHERE device_id = %s ORDER BY day", (env,))}

    before = stamps()
    _both(db, rubric.rubric, seoul_pilot, as_of)
    assert stamps() == before  # nothing new: every summary reused
    # the outage of the first night is filled late: four readings at 23:55..23:58 local on Jan 1
    seoul_pilot.series(env, "2024-01-01T14:55Z", 4, 60, "20.1 AS temperature_c, 51 AS humidity_pct", first_seq=80000)
    summed, raw = _both(db, rubric.rubric, seoul_pilot, as_of)
    _assert_same(summed, raw)
    after = stamps()
    assert after["2024-01-01"] != before["2024-01-01"]             # the late readings' day
    assert after["2024-01-04"] == before["2024-01-04"]             # far days reused
    filled = {m.device_id: m for m in summed}[env]
    cum = db.execute("SELECT cum_days, cum_lat_counts FROM scoring_day WHERE device_id = %s AND day = '2024-01-04'",
                     (env,)).fetchone()
    # running latency histogram (delivered readings not from the future) carried past the rebuilt day
    assert (cum[0], sum(cum[1])) == (4, filled.delivered - filled.future)
    assert (filled.recovered_outages, filled.mttr_s) == (2, (6 + 22) * 60 / 2)  # 31 min -> 6 + 22


def test_a_pilot_scored_before_its_first_day_closes_is_computed_from_raw_rows(db, rubric, make_pilot):
    pilot = make_pilot(starts_at="2024-01-01Z", ends_at=None, status="running", timezone="UTC")
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 600, 60, ENV)
    summed, raw = _both(db, rubric.rubric, pilot, datetime(2024, 1, 1, 10, tzinfo=UTC))
    _assert_same(summed, raw)
    assert db.execute("SELECT count(*) FROM scoring_day WHERE device_id = %s", (dev,)).fetchone() == (0,)


# ENV read by a profile: version 1 until i 2000, version 2 until i 4000, then contract v1 (no version);
# humidity missing on every 9th reading of the first two days, battery on every 13th reading.
ENV_PROFILED = ("CASE WHEN i = 2879 THEN 45 WHEN i = 2880 THEN 44 ELSE 20 + (i % 7) * 0.1 END AS temperature_c, "
                "CASE WHEN i < 2880 AND i % 9 = 0 THEN NULL WHEN i BETWEEN 4000 AND 4480 THEN 49 "
                "ELSE 50 + (i % 5) END AS humidity_pct, "
                "CASE WHEN i % 13 = 0 THEN NULL ELSE 100 - i * 0.001 END AS battery_pct, "
                "CASE WHEN i < 2000 THEN 1 WHEN i < 4000 THEN 2 END AS profile_version")
RELAY_ONLY = "true AS relay_on, 5000 AS power_w, 'heartbeat' AS trigger, CASE WHEN i % 2 = 0 THEN 1 END AS profile_version"


def test_summaries_give_the_raw_metrics_of_devices_read_by_profiles_and_follow_a_new_declaration(db, rubric,
                                                                                                  make_pilot):
    pilot = make_pilot(starts_at="2024-01-01T00:00+09:00", ends_at=None, status="running", timezone=SEOUL)
    th = pilot.profile("th", "env_sensor", ["temperature_c"])
    pilot.declare(th, "env_sensor", ["temperature_c", "humidity_pct", "battery_pct"])
    env = pilot.device("env", claimed_battery_days=30, profile=th)
    switch = pilot.device("switch", "smart_switch", 300, profile=pilot.profile("relay", "smart_switch", ["relay_on"]))
    pilot.series(env, "2023-12-31T15:00Z", 5 * 1440, 60, ENV_PROFILED, skip="i BETWEEN 1430 AND 1459")
    pilot.series(switch, "2023-12-31T15:00Z", 5 * 288, 300, RELAY_ONLY, skip="i BETWEEN 570 AND 580")
    for as_of in ("2024-01-05T00:00+09:00", "2024-01-04T13:30+09:00", "2024-01-03T00:00+09:00"):
        summed, raw = _both(db, rubric.rubric, pilot, datetime.fromisoformat(as_of))
        _assert_same(summed, raw)
    as_of = datetime.fromisoformat("2024-01-05T00:00+09:00")
    before = {m.device_id: m for m in _both(db, rubric.rubric, pilot, as_of)[0]}
    assert before[env].complete < before[env].valid and before[switch].qc_fail == 0
    assert {r[0] for r in db.execute("SELECT profile_key FROM scoring_day WHERE device_id = %s", (env,))} == {
        f"{th}:battery_pct,humidity_pct,temperature_c"}

    # version 3 declares temperature only: QC leaves humidity alone (no flat line), the readings no
    # version read are held to it; every summary of the device is rebuilt, the switch's reused
    pilot.declare(th, "env_sensor", ["temperature_c"])
    switch_rows = db.execute("SELECT day, complete_to FROM scoring_day WHERE device_id = %s ORDER BY day",
                             (switch,)).fetchall()
    summed, raw = _both(db, rubric.rubric, pilot, as_of)
    _assert_same(summed, raw)
    after = {m.device_id: m for m in summed}
    assert after[env].qc_fail < before[env].qc_fail and after[env].complete > before[env].complete
    assert after[env].declared_measurements == ["temperature_c"] and after[env].battery_ratio is None
    keys = db.execute("SELECT profile_key, count(*) FROM scoring_day WHERE device_id = %s GROUP BY 1", (env,)).fetchall()
    assert keys == [(f"{th}:temperature_c", 4)]
    assert db.execute("SELECT day, complete_to FROM scoring_day WHERE device_id = %s ORDER BY day",
                      (switch,)).fetchall() == switch_rows


def _day_row(conn: psycopg.Connection, device_id: str, valid: int) -> None:
    conn.execute(
        "INSERT INTO scoring_day (device_id, rubric_digest, day_start, day, day_end, anchor, interval_s, span_from, "
        "span_to, complete_to, readings, valid, suspect, fail, duplicates, future, skewed, slots_hit, inner_outages, "
        "inner_outage_s, bat_n, bat_sx, bat_sy, bat_sxy, bat_sxx, tail_needs_next) VALUES (%s, 'digest', "
        "'2024-01-01Z', '2024-01-01', '2024-01-02Z', '2024-01-01Z', 60, '2024-01-01Z', '2024-01-02Z', '2024-01-03Z', "
        "%s, %s, 0, 0, 0, 0, 0, 480, 0, 0, 0, 0, 0, 0, 0, false)", (device_id, valid + 3, valid))


def test_an_upgrade_keeps_the_summaries_of_devices_without_a_profile_and_rebuilds_the_others(empty_database: str):
    url = empty_database
    migrate(url, target=15)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('f', 'Acme')")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                     "VALUES ('p', 'f', 'Air', 'Old Town', '2024-01-01Z', 'running')")
        conn.execute("INSERT INTO device_profile (id, firm_id, kind) VALUES ('th', 'f', 'env_sensor')")
        conn.execute("INSERT INTO device_profile_version (profile_id, version, definition) VALUES ('th', 1, "
                     "'{\"measurements\": [\"temperature_c\"]}')")
        for device, profile in (("p-plain", None), ("p-profiled", "th")):
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at, "
                         "profile_id) VALUES (%s, 'p', 'env_sensor', 'wifi', 60, '2023-12-01Z', %s)", (device, profile))
            _day_row(conn, device, 1400)
    assert [name[:4] for name in migrate(url, target=16).applied] == ["0016"]
    with psycopg.connect(url, autocommit=True) as conn:
        kept = conn.execute("SELECT device_id, valid, complete, profile_key, carried FROM scoring_day").fetchall()
        # without a profile every valid reading was complete and QC is unchanged: the row stands
        assert kept == [("p-plain", 1400, 1400, "", None)]
        columns = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT column_name, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_name = 'scoring_day' AND column_name IN ('complete', 'profile_key', 'carried')")}
        assert columns == {"complete": ("NO", None), "profile_key": ("NO", None), "carried": ("YES", None)}


def test_daily_counts_from_summaries_equal_the_counts_of_raw_rows(db, rubric, seoul_pilot):
    from scoring.scorer import score_pilot

    as_of = datetime.fromisoformat("2024-01-04T13:30+09:00")
    summed = score_pilot(db, seoul_pilot.pilot_id, rubric, as_of=as_of)
    raw = score_pilot(db, seoul_pilot.pilot_id, rubric, as_of=as_of, raw=True)
    assert summed.daily_counts == raw.daily_counts and len(summed.daily_counts) == 3 * 4


def test_the_evidence_digest_is_sha256_of_the_rfc8785_document():
    import hashlib

    import rfc8785

    from scoring.evidence import evidence_digest

    devices = [{"device_id": "p-env", "availability": 0.123456, "mttr_s": None, "lost": False}]
    counts = [["p-env", "2024-01-01", 288], ['p-env "q" \\ r', "2024-01-02", 7], ["p-é\n", "2024-01-03", 1]]
    for rows in (counts[:1], counts[:2], counts):
        expected = hashlib.sha256(rfc8785.dumps({"devices": devices, "daily_counts": rows})).hexdigest()
        assert evidence_digest(devices, rows) == expected


@pytest.fixture
def separate_roles(db, admin_database_url: str, database_url: str) -> Iterator[tuple[str, str]]:
    """An ingest role that may only insert readings and a scoring role that reads everything and
    writes the rollups; neither is a superuser or has pg_read_all_stats, so each sees the other's
    sessions in pg_stat_activity without their start times. Roles are cluster-wide: unique names,
    dropped afterwards. Yields (ingest URL, scoring URL)."""
    suffix = uuid.uuid4().hex[:8]
    ingest_role, scoring_role = f"pilotlab_ingest_{suffix}", f"pilotlab_scoring_{suffix}"
    with psycopg.connect(admin_database_url, autocommit=True) as admin:
        for role in (ingest_role, scoring_role):
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        db.execute(sql.SQL("GRANT INSERT ON telemetry TO {}").format(sql.Identifier(ingest_role)))
        db.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(scoring_role)))
        db.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON scoring_day, scoring_check, scoring_horizon_mark TO {}")
                   .format(sql.Identifier(scoring_role)))
        urls = []
        for role in (ingest_role, scoring_role):
            info = psycopg.conninfo.conninfo_to_dict(database_url)
            info["user"] = role
            info.pop("password", None)
            urls.append(psycopg.conninfo.make_conninfo(**info))  # type: ignore[arg-type]
        yield urls[0], urls[1]
    finally:
        for role in (ingest_role, scoring_role):
            db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(admin_database_url, autocommit=True) as admin:
            for role in (ingest_role, scoring_role):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_late_rows_a_long_ingest_transaction_commits_are_summarised_when_scoring_runs_as_another_role(
        db, rubric, make_pilot, separate_roles):
    ingest_url, scoring_url = separate_roles
    pilot = make_pilot(starts_at="2024-01-01Z", ends_at=None, status="running", timezone="UTC")
    env = pilot.device("env")
    pilot.series(env, "2024-01-01Z", 3 * 1440, 60, ENV_OK, skip="i BETWEEN 600 AND 659")  # 10:00-11:00 missing
    as_of = datetime(2024, 1, 4, tzinfo=UTC)
    with psycopg.connect(ingest_url) as ingest, psycopg.connect(scoring_url, autocommit=True) as scoring:
        # the missing hour arrives in an ingest transaction that stays open while scoring runs
        ingest.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, "
                       "temperature_c, humidity_pct) SELECT %s, 600 + i, %s::timestamptz + (600 + i) * interval "
                       "'1 minute', now(), 'telemetry', 64, 20 + ((600 + i) %% 7) * 0.1, 50 + ((600 + i) %% 5) "
                       "FROM generate_series(0, 59) AS i", (env, "2024-01-01Z"))
        hidden = scoring.execute("SELECT count(*), count(xact_start) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND backend_xid IS NOT NULL").fetchone()
        assert hidden is not None and hidden[0] >= 1 and hidden[1] == 0  # open, but its start time hidden

        window = pilot_window(scoring, load_pilot(scoring, pilot.pilot_id), rubric.rubric, as_of)
        before = device_metrics(scoring, rubric.rubric, window.scored, {})
        assert before[0].readings == 3 * 1440 - 60  # every day summarised without the open transaction's rows
        ingest.commit()
        after = device_metrics(scoring, rubric.rubric, window.scored, {})
        raw = raw_device_metrics(scoring, rubric.rubric, window.scored, {})
    assert after[0].readings == 3 * 1440
    _assert_same(after, raw)
