"""Masked pinball (quantile) loss, with an optional count-aware smoothing for integer demand; Poisson loss
for the mean.

Count-aware: a count ``y`` is treated as spread uniformly over ``[y - 1/2, y + 1/2]`` (a continuity
correction) and the loss is the *expected* pinball loss over that spread. In closed form, for
``d = y - q`` and half-width ``w``: ``tau*d + (w - d)^2 / (4w)`` when ``|d| < w``, plain pinball otherwise.
It equals pinball loss away from the target and gives a useful gradient inside a count's mass, which
matters most for intermittent items whose quantiles sit on 0 or 1. In scaled space ``w = 0.5 / scale``.

>>> import torch
>>> pred = torch.tensor([[[1.0, 2.0, 3.0]]])
>>> y, mask, taus = torch.tensor([[2.0]]), torch.tensor([[True]]), torch.tensor([0.1, 0.5, 0.9])
>>> round(float(pinball_loss(pred, y, mask, taus)), 4)  # (0.1*1 + 0 + 0.1*1) / 3
0.0667
>>> round(float(pinball_loss(pred, y, mask, taus, half_width=torch.tensor([0.5]))), 4)
0.1083
>>> round(float(poisson_loss(torch.tensor([[2.0]]), y, mask)), 4)  # 2 - 2 log 2: least at mean = y
0.6137
"""

from __future__ import annotations

import torch


def pinball_terms(
    pred: torch.Tensor, y: torch.Tensor, taus: torch.Tensor, half_width: torch.Tensor | None = None
) -> torch.Tensor:
    """Elementwise loss ``[N, H, Q]`` of predictions ``[N, H, Q]`` against targets ``[N, H]``."""
    d = y.unsqueeze(-1) - pred
    if half_width is None:
        return torch.maximum(taus * d, (taus - 1.0) * d)
    # tau*d + E[max(-(d+U), 0)], U ~ Uniform(-w, w), written without branches:
    w = half_width.reshape(-1, 1, 1).clamp_min(1e-6)
    inside = torch.minimum(torch.relu(w - d), 2.0 * w)
    return taus * d + inside.square() / (4.0 * w) + torch.relu(-d - w)


def pinball_loss(
    pred: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    taus: torch.Tensor,
    half_width: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss over the matured entries (``mask`` [N, H]) and all quantiles; 0 when nothing matured."""
    terms = pinball_terms(pred, y, taus, half_width) * mask.unsqueeze(-1)
    count = mask.sum() * taus.numel()
    return terms.sum() / count.clamp_min(1)


def poisson_loss(mean: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Poisson loss ``mean - y log(mean)`` of mean forecasts ``[N, H]``, averaged over the matured entries.

    A proper scoring rule for the mean (its expectation is least at ``mean = E[y]``) that weighs errors by
    the size of the count, the M5 winners' choice (with Tweedie) for retail demand.
    """
    terms = (mean - y * torch.log(mean.clamp_min(1e-6))) * mask
    return terms.sum() / mask.sum().clamp_min(1)


def lead_time_loss(lead: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, taus: torch.Tensor) -> torch.Tensor:
    """Pinball loss of lead-time quantiles ``[N, H, Q]`` (of the demand summed over steps ``1 .. L``) against
    the summed labels ``y`` [N, H]. Each sum is read as a mean per bucket (divided by ``L``), so every ``L``
    weighs like one step of :func:`pinball_loss`; a sum counts only where every step up to ``L`` matured.

    >>> lead = torch.tensor([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]])
    >>> y, mask = torch.tensor([[2.0, 2.0]]), torch.tensor([[True, True]])
    >>> round(float(lead_time_loss(lead, y, mask, torch.tensor([0.1, 0.5, 0.9]))), 4)  # sums 2, 4: as above
    0.0667
    """
    steps = torch.arange(1, y.shape[1] + 1, dtype=y.dtype)
    known = mask.to(torch.int64).cumprod(dim=1).bool()
    sums = torch.cumsum(torch.where(mask, y, torch.zeros_like(y)), dim=1)
    return pinball_loss(lead / steps[None, :, None], sums / steps, known, taus)
