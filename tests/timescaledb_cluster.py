"""A private PostgreSQL 15 + TimescaleDB server for tests, made by the shared build's script
(`../shared/timescaledb/start-cluster DIR PORT`, README there), never the machine's own server.

`PILOTLAB_TEST_TIMESCALEDB_CLUSTER` names the script (CI: .ci/run finds it); unset, it is looked
for beside the checkout. `restart(preload=False)` starts the same data directory with
`shared_preload_libraries` emptied: the extension's files are there, its library is not loaded
(the state of many managed and freshly packaged servers).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT_ENV = "PILOTLAB_TEST_TIMESCALEDB_CLUSTER"
URL_ENV = "PILOTLAB_TEST_TIMESCALEDB_URL"


def cluster_script() -> Path | None:
    """The start-cluster script named by PILOTLAB_TEST_TIMESCALEDB_CLUSTER, else beside the checkout."""
    named = os.environ.get(SCRIPT_ENV)
    script = Path(named) if named else REPO.parent / "shared" / "timescaledb" / "start-cluster"
    if named and not script.is_file():
        raise FileNotFoundError(f"{SCRIPT_ENV}={named}: no such script")
    return script if script.is_file() else None


MISSING = (f"needs TimescaleDB: no {REPO.parent / 'shared' / 'timescaledb' / 'start-cluster'} (the shared build); "
           f"set {URL_ENV} to a TimescaleDB server's admin URL or {SCRIPT_ENV} to the script")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TimescaleCluster:
    """One server in a directory of its own (a temporary one under /tmp: the script hands it to
    the postgres user when run as root, which must be able to reach it)."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.directory = Path(tempfile.mkdtemp(prefix="pilotlab-timescaledb-"))
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        """initdb and start with the library preloaded (the script), then restart with room for
        background workers; the admin URL."""
        done = subprocess.run(["bash", str(self.script), str(self.directory), str(self.port)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{self.script} failed: {done.stderr.strip() or done.stdout.strip()}")
        self.url = done.stdout.strip().splitlines()[-1]
        self.restart(preload=True)
        return self.url

    def restart(self, *, preload: bool) -> None:
        """Stop and start the same data directory, with or without shared_preload_libraries.

        Every database with the extension runs a job scheduler in a background worker while it
        exists; PostgreSQL's default of 8 worker processes leaves jobs failing to launch once a
        test session holds a few such databases."""
        self._pg_ctl("-m", "fast", "-w", "stop")
        options = f"-p {self.port} -c max_worker_processes=48 -c timescaledb.max_background_workers=40"
        if not preload:
            options += " -c shared_preload_libraries=''"
        self._pg_ctl("-o", options, "-l", str(self.directory / "server.log"), "-w", "start")

    def stop(self) -> None:
        if (self.directory / "data" / "postmaster.pid").exists():
            subprocess.run(["bash", str(self.script), "--stop", str(self.directory)], capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl = self.directory / "root" / "lib" / "postgresql" / "15" / "bin" / "pg_ctl"
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run([*as_postgres, str(pg_ctl), "-D", str(self.directory / "data"), *args],
                       check=True, capture_output=True, timeout=60)
