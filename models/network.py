"""The global quantile network: series inputs and hashed sku/store ids -> H x Q scaled quantiles and H means.

An MLP reads the series inputs ``x`` (which include the target-bucket calendar, see
:mod:`tidecast.models.features`) and the summed sku/store embeddings; raw scores per (step, quantile) are
``head(mlp(...)) + skip(x)``: a nonlinear path plus a linear autoregressive one.

A second, smaller head reads the same representation to give the mean per step (``softplus``, so >= 0),
the point forecast that squared-error metrics and replenishment sums call for: for lumpy demand the mean
sits well above the median. Given each series' recent ``rate`` (its recent mean in scaled units), the mean
head corrects that rate instead of the scale (recent mean + 1 unit), so an untrained mean is the recent mean.
The representation is *detached* on its way into the mean head, so learning
the mean never changes the quantiles.

Outputs are non-negative and non-decreasing along the quantile axis *by construction*: the lowest quantile
is ``softplus(r0)`` and each next one adds ``softplus(rj)``. They are in units of the series' scale (see
:mod:`tidecast.models.features`); multiply by the scale to get units. At initialisation the head is nearly
constant, so an untrained model forecasts the series' recent mean with a moderate spread.

>>> import torch
>>> net = QuantileNet(n_inputs=5, horizon=2, quantiles=(0.1, 0.5, 0.9))
>>> ids = torch.zeros(3, 2, dtype=torch.long)
>>> out, mean = net(torch.randn(3, 5), ids, ids)
>>> tuple(out.shape), bool((out >= 0).all()), bool((out.diff(dim=-1) >= 0).all())
((3, 2, 3), True, True)
>>> tuple(mean.shape), bool((mean >= 0).all())
((3, 2), True)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from statistics import NormalDist

import torch
from torch import nn
from torch.nn import functional as F

from .plan_features import closed_steps


def monotone_quantiles(raw: torch.Tensor) -> torch.Tensor:
    """Map raw scores ``[..., Q]`` to non-negative, non-decreasing values: cumulative sum of softplus."""
    return torch.cumsum(F.softplus(raw), dim=-1)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def initial_quantiles(quantiles: Sequence[float], cv: float = 0.5, floor: float = 0.05) -> list[float]:
    """A neutral prior in scaled units: ``1 + cv * z(tau)``, kept positive and increasing."""
    values: list[float] = []
    for tau in quantiles:
        v = max(floor, 1.0 + cv * NormalDist().inv_cdf(tau))
        values.append(v if not values else max(v, values[-1] + floor))
    return values


GATE_OFFSET = 6.0
"""Initial closing of the plan gates (a factor ``exp(-softplus(g))`` in (0, 1) on a step's quantiles and mean,
``g`` starting at ``-GATE_OFFSET``): a plan can take a step most of the way to 0 whatever the rest says (a
holiday on which most stores close). A plan that says closed needs no learning: that step is 0 outright."""
PLAN_BOUND = 4.0
"""The plan path moves a raw score by at most this much (``4 tanh(effect / 4)``): enough to take a closed
day's forecast to about 0 or to lift a promotion's several-fold, never enough to blow a forecast up when a
plan meets a history unlike any it learned from (a store reopening after months, whose scale is tiny)."""


RATE_FLOOR = 0.02
"""The least recent rate (scaled units) the mean head starts from: about a sale in 50 buckets."""


def _per_step(path: nn.Sequential, plans: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """``path`` (Linear, ReLU, Linear) applied to each step's ``cat([plans[:, h], hidden])``, computed as
    ``W_plan @ plans[:, h] + (W_hidden @ hidden + b)``: the same function with the series' part taken once per
    sample instead of once per step (the step costs about a third of what it did at H = 14). A sample with no
    plan at all (every plan input 0, as for most series of most closes) has the same effect at every step:
    it is computed once and broadcast (the forecast of 100k series without plans: 1.45 -> 0.75 s of CPU)."""
    first, act, last = path[0], path[1], path[2]
    assert isinstance(first, nn.Linear)
    n_plan = plans.shape[-1]
    series = F.linear(hidden, first.weight[:, n_plan:], first.bias)  # [N, P]
    planned = plans.flatten(1).ne(0).any(dim=1)
    if bool(planned.all()):
        return last(act(F.linear(plans, first.weight[:, :n_plan]) + series[:, None, :]))
    effect = last(act(series))[:, None, :].expand(-1, plans.shape[1], -1)
    if not bool(planned.any()):
        return effect
    rows = planned.nonzero().squeeze(1)
    effect = effect.clone()
    effect[rows] = last(act(F.linear(plans[rows], first.weight[:, :n_plan]) + series[rows, None, :]))
    return effect


class QuantileNet(nn.Module):
    """MLP with a linear skip path; two hashed rows per sku and per store are summed into embeddings.

    ``mean_hidden`` is the width of the mean head's hidden layer (0: a linear mean head).

    ``plan_channels > 0``: the last ``horizon * plan_channels`` columns of ``x`` are the plans of the target
    steps (:mod:`tidecast.models.plan_features`). They bypass the body; a small network shared by all steps
    reads each step's plan with the series' representation and adds its effect to that step's raw scores (and,
    on the detached representation, to its mean), so a closure or a promotion moves its own step only.
    It adds a bounded effect (:data:`PLAN_BOUND`) and multiplies the step by a gate in (0, 1)
    (:data:`GATE_OFFSET`); at the start it changes (almost) nothing. A step whose plan says closed
    (:func:`~tidecast.models.plan_features.closed_steps`) is 0, quantiles and mean: the plan decides it.
    """

    def __init__(
        self,
        n_inputs: int,
        horizon: int,
        quantiles: Sequence[float],
        sku_buckets: int = 1 << 14,
        sku_dim: int = 16,
        store_buckets: int = 1 << 10,
        store_dim: int = 8,
        hidden: int = 64,
        depth: int = 2,
        mean_hidden: int = 64,
        plan_channels: int = 0,
        plan_hidden: int = 32,
        lead_quantiles: Sequence[float] = (),
    ) -> None:
        super().__init__()
        self.horizon, self.n_quantiles = horizon, len(quantiles)
        self.n_lead = len(lead_quantiles)
        self.plan_channels = plan_channels
        n_inputs -= horizon * plan_channels  # the plan columns feed the plan path only
        self.sku = nn.Embedding(sku_buckets, sku_dim)
        self.store = nn.Embedding(store_buckets, store_dim)
        nn.init.normal_(self.sku.weight, std=0.01)
        nn.init.normal_(self.store.weight, std=0.01)
        layers: list[nn.Module] = []
        width = n_inputs + sku_dim + store_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, horizon * self.n_quantiles)
        self.skip = nn.Linear(n_inputs, horizon * self.n_quantiles, bias=False)
        self.mean_body: nn.Module = (
            nn.Sequential(nn.Linear(width, mean_hidden), nn.ReLU()) if mean_hidden > 0 else nn.Identity()
        )
        self.mean_head = nn.Linear(mean_hidden if mean_hidden > 0 else width, horizon)
        self.mean_skip = nn.Linear(n_inputs, horizon, bias=False)
        self.plan_path: nn.Sequential | None = None
        self.plan_mean: nn.Sequential | None = None
        if plan_channels:
            plan_layers = [nn.Linear(plan_channels + width, plan_hidden),
                           nn.Linear(plan_hidden, self.n_quantiles + 1),
                           nn.Linear(plan_channels + width, plan_hidden), nn.Linear(plan_hidden, 2)]
            with torch.no_grad():
                for out in plan_layers[1::2]:
                    out.weight.zero_()
                    out.bias.zero_()
                    out.bias[-1] = -GATE_OFFSET  # the gate starts open: exp(-softplus(-6)) = 0.9975
            self.plan_path = nn.Sequential(plan_layers[0], nn.ReLU(), plan_layers[1])
            self.plan_mean = nn.Sequential(plan_layers[2], nn.ReLU(), plan_layers[3])
        # lead-time demand: quantiles of the demand summed over steps 1..L, from non-negative increments; made
        # last and fed a detached representation, so that it changes nothing of the per-step forecasts
        self.lead_head = nn.Linear(width, horizon * self.n_lead) if self.n_lead else None
        self.lead_skip = nn.Linear(n_inputs, horizon * self.n_lead, bias=False) if self.n_lead else None
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.skip.weight.zero_()
            self.mean_head.weight.mul_(0.1)
            self.mean_head.bias.fill_(_inverse_softplus(1.0))  # an untrained mean: the scale, or the rate given
            self.mean_skip.weight.zero_()
            prior = initial_quantiles(quantiles)
            steps = [prior[0]] + [b - a for a, b in itertools.pairwise(prior)]
            bias = torch.tensor([_inverse_softplus(s) for s in steps], dtype=torch.float32)
            self.head.bias.copy_(bias.repeat(horizon))
            if self.lead_head is not None and self.lead_skip is not None:  # starts as the sums of the step priors
                prior = initial_quantiles(lead_quantiles)
                steps = [prior[0]] + [b - a for a, b in itertools.pairwise(prior)]
                self.lead_head.weight.mul_(0.1)
                self.lead_head.bias.copy_(torch.tensor([_inverse_softplus(s) for s in steps]).repeat(horizon))
                self.lead_skip.weight.zero_()

    def forward(
        self, x: torch.Tensor, sku_ids: torch.Tensor, store_ids: torch.Tensor, rate: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [N, D], ids [N, 2] -> scaled quantiles [N, H, Q] (non-negative, monotone in Q) and scaled
        means [N, H] (non-negative). ``rate`` [N]: each series' recent mean in scaled units; the mean head then
        learns a correction to it (``softplus(raw + softplus^-1(rate))``) instead of to the scale."""
        quantiles, mean, _ = self.forward_all(x, sku_ids, store_ids, rate)
        return quantiles, mean

    def embed(self, sku_ids: torch.Tensor, store_ids: torch.Tensor) -> torch.Tensor:
        """``[N, sku_dim + store_dim]``: the summed hashed sku and store embeddings the body reads."""
        return torch.cat([self.sku(sku_ids).sum(dim=1), self.store(store_ids).sum(dim=1)], dim=1)

    def forward_all(
        self, x: torch.Tensor, sku_ids: torch.Tensor, store_ids: torch.Tensor, rate: torch.Tensor | None = None,
        embedded: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`forward`, and with ``lead_quantiles`` the scaled quantiles [N, H, QL] of the demand summed
        over steps ``1 .. L`` for each ``L`` (non-negative, monotone in QL and non-decreasing in L: cumulative
        sums of non-negative increments that are monotone in QL); None without. A plan moves each increment by
        the mean move of its step's quantiles, and a closed step adds nothing. ``embedded``: :meth:`embed`'s
        output given directly (the ids are then not read; explanations move it along a path)."""
        plans = None
        if self.plan_channels:
            cut = x.shape[1] - self.horizon * self.plan_channels
            x, plans = x[:, :cut], x[:, cut:].reshape(-1, self.horizon, self.plan_channels)
        z = torch.cat([x, self.embed(sku_ids, store_ids) if embedded is None else embedded], dim=1)
        hidden = self.body(z)
        raw = (self.head(hidden) + self.skip(x)).view(-1, self.horizon, self.n_quantiles)
        mean_raw = self.mean_head(self.mean_body(hidden.detach())) + self.mean_skip(x)
        if rate is not None:
            r = rate.clamp(RATE_FLOOR, 1.0)[:, None]
            mean_raw = mean_raw + (r + torch.log(-torch.expm1(-r))) - _inverse_softplus(1.0)
        lead_raw = None
        if self.lead_head is not None and self.lead_skip is not None:
            lead_raw = (self.lead_head(hidden.detach()) + self.lead_skip(x)).view(-1, self.horizon, self.n_lead)
        if plans is not None and self.plan_path is not None and self.plan_mean is not None:
            bound = PLAN_BOUND
            effect = _per_step(self.plan_path, plans, hidden)
            shift = bound * torch.tanh(effect[..., :-1] / bound)
            raw = raw + shift
            gate = torch.exp(-F.softplus(effect[..., -1:]))
            effect = _per_step(self.plan_mean, plans, hidden.detach())
            mean_raw = mean_raw + bound * torch.tanh(effect[..., 0] / bound)
            is_open = (~closed_steps(plans)).to(raw.dtype)
            mean_gate = torch.exp(-F.softplus(effect[..., 1])) * is_open
            step_gate = gate * is_open[..., None]
            lead = None if lead_raw is None else torch.cumsum(
                monotone_quantiles(lead_raw + shift.detach().mean(dim=-1, keepdim=True)) * step_gate.detach(), dim=1)
            return monotone_quantiles(raw) * step_gate, F.softplus(mean_raw) * mean_gate, lead
        lead = None if lead_raw is None else torch.cumsum(monotone_quantiles(lead_raw), dim=1)
        return monotone_quantiles(raw), F.softplus(mean_raw), lead

    def lead_parameters(self) -> list[nn.Parameter]:
        """The lead-time head's parameters (learned from its own loss only: its input is detached)."""
        return [] if self.lead_head is None or self.lead_skip is None else [*self.lead_head.parameters(),
                                                                            *self.lead_skip.parameters()]

    def mean_parameters(self) -> list[nn.Parameter]:
        """The mean head's parameters (the rest of the network learns the quantiles only)."""
        plan = [] if self.plan_mean is None else [*self.plan_mean.parameters()]
        return [*self.mean_body.parameters(), *self.mean_head.parameters(), *self.mean_skip.parameters(), *plan]
