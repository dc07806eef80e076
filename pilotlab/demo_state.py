"""The running demo's services, for the `pilotlab` command in another terminal.

`pilotlab demo` writes `<data dir>/demo.json` once its API listens and removes it when it stops:
its pid, database and broker URLs, API URL, and the rubric and signing key its API scores and
signs with. The CLI fills whatever a command was not given (flag or PILOTLAB_* variable) from it,
so `pilotlab score demo-pilot` and `pilotlab record issue` in the same checkout see what the
demo's API sees. Only while that demo runs, and only for a command not pointed at a database of
its own: a record for another database is never signed with the demo's key.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

STATE_FILE = "demo.json"


class DemoState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    pid: int
    database_url: str
    mqtt_url: str
    api_url: str
    signing_key: str
    rubric: str

    def settings(self) -> dict[str, str]:
        """The settings a CLI command takes from the demo (Settings field names)."""
        return {"database_url": self.database_url, "mqtt_url": self.mqtt_url,
                "signing_key": self.signing_key, "rubric": self.rubric}


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def write_state(data_dir: Path, state: DemoState) -> Path:
    """Write the state file whole (a reader never sees half of it), readable by its owner only:
    it holds the database URL."""
    path = state_path(data_dir)
    temporary = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(state.model_dump_json(indent=2))
    os.replace(temporary, path)
    return path


def remove_state(data_dir: Path, pid: int) -> None:
    """Remove the state file if it is still the one demo `pid` wrote."""
    path = state_path(data_dir)
    state = _read(path)
    if state is not None and state.pid == pid:
        path.unlink(missing_ok=True)


def running_demo(data_dir: Path) -> DemoState | None:
    """The state of the demo running with `data_dir`, or None (no file, or its demo has stopped)."""
    state = _read(state_path(data_dir))
    if state is None or not _alive(state.pid):
        return None
    return state


def _read(path: Path) -> DemoState | None:
    try:
        return DemoState.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def _alive(pid: int) -> bool:
    """Is `pid` still a pilotlab process of ours? (A dead demo's pid may have been reused.)"""
    try:
        os.kill(pid, 0)
    except OSError:  # gone, or another user's: the file is ours, so not our demo
        return False
    try:
        return b"pilotlab" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no /proc (macOS): the signal check is all there is
        return True
