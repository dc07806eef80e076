"""`pilotlab credentials`, `apikey` and `broker` against a real database and a broker with the plugin."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from access import api_keys
from pilotlab.cli import main
from tests.access.conftest import ADMIN, Peer, SecureBroker, requires_dynsec
from tests.support import register_pilot


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Callable[[SecureBroker | None], None]:
    def set_env(broker: SecureBroker | None) -> None:
        monkeypatch.setenv("PILOTLAB_DATABASE_URL", database_url)
        if broker is not None:
            monkeypatch.setenv("PILOTLAB_MQTT_URL", broker.url)
            monkeypatch.setenv("PILOTLAB_BROKER_ADMIN_USERNAME", ADMIN[0])
            monkeypatch.setenv("PILOTLAB_BROKER_ADMIN_PASSWORD", ADMIN[1])

    return set_env


def test_apikey_create_prints_a_working_key_once(env: Callable[..., None], database_url: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    env(None)
    assert main(["apikey", "create", "--role", "reviewer", "--name", "cli"]) == 0
    token = capsys.readouterr().out.split()[0]
    with psycopg.connect(database_url, autocommit=True) as conn:
        principal = api_keys.authenticate(conn, token)
    assert principal is not None and principal.role == "reviewer"
    assert main(["apikey", "list"]) == 0
    assert token not in capsys.readouterr().out
    assert main(["apikey", "create", "--role", "firm"]) == 2  # a firm key needs --firm
    assert "needs --firm" in capsys.readouterr().err


@requires_dynsec
@pytest.mark.mosquitto
def test_credentials_issue_rotate_revoke_and_broker_sync_from_the_shell(
        env: Callable[..., None], secure_broker: SecureBroker, peer: Callable[..., Peer], database_url: str,
        unique_id: Callable[[str], str], capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    env(secure_broker)
    pilot = register_pilot(database_url, unique_id("cli"))
    assert main(["credentials", "issue", pilot.env_id]) == 0
    first = capsys.readouterr().out.split("\n")[1].split()[1]
    assert peer(pilot.env_id, first).accepted
    assert main(["credentials", "rotate", pilot.env_id]) == 0
    second = capsys.readouterr().out.split("\n")[1].split()[1]
    assert not peer(pilot.env_id, first).accepted and peer(pilot.env_id, second).accepted
    assert main(["credentials", "revoke", pilot.env_id]) == 0
    assert not peer(pilot.env_id, second).accepted
    capsys.readouterr()
    main(["broker", "sync"])  # other tests' accounts may be missing on this broker: exit 1 says so
    assert "broker" in capsys.readouterr().out
    assert main(["credentials", "rotate", unique_id("nobody")]) == 2


@requires_dynsec
@pytest.mark.mosquitto
def test_broker_worker_account_issues_an_account_bound_to_the_workers_client_id(
        env: Callable[..., None], secure_broker: SecureBroker, peer: Callable[..., Peer],
        unique_id: Callable[[str], str], capsys: pytest.CaptureFixture[str]) -> None:
    env(secure_broker)
    group = unique_id("pilotlab-cli")
    assert main(["broker", "worker-account", "--worker-id", "7", "--share-group", group]) == 0
    out = capsys.readouterr().out
    username, password = (line.split()[1] for line in out.splitlines()[:2])
    assert username == f"{group}-7" and f"PILOTLAB_MQTT_USERNAME={group}-7" in out and "broker:" in out
    assert peer(username, password).accepted
    assert not peer(username, password, f"{group}-8").accepted  # not even as the next worker
    # a share group outside the reserved prefix: a device could have registered that id
    assert main(["broker", "worker-account", "--worker-id", "1", "--share-group", unique_id("ingest")]) == 2
    assert "must begin with 'pilotlab-'" in capsys.readouterr().err
