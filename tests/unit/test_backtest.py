"""The backtest engine: hand-checked scores, the JSON shape, determinism, panel zeros, the no-future rule,
unsorted input, worker processes and the report files."""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from tidecast.cli import main
from tidecast.models.learner import LearnerConfig
from tidecast.producers.files import parse_columns, read_events
from tidecast.stream.backtest.charts import one_step_band, quantile_chart
from tidecast.stream.backtest.comparison import COMPARED
from tidecast.stream.backtest.config import TIDECAST, BacktestConfig
from tidecast.stream.backtest.engine import Backtest, run_rows
from tidecast.stream.backtest.file_chunks import chunks_in_order, chunks_sorted
from tidecast.stream.backtest.rejects import TooManyRejected
from tidecast.stream.backtest.report import REPORT_METRICS, summary, write_report
from tidecast.stream.backtest.result import BacktestResult
from tidecast.stream.rejects import RejectTally, reason_kind
from tidecast.stream.window_store import MemoryWindowStore
from tidecast.stream.windows import PROMO_ORDERS

torch.set_num_threads(1)

H = 2
SMALL = LearnerConfig(horizon=H, lags=4, aux_lags=2, scale_window=4, hidden=8, batch_size=16, replay_capacity=64,
                      sku_buckets=64, store_buckets=8)


def config(**changes: object) -> BacktestConfig:
    base = BacktestConfig(horizon=H, warmup=1, baselines=("naive",), learner=SMALL)
    return replace(base, **changes)


def sale(day: int, sku: str, qty: float, price: float | None = None, n: int = 0, hour: int = 12) -> dict:
    doc = {"event_id": f"{sku}-{day}-{n}", "type": "sale", "ts": f"2024-03-{day:02d}T{hour:02d}:00:00+00:00",
           "sku": sku, "qty": qty}
    if price is not None:
        doc["price"] = price
    return doc


def run(rows: list[dict], cfg: BacktestConfig) -> BacktestResult:
    return run_rows(lambda sorting: rows, cfg, MemoryWindowStore)


def ramp_and_flat(days: int = 6) -> list[dict]:
    """Series A sells 1, 2, 3, ... (day k: k units), series B 2 every day."""
    rows = []
    for k in range(1, days + 1):
        rows += [sale(k, "A", k, 1.0), sale(k, "B", 2, 3.0)]
    return rows


def test_naive_scores_match_a_hand_computation() -> None:
    # Six daily buckets d0..d5, H = 2, warm-up 1: origins d2..d5 are issued; d2, d3 and d4 are complete (d5's
    # second step, d6, never closes). Naive forecasts y[o-1] for o and o+1. Series A (1..6) has errors -1 and
    # -2 at every origin: MAE 1.5, MSE 2.5 per origin; its M5 scales are 1 (every difference is 1). Series B
    # is flat: no error, scale 0, so it is left out of MASE/RMSSE/WRMSSE. With fewer than 30 past errors the
    # baseline's quantiles all equal its point forecast, so A is never covered and B always is. Every origin
    # has the same figures, so the means over origins are the per-origin ones.
    result = run(ramp_and_flat(), config())
    naive = result.models["naive"]
    assert naive["scored"] == 12 and result.models[TIDECAST]["scored"] == 12
    assert result.series == 2 and result.origins == naive["origins"] == 3
    assert [o - result.first_bucket for o in naive["per_origin"]["origin"]] == [2, 3, 4]
    assert naive["mae"] == pytest.approx(1.5 / 2)
    assert naive["rmse"] == pytest.approx(math.sqrt(2.5) / 2)
    assert naive["mase"] == pytest.approx(1.5)
    assert naive["rmsse"] == pytest.approx(math.sqrt(2.5))
    assert naive["wrmsse"] == pytest.approx(math.sqrt(2.5))  # B has a weight (sales before d2) but no scale
    assert naive["bias"] == pytest.approx(-1.5 / 2)
    assert naive["coverage80"] == pytest.approx(0.5)
    assert (naive["excluded_zero_scale"], naive["excluded_zero_weight"]) == (3, 0)
    steps = naive["per_horizon"]
    assert [s["origins"] for s in steps] == [3, 3]
    assert steps[0]["mae"] == pytest.approx(0.5) and steps[1]["mae"] == pytest.approx(1.0)
    assert result.weight_basis == ["revenue"]


def test_weights_are_the_sales_of_the_window_before_the_origin() -> None:
    # Day k (bucket k-1): A sells k, C sells c(k) = 3 if k is even else 1, both at price 1. Naive at origin o
    # (buckets from the first) forecasts bucket o-1 (day o) for days o+1 and o+2: A's errors -1, -2, scale 1
    # -> RMSSE sqrt(2.5); C's errors +-2 and 0, scale 4 -> RMSSE sqrt(0.5). The weights are the revenue
    # of the window before o: window 1 -> day o alone (o and c(o)); window 28 -> days 1..o.
    def c(k: int) -> int:
        return 3 if k % 2 == 0 else 1

    rows = [sale(k, "A", k, 1.0) for k in range(1, 9)] + [sale(k, "C", c(k), 1.0) for k in range(1, 9)]
    ra, rc = math.sqrt(2.5), math.sqrt(0.5)
    for window in (1, 28):
        result = run(rows, config(weight_window=window))
        naive = result.models["naive"]
        origins = [o - result.first_bucket for o in naive["per_origin"]["origin"]]
        assert origins == [2, 3, 4, 5, 6]
        for o, got in zip(origins, naive["per_origin"]["wrmsse"], strict=True):
            days = range(o, o + 1) if window == 1 else range(1, o + 1)
            wa, wc = sum(days), sum(c(k) for k in days)
            assert got == pytest.approx((wa * ra + wc * rc) / (wa + wc)), (window, o)
        assert naive["rmsse"] == pytest.approx((ra + rc) / 2)  # unweighted: the window does not matter


def test_every_model_is_scored_on_the_same_points() -> None:
    rows = ramp_and_flat(20) + [sale(d, "C", 1 + d % 3) for d in range(8, 21)]  # C appears later
    result = run(rows, config(baselines=("naive", "seasonal_naive", "moving_average", "croston", "tsb"), warmup=3))
    scored = {name: (m["scored"], m["series"]) for name, m in result.models.items()}
    assert len(set(scored.values())) == 1, scored
    assert result.series == 3 and result.counts["ingested"] == len(rows)


def test_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sales.jsonl"
    rows = [sale(d, sku, 1 + (d * len(sku)) % 4, 2.5, n) for d in range(1, 31) for sku in ("A", "BB", "CCC")
            for n in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["backtest", str(path), "--json", "--horizon", "3", "--baselines", "naive,tsb", "--workers", "0",
                 "--warmup", "5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"series", "origins", "bucket_seconds", "horizon", "seconds", "models"} <= set(doc)
    assert (doc["series"], doc["bucket_seconds"], doc["horizon"]) == (3, 86_400, 3)
    assert doc["origins"] == 30 - 1 - 5 - (3 - 1)  # complete origins: all 3 buckets closed
    assert list(doc["models"]) == ["tidecast", "naive", "tsb"]
    for metrics in doc["models"].values():
        assert list(metrics) == list(REPORT_METRICS)  # no seasonal naive: no ratio_to_snaive
        assert all(v is None or isinstance(v, float) for v in metrics.values())
    assert doc["weights"] == {"window": 28, "basis": ["revenue"]}
    assert set(doc["comparison"]) <= set(COMPARED) and "wrmsse" in doc["comparison"]
    for c in doc["comparison"].values():
        assert c["best_baseline"] in ("naive", "tsb") and c["origins"] == doc["origins"] and c["block"] == 3
        assert c["ci95"][0] <= c["mean_diff"] <= c["ci95"][1]
        assert c["mean_diff"] == pytest.approx(c["tidecast"] - c["baseline"])
    assert doc["counts"]["ingested"] == len(rows) and doc["timings"]["learn"] > 0


def test_summary_has_no_nan() -> None:
    result = run(ramp_and_flat(), config())
    json.dumps(summary(result), allow_nan=False)


def test_same_seed_same_forecasts_other_seed_other_forecasts() -> None:
    rows = ramp_and_flat(16)
    a, b = (run(rows, config(keep_forecasts=True, seed=7, learner=replace(SMALL, seed=7))) for _ in range(2))
    c = run(rows, config(keep_forecasts=True, seed=8, learner=replace(SMALL, seed=8)))
    assert a.models == b.models
    for origin, values in a.forecasts[TIDECAST].items():
        np.testing.assert_array_equal(values, b.forecasts[TIDECAST][origin])
    last = max(a.forecasts[TIDECAST])
    assert not np.array_equal(a.forecasts[TIDECAST][last], c.forecasts[TIDECAST][last])


def test_panel_zeros_register_series_and_are_scored(tmp_path: Path) -> None:
    # A daily panel, dates only: Z never sells, Y starts selling on day 5, X sells every other day, and
    # every row of day 3 is a zero (the day must still close in order).
    lines = ["date,item,units,price"]
    for d in range(1, 15):
        date = f"2011-01-{d:02d}"
        lines.append(f"{date},X,{0 if d % 2 or d == 3 else 4},2.0")
        lines.append(f"{date},Y,{0 if d < 5 else d % 3 + 1},1.0")
        lines.append(f"{date},Z,0,5.0")
    path = tmp_path / "panel.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    rows = list(read_events(path, parse_columns("ts=date,sku=item,qty=units,price=price")))
    result = run(rows, config(warmup=0))
    zeros = sum(1 for line in lines[1:] if line.split(",")[2] == "0")
    assert result.counts["panel_zeros"] == zeros
    assert result.counts.get("dlq", 0) == 0 and result.counts.get("invalid", 0) == 0
    assert result.counts["ingested"] == len(lines) - 1 - zeros
    assert sorted(result.series_names) == ["all:X", "all:Y", "all:Z"]
    assert result.last_bucket - result.first_bucket == 13
    naive = result.models["naive"]
    assert naive["series"] == 3  # Z is scored (its zeros), though it has no scale
    # origins d1..d12 are complete (d13's second step never closes): 2 steps of 3 series each
    assert naive["scored"] == result.models[TIDECAST]["scored"] == 3 * 2 * 12
    assert naive["pairs"] == 36 and naive["scaled_pairs"] + naive["excluded_zero_scale"] == 36
    assert naive["excluded_zero_scale"] >= 12  # Z, at every origin


def test_a_forecast_never_uses_its_origin_or_later() -> None:
    base = ramp_and_flat(14)
    changed_from = 9  # change every bucket from day 9 on: forecasts at origins <= day 9 must not move
    other = [dict(r, qty=r["qty"] * 5 + 1) if int(r["ts"][8:10]) >= changed_from else r for r in base]
    cfg = config(keep_forecasts=True, baselines=("naive", "moving_average", "tsb"), warmup=0)
    a, b = run(base, cfg), run(other, cfg)
    first = a.first_bucket
    origin_of_change = first + changed_from - 1
    for name in a.forecasts:
        for origin, values in a.forecasts[name].items():
            if origin <= origin_of_change:
                np.testing.assert_array_equal(values, b.forecasts[name][origin], err_msg=f"{name} at {origin}")
    assert not np.array_equal(a.forecasts[TIDECAST][origin_of_change + 1], b.forecasts[TIDECAST][origin_of_change + 1])
    assert not np.array_equal(a.forecasts["naive"][origin_of_change + 1], b.forecasts["naive"][origin_of_change + 1])


def test_unsorted_input_is_sorted_and_gives_the_same_result() -> None:
    rows = ramp_and_flat(12)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    told = []
    cfg = config(keep_forecasts=True)
    a = run(rows, cfg)
    b = run_rows(lambda sorting: shuffled, cfg, MemoryWindowStore, told.append)
    assert told and b.counts == a.counts and b.models == a.models
    for origin, values in a.forecasts[TIDECAST].items():
        np.testing.assert_array_equal(values, b.forecasts[TIDECAST][origin])


def test_baselines_in_a_worker_process_score_the_same() -> None:
    rows = ramp_and_flat(20)
    cfg = config(baselines=("naive", "croston", "seasonal_naive"), warmup=2)
    here, there = run(rows, cfg), run(rows, replace(cfg, workers=2))
    assert here.models == there.models
    assert list(there.models) == [TIDECAST, "naive", "croston", "seasonal_naive"]


def test_duplicates_and_invalid_rows_are_counted_not_scored() -> None:
    rows = ramp_and_flat(8)
    rows.insert(3, dict(rows[2]))  # a duplicate event id
    rows.insert(5, {"event_id": "bad", "type": "sale", "ts": rows[4]["ts"], "sku": "A", "qty": "many"})
    result = run(rows, config())
    assert result.counts["duplicates"] == 1 and result.counts["invalid"] == 1
    assert result.models["naive"] == run(ramp_and_flat(8), config()).models["naive"]


def weekly_promo_panel(path: Path, weeks: int = 12, items: int = 6) -> tuple[Path, int]:
    """A weekly panel as pandas writes it (units and promo are float columns: 1.0, 0.0); and its promo rows."""
    lines, promos = ["week,item,units,promo"], 0
    for w in range(weeks):
        for i in range(items):
            promo = (w + i) % 3 == 0
            promos += promo
            lines.append(f"2024-{1 + w // 4:02d}-{1 + 7 * (w % 4):02d},I{i},{float(1 + (w * i) % 4)},{float(promo)}")
    path.write_text("\n".join(lines) + "\n")
    return path, promos


def test_a_pandas_promo_panel_is_accepted_and_its_promo_rows_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The finding: promo 0.0/1.0 rejected every row (524,945 of 524,950) and the table scored the 5 left
    path, promos = weekly_promo_panel(tmp_path / "weekly.csv")
    columns = "ts=week,sku=item,qty=units,promo=promo"
    assert main(["backtest", str(path), "--json", "--bucket", "1w", "--horizon", "2", "--warmup", "2",
                 "--baselines", "naive", "--workers", "0", "--columns", columns]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["invalid"] == 0 and doc["counts"]["ingested"] == 72 and doc["series"] == 6
    assert doc["rejects"] == []
    store = MemoryWindowStore()
    cfg = config(bucket_seconds=604_800)
    Backtest(cfg, store).run(chunks_in_order(read_events(path, parse_columns(columns)), cfg.buckets))
    counted = sum(row[PROMO_ORDERS] for b in store.buckets() for row in store.read_bucket(b).values())
    assert counted == promos == 24


def mostly_bad(path: Path, good: int = 20, bad: int = 80) -> Path:
    lines = ["date,item,units"]
    lines += [f"2024-03-{1 + n // 3:02d},A{n % 3},{1 + n % 4}" for n in range(good)]
    lines += [f"{1 + n % 28:02d}/03/2024,B,1" for n in range(bad)]  # day-first dates: not ISO-8601
    path.write_text("\n".join(lines) + "\n")
    return path


def test_backtest_stops_when_most_rows_are_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = mostly_bad(tmp_path / "dates.csv")
    code = main(["backtest", str(path), "--columns", "ts=date,sku=item,qty=units", "--horizon", "2",
                 "--baselines", "naive", "--workers", "0"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "80 of 100 rows rejected (80.0%), more than the 5.0% allowed; top reasons:" in err
    assert "      80  field 'ts' is not ISO-8601 (e.g. field 'ts' is not ISO-8601: '" in err
    assert "--columns" in err and "--tz" in err
    assert main(["backtest", str(path), "--columns", "ts=date,sku=item,qty=units", "--horizon", "2",
                 "--baselines", "naive", "--workers", "0", "--max-rejected", "0.9", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["rejects"] == [{"reason": "field 'ts' is not ISO-8601", "count": 80,
                                           "example": "field 'ts' is not ISO-8601: '01/03/2024'"}]
    assert "80 of 100 rows rejected (80.0%); top reasons:" in err
    with pytest.raises(SystemExit):
        main(["backtest", str(path), "--max-rejected", "5%"])


def test_the_reject_share_stops_a_run_as_soon_as_the_end_would() -> None:
    rows = ramp_and_flat(20)
    bad = [{"event_id": f"x{n}", "type": "sale", "ts": rows[n]["ts"], "sku": "C", "qty": "many"} for n in range(6)]
    rows = rows[:4] + bad + rows[4:]
    cfg = config(max_rejected=0.1)
    with pytest.raises(TooManyRejected) as whole:  # 6 of 46 at the end
        run(rows, cfg)
    assert (whole.value.tally.total, whole.value.read, whole.value.rows) == (6, 46, 46)
    with pytest.raises(TooManyRejected) as early:  # 6 > 10% of (at most) 50 rows: no need to read on
        run_rows(lambda sorting: rows, cfg, MemoryWindowStore, total_rows=50)
    assert early.value.read < 20 and "in the first" in str(early.value)
    assert run(rows, config(max_rejected=0.2)).rejects.total == 6
    assert run(rows, config()).counts["invalid"] == 6  # no limit by default in the engine


def test_reasons_are_grouped_by_kind_not_by_value() -> None:
    tally = RejectTally()
    for n in range(1000):
        tally.add(f"field 'ts' is not ISO-8601: '{n}/03/2024'")
        tally.add(f"not valid JSON: unexpected character: line 1 column {n} (char {n - 1})")
    tally.add("field 'qty' must be a finite number, got a string")
    tally.add("x" * 500)
    assert len(tally.counts) == 4 and tally.total == 2002
    assert [kind for kind, _, _ in tally.top(2)] == ["field 'ts' is not ISO-8601", "not valid JSON"]
    assert reason_kind("field 'price' must not be negative, got -1.5") == "field 'price' must not be negative"
    kind = reason_kind("field 'type' must be 'sale' or 'click', got 'refund'")
    assert kind == "field 'type' must be 'sale' or 'click'"
    assert len(reason_kind("x" * 500)) == 120


def test_report_files(tmp_path: Path) -> None:
    cfg = config(trace=True, baselines=("naive", "tsb"))
    result = Backtest(cfg, MemoryWindowStore()).run(chunks_in_order(ramp_and_flat(20), cfg.buckets))
    written = write_report(result, tmp_path / "report", title="Ramp")
    names = sorted(p.name for p in written)
    assert names == ["error_over_time.png", "metrics.json", "report.md", "top_series.png"]
    for path in written:
        assert path.stat().st_size > 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| model | MAE |" in text and "MASE by horizon step" in text and "![top_series.png]" in text
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert len(metrics["models"]["naive"]["per_horizon"]) == H
    assert "tidecast against the best baseline" in text and "| WRMSSE | " in text


def test_empty_input_and_idle_workers_end_cleanly() -> None:
    result = run([], config(workers=1, baselines=("naive", "tsb")))
    assert (result.series, result.origins, result.models) == (0, 0, {})


def test_a_store_holding_another_run_is_refused() -> None:
    store = MemoryWindowStore()
    cfg = config()
    Backtest(cfg, store).run(chunks_in_order(ramp_and_flat(), cfg.buckets))
    with pytest.raises(ValueError, match="already holds"):
        Backtest(cfg, store)


def test_light_modules_import_no_torch_or_matplotlib() -> None:
    # the package itself, and what the demo imports (charts, published), stay cheap to import
    code = ("import sys, tidecast.stream.backtest, tidecast.stream.backtest.charts, "
            "tidecast.stream.backtest.published, tidecast.stream.backtest.file_chunks; "
            "print(sorted({'torch', 'matplotlib'} & set(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # import this very tree
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"


def test_one_step_band_and_chart_follow_the_quantiles(tmp_path: Path) -> None:
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95)
    docs = [{"origin_index": o, "values": [[1.0 * o, 2.0 * o, 3.0 * o, 4.0 * o, 5.0 * o]]} for o in range(4)]
    band = one_step_band(docs, 4, quantiles)
    assert list(band) == ["p5", "p50", "p95"]
    assert band["p50"].tolist() == [0.0, 3.0, 6.0, 9.0] and band["p95"].tolist() == [0.0, 5.0, 10.0, 15.0]
    with pytest.raises(ValueError, match="5 quantiles"):
        one_step_band(docs, 4)  # the default (0.1, 0.5, 0.9) does not fit rows of five
    panel = {"series": "all:A", "starts": [86_400_000 * d for d in range(4)], "actual": np.arange(4.0), **band}
    path = quantile_chart(tmp_path / "chart.png", [panel], "t", quantiles)
    assert path.stat().st_size > 0


def test_the_backtest_applies_the_configured_bounds(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "sales.jsonl"
    rows = ramp_and_flat(8)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("TIDECAST_MAX_QTY", "5")  # series A sells 6, 7, 8 on its last days
    assert main(["backtest", str(path), "--json", "--horizon", "2", "--baselines", "naive", "--workers", "0",
                 "--max-rejected", "0.5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["invalid"] == 3 and "TIDECAST_MAX_QTY" in doc["rejects"][0]["reason"]


def store_panel(path: Path, days: int = 12) -> Path:
    """A Rossmann-like panel: three stores, no product column, closed on day 7 (zero sales), a holiday on day 3."""
    lines = ["date,store,sales,open,state_holiday"]
    for day in range(1, days + 1):
        for store in (1, 2, 3):
            closed = day % 7 == 0
            lines.append(f"2015-07-{day:02d},{store},{0 if closed else 10 * store + day},{0 if closed else 1},"
                         f"{'a' if day == 3 else '0'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_store_panel_counts_its_closed_days_and_carries_open_and_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = store_panel(tmp_path / "stores.csv")
    columns = "ts=date,store=store,qty=sales,open=open,event=state_holiday"
    assert main(["backtest", str(path), "--json", "--horizon", "2", "--warmup", "1", "--baselines", "naive",
                 "--workers", "0", "--columns", columns]) == 0
    doc = json.loads(capsys.readouterr().out)
    counts = doc["counts"]
    assert doc["series"] == 3 and counts["rows"] == 36
    assert counts["closed"] == 3 and counts["panel_zeros"] == 3  # the closed day: observed zeros, not dropped
    assert counts["ingested"] == 33 and counts.get("invalid", 0) == 0
    chunks = list(chunks_in_order(read_events(path, parse_columns(columns)), config().buckets))
    assert [c.closed for c in chunks] == [3 if i == 6 else 0 for i in range(12)]
    assert chunks[6].zeros == ["1:all", "2:all", "3:all"]
    holiday = json.loads(chunks[2].records[0])
    assert (holiday["open"], holiday["event"], holiday["sku"]) == (True, "a", "all")
    assert "event" not in json.loads(chunks[3].records[0])
    shuffled = tmp_path / "shuffled.csv"
    head, *rows = path.read_text().splitlines()
    shuffled.write_text("\n".join([head, *rows[::-1]]) + "\n")
    assert sum(c.closed for c in chunks_sorted(read_events(shuffled, parse_columns(columns)), config().buckets)) == 3


def read_forecasts(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="") as handle:
        return list(csv.DictReader(handle))


def recomputed(rows: list[dict], model: str) -> dict[str, float]:
    """MAE (median), bias (mean) and 80% coverage per (series, origin) over its H steps, averaged over the series
    of each origin, then over origins, as docs/metrics.md."""
    by_origin: dict[str, dict[str, list[dict]]] = {}
    for row in rows:
        if row["model"] == model:
            by_origin.setdefault(row["origin"], {}).setdefault(row["series"], []).append(row)

    def mean_of(f) -> float:
        return float(np.mean([np.mean([np.mean([f(r) for r in points]) for points in series.values()])
                              for series in by_origin.values()]))

    return {
        "mae": mean_of(lambda r: abs(float(r["q0.5"]) - float(r["actual"]))),
        "bias": mean_of(lambda r: float(r["mean"]) - float(r["actual"])),
        "coverage80": mean_of(lambda r: float(float(r["q0.1"]) <= float(r["actual"]) <= float(r["q0.9"]))),
    }


@pytest.mark.parametrize("workers", [0, 1])
def test_every_scored_forecast_goes_to_the_forecasts_file(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "out" / "forecasts.csv.gz"
    rows = ramp_and_flat(14) + [sale(d, 'C,"x"', 1 + d % 3) for d in range(6, 15)]  # a late series, CSV-quoted
    result = run(rows, config(baselines=("naive", "tsb"), warmup=2, workers=workers, forecasts=path))
    written = read_forecasts(path)
    assert list(written[0]) == ["model", "series", "origin", "step", "target", "mean", "q0.1", "q0.5", "q0.9",
                                "actual"]
    assert not list(path.parent.glob(".*part*"))  # the worker's part was appended and removed
    for name, metrics in result.models.items():
        mine = [r for r in written if r["model"] == name]
        assert len(mine) == metrics["scored"] > 0
        assert {r["series"] for r in mine} == {"all:A", "all:B", 'all:C,"x"'}
        again = recomputed(written, name)
        for key in ("mae", "bias", "coverage80"):
            assert again[key] == pytest.approx(metrics[key], rel=1e-5, abs=1e-5), (name, key)
    origins = sorted({r["origin"] for r in written})
    assert origins[0] == "2024-03-04T00:00:00+00:00"  # day 1 + 1 + 2 warm-up origins
    for r in written[:50]:
        origin, target = datetime.fromisoformat(r["origin"]), datetime.fromisoformat(r["target"])
        assert (target - origin).days == int(r["step"]) - 1 and 1 <= int(r["step"]) <= H


def test_forecasts_file_from_the_command_matches_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sales.jsonl"
    rows = [sale(d, sku, 1 + (d * len(sku)) % 4, 2.5, n) for d in range(1, 25) for sku in ("A", "BB")
            for n in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "f.csv"
    assert main(["backtest", str(path), "--json", "--horizon", "3", "--baselines", "naive", "--warmup", "4",
                 "--forecasts", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    written = read_forecasts(out)  # .csv: plain text
    assert {r["model"] for r in written} == {"tidecast", "naive"}
    assert len({r["origin"] for r in written}) == doc["origins"]
    for name in ("tidecast", "naive"):
        assert recomputed(written, name)["mae"] == pytest.approx(doc["models"][name]["mae"], rel=1e-5)
    assert main(["backtest", str(path), "--forecasts", str(tmp_path / "f.txt")]) == 2
    assert "the name must end in .csv.gz, .csv or .parquet" in capsys.readouterr().err


def test_parquet_forecasts_need_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tidecast.stream.backtest.forecast_file import forecast_format

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r"needs pyarrow; install it .* or name the file .csv.gz"):
        forecast_format(tmp_path / "f.parquet")


def test_parquet_forecasts_hold_the_same_rows(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")  # an optional extra: tidecast[parquet]
    rows = ramp_and_flat(12)
    cfg = config(baselines=("naive", "tsb"), warmup=2, workers=1)
    result = run(rows, replace(cfg, forecasts=tmp_path / "f.parquet"))
    run(rows, replace(cfg, forecasts=tmp_path / "f.csv"))
    table = pq.read_table(tmp_path / "f.parquet").to_pylist()
    written = read_forecasts(tmp_path / "f.csv")
    assert len(table) == len(written) == sum(m["scored"] for m in result.models.values())
    assert not list(tmp_path.glob(".*"))
    key = ("model", "series", "origin", "step")
    as_text = {tuple(str(r[k]) for k in key): float(r["q0.5"]) for r in written}
    for r in table:
        assert as_text[tuple(str(r[k]) for k in key)] == pytest.approx(r["q0.5"], rel=1e-5, abs=1e-9)


def test_a_stopped_run_leaves_no_forecast_parts(tmp_path: Path) -> None:
    path = mostly_bad(tmp_path / "dates.csv")
    out = tmp_path / "out" / "f.csv.gz"
    assert main(["backtest", str(path), "--columns", "ts=date,sku=item,qty=units", "--horizon", "2",
                 "--baselines", "naive", "--workers", "1", "--forecasts", str(out)]) == 2
    assert not list(tmp_path.rglob(".part*"))
