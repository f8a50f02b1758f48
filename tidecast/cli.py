"""The ``tidecast`` command: configuration from ``TIDECAST_*`` variables, overridable by flags.

Commands are listed from :data:`COMMANDS` (name, module, help line); a command's module is imported only when
that command is parsed, so ``tidecast --help`` and the light commands never load torch or the backtest.

>>> build_parser().parse_args(["--bucket", "1h", "inspect", "stats", "--json"]).bucket
'1h'
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tidecast import __version__
from tidecast.config import ConfigError, Settings
from tidecast.infra import InfraError
from tidecast.infra.endpoints import NoServers
from tidecast.stream.timebuckets import parse_duration

#: (command, module that adds its parser, help line), in ``--help`` order. A module may add several commands
#: (``forecast_cmd``: forecast and run); tests/unit/test_front_cli.py checks the help lines against the modules.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("infra", "tidecast.commands.infra_cmd", "start or stop the embedded Kafka-compatible broker and Redis"),
    ("produce", "tidecast.commands.produce_cmd", "send events to Kafka (synthetic or from a file)"),
    ("ingest", "tidecast.commands.ingest_cmd", "consume clicks and sales into the Redis feature windows"),
    ("forecast", "tidecast.commands.forecast_cmd", "close buckets as watermarks pass: learn, forecast, publish"),
    ("run", "tidecast.commands.forecast_cmd", "ingest and forecast together (the single-machine default)"),
    ("tail", "tidecast.commands.tail_cmd", "follow the forecast topic"),
    ("inspect", "tidecast.commands.inspect_cmd", "show a series' windows or the ingest counters"),
    ("demo", "tidecast.commands.demo_cmd", "run the whole pipeline end to end on the embedded servers"),
    ("backtest", "tidecast.commands.backtest_cmd",
     "replay a history file through the pipeline; score tidecast against baselines"),
)


class LazyCommands(argparse._SubParsersAction):
    """Sub-commands known by name and help line; the real parser comes from the command's module on first use."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._modules: dict[str, str] = {}

    def add_lazy(self, name: str, module: str, help: str) -> None:
        self.add_parser(name, help=help)  # a placeholder: lists the command in --help
        self._modules[name] = module

    def load(self, name: str) -> argparse.ArgumentParser:
        """The parser of ``name``, importing its module (and building all of that module's commands) once."""
        module = self._modules.get(name)
        if module is not None:
            built = argparse._SubParsersAction([], prog=self._prog_prefix, parser_class=self._parser_class)
            importlib.import_module(module).add_parser(built)
            self._name_parser_map.update(built._name_parser_map)
            for added in built._name_parser_map:
                self._modules.pop(added, None)
        return self._name_parser_map[name]

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        self.load(values[0])
        super().__call__(parser, namespace, values, option_string)


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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", action=LazyCommands)
    assert isinstance(sub, LazyCommands)  # add_subparsers returns an instance of the given action class
    for name, module, help_line in COMMANDS:
        sub.add_lazy(name, module, help_line)
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
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        return args.handler(args, settings)
    except (ConfigError, NoServers, InfraError) as exc:
        print(f"tidecast: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
