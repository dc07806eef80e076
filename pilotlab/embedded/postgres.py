"""PostgreSQL 16 from the pgserver wheel, run as our child process on 127.0.0.1 and a free port
(chosen on the first start and kept across restarts).

We use pgserver's binaries and its data-directory layout (PGDATA = `data_dir`, server log in
`data_dir/log`, owners in `data_dir/.handle_pids.json`) but not its lifecycle: pgserver stops the
server only when the last owner listed in `.handle_pids.json` exits cleanly, so an owner that was
SIGKILLed leaves its pid there and the server running for ever. Here:

- the postmaster is our direct child with a parent-death signal (SIGINT, PostgreSQL's fast
  shutdown), so it does not outlive us even if we are SIGKILLed;
- `start()` treats owners that are no longer alive as stale: it stops a postmaster they left
  behind (`pg_ctl stop -m fast`, then SIGKILL) and starts its own, so nothing leaks; a live
  owner is reported as ServiceUnavailable rather than shared;
- `stop()` shuts the server down and waits until the postmaster is gone.

Running as root, PostgreSQL refuses to start, so (like pgserver) we run it as the `pgserver`
OS user, created on first use. Measured here (2 cores): first start, with initdb, 1.3-2.1 s;
restart 0.2 s; stop 0.3 s.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg

from pilotlab.embedded.lifetime import die_with_parent, pid_alive, stop_process
from pilotlab.embedded.ports import LOOPBACK, free_port, wait_until_listening
from pilotlab.errors import ServiceUnavailable

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SERVER_USER_WHEN_ROOT = "pgserver"
_HANDLES = ".handle_pids.json"
_START_ATTEMPTS = 3
_LOG = "log"


def _bin_dir() -> Path:
    with warnings.catch_warnings():  # pgserver's import warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgres:
    """A private PostgreSQL server keeping its data in `data_dir` (created if missing)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.port: int | None = None
        self.start_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._user = _server_user()

    @property
    def url(self) -> str:
        if self._url is None:
            raise ServiceUnavailable(f"embedded PostgreSQL in {self.data_dir} is not started")
        return self._url

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server (initialising the data directory on first use); return its URL."""
        if self.is_running:
            return self.url
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._grant_server_user()
        self._take_over_stale_server()
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                if not (self.data_dir / "PG_VERSION").exists():
                    self._initdb(after_failed_attempt=attempt > 1)
                self._launch()
                break
            except ServiceUnavailable as exc:
                # Running as root, the server user must traverse every parent of data_dir, and
                # another program may take that away (pytest re-chmods /tmp/pytest-of-<user> to
                # 0700 when a session starts): grant it again and retry.
                seen = " ".join([str(exc), *getattr(exc, "__notes__", []), self._log_tail()])
                if self._user is None or attempt == _START_ATTEMPTS or "ermission denied" not in seen:
                    raise
                log.warning("the %s user lost access to %s; granting it again", self._user, self.data_dir)
                self._grant_server_user()
        self._record_owner(add=True)
        self.start_seconds = time.monotonic() - started
        log.info("embedded PostgreSQL ready at %s in %.2f s", self._url, self.start_seconds)
        return self.url

    def exit_code(self) -> int | None:
        """The postmaster's exit code if it died while we thought it running, else None."""
        return self._process.poll() if self._process is not None else None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Fast shutdown, SIGKILL after `timeout` s; returns once the postmaster has exited.

        Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            # SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
            code = stop_process(process, sig=signal.SIGINT, timeout=timeout)
            log.info("embedded PostgreSQL stopped (exit code %s)", code)
            self._record_owner(add=False)
        self._url = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------

    def _run(self, args: list[str], what: str) -> None:
        result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=60, **self._as_server_user())
        if result.returncode != 0:
            output = f"{result.stdout}\n{result.stderr}"
            lines = [line.strip() for line in output.splitlines()
                     if any(word in line.lower() for word in ("error", "fatal", "denied"))]
            error = ServiceUnavailable(f"{what} failed in {self.data_dir}: "
                                       f"{'; '.join(lines[:3]) or f'exit code {result.returncode}'}")
            error.add_note(output)  # the whole output, for the retry decision and tracebacks
            raise error

    def _as_server_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        import pwd

        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _grant_server_user(self) -> None:
        """Running as root: let the `pgserver` user reach the binaries and own the data dir."""
        if self._user is None:
            return
        import pwd
        import stat

        bin_dir = _bin_dir()
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(bin_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", readable)
        entry = pwd.getpwnam(self._user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _take_over_stale_server(self) -> None:
        """Refuse a data dir a live process owns; stop a server left by owners that died."""
        owners = [pid for pid in self._owners() if pid != os.getpid()]
        postmaster = self._running_postmaster()
        live = [pid for pid in owners if pid_alive(pid)]
        if live and postmaster is not None:
            raise ServiceUnavailable(
                f"the embedded PostgreSQL in {self.data_dir} is in use by process {live[0]}: "
                "stop it or choose another data directory"
            )
        if postmaster is not None:
            log.warning("stopping PostgreSQL (pid %d) left running in %s by a dead owner", postmaster, self.data_dir)
            self._stop_orphan(postmaster)
        if owners:
            log.info("clearing stale owners %s of %s", owners, self.data_dir)
        (self.data_dir / _HANDLES).unlink(missing_ok=True)

    def _running_postmaster(self) -> int | None:
        """Pid of a live postmaster serving this data dir, from postmaster.pid."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc (macOS): trust postmaster.pid
        return pid if b"postgres" in cmdline else None  # the pid was reused by something else

    def _stop_orphan(self, pid: int) -> None:
        pg_ctl = str(_bin_dir() / "pg_ctl")
        try:
            self._run([pg_ctl, "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "10", "stop"], "pg_ctl stop")
        except (ServiceUnavailable, subprocess.TimeoutExpired):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            raise ServiceUnavailable(f"cannot stop the stale PostgreSQL (pid {pid}) in {self.data_dir}")

    def _log_tail(self) -> str:
        try:
            return (self.data_dir / _LOG).read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _initdb(self, *, after_failed_attempt: bool = False) -> None:
        leftovers = {p.name for p in self.data_dir.iterdir()} - {_LOG, _HANDLES}
        if leftovers and after_failed_attempt:
            # what our own initdb left when it failed a moment ago (no PG_VERSION: not a database)
            for entry in self.data_dir.iterdir():
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            leftovers = set()
        if leftovers:
            raise ServiceUnavailable(
                f"{self.data_dir} is neither empty nor a PostgreSQL data directory (found {sorted(leftovers)[0]})"
            )
        for name in (_LOG, _HANDLES):
            (self.data_dir / name).unlink(missing_ok=True)
        initdb = str(_bin_dir() / "initdb")
        self._run([initdb, "-D", str(self.data_dir), "--auth=trust", "--auth-local=trust",
                   "--encoding=utf8", "-U", "postgres"], "initdb")

    def _launch(self) -> None:
        # The port is chosen once and kept across stop() + start(), so clients holding the URL
        # (an ingest worker riding out an outage) find the restarted server where it was.
        port = self.port or free_port()
        args = [
            str(_bin_dir() / "postgres"), "-D", str(self.data_dir),
            "-h", LOOPBACK, "-p", str(port),
            "-c", "unix_socket_directories=",  # TCP only: no socket-path length limits
        ]
        log_path = self.data_dir / _LOG
        with open(log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True, preexec_fn=die_with_parent(signal.SIGINT),
                **self._as_server_user(),  # type: ignore[call-overload]
            )
        url = f"postgresql://postgres@{LOOPBACK}:{port}/postgres"
        try:
            wait_until_listening(port, what="embedded PostgreSQL", process=self._process,
                                 timeout=START_TIMEOUT_S, log_hint=str(log_path))
            self._wait_for_queries(url, log_path)
        except BaseException:
            self.stop()
            raise
        self.port, self._url = port, url

    def _wait_for_queries(self, url: str, log_path: Path) -> None:
        """The port opens before recovery ends ("the database system is starting up")."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline or not self.is_running:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise ServiceUnavailable(f"embedded PostgreSQL did not accept queries: {first} "
                                             f"(see {log_path})") from None
                time.sleep(0.05)

    def _owners(self) -> list[int]:
        try:
            return [int(pid) for pid in json.loads((self.data_dir / _HANDLES).read_text())]
        except (OSError, ValueError, TypeError):
            return []

    def _record_owner(self, *, add: bool) -> None:
        """Keep pgserver's owner list, so a pgserver user of the same directory sees us."""
        path = self.data_dir / _HANDLES
        if not path.parent.exists():
            return
        owners = [pid for pid in self._owners() if pid != os.getpid()]
        if add:
            owners.append(os.getpid())
        if owners:
            path.write_text(json.dumps(owners))
        else:
            path.unlink(missing_ok=True)


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root; pgserver's convention is a `pgserver` OS user."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return SERVER_USER_WHEN_ROOT
    return None
