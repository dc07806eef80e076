"""Hypothesis settings and seed for the fuzz suite (and tests/api/test_schema_fuzz.py).

- `PILOTLAB_FUZZ_SEED`: unset, the fixed default seed, so every CI run tries the same inputs and a
  failure is reproducible, never flaky; an integer, that seed; `random`, a fresh seed each run,
  so long runs explore new inputs. A failing test's report carries the seed and the command
  that reproduces it.
- `PILOTLAB_FUZZ_EXAMPLES`: examples per test (default 200, about a minute for the suite in CI;
  e.g. 20000 for a long local run).

No example database: a run is defined by the seed and the budget alone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, is_hypothesis_test, seed, settings

DEFAULT_SEED = 20241201
T = TypeVar("T", bound=Callable[..., Any])


def _seed_from_env() -> int:
    raw = os.environ.get("PILOTLAB_FUZZ_SEED", "").strip()
    if not raw:
        return DEFAULT_SEED
    if raw == "random":
        return secrets.randbits(32)
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"PILOTLAB_FUZZ_SEED={raw!r}: use an integer, or `random` for a fresh seed") from None


FUZZ_SEED = _seed_from_env()
FUZZ_EXAMPLES = int(os.environ.get("PILOTLAB_FUZZ_EXAMPLES", "200"))
REPRODUCE = (f"fuzz seed {FUZZ_SEED}; reproduce with PILOTLAB_FUZZ_SEED={FUZZ_SEED} "
             f"PILOTLAB_FUZZ_EXAMPLES={FUZZ_EXAMPLES}")

settings.register_profile(
    "pilotlab-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # 2 shared cores: a slow example is not a failure
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
)
FUZZ = settings.get_profile("pilotlab-fuzz")


def seeded(test: T) -> T:
    """The test with the run's fuzz seed (what this directory's tests get at collection)."""
    return seed(FUZZ_SEED)(test)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        test = getattr(item, "obj", None)
        if here in item.path.parents and test is not None and is_hypothesis_test(test):
            seeded(test)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        report.sections.append(("fuzz seed", REPRODUCE))
    return report
