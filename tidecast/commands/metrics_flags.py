"""The ``--metrics-port`` and ``--metrics-host`` flags of ``ingest``, ``forecast`` and ``run``.

>>> import argparse
>>> parser = argparse.ArgumentParser(); add_metrics_flags(parser)
>>> args = parser.parse_args(["--metrics-port", "9464"])
>>> args.metrics_port, args.metrics_host
(9464, '127.0.0.1')
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tidecast.config import Settings

if TYPE_CHECKING:
    from tidecast.metrics import Metrics


def add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics (docs/operations.md)")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="the address to serve them on (default 127.0.0.1; 0.0.0.0 for every interface)")


@contextlib.contextmanager
def metrics_for(args: argparse.Namespace, settings: Settings) -> Iterator[Metrics | None]:
    """The process's metrics, served for the ``with`` block when ``--metrics-port`` was given; else None."""
    if args.metrics_port is None:
        yield None
        return
    from tidecast.metrics import Metrics

    with Metrics(settings.bucket_seconds).served(args.metrics_port, args.metrics_host) as metrics:
        yield metrics
