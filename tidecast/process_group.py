"""Run N copies of a command as child processes: ``tidecast ingest --processes N``.

Each child is a whole ``tidecast ingest``: the workers split the partitions through their membership in Redis
(:mod:`tidecast.consumers.ingest_worker`), exactly as N separately started workers do, so a child that dies
is counted out after the session timeout and the others take its partitions from the offsets in Redis. The
parent starts them, forwards SIGINT and SIGTERM to every child (each finishes its batch, commits and leaves),
and waits for all; a child gets SIGTERM if the parent dies. The exit status is the worst of the children's: 0
only if every one ended cleanly. A child that dies is not restarted (whatever restarts the parent does that).

>>> import sys
>>> run_group([[sys.executable, "-c", "import sys; sys.exit(0)"], [sys.executable, "-c", "import sys; sys.exit(3)"]])
3
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
from collections.abc import Callable, Sequence

_PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGINT, signal.SIGTERM)


def _term_with_parent() -> None:
    """``preexec_fn``: SIGTERM when the parent dies (Linux; elsewhere nothing), so a child commits and leaves."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def run_group(commands: Sequence[Sequence[str]], on_start: Callable[[list[int]], None] | None = None) -> int:
    """Start every command, forward SIGINT/SIGTERM to all of them, wait for all; the worst exit status (a child
    ended by a signal counts as 128 + its number)."""
    children: list[subprocess.Popen] = []

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        for command in commands:
            children.append(subprocess.Popen(list(command), preexec_fn=_term_with_parent))
        if on_start is not None:
            on_start([child.pid for child in children])
        codes = [child.wait() for child in children]
    finally:
        for child in children:  # only if the parent itself failed: never leave a child behind
            if child.poll() is None:
                child.terminate()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max((128 - code if code < 0 else code) for code in codes) if codes else 0
