"""`pilotlab feedback`: residents' feedback tasks for the operator.

    pilotlab feedback purge     erase client hashes past PILOTLAB_FEEDBACK_CLIENT_RETENTION_DAYS and the
                                salts of periods that are over (store.client_hashes); run it daily

Every submission purges as well, so this matters when no resident has sent anything for a while.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pilotlab.settings import Settings


def add_feedback_commands(commands: Any, service_flags: Callable[..., None], settings: Callable[..., Settings]) -> None:
    feedback = commands.add_parser("feedback", help="residents' feedback: purge client hashes past their retention")
    tasks = feedback.add_subparsers(dest="feedback_command", metavar="TASK", parser_class=commands._parser_class,
                                    required=True)
    purge = tasks.add_parser("purge", help="erase client hashes past their retention and the salts of past periods")
    service_flags(purge)
    purge.set_defaults(run=lambda args: _purge(settings(args)))


def _purge(settings: Settings) -> int:
    from store import client_hashes
    from store.connection import connect

    days = settings.feedback_client_retention_days
    with connect(settings.require_database_url(), autocommit=True) as conn:
        done = client_hashes.purge(conn, days)
    print(f"feedback: erased {done.hashes_erased} client hashes older than {days} days, "
          f"dropped {done.salts_dropped} salts of past periods")
    return 0
