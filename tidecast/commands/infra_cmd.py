"""``tidecast infra up|down|status``: the embedded broker and valkey-server.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["infra"].parse_args(["up", "--json", "--owner-pid", "42"])
>>> args.verb, args.json, args.owner_pid
('up', True, 42)

What ``up`` and ``status`` print never holds a password:

>>> print(format_endpoints(infra.Endpoints("10.0.0.4:9092", "redis://:s3cret@10.0.0.5:6379/0"), as_json=True))
{"kafka": "10.0.0.4:9092", "redis": "redis://:***@10.0.0.5:6379/0"}
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from tidecast import infra
from tidecast.config import Settings

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("infra", help="start or stop the embedded Kafka-compatible broker and Redis")
    verbs = parser.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="start them (or show the running ones) under TIDECAST_HOME")
    up.add_argument("--json", action="store_true", help='print {"kafka": "HOST:PORT", "redis": "redis://..."}')
    up.add_argument("--owner-pid", type=int, help="stop them automatically when this process ends")
    verbs.add_parser("down", help="stop them by PID")
    status = verbs.add_parser("status", help="show the running ones")
    status.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    if args.verb == "up":
        if settings.kafka_bootstrap and settings.redis_url:
            console.print("TIDECAST_KAFKA_BOOTSTRAP and TIDECAST_REDIS_URL are set: nothing embedded to start")
            endpoints = infra.Endpoints(settings.kafka_bootstrap, settings.redis_url)
        else:
            with console.status("starting the embedded broker and valkey-server..."):
                endpoints = infra.up(settings, owner_pid=args.owner_pid, detach=True)
        _show(endpoints, args.json, console, settings)
        return 0
    if args.verb == "down":
        stopped = infra.down(settings)
        console.print("stopped" if stopped else f"nothing running under {settings.home}")
        return 0
    found = infra.find(settings)
    if found is None:
        console.print(f"nothing running under {settings.home}")
        return 1
    _show(found, args.json, console, settings)
    return 0


def format_endpoints(endpoints: infra.Endpoints, as_json: bool) -> str:
    """The endpoints as ``infra up|status`` print them (JSON with ``--json``), passwords redacted."""
    shown = endpoints.redacted()
    if as_json:
        return json.dumps(shown)
    return f"kafka  {shown['kafka']}\nredis  {shown['redis']}"


def _show(endpoints: infra.Endpoints, as_json: bool, console: Console, settings: Settings) -> None:
    if as_json:
        print(format_endpoints(endpoints, as_json=True), flush=True)
        return
    console.print(format_endpoints(endpoints, as_json=False), markup=False, highlight=False)
    console.print(f"home   {os.fspath(settings.home)}  (stop with `tidecast infra down`)")
