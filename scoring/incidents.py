"""Quality incidents (rubric v2): long runs of QC-failed readings, joined across day summaries.

An incident starts at the first failed delivered reading after a valid one (or after the window
start) and ends at the next valid delivered reading; if none comes, it is *open* and ends at the
window end. Its duration is end - start; a run is an incident when that is longer than
`quality.incident_factor` x the declared interval. Its tests are every QC test that failed on a
reading of the run. Readings that are not delivered (repeats of a device time) neither start,
extend nor end a run. Outages are silences; a run of fails with a silence inside is both.

The raw pass (scoring.metrics) finds runs over the whole window in SQL. A day summary
(scoring.daily) only sees its day, so it keeps each run inside the day as [start, end or None
when no valid reading follows in the day, head = no valid reading precedes it in the day, tests]
with the day's first valid reading; `join_runs` joins them across midnights into the same
incidents: a head run continues the run left open before it, and a valid reading ends an open run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Incident = list[Any]  # [start epoch, end epoch, open, tests], as the raw pass gives it


def join_runs(days: Iterable[tuple[float | None, list[list[Any]]]], window_end: float,
              limit_s: float, tests: list[str]) -> list[Incident]:
    """Incidents from days in time order, each (epoch of a valid reading that ends any run open
    before it — the day's first valid reading — or None, the day's runs). `tests` orders test names."""
    events: list[tuple[float, int, list[Any] | None]] = []
    for first_ok, runs in days:
        if first_ok is not None:
            events.append((first_ok, 0, None))
        events += [(run[0], 1, run) for run in runs]
    found: list[Incident] = []
    pending: list[Any] | None = None  # [start, failed tests]

    def close(end: float, open_: bool) -> None:
        assert pending is not None
        if end - pending[0] > limit_s:
            found.append([pending[0], end, open_, [t for t in tests if t in pending[1]]])

    for at, _, run in sorted(events, key=lambda e: (e[0], e[1])):
        if run is None:  # a valid reading
            if pending is not None:
                close(at, False)
                pending = None
            continue
        start, end, head, failed = run
        if head and pending is not None:
            pending[1].update(failed)
        else:
            pending = [start, set(failed)]
        if end is not None:
            close(end, False)
            pending = None
    if pending is not None:
        close(window_end, True)
    return found
