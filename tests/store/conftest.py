"""Storage tests write through a real ingest worker where arrival matters (late data)."""

from tests.ingest.conftest import thread_worker, worker_settings  # noqa: F401  (shared fixtures)
