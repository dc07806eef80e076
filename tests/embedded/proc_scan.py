"""Which processes are still alive, from /proc (no psutil): for "nothing left behind" checks."""

from __future__ import annotations

import os
from pathlib import Path


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state_and_ppid(pid: int) -> tuple[str, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def live_pids() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _state_and_ppid(int(entry))
            if info is not None and info[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    info = _state_and_ppid(pid)
    return info is not None and info[0] not in ("Z", "X")


def processes_mentioning(text: str) -> dict[int, str]:
    """Live processes whose command line contains `text` (e.g. a temporary data dir)."""
    me = os.getpid()
    return {pid: cmd for pid in live_pids() if pid != me and text in (cmd := _cmdline(pid))}


def descendants(root_pids: set[int]) -> dict[int, str]:
    """Live processes whose parent chain reaches one of `root_pids` (while the chain exists)."""
    parents = {}
    for pid in live_pids():
        info = _state_and_ppid(pid)
        if info is not None:
            parents[pid] = info[1]
    found: dict[int, str] = {}
    changed = True
    roots = set(root_pids)
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in roots and pid not in roots:
                roots.add(pid)
                found[pid] = _cmdline(pid)
                changed = True
    return found


def survivors(pids: set[int], mentioning: str) -> dict[int, str]:
    """Recorded pids still alive, plus any live process that mentions `mentioning`."""
    left = {pid: _cmdline(pid) for pid in pids if alive(pid)}
    left.update(processes_mentioning(mentioning))
    return left
