"""Lead-time demand: the network's cumulative head learns the quantiles of demand summed over L buckets,
which the sums of per-bucket quantiles are not (issue 12, part 1)."""

from __future__ import annotations

import torch

from tidecast.models.loss import lead_time_loss, pinball_loss
from tidecast.models.network import QuantileNet

H = 14
TAUS = torch.tensor([0.1, 0.5, 0.9])


def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    level = torch.rand(n) * 3 + 0.2  # each series' rate, which the inputs tell
    x = torch.stack([level, level**2, torch.ones(n), torch.randn(n)], 1)
    return x, torch.poisson(level[:, None].expand(n, H))  # independent buckets


def test_the_lead_time_head_covers_sums_that_summed_quantiles_overcover() -> None:
    torch.manual_seed(0)
    net = QuantileNet(n_inputs=4, horizon=H, quantiles=(0.1, 0.5, 0.9), lead_quantiles=(0.1, 0.5, 0.9), sku_buckets=16,
                      store_buckets=4)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    ids, mask = torch.zeros(512, 2, dtype=torch.long), torch.ones(512, H, dtype=torch.bool)
    for _ in range(1200):
        x, y = batch(512)
        q, _, lead = net.forward_all(x, ids, ids)
        loss = pinball_loss(q, y, mask, TAUS) + lead_time_loss(lead, y, mask, TAUS)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        x, y = batch(20_000)
        ids = torch.zeros(20_000, 2, dtype=torch.long)
        q, _, lead = net.forward_all(x, ids, ids)
    sums, summed = y.cumsum(1), q.cumsum(1)
    assert bool((lead.diff(dim=1) >= 0).all()) and bool((lead.diff(dim=2) >= 0).all())  # monotone in L and Q

    def coverage(band: torch.Tensor, lead_time: int) -> float:
        s = sums[:, lead_time - 1]
        return float(((s >= band[:, lead_time - 1, 0]) & (s <= band[:, lead_time - 1, 2])).float().mean())

    for lead_time in (7, 14):
        assert abs(coverage(lead, lead_time) - 0.8) < 0.04
        assert coverage(summed, lead_time) > 0.95


def test_the_backtest_scores_lead_time_bands_when_the_learner_makes_them() -> None:
    from dataclasses import replace

    from tidecast.models.learner import LearnerConfig
    from tidecast.stream.backtest.config import BacktestConfig
    from tidecast.stream.backtest.engine import run_rows
    from tidecast.stream.backtest.report import summary
    from tidecast.stream.window_store import MemoryWindowStore

    rows = [{"event_id": f"{d}{s}", "type": "sale", "ts": f"2024-01-{d:02d}T12:00:00+00:00", "sku": s,
             "qty": (d * (i + 1)) % 5 + 1} for d in range(1, 29) for i, s in enumerate("ABCD")]
    small = LearnerConfig(horizon=3, lags=4, aux_lags=2, scale_window=4, hidden=8, batch_size=16,
                          replay_capacity=64, sku_buckets=64, store_buckets=8)
    result = run_rows(lambda sorting: rows, BacktestConfig(horizon=3, warmup=4, baselines=(), learner=small),
                      MemoryWindowStore)
    lead = summary(result)["lead_time"]
    assert len(lead["coverage80"]) == 3 and all(0.0 <= c <= 1.0 for c in lead["coverage80"])
    assert lead["sums"][0] >= lead["sums"][2] > 0  # a sum counts once its L buckets closed
    plain = run_rows(lambda sorting: rows, BacktestConfig(horizon=3, warmup=4, baselines=(),
                                                          learner=replace(small, lead_time=False)), MemoryWindowStore)
    assert "lead_time" not in summary(plain)


def test_a_young_series_sums_are_held_under_its_largest_bucket_and_the_calibration_does_not_chase_them() -> None:
    import numpy as np

    from tidecast.models.lead_time import LeadTimeQuantiles, young_peak

    history = np.zeros((2, 28, 7), np.float32)
    history[:, -1, 0] = [74_215.0, 10.0]  # a bulk first day; an established series' 10 units
    peak = young_peak(history, np.array([99, 50]), t=99, window=28)
    lead = LeadTimeQuantiles(horizon=3, levels=(0.1, 0.5, 0.9), clip=50.0)
    lead.begin(2)
    raw = np.full((2, 3, 3), 11.0, np.float32)  # 11 scales for every sum
    lead.put(0, raw, np.zeros(2, np.int64), np.array([74_215.0, 2.0], np.float32), keep=np.arange(2), peak=peak)
    assert lead.last[0, :, 2].tolist() == [74_215.0, 148_430.0, 222_645.0]  # L x the first day, not 11 x it
    assert lead.last[1, :, 2].tolist() == [22.0, 22.0, 22.0]  # no bound on an established series
    held = lead._held[0]
    assert (held[0] == -1).all() and (held[1] == 0).all()  # its held-down levels ask the calibration for no rise


def test_lead_time_coverage_counts_each_level_per_sum() -> None:
    import numpy as np

    from tidecast.models.lead_time_coverage import LeadTimeCoverage

    cov = LeadTimeCoverage(horizon=2, levels=(0.1, 0.5, 0.9))
    q = np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]] * 4)
    cov.forecast(0, np.arange(4), q)
    cov.close(1, np.array([0.0, 2.0, 3.0, 9.0, 5.0]))  # a fifth series appeared since: not scored
    cov.close(2, np.array([0.0, 2.0, 0.0, 0.0, 5.0]))
    assert cov.hit_rates()[0.5].tolist() == [0.5, 0.75]  # L = 1: 0, 2 at or below 2; L = 2: 0, 4, 3 below 4
    assert cov.below_rates()[0.5].tolist() == [0.25, 0.5]  # strictly below: L = 1: 0; L = 2: 0, 3
    assert cov.coverage80().tolist() == [0.5, 0.5] and cov.counted.tolist() == [4, 4]
