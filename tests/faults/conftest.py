"""Fault-injection fixtures: a PostgreSQL of the test's own, which the test may stop and start.

The machine's shared PostgreSQL and Mosquitto are never stopped: outage tests stop only the
servers they started (`own_postgres` here, `own_broker` from tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pilotlab.embedded.postgres import EmbeddedPostgres
from store.migrate import migrate


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A private, migrated PostgreSQL (pgserver binaries) on a port that survives stop() + start()."""
    server = EmbeddedPostgres(tmp_path / "pg")
    try:
        migrate(server.start())
        yield server
    finally:
        server.stop()
