"""The ``tidecast`` command: configuration from ``TIDECAST_*`` variables, overridable by flags.

Each module of :data:`COMMANDS` adds its parsers; the modules import their heavy dependencies (torch, numpy,
rich, the Kafka and Redis clients, the backtest) in their handlers, so parsing loads none of them.

>>> build_parser().parse_args(["--bucket", "1h", "inspect", "stats", "--json"]).bucket
'1h'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tidecast import __version__
from tidecast.commands import (
    backtest_cmd,
    demo_cmd,
    explain_cmd,
    forecast_cmd,
    infra_cmd,
    ingest_cmd,
    inspect_cmd,
    produce_cmd,
    rebuild_cmd,
    serve_cmd,
    tail_cmd,
    whatif_cmd,
)
from tidecast.config import ConfigError, ServiceError, Settings
from tidecast.infra import InfraError
from tidecast.infra.endpoints import NoServers
from tidecast.stream.ingest import StateLost
from tidecast.stream.timebuckets import parse_duration

COMMANDS = (
    infra_cmd, produce_cmd, ingest_cmd, forecast_cmd, whatif_cmd, explain_cmd, tail_cmd, inspect_cmd, rebuild_cmd,
    serve_cmd, demo_cmd, backtest_cmd,
)
"""The command modules, in ``--help`` order; each adds its parsers (``forecast_cmd``: forecast and run)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tidecast",
        description="Streaming demand forecasting: Kafka in, Redis windows, quantile forecasts out.",
        epilog="Every flag below has a TIDECAST_* variable (see README, Configuration); flags win.",
    )
    parser.add_argument("--version", action="version", version=f"tidecast {__version__}")
    parser.add_argument("--home", type=Path, help="state directory (TIDECAST_HOME, default ./.tidecast)")
    parser.add_argument("--kafka", help="bootstrap HOST:PORT (TIDECAST_KAFKA_BOOTSTRAP)")
    parser.add_argument("--redis", help="redis://HOST:PORT/DB (TIDECAST_REDIS_URL)")
    parser.add_argument("--topic-prefix", help="topic and key prefix (TIDECAST_TOPIC_PREFIX, default tidecast.)")
    parser.add_argument("--bucket", help="bucket size, e.g. 1h, 1d, 7d (TIDECAST_BUCKET, default 1d)")
    parser.add_argument("--lateness", help="allowed lateness, e.g. 2h (TIDECAST_LATENESS, default 2h)")
    parser.add_argument("--retention", type=int, help="buckets kept per series (TIDECAST_RETENTION, default 56)")
    parser.add_argument("--partitions", type=int, help="partitions per topic (TIDECAST_PARTITIONS, default 12)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first, then the flags that were given."""
    base = Settings.from_env()
    flags: dict[str, tuple[str, object, Callable[[Any], object]]] = {
        "home": ("--home", args.home, lambda v: v),
        "kafka_bootstrap": ("--kafka", args.kafka, str),
        "redis_url": ("--redis", args.redis, str),
        "topic_prefix": ("--topic-prefix", args.topic_prefix, str),
        "bucket_seconds": ("--bucket", args.bucket, parse_duration),
        "lateness_seconds": ("--lateness", args.lateness, parse_duration),
        "retention": ("--retention", args.retention, int),
        "partitions": ("--partitions", args.partitions, int),
    }
    changes: dict[str, object] = {}
    for attr, (flag, value, read) in flags.items():
        if value is None:
            continue
        try:
            changes[attr] = read(value)
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
    return base.with_overrides(**changes)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command and turn the errors a user can mend into a message and exit status.

    The process entry point is :mod:`tidecast.__main__`, which makes SIGTERM a clean stop while this module
    still imports."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        return args.handler(args, settings)
    except (ConfigError, NoServers, InfraError) as exc:
        print(f"tidecast: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"tidecast: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        lost = state_lost(exc)
        if lost is None:
            raise
        print(f"tidecast: {lost}", file=sys.stderr)
        return 1


def state_lost(exc: BaseException) -> StateLost | None:
    """The :class:`StateLost` behind ``exc``, if any: the Kafka client re-raises one that surfaces again while
    the consumer closes (in a rebalance callback) as a ``KafkaError``, with the original as its context.

    >>> state_lost(RuntimeError("closing")) is None
    True
    >>> try:
    ...     try:
    ...         raise StateLost("sales:0: Redis holds no state")
    ...     finally:
    ...         raise RuntimeError("User rebalance callback throws an error")
    ... except RuntimeError as exc:
    ...     str(state_lost(exc))
    'sales:0: Redis holds no state'
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, StateLost):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


if __name__ == "__main__":
    from tidecast.__main__ import main as entry

    sys.exit(entry())
