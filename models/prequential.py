"""Prequential signals: how the model scores the labels that matured at a close, before it learns from them.

The rate controller (:mod:`tidecast.models.lr_control`) reads them to tell drift from noise. Each fresh sample
carries one newly matured label (step ``back`` of its origin); the pinball loss of the quantiles on those
labels is the loss signal, and the bias is the mean over labels and quantile levels of ``P(y < q) - tau``
(``y`` spread over ``[y - w, y + w]`` when the half-widths ``w`` of count-aware scoring are given): the mean
gradient of the loss with respect to the forecasts. It is 0 in expectation for a calibrated model whatever
the noise level, negative when forecasts are too low and positive when too high.

>>> import numpy as np, torch
>>> pred = torch.tensor([[[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]]])   # [n, H, Q]: two samples, one step
>>> y = torch.tensor([[2.0], [10.0]])                                # the second is far above its p90
>>> loss, bias, se = matured_signals(pred, y, np.array([1, 1]), torch.tensor([0.1, 0.5, 0.9]))
>>> round(loss, 3), round(bias, 3)   # loss: (0.1 + 0 + 0.1 + 0.9 + 4 + 6.3) / 6
(1.9, -0.25)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .loss import pinball_loss

__all__ = ["matured_signals"]


def matured_signals(pred: torch.Tensor, y: torch.Tensor, back: np.ndarray, taus: torch.Tensor,
                    half_width: torch.Tensor | None = None) -> tuple[float, float, float]:
    """Loss, bias and the bias's standard error over step ``back`` (1-based, one per sample) of quantile
    forecasts ``pred`` [n, H, Q] against labels ``y`` [n, H] (both in scaled units); NaN without labels.
    ``half_width`` [n]: score counts spread over ``y +/- w`` (count-aware)."""
    n = len(back)
    if n == 0:
        return math.nan, math.nan, math.nan
    idx, step = torch.arange(n), torch.from_numpy(np.asarray(back) - 1)
    with torch.no_grad():
        p, label = pred[idx, step], y[idx, step][:, None]  # [n, Q], [n, 1]
        loss = pinball_loss(p[:, None], label, torch.ones(n, 1, dtype=torch.bool), taus, half_width)
        if half_width is None:
            below = (label < p).float() + 0.5 * (label == p).float()
        else:
            w = half_width[:, None]
            below = ((p - label + w) / (2 * w)).clamp(0.0, 1.0)
        per_sample = (below - taus).mean(dim=1)
        se = float(per_sample.std()) / math.sqrt(n) if n > 1 else math.nan
    return float(loss), float(per_sample.mean()), se
