"""The prequential online learner: forecast at each closed bucket, then learn from the labels that matured.

``learn(history, ..., t)`` is called once per closed bucket ``t``. It builds *fresh* samples at origins
``t-1 .. t-H`` (a random subset of (series, origin) pairs when there are many), each carrying only its
matured labels (step ``h`` of origin ``o`` only if ``o + h <= t``: the history ends at ``t``, so nothing
later can be read), and offers the fully matured samples of origin ``t-H`` to a reservoir. The quantiles
learn from the (count-aware) pinball loss, the mean head from the Poisson loss; each part of the network is
clipped on its own gradient, so the mean never changes how the quantiles learn. Each optimizer
step mixes ``recent_fraction`` fresh samples with reservoir samples from the whole past. The loss and the
bias of the labels that matured at ``t``, measured before learning from them (prequentially), drive the
rate controller (:mod:`tidecast.models.lr_control`), whose multiplier scales the AdamW learning rate.

Drift control (``adaptive_lr=True``): when the controller opens a drift episode at bucket ``d``, samples
whose origin is before ``d + quarantine`` are not learned from (nor stored for replay) until they have left
the fresh window. Such samples straddle the change: their inputs do not show it yet, so nothing in them can
predict their labels, and learning from them only teaches the model a spurious correction. After a level
shift the per-series scaling absorbs the new level within the scale window, and this quarantine, not a
higher rate, is what measured as the faster recovery (``bench/adaptation.py``). The multiplier raises the
rate for whatever must be re-learned once samples whose inputs show the change arrive.

Calling ``learn`` again for a bucket already learned is a no-op (``skipped``), so a restart that replays a
bucket does not learn it twice. ``model_version`` counts the learn calls (skipped ones excepted).

>>> import numpy as np
>>> cfg = LearnerConfig(horizon=3, lags=8, aux_lags=2, scale_window=8, hidden=16, batch_size=32,
...                     replay_capacity=64, sku_buckets=64, store_buckets=8)
>>> learner = OnlineLearner(cfg)
>>> hist = np.random.default_rng(0).poisson(5.0, (4, 12, 7)).astype(np.float32)
>>> seen, stores, skus = np.zeros(4, np.int64), ["s"] * 4, ["a", "b", "c", "d"]
>>> fc = learner.forecast(hist, seen, stores, skus, t=11, bucket_seconds=86_400)
>>> fc.quantiles.shape, fc.mean.shape
((4, 3, 3), (4, 3))
>>> info = learner.learn(hist, seen, stores, skus, t=11, bucket_seconds=86_400)
>>> info["model_version"], info["lr_multiplier"]
(1, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from .calibration import QuantileCalibrator, publish, series_level
from .explain import Explanation, explain
from .features import HashIds, SampleBatch, build_batch
from .forecast_memory import ForecastMemory, SeriesIndex, counted, meet_published
from .lead_time import LeadTimeQuantiles, young_peak
from .learner_config import STATE_FORMAT, LearnerConfig, check_format
from .loss import lead_time_loss, pinball_loss, poisson_loss
from .lr_control import RateController
from .network import QuantileNet
from .plan_features import closed_steps, plan_inputs, plan_width
from .prequential import matured_signals
from .quantiles import median_index
from .replay import ReplayBuffer
from .sampling import sample_pairs

__all__ = ["Forecast", "LearnerConfig", "OnlineLearner", "series_level"]

_NO_QUARANTINE = -(2**62)


class Forecast(NamedTuple):
    """One forecast of every series, in units: quantiles [S, H, Q] and means [S, H]."""

    quantiles: np.ndarray
    mean: np.ndarray


class OnlineLearner:
    """One global quantile model for all series, learned online. See the module docstring."""

    def __init__(self, config: LearnerConfig | None = None) -> None:
        self.config = cfg = config or LearnerConfig()
        self.spec = cfg.features
        self._sku_ids, self._store_ids = HashIds(cfg.sku_buckets, "sku"), HashIds(cfg.store_buckets, "store")
        self.n_inputs = self.spec.n_inputs + (plan_width(cfg.horizon) if cfg.plans else 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = QuantileNet(
                self.n_inputs, cfg.horizon, cfg.quantiles, cfg.sku_buckets, cfg.sku_dim,
                cfg.store_buckets, cfg.store_dim, cfg.hidden, cfg.depth, cfg.mean_hidden,
                plan_channels=plan_width(1) if cfg.plans else 0, lead_quantiles=cfg.lead_quantiles,
            )
        mean_ids = {id(p) for p in self.model.mean_parameters()}
        lead_ids = {id(p) for p in self.model.lead_parameters()}
        self._param_groups = tuple(group for group in (  # clipped separately: quantile path, mean head, lead head
            [p for p in self.model.parameters() if id(p) not in mean_ids | lead_ids],
            self.model.mean_parameters(),
            self.model.lead_parameters(),
        ) if group)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=True
        )
        self.controller = RateController(cfg.rate)
        self.replay = ReplayBuffer(cfg.replay_capacity, self.n_inputs, cfg.horizon, seed=cfg.seed + 1)
        self._rng = np.random.default_rng(cfg.seed)
        self._taus = torch.tensor(cfg.quantiles, dtype=torch.float32)
        self.model_version = 0
        self.steps = 0
        self.last_t: int | None = None
        self.quarantine_until = _NO_QUARANTINE
        self.calibrator = QuantileCalibrator(cfg.horizon, cfg.quantiles, median_index(cfg.quantiles),
                                             gamma=cfg.calibration_rate)
        self.memory = ForecastMemory(cfg.horizon, cfg.calibration_sample)
        self.lead = LeadTimeQuantiles(cfg.horizon, cfg.lead_quantiles, cfg.features.clip, cfg.calibration_rate,
                                      cfg.calibration_sample, cfg.calibrate) if cfg.lead_time else None
        self._lead_taus = torch.tensor(cfg.lead_quantiles, dtype=torch.float32)

    # ------------------------------------------------------------------ inputs
    def _check(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str],
               skus: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        hist = np.asarray(history, dtype=np.float32)
        if hist.ndim != 3 or hist.shape[2] < 7:
            raise ValueError(f"history must be [S, L, 7]; got {hist.shape}")
        if not np.isfinite(hist).all():  # missing is 0 by contract; never let a NaN reach the weights
            hist = np.nan_to_num(hist, nan=0.0, posinf=0.0, neginf=0.0)
        seen = np.asarray(first_seen, dtype=np.int64).reshape(-1)
        if not (len(seen) == len(stores) == len(skus) == hist.shape[0]):
            raise ValueError("history, first_seen, stores and skus must have one entry per series")
        return hist, seen

    def _ids(self, stores: Sequence[str], skus: Sequence[str],
             rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if rows is not None:
            stores, skus = [stores[i] for i in rows], [skus[i] for i in rows]
        return self._sku_ids(skus), self._store_ids(stores)

    @property
    def lr_multiplier(self) -> float:
        """The rate controller's current multiplier (1.0 = base rate)."""
        return self.controller.multiplier if self.config.adaptive_lr else 1.0

    @property
    def horizon(self) -> int:
        """Buckets forecast ahead."""
        return self.config.horizon

    @property
    def plan_inputs(self) -> bool:
        """Whether :meth:`forecast` and :meth:`learn` take ``plans`` (see :mod:`tidecast.models.plan_features`)."""
        return self.config.plans

    def _plans(self, b: SampleBatch, hist: np.ndarray, plans: np.ndarray | None, t: int,
               rows: np.ndarray | None = None) -> np.ndarray:
        """The batch's inputs (history ``hist`` ends at ``t``), with the plans of its targets appended when this
        learner takes plans (``plans`` None: nothing known)."""
        if not self.config.plans:
            return b.x
        ends = (hist.shape[1] - 1) - (int(t) - b.origin)  # array position of each origin, as in build_batch
        extra = plan_inputs(plans, hist, rows, ends, self.config.horizon, self.config.lags)
        return np.concatenate([b.x, extra], axis=1)

    def _closed(self, x: Any) -> Any:
        """Bool ``[N, H]``: the target steps a plan in ``x`` says are closed (the network forecasts 0 there);
        None without plans."""
        if not self.config.plans:
            return None
        return closed_steps(x[:, x.shape[1] - plan_width(self.config.horizon):].reshape(
            -1, self.config.horizon, plan_width(1)))

    def _samples(self, hist: np.ndarray, seen: np.ndarray, t: int, bucket_seconds: int, rows: np.ndarray,
                 back: np.ndarray, plans: np.ndarray | None) -> SampleBatch:
        """Learning samples (``rows``, ``back`` buckets before ``t``) with the plans of their targets; a step
        planned closed is decided by the plan (0), so its label is masked out: not learned, not calibrated."""
        b = build_batch(hist, seen, t, bucket_seconds, self.spec, rows=rows, lags_back=back)
        b.x = self._plans(b, hist, plans, t, rows)
        closed = self._closed(b.x)
        if closed is not None:
            b.mask = b.mask & ~closed
        return b

    @property
    def last_lead(self) -> np.ndarray | None:
        """The last forecast's lead-time quantiles in units, ``[S, H, QL]`` at the levels
        ``config.lead_quantiles`` (the demand summed over steps ``1 .. L``); None without ``lead_time``."""
        return None if self.lead is None else self.lead.last

    @property
    def min_history(self) -> int:
        """History length that uses every input (shorter histories are left-padded as pre-launch)."""
        return self.config.lags + self.config.horizon

    def inputs(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
               t: int, bucket_seconds: int, plans: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """What the network reads at close ``t`` for every series: inputs ``x`` [S, D] (the plans' columns
        last), sku and store ids, and scales [S] (units per scaled unit), as :meth:`forecast` builds them."""
        hist, seen = self._check(history, first_seen, stores, skus)
        b = build_batch(hist, seen, t, bucket_seconds, self.spec, with_targets=False)
        return (self._plans(b, hist, plans, t), *self._ids(stores, skus), b.scale)

    def explain(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
                t: int, bucket_seconds: int, plans: np.ndarray | None = None,
                rows: Sequence[int] | None = None, steps: int = 32) -> list[Explanation]:
        """The median of the series ``rows`` split by input group (:func:`tidecast.models.explain.explain`)."""
        return explain(self, history, first_seen, stores, skus, t, bucket_seconds, plans, rows, steps)

    # ---------------------------------------------------------------- forecast
    def forecast(
        self,
        history: np.ndarray,
        first_seen: np.ndarray,
        stores: Sequence[str],
        skus: Sequence[str],
        t: int,
        bucket_seconds: int,
        plans: np.ndarray | None = None,
        remember: bool = True,
    ) -> Forecast:
        """Quantiles ``[S, H, Q]`` (non-negative, monotone in Q) and means ``[S, H]`` (units) for buckets
        ``t+1 .. t+H``; ``plans`` [S, L + H, 8] when :attr:`plan_inputs` (see the forecaster). ``remember``:
        keep what is published for a sample of series, to calibrate on when their labels mature (False for
        a forecast that is not published: a what-if scenario)."""
        hist, seen = self._check(history, first_seen, stores, skus)
        sku_ids, store_ids = self._ids(stores, skus)
        n, chunk = hist.shape[0], max(1, self.config.forecast_chunk)
        out = np.empty((n, self.config.horizon, len(self.config.quantiles)), np.float32)
        mean = np.empty((n, self.config.horizon), np.float32)
        if self.lead is not None:
            self.lead.begin(n)
        band = self.calibrator.bands(series_level(hist, seen, t))
        keep = self.memory.sample(n) if remember and self.config.calibrate else None
        memo: list[tuple[np.ndarray, ...]] = []
        self.model.eval()
        with torch.inference_mode():
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                b = build_batch(hist[lo:hi], seen[lo:hi], t, bucket_seconds, self.spec, with_targets=False)
                x = self._plans(b, hist[lo:hi], None if plans is None else plans[lo:hi], t)
                pred, m, lead = self.model.forward_all(torch.from_numpy(x), torch.from_numpy(sku_ids[lo:hi]),
                                                       torch.from_numpy(store_ids[lo:hi]),
                                                       self._rate(torch.from_numpy(b.scale)))
                if lead is not None and self.lead is not None:
                    self.lead.put(lo, lead.numpy(), band[lo:hi], b.scale,
                                  None if keep is None else keep[(keep >= lo) & (keep < hi)] - lo,
                                  peak=young_peak(hist[lo:hi], seen[lo:hi], t, self.config.lags))
                q = pred.numpy()
                if self.config.calibrate:
                    q, held = self.calibrator.calibrate(q, band[lo:hi])
                    closed = self._closed(x)
                    if closed is not None:  # the offsets never lift a closed step off 0
                        q = np.where(closed[..., None], np.float32(0.0), q)
                    if keep is not None:
                        sel = keep[(keep >= lo) & (keep < hi)] - lo
                        memo.append((held[sel], b.scale[sel], counted(x[sel, : self.spec.lags], closed, sel)))
                bound = np.float32(self.spec.clip)  # the range of the labels it learned from (see _loss)
                out[lo:hi] = np.minimum(q, bound) * b.scale[:, None, None]
                mean[lo:hi] = np.minimum(m.numpy(), bound) * b.scale[:, None]
        # the median rounded to a whole count, the other levels not (docs/architecture.md, "Published quantiles")
        fc = Forecast(publish(out, median_index(self.config.quantiles)), mean)
        if keep is not None and memo:
            held, scale, counts = (np.concatenate(part) for part in zip(*memo, strict=True))
            self.memory.remember(t, [(stores[i], skus[i]) for i in keep], fc.quantiles[keep], held, band[keep], scale,
                                 counts)
            if self.lead is not None:
                self.lead.remember(t, [(stores[i], skus[i]) for i in keep], keep, band[keep], scale)
        return fc

    def remember(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
                 t: int, bucket_seconds: int, plans: np.ndarray | None = None) -> None:
        """Keep what :meth:`forecast` would publish at ``t`` for the calibration's sample of series, forecasting
        only those: for a close that is learned from but not published (a live catch-up)."""
        if not self.config.calibrate:
            return
        keep = self.memory.sample(len(stores))
        self.forecast(history[keep], first_seen[keep], [stores[i] for i in keep], [skus[i] for i in keep], t,
                      bucket_seconds, None if plans is None else plans[keep])

    # ------------------------------------------------------------------- learn
    def _tensors(self, b: SampleBatch, sku: np.ndarray, store: np.ndarray) -> dict[str, torch.Tensor]:
        arrays = {"x": b.x, "sku": sku, "store": store, "y": b.y, "mask": b.mask, "scale": b.scale}
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}

    def _loss(self, batch: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        scale = batch["scale"]
        pred, mean, lead = self.model.forward_all(batch["x"], batch["sku"], batch["store"], self._rate(scale))
        half = 0.5 / scale if self.config.count_aware else None
        mask = batch["mask"] if mask is None else mask
        y = self._scaled_labels(batch["y"], scale)
        # the two parts share no trainable parameter (the mean head reads a detached representation)
        loss = pinball_loss(pred, y, mask, self._taus, half) + poisson_loss(mean, y, mask)
        if lead is None:
            return loss
        closed = self._closed(batch["x"])  # a step planned closed is a known 0 in a sum, not a gap
        return loss + lead_time_loss(lead, y, mask if closed is None else mask | closed, self._lead_taus)

    def _rate(self, scale: torch.Tensor) -> torch.Tensor | None:
        """Each sample's recent mean units in scaled units (``1 - scale_eps / scale``), the mean head's
        starting point when ``mean_prior``; None otherwise."""
        return 1.0 - self.spec.scale_eps / scale if self.config.mean_prior else None

    def _scaled_labels(self, y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Labels ``[N, H]`` in scaled units, censored at the input bound ``spec.clip`` (50 scales): beyond it a
        label cannot be told from the inputs (a store reopening after a month closed: a scale of 1 unit), and
        the Poisson loss's gradient grows with it; quantiles below the bound are unchanged (docs/architecture.md,
        "Label bound")."""
        return (y / scale[:, None]).clamp(max=self.spec.clip)

    def learn(
        self,
        history: np.ndarray,
        first_seen: np.ndarray,
        stores: Sequence[str],
        skus: Sequence[str],
        t: int,
        bucket_seconds: int,
        plans: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Learn from the labels matured by the close of bucket ``t`` (history ends at ``t``); diagnostics.
        ``plans`` [S, L + H, 8] when :attr:`plan_inputs`: each sample learns with the plans of its targets."""
        if self.last_t is not None and t <= self.last_t:
            return self._diagnostics(t, skipped=True)
        cfg = self.config
        hist, seen = self._check(history, first_seen, stores, skus)
        n_recent = max(1, round(cfg.batch_size * cfg.recent_fraction))
        last_back = min(cfg.horizon, hist.shape[1] - 1)  # origins must lie inside the history
        steps = cfg.steps_for(bucket_seconds)

        rows, back = sample_pairs(self._rng, seen, t, 1, last_back, n_recent * max(1, steps))
        fresh_b = self._samples(hist, seen, t, bucket_seconds, rows, back, plans)
        fresh = self._tensors(fresh_b, *self._ids(stores, skus, rows))
        with torch.no_grad():  # scored before learning from them, as the forecasts that met them were
            pred = self.model(fresh["x"], fresh["sku"], fresh["store"])[0]
        signal, bias, drift = self._control(fresh, back, pred, t)
        scores = None
        if cfg.calibrate:
            series = SeriesIndex(stores, skus)
            scores = meet_published(self.memory, self.calibrator, hist, seen, stores, skus, t, cfg.quantiles, series)
            if self.lead is not None:
                self.lead.meet(t, hist, seen, stores, skus, series)
        rows, back, fresh = self._unquarantined(rows, back, fresh, t)
        lr = self._apply_lr()
        losses, n_replay = self._train(fresh, len(rows), steps, n_recent)
        self._offer_replay(hist, seen, stores, skus, t, bucket_seconds, last_back, plans)

        self.last_t = int(t)
        self.model_version += 1
        return self._diagnostics(t, loss=signal, train_loss=float(np.mean(losses)) if losses else math.nan, lr=lr,
                                 drift=drift, bias=bias, n_fresh=len(rows), n_replay=n_replay, published=scores)

    def _control(self, fresh: dict[str, torch.Tensor], back: np.ndarray, pred: torch.Tensor,
                 t: int) -> tuple[float, float, bool]:
        """Score the labels matured at ``t`` (prequentially), update the rate controller, and open a quarantine
        when it starts a drift episode. Returns (loss, bias, drift)."""
        cfg = self.config
        half = 0.5 / fresh["scale"] if cfg.count_aware else None  # scored as learned (models/prequential.py)
        signal, bias, bias_se = matured_signals(pred, self._scaled_labels(fresh["y"], fresh["scale"]), back,
                                                self._taus, half)
        learning = (t - 1) >= self.quarantine_until  # else every fresh origin is quarantined
        drift = self.controller.update(signal, bias, bias_se, learning) if cfg.adaptive_lr else False
        if drift and self.controller.new_episode and cfg.quarantine > 0:
            self.quarantine_until = max(self.quarantine_until, int(t) + cfg.quarantine)
        return signal, bias, drift

    def _unquarantined(self, rows: np.ndarray, back: np.ndarray, fresh: dict[str, torch.Tensor],
                       t: int) -> tuple[np.ndarray, np.ndarray, dict[str, torch.Tensor]]:
        """The fresh samples without those straddling a detected change (origin before ``quarantine_until``)."""
        keep = np.flatnonzero((t - back) >= self.quarantine_until)
        if len(keep) < len(rows):
            rows, back = rows[keep], back[keep]
            fresh = {k: v[torch.from_numpy(keep)] for k, v in fresh.items()}
        return rows, back, fresh

    def _apply_lr(self) -> float:
        """Set the optimizer's rate to the base rate times the controller's multiplier; returns it."""
        lr = self.config.lr * self.lr_multiplier
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _train(self, fresh: dict[str, torch.Tensor], n_fresh: int, steps: int,
               n_recent: int) -> tuple[list[float], int]:
        """``steps`` optimizer steps (none without fresh samples), each on ``n_recent`` fresh samples (cycling)
        topped up from the reservoir. Returns the step losses and the replayed samples used."""
        cfg = self.config
        losses, n_replay = [], 0
        for step in range(steps if n_fresh else 0):
            sel = np.arange(step * n_recent, (step + 1) * n_recent) % n_fresh
            batch = {k: v[torch.from_numpy(sel)] for k, v in fresh.items()}
            old = self.replay.sample(cfg.batch_size - len(sel))
            if len(old["x"]):
                n_replay += len(old["x"])
                batch = {k: torch.cat([batch[k], torch.from_numpy(old[k])]) for k in batch}
            losses.append(self._step(batch))
        return losses, n_replay

    def _step(self, batch: dict[str, torch.Tensor]) -> float:
        """One optimizer step, each parameter group clipped on its own gradient; returns the loss."""
        loss = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            for params in self._param_groups:
                torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.optimizer.step()
        self.steps += 1
        return float(loss.detach())

    def _offer_replay(self, hist: np.ndarray, seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
                      t: int, bucket_seconds: int, last_back: int, plans: np.ndarray | None = None) -> None:
        """Offer fully matured samples of origin ``t - H`` to the reservoir, unless that origin is quarantined."""
        cfg = self.config
        add_rows, add_back = sample_pairs(self._rng, seen, t, cfg.horizon, last_back, cfg.replay_add)
        if t - cfg.horizon < self.quarantine_until:
            add_rows, add_back = add_rows[:0], add_back[:0]
        if len(add_rows):
            ab = self._samples(hist, seen, t, bucket_seconds, add_rows, add_back, plans)
            self.replay.add(ab.x, *self._ids(stores, skus, add_rows), ab.y, ab.mask, ab.scale)

    def _diagnostics(self, t: int, *, skipped: bool = False, loss: float = math.nan, train_loss: float = math.nan,
                     lr: float | None = None, drift: bool = False, bias: float = math.nan, n_fresh: int = 0,
                     n_replay: int = 0, published: dict[str, float] | None = None) -> dict[str, Any]:
        """What :meth:`learn` reports, for a learned bucket and (with the defaults) for a skipped one;
        ``published``: sums scoring what was published (:func:`~tidecast.models.forecast_memory.published_scores`)."""
        return {
            "t": int(t), "skipped": skipped, "model_version": self.model_version, "loss": loss,
            "train_loss": train_loss, "lr": self.config.lr * self.lr_multiplier if lr is None else lr,
            "lr_multiplier": self.lr_multiplier, "drift": drift, "bias": bias, "n_fresh": n_fresh,
            "n_replay": n_replay, "replay_size": len(self.replay), "published": published or {},
        }

    # ------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer, rate controller, replay, RNG and counters: tensors and plain values only."""
        return {
            "format": STATE_FORMAT,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "controller": self.controller.state_dict(),
            "replay": self.replay.state_dict(),
            "rng": self._rng.bit_generator.state,
            "calibration": self.calibrator.state_dict(),
            "forecast_memory": self.memory.state_dict(),
            "lead_time": None if self.lead is None else self.lead.state_dict(),
            "counters": {"model_version": self.model_version, "steps": self.steps,
                         "quarantine_until": self.quarantine_until,
                         "last_t": -1 if self.last_t is None else self.last_t,
                         "has_last_t": self.last_t is not None},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the saved config must equal this learner's config."""
        check_format(state)
        saved = LearnerConfig.from_dict(state["config"])
        if saved != self.config:
            diff = sorted(k for k, v in saved.to_dict().items() if self.config.to_dict()[k] != v)
            raise ValueError(f"checkpoint config differs from this learner's in {diff}; "
                             "use OnlineLearner.from_state_dict to take the saved config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.controller.load_state_dict(state["controller"])
        self.replay.load_state_dict(state["replay"])
        self._rng.bit_generator.state = state["rng"]
        self.calibrator.load_state_dict(state["calibration"])
        self.memory.load_state_dict(state["forecast_memory"])
        if self.lead is not None:
            self.lead.load_state_dict(state["lead_time"])
        counters = state["counters"]
        self.model_version, self.steps = int(counters["model_version"]), int(counters["steps"])
        self.last_t = int(counters["last_t"]) if counters["has_last_t"] else None
        self.quarantine_until = int(counters["quarantine_until"])

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> OnlineLearner:
        """A learner built with the saved config, then restored."""
        check_format(state)
        learner = cls(LearnerConfig.from_dict(state["config"]))
        learner.load_state_dict(state)
        return learner
