"""schemathesis against the API's own OpenAPI schema, served by uvicorn on a throwaway migrated
database: whatever a client sends that the schema allows (or nearly allows), the answer is never
a 5xx. Requests go over real HTTP through schemathesis' own transport (requests + urllib3), so the
test also proves the test tools work in the project's environment.

Bounded: PILOTLAB_SCHEMA_EXAMPLES examples per operation (default 15). The seed is the fuzz
suite's (PILOTLAB_FUZZ_SEED, see tests/fuzz/conftest.py): fixed in CI, `random` to explore."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings

from api.app import create_app
from pilotlab.settings import Settings
from tests.api.conftest import served
from tests.fuzz.conftest import FUZZ_SEED
from tests.support import admin_headers

EXAMPLES = int(os.environ.get("PILOTLAB_SCHEMA_EXAMPLES", "15"))


# The schema comes from the app itself; no database is needed to build it.
schema = schemathesis.openapi.from_dict(create_app(Settings(database_url="postgresql://unused")).openapi())


@dataclass
class ServedApi:
    url: str
    session: requests.Session


@pytest.fixture(scope="module")
def api(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    """The API served by uvicorn on a free port, on a throwaway migrated database of its own, set up
    as its operator would (with a signing key: without one, records answer 503, as they should)."""
    from scoring.signing import generate_key

    url = make_database()
    key = tmp_path_factory.mktemp("fuzz-key") / "signing.pem"
    generate_key(key)
    with served(create_app(Settings(database_url=url, signing_key=key))) as (host, port), requests.Session() as session:
        session.headers.update(admin_headers(url))
        yield ServedApi(f"http://{host}:{port}", session)


@schema.parametrize()
@seed(FUZZ_SEED)
@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_describes_gets_a_server_error(api: ServedApi, case: schemathesis.Case) -> None:
    try:
        response = case.call(base_url=api.url, session=api.session)
        assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    except BaseException as exc:
        exc.add_note(f"fuzz seed {FUZZ_SEED}; reproduce with PILOTLAB_FUZZ_SEED={FUZZ_SEED} PILOTLAB_SCHEMA_EXAMPLES={EXAMPLES}")
        raise
