"""The process entry point of ``tidecast`` and ``python -m tidecast``: SIGTERM is a clean stop from here on.

A supervisor may send SIGTERM at any moment, also while the process still imports its commands (about 0.1 s,
more on a loaded machine) or connects. Nothing has started then, so the process leaves with exit 0 rather than
dying by the signal (exit -15). The handler is installed before :mod:`tidecast.cli` and its imports load; each
live loop then installs its own (finish the batch, commit, leave).

>>> import signal
>>> before = signal.getsignal(signal.SIGTERM)
>>> main(["--version"])
Traceback (most recent call last):
...
SystemExit: 0
>>> signal.getsignal(signal.SIGTERM) is before
True
"""

from __future__ import annotations

import signal
import sys


def _stopped_while_starting(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """Run one ``tidecast`` command (``argv``, else the process's arguments) and return its exit status."""
    previous = signal.signal(signal.SIGTERM, _stopped_while_starting)
    try:
        from tidecast.cli import main as run_command  # the imports a SIGTERM may interrupt

        return run_command(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
