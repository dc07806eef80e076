"""The ingest's device directory carries each device's profile: the current version's validated
definition, a new version after the next refresh, and a stored definition that no longer
validates as its problem (the load goes on)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from devices.profiles import ProfileDefinition
from ingest.directory import DeviceDirectory
from store import profiles
from tests.support import register_pilot

ENV_PROFILE = {"vendor": "Directory Test", "model": "LPP-1", "firmware_version": "1.0", "kind": "env_sensor",
               "reporting_interval_s": 600, "measurements": ["temperature_c", "humidity_pct"],
               "uplinks": {"1": {"codec": {"type": "cayenne_lpp"}}}}


def test_a_device_entry_carries_its_profiles_current_version_and_definition(
    database_url: str, unique_id: Callable[[str], str],
) -> None:
    pilot = register_pilot(database_url, unique_id("pd"))
    profile_id = unique_id("prof")
    directory = DeviceDirectory(refresh_s=3600)
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, profile_id, pilot.firm_id, ProfileDefinition.model_validate(ENV_PROFILE))
        profiles.assign(conn, pilot.env_id, profile_id)
        directory.load(conn)
        entry = directory.lookup(pilot.env_id, conn)
        assert entry is not None and entry.profile is not None
        assert (entry.profile.id, entry.profile.version, entry.profile.problem) == (profile_id, 1, None)
        assert entry.profile.definition is not None and entry.profile.definition.model == "LPP-1"
        other = directory.lookup(pilot.switch_id, conn)
        assert other is not None and other.profile is None

        profiles.new_version(conn, profile_id, ProfileDefinition.model_validate({**ENV_PROFILE, "model": "LPP-2"}))
        directory.load(conn)
        entry = directory.lookup(pilot.env_id, conn)
        assert entry is not None and entry.profile is not None
        assert entry.profile.version == 2 and entry.profile.definition is not None
        assert entry.profile.definition.model == "LPP-2"


def test_a_stored_definition_that_no_longer_validates_is_carried_as_its_problem(
    database_url: str, unique_id: Callable[[str], str],
) -> None:
    pilot = register_pilot(database_url, unique_id("pd"))
    profile_id = unique_id("prof")
    with psycopg.connect(database_url) as conn:
        profiles.create(conn, profile_id, pilot.firm_id, ProfileDefinition.model_validate(ENV_PROFILE))
        profiles.assign(conn, pilot.env_id, profile_id)
        conn.execute("ALTER TABLE device_profile_version DISABLE TRIGGER device_profile_version_immutable")
        conn.execute("UPDATE device_profile_version SET definition = '{\"vendor\": \"Directory Test\"}' WHERE profile_id = %s",
                     (profile_id,))
        conn.execute("ALTER TABLE device_profile_version ENABLE TRIGGER device_profile_version_immutable")
        conn.commit()
        fresh = DeviceDirectory(refresh_s=3600)
        entry = fresh.lookup(pilot.env_id, conn)  # one device, looked up on its own
        fresh.load(conn)
        loaded = fresh.lookup(pilot.env_id, conn)
    for found in (entry, loaded):
        assert found is not None and found.profile is not None and found.profile.definition is None
        assert found.profile.problem is not None and profile_id in found.profile.problem
