"""A fixed-capacity reservoir of training samples (Vitter's algorithm R): every batch can mix old ones in.

Each slot holds one sample: inputs ``x`` [D], hashed ids [2] + [2], targets ``y`` [H], matured
``mask`` [H] and ``scale``. After ``n_seen`` offers, each sample seen so far is in the buffer with the same
probability ``capacity / n_seen``: a uniform sample of the whole stream. The state is plain tensors and ints.

>>> import numpy as np
>>> buf = ReplayBuffer(capacity=4, n_inputs=3, horizon=2, seed=0)
>>> n = 10
>>> buf.add(np.ones((n, 3), np.float32), np.zeros((n, 2), np.int64), np.zeros((n, 2), np.int64),
...         np.ones((n, 2), np.float32), np.ones((n, 2), bool), np.ones(n, np.float32))
>>> len(buf), buf.n_seen, buf.sample(3)["x"].shape
(4, 10, (3, 3))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

FIELDS = ("x", "sku", "store", "y", "mask", "scale")


class ReplayBuffer:
    """Reservoir of samples; ``add`` offers a batch, ``sample`` draws uniformly without replacement."""

    def __init__(self, capacity: int, n_inputs: int, horizon: int, seed: int = 0) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self.n_seen = 0
        self._size = 0
        self._rng = np.random.default_rng(seed)
        self._data: dict[str, np.ndarray] = {
            "x": np.zeros((capacity, n_inputs), np.float32),
            "sku": np.zeros((capacity, 2), np.int64),
            "store": np.zeros((capacity, 2), np.int64),
            "y": np.zeros((capacity, horizon), np.float32),
            "mask": np.zeros((capacity, horizon), bool),
            "scale": np.ones(capacity, np.float32),
        }

    def __len__(self) -> int:
        return self._size

    def add(
        self,
        x: np.ndarray,
        sku: np.ndarray,
        store: np.ndarray,
        y: np.ndarray,
        mask: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        """Offer ``N`` samples; each lands in a slot with the reservoir probability."""
        n = len(x)
        if n == 0 or self.capacity == 0:
            self.n_seen += n
            return
        seen = self.n_seen + np.arange(n)  # 0-based stream position of each offered sample
        slots = np.where(seen < self.capacity, seen, self._rng.integers(0, seen + 1))
        keep = slots < self.capacity
        values = {"x": x, "sku": sku, "store": store, "y": y, "mask": mask, "scale": scale}
        for name in FIELDS:  # later offers overwrite earlier ones that drew the same slot, as in sequential R
            self._data[name][slots[keep]] = np.asarray(values[name])[keep]
        self.n_seen += n
        self._size = min(self.capacity, self.n_seen)

    def sample(self, n: int) -> dict[str, np.ndarray]:
        """Up to ``n`` distinct stored samples, uniformly."""
        n = min(n, self._size)
        idx = self._rng.choice(self._size, size=n, replace=False) if n else np.zeros(0, np.int64)
        return {name: self._data[name][idx] for name in FIELDS}

    def state_dict(self) -> dict[str, Any]:
        """Tensors of the filled slots, counters and the sampling RNG state (all weights-only loadable)."""
        return {
            "capacity": self.capacity,
            "n_seen": self.n_seen,
            "size": self._size,
            "rng": self._rng.bit_generator.state,
            "data": {name: torch.from_numpy(self._data[name][: self._size].copy()) for name in FIELDS},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; shapes must match this buffer's."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay capacity {state['capacity']} != {self.capacity}")
        size = int(state["size"])
        for name in FIELDS:
            arr = state["data"][name].numpy()
            if arr.shape[1:] != self._data[name].shape[1:] or len(arr) != size:
                raise ValueError(f"replay field {name!r} has shape {tuple(arr.shape)}, not as configured")
            self._data[name][:size] = arr
        self._size, self.n_seen = size, int(state["n_seen"])
        self._rng.bit_generator.state = state["rng"]
