"""A pilot can require a passed conformance report before a device is commissioned: the registry
refuses to commission one without it, in one line saying what to do."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from conformance import runs
from pilotlab.errors import Conflict
from store import registry
from tests.conformance.conftest import RunOutcome


@pytest.fixture
def requiring(conformance_run: RunOutcome) -> Iterator[psycopg.Connection]:
    with psycopg.connect(conformance_run.database_url, autocommit=True) as conn:
        runs.require(conn, conformance_run.pilot_id, True)
        try:
            yield conn
        finally:
            runs.require(conn, conformance_run.pilot_id, False)


def _new_device(pilot_id: str, device_id: str, **extra: object) -> dict[str, object]:
    return {"id": device_id, "pilot_id": pilot_id, "kind": "env_sensor", "connectivity": "wifi",
            "reporting_interval_s": 60, **extra}


def test_a_device_cannot_be_registered_commissioned_without_a_passed_report(
        conformance_run: RunOutcome, requiring: psycopg.Connection) -> None:
    with pytest.raises(Conflict) as refused:
        registry.create(requiring, registry.DEVICES, _new_device(conformance_run.pilot_id, "cf-new-now"))
    message = str(refused.value)
    assert "\n" not in message
    assert "requires a passed conformance report" in message and "pilotlab conformance run cf-new-now" in message
    assert registry.find(requiring, registry.DEVICES, "cf-new-now") is None
    later = datetime.now(UTC) + timedelta(days=7)
    created = registry.create(requiring, registry.DEVICES,
                              _new_device(conformance_run.pilot_id, "cf-new-later", commissioned_at=later))
    assert created.commissioned_at == later  # registered for its run, commissioned only later


def test_commissioning_is_allowed_with_a_passed_report_and_refused_with_a_failed_one(
        conformance_run: RunOutcome, requiring: psycopg.Connection) -> None:
    earlier = datetime.now(UTC) - timedelta(days=1)
    passed = registry.update(requiring, registry.DEVICES, conformance_run.device["ok"], {"commissioned_at": earlier})
    assert passed.commissioned_at == earlier
    with pytest.raises(Conflict, match="has none"):
        registry.update(requiring, registry.DEVICES, conformance_run.device["qos0"], {"commissioned_at": earlier})
    runs.require(requiring, conformance_run.pilot_id, False)
    assert registry.update(requiring, registry.DEVICES, conformance_run.device["qos0"],
                           {"commissioned_at": earlier}).commissioned_at == earlier


def test_the_cli_sets_the_requirement(conformance_run: RunOutcome,
                                      cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    on = cli("conformance", "require", conformance_run.pilot_id, "--database-url", conformance_run.database_url)
    assert on.returncode == 0 and "now required" in on.stdout
    off = cli("conformance", "require", conformance_run.pilot_id, "--off", "--database-url", conformance_run.database_url)
    assert off.returncode == 0 and "not required" in off.stdout
    missing = cli("conformance", "require", "no-such-pilot", "--database-url", conformance_run.database_url)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
