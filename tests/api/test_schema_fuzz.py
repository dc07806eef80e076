"""schemathesis against the API's own OpenAPI schema, on a throwaway migrated database: whatever
a client sends that the schema allows (or nearly allows), the answer is never a 5xx.

Bounded: PILOTLAB_SCHEMA_EXAMPLES examples per operation (default 15), derandomized, so the run
is the same in every CI build and stays well under a minute."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings

from api.app import create_app
from pilotlab.settings import Settings
from tests.support import admin_headers

EXAMPLES = int(os.environ.get("PILOTLAB_SCHEMA_EXAMPLES", "15"))


# The schema comes from the app itself; no database is needed to build it.
schema = schemathesis.openapi.from_dict(create_app(Settings(database_url="postgresql://unused")).openapi())


@pytest.fixture(scope="module")
def api(make_database: Callable[[], str]) -> Iterator[TestClient]:
    """The API on a throwaway migrated database of its own (the lifespan opens the pool)."""
    url = make_database()
    with TestClient(create_app(Settings(database_url=url)), headers=admin_headers(url)) as client:
        yield client


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_describes_gets_a_server_error(api: TestClient, case: schemathesis.Case) -> None:
    request = case.as_transport_kwargs(base_url="http://testserver")
    if not request.get("cookies"):
        request.pop("cookies", None)
    if "data" in request:  # requests' name for a raw body is httpx's `content`
        request["content"] = request.pop("data")
    response = api.request(request.pop("method"), request.pop("url"), **request)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
