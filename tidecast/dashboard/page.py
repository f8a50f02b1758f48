"""The HTML of the web view: one page, refreshed every few seconds by the browser, charts inline (:mod:`.svg`).

Every panel has an id the browser test reads: ``fan`` (a series' actuals, forecast band and stock target),
``accuracy`` (live accuracy against seasonal naive), ``counters`` (ingest and DLQ), ``moved`` (the series whose
forecast moved most, with their explanations) and ``report`` (a backtest report, when ``serve --report``).

>>> page = render({"series": "s:A", "chart": "<svg></svg>", "forecast": None, "target": None, "choices": ["s:A"]},
...               {"tidecast_mae": 2.0, "seasonal_naive_mae": 3.0, "points": 10, "buckets": 7, "series": 1},
...               {"ingested": 5, "dlq": 0, "late": 0, "duplicates": 1, "invalid": 0, "gaps": 0},
...               [], {}, None, refresh=5)
>>> "id='fan'" in page and "id='accuracy'" in page and "class='value ingested'>5<" in page
True
>>> target = {"order_up_to": 9.5, "lead_time": 2, "review": 1, "service_level": 0.95, "policy_from": "store",
...           "protection": {"buckets": 3}, "order_quantity": 3.5,
...           "inventory": {"on_hand": 5, "on_order": 1, "as_of": "2026-01-05T21:00:00+00:00"}}
>>> "class='value order-quantity'>3.5<" in _fan({"series": "s:A", "chart": "", "target": target, "choices": []})
True
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from tidecast.dashboard.svg import bars

STYLE = """
body{font-family:system-ui,sans-serif;margin:16px 24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 12px} h2{font-size:15px;margin:0 0 8px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 14px;margin:0 0 14px}
.grid{display:grid;grid-template-columns:2fr 1fr;gap:14px} .chart{width:100%;height:auto}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left} .value{font-weight:600} .muted{color:#777;font-size:12px}
.choices a{margin-right:8px;font-size:12px} pre{white-space:pre-wrap;font-size:12px} img{max-width:100%}
svg.bars{width:100%;max-width:640px;height:auto} h2.explained{font-size:13px;margin:12px 0 4px}
"""


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(series: dict, accuracy: dict, counters: dict, moved: list[dict], explained: dict,
           report: dict | None, refresh: int = 5) -> str:
    """The whole page (see the module docstring)."""
    return "".join([
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<meta http-equiv='refresh' content='{int(refresh)}'><title>tidecast</title>",
        f"<style>{STYLE}</style></head><body><h1>tidecast: live forecasts</h1>",
        "<div class='grid'>", _fan(series), "<div>", _accuracy(accuracy), _counters(counters), "</div></div>",
        _moved(moved, explained), _report(report), "</body></html>",
    ])


def _fan(series: dict) -> str:
    forecast, target = series.get("forecast"), series.get("target")
    parts = [f"<section id='fan'><h2>{escape(series.get('series') or 'no series yet')}</h2>", series["chart"]]
    if forecast is not None:
        parts.append(f"<p class='muted'>forecast from {escape(forecast['origin'][:16])}, model version "
                     f"<span class='value model-version'>{forecast['model_version']}</span>; band: the lowest and "
                     "highest quantile, line: the median</p>")
    if target is not None:
        p = target["protection"]
        parts.append(f"<p>stock target: order up to <span class='value order-up-to'>{target['order_up_to']:,.1f}"
                     f"</span> units for the next {p['buckets']} buckets (lead time {target['lead_time']}, review "
                     f"{target['review']}, service level {target['service_level']:g}; policy of the "
                     f"{escape(target.get('policy_from', 'settings'))})</p>")
        stock = target.get("inventory")
        if stock is not None:
            parts.append(f"<p>order <span class='value order-quantity'>{target['order_quantity']:,.1f}</span> "
                         f"units now: on hand {stock['on_hand']:,.1f}, on order {stock['on_order']:,.1f} as of "
                         f"{escape(stock['as_of'][:16])}</p>")
    choices = " ".join(f"<a href='/?series={quote(name)}'>{escape(name)}</a>" for name in series["choices"][:30])
    parts.append(f"<div class='choices'>{choices}</div></section>")
    return "".join(parts)


def _accuracy(acc: dict) -> str:
    ratio = (acc["tidecast_mae"] / acc["seasonal_naive_mae"]
             if acc.get("tidecast_mae") is not None and acc.get("seasonal_naive_mae") else None)
    return ("<section id='accuracy'><h2>Live accuracy, one bucket ahead</h2><table>"
            "<tr><th>model</th><th>MAE (units)</th></tr>"
            f"<tr><td>tidecast (published median)</td><td class='value tidecast'>{_num(acc.get('tidecast_mae'))}"
            "</td></tr>"
            f"<tr><td>seasonal naive</td><td class='value naive'>{_num(acc.get('seasonal_naive_mae'))}</td></tr>"
            f"<tr><td>ratio</td><td class='value ratio'>{_num(ratio, 3)}</td></tr></table>"
            f"<p class='muted'>{acc.get('points', 0):,} points: the last {acc.get('buckets', 0)} closed buckets of "
            f"{acc.get('series', 0):,} series</p></section>")


def _counters(counters: dict) -> str:
    rows = "".join(f"<tr><td>{escape(name)}</td><td class='value {name}'>{counters.get(name, 0):,}</td></tr>"
                   for name in ("ingested", "dlq", "late", "duplicates", "invalid", "gaps"))
    return f"<section id='counters'><h2>Ingest</h2><table>{rows}</table></section>"


def _moved(moved: list[dict], explained: dict) -> str:
    parts = ["<section id='moved'><h2>Moved most since the last close</h2>"]
    if not moved:
        parts.append("<p class='muted'>after two closes</p></section>")
        return "".join(parts)
    by_series = {e["series"]: e for e in explained.get("series", [])}
    parts.append("<table><tr><th>series</th><th>next bucket before</th><th>now</th><th>change</th></tr>")
    for m in moved:
        parts.append(f"<tr><td><a href='/?series={quote(m['series'])}'>{escape(m['series'])}</a></td>"
                     f"<td>{_num(m['before'], 1)}</td><td>{_num(m['now'], 1)}</td><td>{m['change']:+.0%}</td></tr>")
    parts.append("</table>")
    if "error" in explained:
        parts.append(f"<p class='muted'>explanations unavailable: {escape(explained['error'])}</p>")
    for m in moved:
        e = by_series.get(m["series"])
        if e is not None:
            # published (TIDECAST_EXPLAIN): median as published, calibration given; from the model (explain --json):
            # the network's median, and the published one beside it
            calibration = e.get("calibration", e.get("published_median", e["median"]) - e["median"])
            median = e["median"] + (0.0 if "calibration" in e else calibration)
            parts.append(f"<h2 class='explained'>{escape(m['series'])}: median {median:,.2f} = reference "
                         f"{e['reference']:,.2f} + the groups below + calibration {calibration:+,.2f} (residual "
                         f"{e.get('residual', 0.0):+,.3f})</h2>" + bars(dict(sorted(
                             e["contributions"].items(), key=lambda kv: -abs(kv[1]))), " units"))
    parts.append("</section>")
    return "".join(parts)


def _report(report: dict | None) -> str:
    if report is None:
        return ""
    images = "".join(f"<img src='/report/{quote(name)}' alt='{escape(name)}'>" for name in report["images"])
    return (f"<section id='report'><h2>Backtest report ({escape(report['folder'])})</h2>{images}"
            f"<pre>{escape(report['markdown'])}</pre></section>")
