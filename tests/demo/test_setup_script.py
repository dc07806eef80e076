"""scripts/setup.sh (run by scripts/demo.sh and scripts/test.sh) says what it is doing, one line
per step, before each step, while pip's own output stays in .venv/install.log unless it fails.

Run in a scratch copy of the script with a stand-in interpreter (PYTHON=…) whose pip takes a
while and prints noise: the real install downloads for 80-100 s and would touch the shared venv."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]

# Answers the script's calls the way CPython, venv and pip would; pip writes noise and, when
# FAIL_PIP is set, fails. Each call is appended to calls.log with the time it started.
STAND_IN = r"""#!/usr/bin/env bash
here="$(cd "$(dirname "$0")" && pwd)"
echo "$(date +%s.%N) $*" >> "$CALLS"
case "$*" in
  --version) echo "Python 3.11.9" ;;
  "-c import sys; sys.exit(sys.version_info < (3, 11))") exit 0 ;;
  "-m venv .venv") mkdir -p .venv/bin && cp "$0" .venv/bin/python ;;
  *"-m pip install"*) sleep 1; echo "Collecting fastapi (pip noise)"; [ -z "$FAIL_PIP" ] || { echo "ERROR: no network" >&2; exit 1; } ;;
  *sysconfig*) echo "$here/site-packages" ;;
esac
"""


def _checkout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    python = tmp_path / "python3"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    return root, python


def _setup(root: Path, python: Path, *args: str, fail_pip: bool = False) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(python), "CALLS": str(root / "calls.log"),
           "FAIL_PIP": "1" if fail_pip else ""}
    started = time.time()
    result = subprocess.run(["bash", str(root / "scripts" / "setup.sh"), *args], capture_output=True, text=True,
                            env=env, timeout=60)
    return result, started


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_fresh_setup_says_each_step_before_it_starts_and_keeps_pips_noise_in_the_log(tmp_path: Path) -> None:
    root, python = _checkout(tmp_path)
    result, _ = _setup(root, python, "test")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["pilotlab"] * len(lines)
    assert "creating .venv" in lines[0] and "Python 3.11.9" in lines[0]
    assert "installing" in lines[1] and "1-2 min" in lines[1] and ".venv/install.log" in lines[1]
    assert "ready" in lines[-1]
    assert "pip noise" not in result.stdout + result.stderr
    assert "pip noise" in (root / ".venv" / "install.log").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_setup_announces_the_install_before_pip_runs(tmp_path: Path) -> None:
    root, python = _checkout(tmp_path)
    process = subprocess.Popen(["bash", str(root / "scripts" / "setup.sh")], stderr=subprocess.PIPE, text=True,
                               env={"PATH": "/usr/bin:/bin", "PYTHON": str(python), "CALLS": str(root / "calls.log"),
                                    "FAIL_PIP": ""})
    assert process.stderr is not None
    while "installing" not in (line := process.stderr.readline()):
        assert line, "setup.sh ended without saying it installs"
    announced = time.time()
    assert process.wait(timeout=60) == 0
    pip_calls = [float(call.split()[0]) for call in (root / "calls.log").read_text().splitlines() if "-m pip install" in call]
    assert pip_calls and announced <= pip_calls[0] + 0.5  # said before pip started (1 s each)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_failed_install_shows_pips_log_and_says_where_it_is(tmp_path: Path) -> None:
    root, python = _checkout(tmp_path)
    result, _ = _setup(root, python, fail_pip=True)
    assert result.returncode == 1
    assert "ERROR: no network" in result.stderr and "pilotlab: installing into .venv failed" in result.stderr
