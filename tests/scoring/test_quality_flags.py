"""The SQL QARTOD flags agree reading by reading with ioos_qc.qartod, the reference implementation."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from ioos_qc import qartod

from scoring.metrics import reading_flags
from scoring.window import load_pilot, pilot_window

# temperature: a clean wave with a spike (i=100), a gentle bump (i=200), a user-span excursion
# (i=300), a sensor-span excursion (i=400) and a fast ramp (i=500..505)
TEMPERATURE = ("CASE WHEN i = 100 THEN 35 WHEN i = 200 THEN 25.5 WHEN i = 300 THEN 60 WHEN i = 400 THEN 95 "
               "WHEN i BETWEEN 500 AND 505 THEN 20 + (i - 500) * 4 "
               "ELSE 20 + (i % 7) * 0.1 END AS temperature_c")
HUMIDITY = "CASE WHEN i BETWEEN 600 AND 1079 THEN 49 ELSE 50 + (i % 5) END AS humidity_pct"


def test_gross_range_spike_rate_of_change_and_flat_line_match_ioos_qc(db, rubric, make_pilot):
    pilot = make_pilot()
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 1440, 60, f"{TEMPERATURE}, {HUMIDITY}")
    window = pilot_window(db, load_pilot(db, pilot.pilot_id), rubric.rubric, datetime(2024, 1, 5, tzinfo=UTC))
    rows = reading_flags(db, rubric.rubric, window.scored[0])
    times = np.array([r["device_time"].timestamp() for r in rows])
    tinp = times.astype("datetime64[s]")
    for metric in ("temperature_c", "humidity_pct"):
        qc = rubric.rubric.qc["env_sensor"][metric]  # type: ignore[index]
        x = np.array([r[metric] for r in rows], dtype=float)
        expected = qartod.gross_range_test(x, fail_span=qc.sensor_span, suspect_span=qc.user_span)
        assert [r[f"{metric}__gross"] for r in rows] == expected.tolist()
        assert qc.spike is not None and qc.rate_of_change is not None and qc.flat_line is not None
        expected = qartod.spike_test(x, suspect_threshold=qc.spike.suspect, fail_threshold=qc.spike.fail)
        assert [r[f"{metric}__spike"] for r in rows] == expected.tolist()
        expected = qartod.rate_of_change_test(x, tinp, threshold=qc.rate_of_change.suspect_per_s)
        assert [r[f"{metric}__roc"] for r in rows] == expected.tolist()
        expected = qartod.flat_line_test(x, tinp, suspect_threshold=int(qc.flat_line.suspect_s),
                                         fail_threshold=int(qc.flat_line.fail_s), tolerance=qc.flat_line.tolerance)
        assert [r[f"{metric}__flat"] for r in rows] == expected.tolist()
    flags = {i: rows[i]["qc"] for i in (99, 100, 101, 200, 300, 400, 700, 1000)}
    assert flags == {99: 3, 100: 4, 101: 3, 200: 3, 300: 4, 400: 4, 700: 1, 1000: 4}
