"""Child processes that cannot outlive us, and stopping them with escalation.

Every child we start gets `start_new_session=True`, so a Ctrl-C in the terminal reaches only the
parent, which then stops the children in order, and `preexec_fn=die_with_parent()`, so the kernel
signals the child if the parent dies without stopping it (Linux `PR_SET_PDEATHSIG`; a no-op
elsewhere). The death signal fires when the *thread* that started the child ends: start children
from the main thread or from a thread that lives as long as they should.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that asks the kernel to send `sig` to the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), int(sig))

    return preexec


def stop_process(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
    """Send `sig`, wait up to `timeout` seconds, then SIGKILL. Return the exit code."""
    if process.poll() is None:
        try:
            process.send_signal(sig)
            process.wait(max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except FileNotFoundError:
            return False
        except OSError:
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
