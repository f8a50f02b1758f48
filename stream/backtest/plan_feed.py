"""The plans of each close, sent to a baseline worker as what changed: :class:`PlanSender`, :class:`PlanReceiver`.

At close ``t`` the baselines get the plans of ``t+1 .. t+H``, float32 ``[S, H, 8]`` (500 KB for Rossmann's
1,115 stores, 27 MB for M5's 30,490 series at H = 28). Most of it was sent at close ``t-1`` already, one step
later: the sender sends the last step ``[S, 8]`` and only the rows whose other steps differ from the previous
window shifted by one (a plan revised, a new series), so the pipe carries about ``1/H`` of it.

>>> import numpy as np
>>> sender, receiver = PlanSender(), PlanReceiver()
>>> a = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)
>>> b = np.concatenate([a[:, 1:], np.ones((2, 1, 8), np.float32)], axis=1)
>>> first, second = sender.encode(a), sender.encode(b)
>>> first[0], second[0], second[1].tolist()   # the second sends no row, only its last step
('full', 'delta', [])
>>> bool((receiver.decode(first) == a).all()), bool((receiver.decode(second) == b).all())
(True, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["PlanReceiver", "PlanSender"]


def _shifted(previous: np.ndarray, rows: int) -> np.ndarray:
    """``previous`` one step on (its last step zero), grown to ``rows`` rows of zeros."""
    out = np.zeros((rows, *previous.shape[1:]), np.float32)
    n = min(rows, previous.shape[0])
    out[:n, :-1] = previous[:n, 1:]
    return out


class PlanSender:
    """Encodes each close's plans against the previous one's (see the module docstring)."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None

    def encode(self, plans: np.ndarray) -> tuple:
        """A picklable message :meth:`PlanReceiver.decode` turns back into ``plans``."""
        plans = np.asarray(plans, np.float32)
        previous, self.previous = self.previous, plans
        if previous is None or previous.shape[1:] != plans.shape[1:] or previous.shape[0] > plans.shape[0]:
            return ("full", plans)
        guess = _shifted(previous, plans.shape[0])
        rows = np.flatnonzero((guess[:, :-1] != plans[:, :-1]).any(axis=(1, 2)))
        return ("delta", rows, plans[rows], plans[:, -1])


class PlanReceiver:
    """Decodes :class:`PlanSender` messages, in the order they were encoded."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None

    def decode(self, message: tuple) -> np.ndarray:
        """The plans ``[S, H, 8]`` the message was encoded from."""
        if message[0] == "full":
            plans = np.array(message[1], np.float32)
        else:
            assert self.previous is not None, "a delta before any full plans"
            _, rows, changed, last = message
            plans = _shifted(self.previous, last.shape[0])
            plans[:, -1] = last
            plans[rows] = changed
        self.previous = plans
        return plans
