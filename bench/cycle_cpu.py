"""CPU time of the pure stages of a bucket close at 100k series: forecast, message encoding, learn.

    .venv/bin/python bench/cycle_cpu.py [--series 100000]

No servers: the learner forecasts a random [S, 42, 7] history, the forecast messages are encoded (not
sent), and the learner learns once; each stage's process CPU time, best of 3. CPU time moves far less with
the machine's load than `bench/forecast_cycle.py`'s wall figures, so two versions of the code can be
compared here in one session (``PYTHONPATH=<other checkout> .venv/bin/python bench/cycle_cpu.py``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.stream.forecast_message import ForecastBatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=100_000)
    n = parser.parse_args().series
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    hist = rng.poisson(2.0, (n, 42, 7)).astype(np.float32)
    seen, stores, skus = np.zeros(n, np.int64), ["s"] * n, [f"sku{i}" for i in range(n)]
    names = [f"s:{sku}" for sku in skus]
    learner = OnlineLearner(LearnerConfig())
    batch = ForecastBatch(86_400, 1_767_571_200_000, (0.1, 0.5, 0.9), 3, 1_767_571_260_000)
    best: dict[str, float] = {}
    for rep in range(3):
        laps = [time.process_time()]
        fc = learner.forecast(hist, seen, stores, skus, 500, 86_400)
        laps.append(time.process_time())
        for _ in batch.messages(names, fc.quantiles, fc.mean):
            pass
        laps.append(time.process_time())
        learner.learn(hist, seen, stores, skus, 500 + rep, 86_400)
        laps.append(time.process_time())
        for stage, start, end in zip(("forecast", "messages", "learn"), laps, laps[1:], strict=False):
            best[stage] = min(best.get(stage, float("inf")), end - start)
    print(f"{n:,} series, CPU seconds, best of 3: " + ", ".join(f"{k} {v:.3f}" for k, v in best.items()))


if __name__ == "__main__":
    main()
