"""`pilotlab demo`, run as a newcomer runs it: a subprocess with a fresh data dir, then Ctrl-C.

Real everything: embedded PostgreSQL, the embedded broker (mosquitto, and iotcore as the fallback
of a machine without mosquitto), and the real `pilotlab ingest`, `api` and `simulate` children.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pilotlab.embedded.ports import free_port
from tests.conftest import requires_mosquitto
from tests.embedded.proc_scan import descendants, survivors

TELEMETRY_WITHIN_S = 30.0
STOP_WITHIN_S = 15.0


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    output: Path
    data_dir: Path
    api: str
    started: float
    seen_pids: set[int] = field(default_factory=set)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def record_children(self) -> None:
        self.seen_pids.update(descendants({self.process.pid}))

    def device_ids(self) -> list[str]:
        for line in self.text().splitlines():
            if line.strip().startswith("devices "):
                return line.split()[1:]
        return []

    def api_key(self) -> str:
        """The admin API key the demo prints once (issue 6)."""
        for line in self.text().splitlines():
            if line.strip().startswith("API key "):
                return line.split()[2]
        return ""

    def leftovers(self) -> dict[int, str]:
        return survivors(self.seen_pids, mentioning=str(self.data_dir))


def _demo_env() -> dict[str, str]:
    """The caller's environment minus service settings: the demo must bring its own."""
    return {k: v for k, v in os.environ.items() if not (k.startswith("PILOTLAB_") and not k.startswith("PILOTLAB_TEST_"))}


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    demos: list[Demo] = []

    def start(*flags: str, cwd: Path | None = None) -> Demo:
        """A demo with a fresh data dir; with `cwd`, started there as scripts/demo.sh starts it (no
        --data-dir: its state goes to cwd/.pilotlab)."""
        port = free_port()
        output = tmp_path / f"demo{len(demos)}.out"
        data_dir = tmp_path / f"data{len(demos)}" if cwd is None else cwd / ".pilotlab"
        where = ["--data-dir", str(data_dir)] if cwd is None else []
        with open(output, "wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "pilotlab", "demo", *where, "--api-port", str(port), *flags],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_demo_env(), cwd=cwd,
            )
        demo = Demo(process, output, data_dir, f"http://127.0.0.1:{port}", time.monotonic())
        demos.append(demo)
        return demo

    yield start
    for demo in demos:  # a failed test must not leave a stack running
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait()
        for pid in demo.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _readings(body: object) -> list[object]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("readings", "items", "data"):
            if isinstance(body.get(key), list):
                return body[key]  # type: ignore[no-any-return]
    return []


def _telemetry_count(api: str, device_id: str, api_key: str = "") -> int:
    request = urllib.request.Request(f"{api}/devices/{device_id}/telemetry", headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return len(_readings(json.load(response)))
    except (urllib.error.URLError, OSError, ValueError):
        return 0


def _wait_for_telemetry_of_every_device(demo: Demo) -> list[str]:
    deadline = demo.started + TELEMETRY_WITHIN_S
    missing: list[str] = []
    while time.monotonic() < deadline:
        assert demo.process.poll() is None, f"demo exited with {demo.process.returncode}:\n{demo.text()[-3000:]}"
        demo.record_children()
        devices = demo.device_ids()
        if devices:
            missing = [d for d in devices if _telemetry_count(demo.api, d, demo.api_key()) == 0]
            if not missing:
                return devices
        time.sleep(0.5)
    raise AssertionError(f"no telemetry within {TELEMETRY_WITHIN_S:g} s for {missing or 'any device'}:\n"
                         f"{demo.text()[-3000:]}")


def _assert_banner_links_say_they_need_the_key_and_its_curl_example_works(demo: Demo) -> None:
    banner = demo.text().splitlines()
    links = [i for i, line in enumerate(banner) if f"{demo.api}/" in line and "/docs" not in line]
    note = next(i for i, line in enumerate(banner) if "401" in line and "browser" in line)
    assert note < min(links), "the note comes before the first link"
    health = next(line.split()[1] for line in banner if line.strip().startswith("health "))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(health, timeout=5)  # what a browser does
    assert refused.value.code == 401
    curl = next(line.split(None, 1)[1] for line in banner if "curl " in line and "Bearer plk_" in line)
    answer = subprocess.run(shlex.split(curl) + ["--fail"], capture_output=True, text=True, timeout=30)
    assert answer.returncode == 0, answer.stderr
    assert _readings(json.loads(answer.stdout))


def _assert_stops_within(demo: Demo, seconds: float) -> int:
    try:
        code = demo.process.wait(seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"demo still running {seconds:g} s after the signal:\n{demo.text()[-3000:]}") from None
    deadline = time.monotonic() + 1.0
    while demo.leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert demo.leftovers() == {}, "processes of the demo outlived it"
    return code


@pytest.mark.slow
@pytest.mark.parametrize("broker", [pytest.param("mosquitto", marks=[requires_mosquitto, pytest.mark.mosquitto]),
                                    "iotcore"])
def test_demo_serves_telemetry_of_every_seeded_device_within_30_s_and_ctrl_c_stops_everything(
    start_demo, broker: str,  # type: ignore[no-untyped-def]
) -> None:
    demo = start_demo("--broker", broker)
    devices = _wait_for_telemetry_of_every_device(demo)
    assert len(devices) >= 3
    assert f"{demo.api}/docs" in demo.text()
    _assert_banner_links_say_they_need_the_key_and_its_curl_example_works(demo)
    assert f"embedded {broker}" in demo.text()
    demo.record_children()
    assert len(demo.seen_pids) >= 5, "postgres, broker, ingest, api and simulator ran as children"

    demo.process.send_signal(signal.SIGINT)
    assert _assert_stops_within(demo, STOP_WITHIN_S) == 0


@pytest.mark.slow
def test_demo_reports_a_child_that_dies_and_stops_the_rest(start_demo) -> None:  # type: ignore[no-untyped-def]
    demo = start_demo("--broker", "iotcore")
    _wait_for_telemetry_of_every_device(demo)
    ingest = [pid for pid, cmd in descendants({demo.process.pid}).items() if "pilotlab ingest" in cmd]
    assert len(ingest) == 1
    os.kill(ingest[0], signal.SIGKILL)
    assert _assert_stops_within(demo, STOP_WITHIN_S) == 1
    assert "ingest exited unexpectedly with code -9" in demo.text()


def test_demo_with_an_unreachable_database_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pilotlab", "demo", "--data-dir", str(tmp_path),
         "--database-url", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"],
        capture_output=True, text=True, timeout=30, env=_demo_env(),
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("pilotlab: cannot reach the database")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_demo_with_an_unreachable_broker_exits_2_and_stops_the_database_it_started(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pilotlab", "demo", "--data-dir", str(tmp_path / "data"),
         "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, env=_demo_env(),
    )
    assert result.returncode == 2, result.stderr
    assert "pilotlab: cannot reach the MQTT broker" in result.stderr
    assert "Traceback" not in result.stderr
    assert survivors(set(), mentioning=str(tmp_path)) == {}


def _api_call(demo: Demo, method: str, path: str, body: bytes | None = None,
              content_type: str = "application/json") -> object:
    request = urllib.request.Request(f"{demo.api}{path}", data=body, method=method,
                                     headers={"Authorization": f"Bearer {demo.api_key()}", "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
def test_the_cli_in_another_terminal_uses_the_running_demos_services_rubric_and_key_with_no_flags(
    start_demo, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    demo = start_demo("--broker", "iotcore", cwd=checkout)
    _wait_for_telemetry_of_every_device(demo)
    cli_line = next(line for line in demo.text().splitlines() if line.strip().startswith("CLI "))
    assert (checkout / cli_line.split()[1]).exists(), cli_line  # the banner names a pilotlab that runs

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pilotlab", *args], cwd=checkout, env=_demo_env(),
                              capture_output=True, text=True, timeout=120)

    # a minute boundary at least 30 s ago: no late reading can still change the window
    as_of = (datetime.now(UTC) - timedelta(seconds=30)).replace(second=0, microsecond=0)
    stamp = as_of.isoformat().replace("+00:00", "Z")
    scored = cli("score", "demo-pilot", "--as-of", stamp, "--json")
    assert scored.returncode == 0, scored.stderr
    by_cli = json.loads(scored.stdout)
    by_api = _api_call(demo, "GET", f"/pilots/demo-pilot/score?as_of={stamp}")
    assert isinstance(by_api, dict)
    assert by_cli["rubric_version"] == by_api["rubric_version"] == "1-demo"
    assert (by_cli["score"], by_cli["verdict"]) == (by_api["score"], by_api["verdict"])

    issued = cli("record", "issue", "demo-pilot", "--out", "record.json", "--as-of", stamp)
    assert issued.returncode == 0, issued.stderr
    document = (checkout / "record.json").read_bytes()  # posted as is, as the README's curl does
    verdict = _api_call(demo, "POST", "/records/verify", document, content_type="application/x-www-form-urlencoded")
    assert verdict == {"valid": True, "reason": None, "pilot_id": "demo-pilot", "verdict": by_api["verdict"],
                       "score": by_api["score"], "issued_at": json.loads(document)["record"]["issued_at"]}

    # the demo stores a score by itself (10 s after it starts, then every minute): its scorecard has one
    deadline = time.monotonic() + 30
    while not (history := _api_call(demo, "GET", "/pilots/demo-pilot/score/history")) and time.monotonic() < deadline:
        time.sleep(1)
    assert isinstance(history, list) and history[0]["rubric_version"] == "1-demo", history

    demo.process.send_signal(signal.SIGINT)
    assert _assert_stops_within(demo, STOP_WITHIN_S) == 0
    after = cli("score", "demo-pilot")
    assert after.returncode == 2 and "PILOTLAB_DATABASE_URL" in after.stderr, after.stderr
