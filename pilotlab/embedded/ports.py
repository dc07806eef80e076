"""Free TCP ports on the loopback interface, and waiting until a child process listens."""

from __future__ import annotations

import socket
import subprocess
import time

from pilotlab.errors import ServiceUnavailable

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the kernel's pick; another process could take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def accepts_connections(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_listening(port: int, *, what: str, process: subprocess.Popen[bytes] | None = None,
                         timeout: float = 10.0, host: str = LOOPBACK, log_hint: str = "") -> float:
    """Block until `host:port` accepts a TCP connection; return the seconds it took.

    Raise ServiceUnavailable (one line) if `process` exits first or `timeout` passes.
    """
    started = time.monotonic()
    deadline = started + timeout
    hint = f" (see {log_hint})" if log_hint else ""
    while True:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with code {process.returncode} while starting{hint}")
        if accepts_connections(port, host):
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise ServiceUnavailable(f"{what} did not listen on {host}:{port} within {timeout:g} s{hint}")
        time.sleep(0.02)
