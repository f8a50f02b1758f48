"""Child-process hygiene: children that die with their parent, and stopping by PID safely.

>>> pid_alive(os.getpid())
True
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for Popen: the child gets SIGKILL when the process that started it dies.

    Linux only (prctl); elsewhere it does nothing and ``infra down`` remains the way to stop.
    """
    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists and is not a zombie. Never true for ``pid <= 0``: to ``kill`` those
    name a process group or every process (-1).

    >>> pid_alive(-1), pid_alive(0)
    (False, False)
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def pid_runs(pid: int, needle: str | tuple[str, ...]) -> bool:
    """True if ``pid`` is alive and its command line (arguments joined by spaces, each followed by one) contains
    ``needle``, or one of several (guards against PID reuse).

    >>> pid_runs(os.getpid(), ("no such program", "python")), pid_runs(os.getpid(), "no such program")
    (True, False)
    """
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # alive but unreadable (another user's process): assume it is the one we started
    needles = (needle,) if isinstance(needle, str) else needle
    return any(n in cmdline for n in needles)


def stop_pid(pid: int, needle: str | tuple[str, ...], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; only if the process still runs ``needle`` (see :func:`pid_runs`)."""
    if pid <= 0 or not pid_runs(pid, needle):  # kill(0 or -1) would signal a group or every process
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
