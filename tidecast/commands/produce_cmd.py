"""``tidecast produce synthetic|file``: send events to the clicks and sales topics.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["produce"].parse_args(["synthetic", "--series", "20", "--start", "2026-03-02"])
>>> args.kind, args.series, args.start.isoformat()
('synthetic', 20, '2026-03-02T00:00:00+00:00')
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tidecast.config import Settings
from tidecast.console import progress
from tidecast.infra.endpoints import resolve

if TYPE_CHECKING:
    from tidecast.producers.synthetic import SyntheticConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("produce", help="send events to Kafka (synthetic or from a file)")
    kinds = parser.add_subparsers(dest="kind", required=True)
    syn = kinds.add_parser("synthetic", help="a realistic synthetic stream, deterministic per seed")
    syn.add_argument("--series", type=int, default=200, help="number of series (store:sku), default 200")
    syn.add_argument("--days", type=int, default=28, help="days of history, default 28")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--start", type=_iso, default=None, help="ISO-8601 start (default 2026-01-05T00:00Z)")
    syn.add_argument("--malformed", type=float, default=0.0, help="share of extra malformed messages, e.g. 0.01")
    syn.add_argument("--duplicates", type=float, default=0.0, help="share of events re-sent as duplicates")
    syn.add_argument("--no-clicks", action="store_true", help="sales only")
    syn.add_argument("--speed", type=float, default=0.0,
                     help="event-time seconds per wall second (e.g. 86400 = a day per second); 0 = flat out")
    file = kinds.add_parser("file", help="JSON lines or CSV (optionally .gz) of history")
    file.add_argument("path", type=Path)
    file.add_argument(
        "--columns",
        help="FIELD=COLUMN,... mapping, fields ts,sku,store,qty,price,revenue,promo,open,event,event_id,type,action "
             "(and lead_time,review,service_level,on_hand,on_order of policy and inventory rows)",
    )
    file.add_argument("--known", metavar="FIELD,...",
                      help="fields known ahead, among promo, price, open, event (mapped by --columns): also sent "
                           "as plan events issued TIDECAST_HORIZON buckets before each row's bucket, as "
                           "backtest --known replays them (docs/whatif.md)")
    file.add_argument("--until", type=_iso, metavar="TIME",
                      help="send only events before TIME (ISO-8601): the history as known then; with --known, "
                           "the plans issued before TIME for later buckets too")
    file.add_argument("--tz", default="UTC", help="time zone of naive timestamps (default UTC)")
    file.add_argument("--date-format", metavar="FMT",
                      help="strptime format of times that are not ISO-8601, e.g. %%m/%%d/%%Y (default: detect "
                           "the day/month order of dates such as 11/1/2000 from the whole column)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast.commands.backtest_cmd import resolve_date_format
    from tidecast.console import err
    from tidecast.producers.event_sender import EventSender
    from tidecast.producers.files import count_rows, parse_columns, read_events
    from tidecast.producers.synthetic import SyntheticConfig
    from tidecast.stream.rejects import RejectTally

    endpoints = resolve(settings)
    if args.kind == "synthetic":
        config = SyntheticConfig(
            series=args.series, days=args.days, seed=args.seed, clicks=not args.no_clicks,
            **({"start": args.start} if args.start else {}),
        )
        sent = send_synthetic(settings, endpoints.kafka, config, args.malformed, args.duplicates, args.speed)
    else:
        if not args.path.exists():
            raise SystemExit(f"no such file: {args.path}")
        columns = parse_columns(args.columns)
        date_format = resolve_date_format(args.path, columns, args.date_format)
        docs = read_events(args.path, columns, args.tz, date_format)
        if args.known:
            docs = _with_plans(docs, args.known, columns, settings)
        if args.until is not None:
            docs = _before(docs, int(args.until.timestamp() * 1000))
        rejects = RejectTally()
        with EventSender(settings, endpoints.kafka) as sender:
            for doc in progress(docs, f"sending {args.path.name}", total=count_rows(args.path), unit="rows"):
                if isinstance(doc, bytes):
                    sender.send_raw(settings.topics.sales, None, doc)
                else:
                    sender.send(doc)
                reason = invalid_reason(doc)
                if reason is not None:
                    rejects.add(reason)
        sent = sender.sent
        if rejects.total:
            err.print(rejects.describe(sent, "invalid, sent to be dead-lettered by the ingest"), markup=False,
                      highlight=False, soft_wrap=True)
            if rejects.total > sent / 2:
                err.print(f"most rows of {args.path.name} are invalid: check --columns and --tz", style="yellow")
    err.print(f"sent {sent:,} messages to {settings.topics.clicks} / {settings.topics.sales}"
              + (f" / {settings.topics.plans}" if getattr(args, "known", None) else ""))
    return 0


def _with_plans(docs, known: str, columns: dict[str, str], settings: Settings):
    """The rows, each preceded by its plan event (:func:`tidecast.stream.backtest.known_plans.with_plans`)."""
    from tidecast.config import ConfigError
    from tidecast.stream.backtest.known_plans import check_known, with_plans
    from tidecast.stream.timebuckets import Buckets

    try:
        fields = check_known(name.strip() for name in known.split(",") if name.strip())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    unmapped = [name for name in fields if name not in columns]
    if unmapped:
        raise ConfigError(f"--known {', '.join(unmapped)}: not mapped by --columns (add e.g. {unmapped[0]}=COLUMN)")
    return with_plans(docs, fields, Buckets(settings.bucket_seconds), settings.horizon)


def _before(docs, until_ms: int):
    """The events whose ``ts`` (a plan's: its issue time) is before ``until_ms``; rows whose time cannot be read
    pass, for the ingest to dead-letter.

    >>> docs = [{"ts": "2015-07-17T00:00:00+00:00"}, {"ts": "2015-07-18T00:00:00+00:00"}, {"ts": "?"}]
    >>> list(_before(docs, 1437177600000))  # 2015-07-18
    [{'ts': '2015-07-17T00:00:00+00:00'}, {'ts': '?'}]
    """
    from tidecast.stream.events import InvalidEvent, parse_ts

    for doc in docs:
        try:
            if isinstance(doc, dict) and parse_ts(doc.get("ts")) >= until_ms:
                continue
        except InvalidEvent:
            pass
        yield doc


def invalid_reason(doc: dict | bytes) -> str | None:
    """Why the ingest would reject a row of :func:`~tidecast.producers.files.read_events` (None: valid).

    >>> invalid_reason({"event_id": "1", "type": "sale", "ts": "2026-01-05T00:00:00+00:00", "sku": "A", "qty": 1})
    >>> invalid_reason({"event_id": "1", "type": "sale", "ts": "05/01/2026", "sku": "A", "qty": 1})
    "field 'ts' is not ISO-8601: '05/01/2026'"
    """
    from tidecast.stream.events import InvalidEvent, validate, validate_dict

    try:
        if isinstance(doc, dict):
            validate_dict(doc)
        else:
            validate(doc)
    except InvalidEvent as exc:
        return str(exc)
    return None


def send_synthetic(
    settings: Settings,
    bootstrap: str,
    config: SyntheticConfig,
    malformed: float = 0.0,
    duplicates: float = 0.0,
    speed: float = 0.0,
) -> int:
    """Generate and send (at ``speed`` x real time, or flat out); returns the messages sent, faults included."""
    from tidecast.producers.event_sender import EventSender
    from tidecast.producers.faults import with_faults
    from tidecast.producers.pacing import paced
    from tidecast.producers.synthetic import generate

    with EventSender(settings, bootstrap) as sender:
        stream = with_faults(paced(generate(config), speed), malformed, duplicates, config.seed)
        for out in progress(stream, "sending synthetic events"):
            if out.doc is not None:
                sender.send(out.doc)
            else:
                sender.send_raw(settings.topics.sales, None, out.value)
    return sender.sent


def _iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
