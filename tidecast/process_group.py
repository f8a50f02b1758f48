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
import os
import signal
import subprocess
from collections.abc import Callable, Sequence

_PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGINT, signal.SIGTERM)


def _term_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGTERM when the parent dies (Linux; elsewhere nothing), so a child commits and leaves;
    a parent that died before that took effect ends the child at once."""

    def arm() -> None:
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return arm


def run_group(commands: Sequence[Sequence[str]], env: dict[str, str] | None = None,
              on_start: Callable[[list[int]], None] | None = None) -> int:
    """Start every command (with ``env``), forward SIGINT/SIGTERM to all of them, wait for all; the worst exit
    status (a child ended by a signal counts as 128 + its number). A signal while they start stops the start."""
    children: list[subprocess.Popen] = []
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        for command in commands:
            if stopping:
                break
            children.append(subprocess.Popen(list(command), env=env, preexec_fn=_term_with_parent(os.getpid())))
        if on_start is not None:
            on_start([child.pid for child in children])
        codes = [child.wait() for child in children]
    finally:
        for child in children:  # only if the parent itself failed: never leave a child behind
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max((128 - code if code < 0 else code) for code in codes) if codes else 0
