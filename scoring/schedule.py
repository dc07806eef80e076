"""Daily rescoring: every running pilot is scored once per local day and kept in score_history.

The API runs `DailyRescoring` as a background thread when `daily_rescoring` is set
(PILOTLAB_DAILY_RESCORING=1); `pilotlab score --daily` runs the same loop in the foreground for
deployments that prefer a separate process (cron-like supervisors, one scorer for several APIs).
A thread in the API was chosen over a new service because the API already holds the pool and is
always running; scoring is idempotent per (pilot, local day, rubric version), so running both, or
several API replicas, only repeats work, never duplicates history.

Each pass scores every running pilot up to the start of its current local day (so the history entry
of day D covers the pilot up to the end of D - 1) and skips pilots already scored for that day.
Scoring first summarises any closed day that has no summary yet (scoring.daily), so the daily pass
is also what builds each day's rollups, once, shortly after the day closes. Each score is stored
with every device's breakdown (scoring.stored_breakdowns), which the scorecard page reads. Each
pass also erases residents' client hashes past their retention (store.client_hashes), which a
feedback submission does as well, so the retention holds when no resident sends anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from pilotlab.errors import PilotlabError
from scoring.rubric import LoadedRubric
from scoring.scorer import running_pilots, score_pilot
from scoring.stored_breakdowns import save_score
from scoring.window import load_pilot, local_day, local_midnight
from store import client_hashes

log = logging.getLogger(__name__)
CHECK_EVERY_S = 600.0


def rescore_due(conn: psycopg.Connection, rubric: LoadedRubric, now: datetime | None = None) -> list[str]:
    """Score every running pilot whose current local day has no history entry yet; returns their ids."""
    now = now or datetime.now(UTC)
    done = []
    for pilot_id in running_pilots(conn):
        try:
            pilot = load_pilot(conn, pilot_id)
            as_of = local_midnight(now, pilot.timezone)
            day = local_day(as_of, pilot.timezone)
            seen = conn.execute("SELECT 1 FROM score_history WHERE pilot_id = %s AND scored_on = %s AND rubric_version = %s",
                                (pilot_id, day, rubric.rubric.version)).fetchone()
            if seen or as_of <= pilot.starts_at:
                continue
            save_score(conn, score_pilot(conn, pilot_id, rubric, as_of=as_of))
            done.append(pilot_id)
        except PilotlabError as exc:
            log.warning("daily rescoring of %s skipped: %s", pilot_id, exc)
    return done


def daily_pass(conn: psycopg.Connection, rubric: LoadedRubric, feedback_retention_days: int,
               now: datetime | None = None) -> list[str]:
    """Rescore what is due (rescore_due), then erase client hashes past their retention."""
    scored = rescore_due(conn, rubric, now)
    client_hashes.purge(conn, feedback_retention_days, now)
    return scored


class DailyRescoring:
    """A daemon thread that runs the daily pass every CHECK_EVERY_S seconds until stopped."""

    def __init__(self, connect: Callable[[], psycopg.Connection], rubric: LoadedRubric, feedback_retention_days: int,
                 every_s: float = CHECK_EVERY_S) -> None:
        self._connect, self._rubric, self._every_s = connect, rubric, every_s
        self._retention_days = feedback_retention_days
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daily-rescoring", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    scored = daily_pass(conn, self._rubric, self._retention_days)
                if scored:
                    log.info("daily rescoring: %s", ", ".join(scored))
            except (psycopg.Error, PilotlabError) as exc:
                log.warning("daily rescoring failed, retrying later: %s", exc)
            self._stop.wait(self._every_s)
