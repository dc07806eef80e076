"""Benchmark: how long the server takes to render the pages of a 1,000-device pilot.

Creates a throwaway database (bench.harness), generates the pilot's telemetry as bench.scoring
does (equal numbers of environment sensors, trackers and switches at a 5-minute interval), builds
its daily summaries, scores it and stores the score with every device's breakdown as the daily
rescoring does (scoring.stored_breakdowns.save_score), then serves the API app in-process
(Starlette's TestClient: no network between, so the time is the server's) and times, signed in as
an admin, GET of the pilot's scorecard (/ui/pilots/bench: stored verdict, every device's stored
breakdown, score history) and of one device's page. Prints each run and the median:

- the app's first request (the scorecard), then the scorecard's first view after a rescoring (the
  score stored again with its breakdowns, as the daily rescoring stores it) beside the repeat
  view, for each of `--runs` rescorings;
- its first view of a score stored without its breakdowns (as before migration 0026), which
  computes them from the summaries and keeps them;
- a device page.

    .venv/bin/python -m bench.pages --database-url postgresql://postgres@127.0.0.1:5432/postgres
        [--devices 1000] [--days 14] [--interval 300] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from starlette.testclient import TestClient

from access import api_keys
from api.app import create_app
from api.pages import sessions
from bench.harness import throwaway_database
from bench.scoring import START, build_summaries, generate
from pilotlab.settings import Settings
from scoring.rubric import load_rubric
from scoring.scorer import score_pilot
from scoring.signing import generate_key
from scoring.stored_breakdowns import save_score


def _seconds(took: list[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in took)


def timed(client: TestClient, path: str, runs: int) -> list[float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(path)
        took.append(time.perf_counter() - started)
        answer.raise_for_status()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True, help="admin URL of the server to create a throwaway database on")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--interval", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with throwaway_database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        rows = generate(url, args.devices, args.days, args.interval)
        all_s = build_summaries(url, args.days)[0]  # seconds to build every day's summaries
        with psycopg.connect(url, autocommit=True) as conn:
            scoring_started = time.perf_counter()
            score = score_pilot(conn, "bench", load_rubric(), as_of=START + timedelta(days=args.days))
            scored_s = time.perf_counter() - scoring_started
            token = api_keys.create(conn, "admin", name="bench pages").token
            cookie = sessions.start(conn, token.split("_")[1])
        print(f"seeded {rows:,} readings of {args.devices} devices x {args.days} days at {args.interval} s and "
              f"scored in {time.perf_counter() - started:.0f} s (summaries {all_s:.0f} s, the score {scored_s:.2f} s)")
        key = Path(tmp) / "signing.pem"
        generate_key(key)
        scorecard, device = "/ui/pilots/bench", "/ui/devices/d00000"
        with TestClient(create_app(Settings(database_url=url, signing_key=key))) as client:
            client.cookies.set(sessions.SESSION_COOKIE, cookie)
            [cold] = timed(client, scorecard, 1)  # imports, templates compiled, the pool opened
            stored, firsts, repeats = [], [], []
            for _ in range(args.runs):
                with psycopg.connect(url, autocommit=True) as conn:  # the daily rescoring stores the score
                    storing_started = time.perf_counter()
                    save_score(conn, score)
                    stored.append(time.perf_counter() - storing_started)
                first, repeat = timed(client, scorecard, 2)
                firsts.append(first)
                repeats.append(repeat)
            print(f"stored the score with every device's breakdown: {_seconds(stored)} s")
            print(f"scorecard ({scorecard}): the app's first request {cold:.3f} s; after each rescoring, "
                  f"first view | repeat view:")
            for first, repeat in zip(firsts, repeats, strict=True):
                print(f"  {first:.3f} s | {repeat:.3f} s")
            print(f"  median {statistics.median(firsts):.3f} s | {statistics.median(repeats):.3f} s")
            computing = []
            for _ in range(args.runs):
                with psycopg.connect(url, autocommit=True) as conn:  # as for a score stored before migration 0026
                    conn.execute("DELETE FROM score_device_breakdown")
                computing.extend(timed(client, scorecard, 1))
            print(f"scorecard of a score stored without its breakdowns, first view (computes and keeps them): "
                  f"{_seconds(computing)} s; median {statistics.median(computing):.3f} s")
            took = timed(client, device, args.runs)
            print(f"device page ({device}): {_seconds(took)} s; median {statistics.median(took):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
