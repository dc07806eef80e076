"""Every device's breakdown of a stored daily score is stored with it (scoring.stored_breakdowns), so
the scorecard reads it instead of recomputing it: equal to the breakdown computed afresh from the
day summaries, replaced when the day is scored again, and never shown beside another storing of
the score."""

from __future__ import annotations

from datetime import UTC, datetime

from scoring import stored_breakdowns
from scoring.records import plain
from scoring.schedule import rescore_due
from scoring.scorer import save_history, score_pilot
from scoring.stored_breakdowns import HistoryEntry
from tests.scoring.conftest import ENV_OK

HOT = "CASE WHEN i % 144 = 0 THEN 150 ELSE 20 + (i % 7) * 0.1 END AS temperature_c, 50 + (i % 5) AS humidity_pct"
DRAINING = ENV_OK + ", 100 - i * 0.002 AS battery_pct"
NOON_JAN_3 = datetime(2024, 1, 3, 12, tzinfo=UTC)


def _two_day_pilot(make_pilot):
    """A running pilot (Seoul) of three env sensors over two days: one draining its battery against
    a 365-day claim, one silent 12:00-14:00 of each day, one reading 150 °C every 144th minute."""
    pilot = make_pilot(ends_at=None, status="running", timezone="Asia/Seoul")
    pilot.series(pilot.device("full", claimed_battery_days=365), "2024-01-01Z", 2 * 1440, 60, DRAINING)
    pilot.series(pilot.device("gap"), "2024-01-01Z", 2 * 1440, 60, ENV_OK, skip="i % 1440 BETWEEN 720 AND 839")
    pilot.series(pilot.device("hot"), "2024-01-01Z", 2 * 1440, 60, HOT)
    return pilot


def _latest(db, pilot_id: str) -> tuple[HistoryEntry, datetime]:
    """The pilot's newest history entry and its window end."""
    row = db.execute("SELECT scored_on, rubric_version, scored_at, window_end FROM score_history WHERE pilot_id = %s "
                     "ORDER BY scored_on DESC, scored_at DESC LIMIT 1", (pilot_id,)).fetchone()
    return HistoryEntry(pilot_id, row[0], row[1], row[2]), row[3]


def test_the_daily_rescoring_stores_every_devices_breakdown_as_computed_afresh(db, rubric, make_pilot):
    pilot = _two_day_pilot(make_pilot)
    assert pilot.pilot_id in rescore_due(db, rubric, now=NOON_JAN_3)  # with the other tests' running pilots
    entry, window_end = _latest(db, pilot.pilot_id)

    kept = stored_breakdowns.stored(db, entry)
    assert kept is not None and [d["device_id"] for d in kept] == [f"{pilot.pilot_id}-{n}" for n in ("full", "gap", "hot")]
    assert kept == stored_breakdowns.computed(db, pilot.pilot_id, rubric.rubric, window_end)  # the page's own
    assert plain(kept) == plain(score_pilot(db, pilot.pilot_id, rubric, as_of=window_end).device_breakdowns())  # the API's
    gap = kept[1]
    assert gap["outages"]["count"] == 2 and gap["outages"]["down_s"] == 2 * 7260.0  # 11:59 to 14:00, twice
    assert kept[2]["qc"]["tests"]["temperature_c__gross"]["fail"] == 17  # 150 °C at i = 0, 144, ..., 2304 < 2,340


def test_scoring_the_day_again_replaces_its_stored_breakdown(db, rubric, make_pilot):
    pilot = _two_day_pilot(make_pilot)
    as_of = datetime(2024, 1, 2, 15, tzinfo=UTC)  # midnight of Jan 3 in Seoul
    stored_breakdowns.save_score(db, score_pilot(db, pilot.pilot_id, rubric, as_of=as_of))
    first, _ = _latest(db, pilot.pilot_id)
    before = stored_breakdowns.stored(db, first)
    assert before is not None and before[0]["battery"]["claimed_days"] == 365.0

    db.execute("UPDATE device SET claimed_battery_days = 20 WHERE id = %s", (f"{pilot.pilot_id}-full",))
    stored_breakdowns.save_score(db, score_pilot(db, pilot.pilot_id, rubric, as_of=as_of))
    again, window_end = _latest(db, pilot.pilot_id)
    assert (again.scored_on, again.rubric_version) == (first.scored_on, first.rubric_version) and again.scored_at > first.scored_at
    after = stored_breakdowns.stored(db, again)
    assert after is not None and after[0]["battery"]["claimed_days"] == 20.0
    assert after == stored_breakdowns.computed(db, pilot.pilot_id, rubric.rubric, window_end)
    assert stored_breakdowns.stored(db, first) is None  # the earlier storing's is gone
    count = db.execute("SELECT count(*) FROM score_device_breakdown WHERE pilot_id = %s", (pilot.pilot_id,)).fetchone()
    assert count == (1,)


def test_a_score_stored_again_without_breakdowns_is_never_shown_the_earlier_ones(db, rubric, make_pilot):
    pilot = _two_day_pilot(make_pilot)
    as_of = datetime(2024, 1, 2, 15, tzinfo=UTC)
    stored_breakdowns.save_score(db, score_pilot(db, pilot.pilot_id, rubric, as_of=as_of))
    first, _ = _latest(db, pilot.pilot_id)
    save_history(db, score_pilot(db, pilot.pilot_id, rubric, as_of=as_of))  # a writer that keeps none
    entry, window_end = _latest(db, pilot.pilot_id)
    assert stored_breakdowns.stored(db, entry) is None

    fresh = stored_breakdowns.computed(db, pilot.pilot_id, rubric.rubric, window_end)
    stored_breakdowns.keep(db, first, fresh)  # computed for a storing since replaced: not kept
    assert stored_breakdowns.stored(db, entry) is None
    stored_breakdowns.keep(db, entry, fresh)  # as the scorecard keeps what it had to compute
    assert stored_breakdowns.stored(db, entry) == fresh
