"""``tidecast serve``: the web view of the live forecaster on a local port (docs/decisions.md, "The web view").

It reads only Redis (windows, counters, and the model's checkpoint for the explanations, read-only) and the
forecast and target topics, and needs no internet access: the charts are drawn on the server.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["serve"].parse_args(["--port", "8080"])
>>> args.port, args.host, args.report
(8080, '127.0.0.1', None)
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from tidecast.commands.inspect_cmd import stats_report
from tidecast.config import ConfigError, Settings
from tidecast.infra.endpoints import resolve


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="a web view of the live forecasts on a local port")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on (default 8050)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="also show a backtest report folder (tidecast backtest ... --report DIR)")
    parser.add_argument("--refresh", type=int, default=5, help="seconds between page refreshes (default 5)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast import live
    from tidecast.console import err
    from tidecast.consumers.forecast_reader import follow
    from tidecast.dashboard.server import make_server
    from tidecast.dashboard.state import DashboardState
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import RedisWindowStore
    from tidecast.stream.explanations import explain_series
    from tidecast.stream.timebuckets import season_for

    if args.report is not None and not args.report.is_dir():
        raise ConfigError(f"--report {args.report}: no such folder")
    endpoints = resolve(settings)
    store = RedisWindowStore(redis_client(settings, endpoints.redis), settings.topic_prefix)

    def explain(names: list[str]) -> dict:
        return explain_series(live.build_read_only(settings, endpoints), names)

    state = DashboardState(store.series_window, lambda: stats_report(store, settings), explain,
                           season_for(settings.bucket_seconds))
    topics = settings.topics
    state.follow(follow(settings, endpoints.kafka, True, None, topics.forecasts), state.add_forecast)
    state.follow(follow(settings, endpoints.kafka, True, None, topics.targets), state.add_target)

    done = threading.Event()

    def explain_each_close() -> None:
        while not done.wait(2.0):
            state.refresh_explanations()

    explainer = threading.Thread(target=explain_each_close, daemon=True)
    explainer.start()
    try:
        server = make_server(state, args.report, args.host, args.port, args.refresh)
    except OSError as exc:
        raise ConfigError(f"--port {args.port}: {exc.strerror or exc}") from None
    stop = lambda *_: threading.Thread(target=server.shutdown).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    err.print(f"serving on http://{args.host}:{server.server_address[1]}/ (Ctrl-C to stop)", highlight=False)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        done.set()
        explainer.join(timeout=60)  # a thread inside torch at exit aborts the interpreter
    return 0
