"""Real services for every test.

- PostgreSQL: the server named by PILOTLAB_TEST_DATABASE_URL (an admin URL; CI on this machine:
  postgresql://postgres@127.0.0.1:5432/postgres), else an embedded pgserver. Each test session
  creates its own throwaway database, migrates it, and drops it at the end.
- MQTT: the broker named by PILOTLAB_TEST_MQTT_URL (CI: mqtt://127.0.0.1:1883), else an
  embedded one (mosquitto on PATH, else iotcore). Tests that need a broker with pilotlab's tuned
  config, or one they can stop, start their own through `own_broker`.
- The shipped broker (Mosquitto 2.1 with its persist-sqlite plugin, the only one that loses
  nothing across a restart): PILOTLAB_TEST_MOSQUITTO, the path of its binary (CI: what
  scripts/build-mosquitto.sh printed), else that script's cache. Tests that need it take the
  `shipped_mosquitto` fixture and skip, saying how to get it, when there is none.
- TimescaleDB: the tests that touch storage behaviour (STORAGE_TESTS: migrations, ingest writes,
  scoring, dashboards' panel SQL, API reads) run twice, on the PostgreSQL above (`[postgres]`)
  and on a TimescaleDB server (`[timescaledb]`): PILOTLAB_TEST_TIMESCALEDB_URL (an admin URL),
  else one started for the session by the shared build's script (tests/timescaledb_cluster.py;
  CI: .ci/run finds it). Without either, the `[timescaledb]` runs skip, saying so. Tests marked
  `timescaledb` run on TimescaleDB only. The other tests use the PostgreSQL above alone.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pilotlab.embedded.broker import MosquittoInstall, built_mosquitto, mosquitto_install
from store.migrate import migrate
from tests.timescaledb_cluster import MISSING, URL_ENV, TimescaleCluster, cluster_script

# Tests whose outcome depends on the database's storage (paths from the repository root): they run
# on plain PostgreSQL and on TimescaleDB. Broker, access, decoding and fault tests run once.
STORAGE_TESTS = (
    "tests/store/",
    "tests/scoring/",
    "tests/dashboards/test_panel_sql.py",
    "tests/dashboards/test_provision.py",
    "tests/api/test_telemetry.py",
    "tests/api/test_health.py",
    "tests/api/test_service.py",
    "tests/api/test_dead_letters.py",
    "tests/ingest/test_round_trip.py",
    "tests/ingest/test_idempotence.py",
    "tests/ingest/test_refusal.py",
    "tests/ingest/test_dead_letters.py",
)
SERVERS = ("postgres", "timescaledb")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test on a throwaway database gets `database_server`: both servers for storage tests,
    TimescaleDB alone for those marked `timescaledb`, else plain PostgreSQL (not shown in the id)."""
    if "database_server" not in metafunc.fixturenames:
        return
    path = Path(metafunc.definition.path).relative_to(Path(__file__).resolve().parents[1]).as_posix()
    if metafunc.definition.get_closest_marker("timescaledb"):
        servers, ids = ["timescaledb"], None
    elif path.startswith(STORAGE_TESTS):
        servers, ids = list(SERVERS), None
    else:
        servers, ids = ["postgres"], [pytest.HIDDEN_PARAM]
    metafunc.parametrize("database_server", servers, indirect=True, scope="session", ids=ids)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """The suite in its own order on plain PostgreSQL, then every `[timescaledb]` run, so the
    server changes once. (pytest's grouping by session parameter would also move every test that
    uses no database after all those that do, which some broker tests' timing depends on.)"""
    collected = {item.nodeid: i for i, item in enumerate(items)}
    yield
    items.sort(key=lambda item: (_server(item) == "timescaledb", collected.get(item.nodeid, len(collected))))


def _server(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("database_server") if callspec else None


def _admin_database_url(tmp_root: Path, stack: list[Callable[[], None]]) -> str:
    url = os.environ.get("PILOTLAB_TEST_DATABASE_URL")
    if url:
        return url
    from pilotlab.embedded.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_root / "pg")
    stack.append(server.stop)
    return server.start()


def _with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def services_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def postgres_admin_url(services_root: Path) -> Iterator[str]:
    cleanups: list[Callable[[], None]] = []
    try:
        yield _admin_database_url(services_root, cleanups)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


@pytest.fixture(scope="session")
def timescaledb_admin_url() -> Iterator[str]:
    """Admin URL of a TimescaleDB server: PILOTLAB_TEST_TIMESCALEDB_URL, else one started for the
    session with the shared build's script; skips the test when there is neither."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    script = cluster_script()
    if script is None:
        pytest.skip(MISSING)
    cluster = TimescaleCluster(script)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def database_server(request: pytest.FixtureRequest) -> str:
    """The server a test's throwaway databases are on: "postgres" or "timescaledb" (see
    pytest_generate_tests). Tests are grouped by it, so each server's databases are made once."""
    return str(getattr(request, "param", "postgres"))


@pytest.fixture(scope="session")
def admin_database_url(database_server: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{database_server}_admin_url"))


@pytest.fixture(scope="session")
def make_empty_database(admin_database_url: str) -> Iterator[Callable[[], str]]:
    """Factory of throwaway databases, not migrated; all are dropped when the session ends."""
    created: list[str] = []

    def create() -> str:
        name = f"pilotlab_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return _with_database(admin_database_url, name)

    yield create
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_database(admin_database_url: str) -> Iterator[str]:
    """A database of this test alone, not migrated, dropped when the test ends (on TimescaleDB,
    each database with the extension keeps a job scheduler running while it exists)."""
    name = f"pilotlab_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(admin_database_url, name)
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def make_database(make_empty_database: Callable[[], str]) -> Callable[[], str]:
    """Factory of throwaway migrated databases; all are dropped when the session ends."""

    def create() -> str:
        url = make_empty_database()
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (1,):
                # Many tests store readings of 2024, beyond the 730-day retention: its policy, run by
                # the scheduler at any moment, would drop them mid-test.
                conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
                             "WHERE proc_name = 'policy_retention'")
        return url

    return create


@pytest.fixture(scope="session")
def database_url(make_database: Callable[[], str]) -> str:
    """The session's shared throwaway database. Tests isolate by creating their own pilots."""
    return make_database()


@pytest.fixture(scope="session")
def mqtt_url(services_root: Path) -> Iterator[str]:
    url = os.environ.get("PILOTLAB_TEST_MQTT_URL")
    if url:
        yield url
        return
    from pilotlab.embedded.broker import EmbeddedBroker

    broker = EmbeddedBroker(services_root / "broker")
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def shipped_mosquitto() -> MosquittoInstall:
    """The broker pilotlab ships (Mosquitto 2.1 + persist-sqlite); the test skips without it."""
    named = os.environ.get("PILOTLAB_TEST_MOSQUITTO")
    binary = named or built_mosquitto()
    install = mosquitto_install(binary) if binary else None
    if named and (install is None or not install.restart_safe):
        pytest.fail(f"PILOTLAB_TEST_MOSQUITTO={named} is not Mosquitto 2.1 with the persist-sqlite plugin "
                    f"({install or 'no such broker'})")
    if install is None or not install.restart_safe:
        pytest.skip("needs the shipped broker, Mosquitto 2.1 with persist-sqlite: run `bash "
                    "scripts/build-mosquitto.sh` (or set PILOTLAB_TEST_MOSQUITTO to its binary)")
    return install


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Start a private broker with pilotlab's tuned config; stopped after the test.

    `own_broker()` prefers mosquitto and falls back to iotcore; `own_broker(prefer="iotcore")`
    forces the fallback; `own_broker("mosquitto", mosquitto=shipped_mosquitto.binary)` runs the
    shipped broker with its persistence. Returns the EmbeddedBroker (its `.url`, `.stop()`,
    `.kill()`, `.start()`).
    """
    from pilotlab.embedded.broker import EmbeddedBroker

    started: list[EmbeddedBroker] = []

    def start(prefer: str = "auto", mosquitto: Path | None = None) -> EmbeddedBroker:
        broker = EmbeddedBroker(tmp_path / f"broker{len(started)}", prefer=prefer,  # type: ignore[arg-type]
                                mosquitto=mosquitto)
        broker.start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def unique_id() -> Callable[[str], str]:
    """Ids unique to this test, so tests sharing a database or broker never see each other."""
    suffix = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{suffix}"


requires_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None,
    reason="needs a mosquitto binary on PATH (Debian package 'mosquitto')",
)
