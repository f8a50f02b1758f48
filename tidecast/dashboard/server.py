"""The web view's HTTP server: ``/`` the page (``?series=STORE:SKU`` picks the series), ``/report/NAME.png`` the
backtest report's charts, ``/health``. Standard library only; it binds the address it is given (loopback by
default) and serves until :meth:`~http.server.HTTPServer.shutdown`.

>>> server = make_server(DashboardState(lambda s: [], dict, None, 7), None, port=0)
>>> server.server_address[0]
'127.0.0.1'
>>> server.server_close()
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tidecast.dashboard.page import render
from tidecast.dashboard.state import DashboardState
from tidecast.dashboard.svg import fan_chart
from tidecast.stream.timebuckets import from_iso, to_iso

HISTORY = 28
"""Buckets of actuals drawn before the forecast."""


def series_view(state: DashboardState, series: str | None) -> dict:
    """The fan panel's data: the series' last :data:`HISTORY` buckets of units, its latest forecast and target."""
    choices = state.series_list()
    name = series if series in choices else (choices[0] if choices else None)
    forecast = state.latest.get(name) if name else None
    target = state.targets.get(name) if name else None
    chart, labels = "<svg class='chart'></svg>", ("", "")
    if name is not None and forecast is not None and state.buckets is not None:
        buckets = state.buckets
        origin = buckets.index(from_iso(forecast["origin"]))
        units = {b: float(v.get("units", 0.0)) for b, v in state.series_window(name)}
        xs = list(range(origin - HISTORY, origin))
        fx = list(range(origin, origin + len(forecast["values"])))
        labels = (to_iso(buckets.start_ms(xs[0]))[:10], to_iso(buckets.start_ms(fx[-1]))[:10])
        chart = fan_chart(xs, [units.get(b, 0.0) for b in xs], fx, forecast["values"], name, labels)
    return {"series": name, "chart": chart, "forecast": forecast, "target": target, "choices": choices}


def make_server(state: DashboardState, report: Path | None, host: str = "127.0.0.1", port: int = 8050,
                refresh: int = 5) -> ThreadingHTTPServer:
    """A server answering from ``state`` (and ``report``, a ``tidecast backtest --report`` folder, if given)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # no line per request on stderr

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/health":
                self._send(200, b"ok\n", "text/plain")
            elif url.path == "/":
                chosen = parse_qs(url.query).get("series", [None])[0]
                page = render(series_view(state, chosen), state.accuracy(), state.stats(), state.moved(),
                              state.explained, _report(report), refresh)
                self._send(200, page.encode(), "text/html; charset=utf-8")
            elif url.path.startswith("/report/") and report is not None:
                name = url.path.removeprefix("/report/")
                path = report / name
                if name.endswith(".png") and "/" not in name and path.is_file():
                    self._send(200, path.read_bytes(), "image/png")
                else:
                    self._send(404, b"not found\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

    return ThreadingHTTPServer((host, port), Handler)


def _report(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    markdown = folder / "report.md"
    return {"folder": str(folder), "images": sorted(p.name for p in folder.glob("*.png")),
            "markdown": markdown.read_text() if markdown.is_file() else "(no report.md in this folder)"}
