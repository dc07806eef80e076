"""Bounded hypothesis settings for the fuzz suite: a profile each test opts into, so the whole
suite stays within about a minute in CI. PILOTLAB_FUZZ_EXAMPLES raises the budget for a long
local run (e.g. 20000)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("PILOTLAB_FUZZ_EXAMPLES", "200"))

settings.register_profile(
    "pilotlab-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # 2 shared cores: a slow example is not a failure
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every CI run: a failure is reproducible, never flaky
)
FUZZ = settings.get_profile("pilotlab-fuzz")
