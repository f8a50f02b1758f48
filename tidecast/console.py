"""What the commands show: progress on stderr (so stdout stays clean for ``--json``) and the progress texts.

rich is imported on first use, so a command that prints nothing fancy does not pay for it; ``err`` (the stderr
console) is created the first time it is asked for.

>>> from types import SimpleNamespace
>>> describe(SimpleNamespace(records=1500, rate=750.0, ingested=1490, duplicates=6, late=1, invalid=3))
'ingest: 1,500 records (750/s) - 1,490 applied, 6 duplicates, 1 late, 3 invalid'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn

    from tidecast.consumers.ingest_worker import IngestProgress
    from tidecast.stream.forecaster import CloseReport
    from tidecast.stream.timebuckets import Buckets

T = TypeVar("T")

_err: Console | None = None

if TYPE_CHECKING:
    err: Console  # provided by __getattr__ below, on first use


def __getattr__(name: str) -> object:
    """``err``: the shared stderr console, built on first use."""
    if name == "err":
        return _stderr()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stderr() -> Console:
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True)
    return _err


def progress(items: Iterable[T], description: str, total: int | None = None, unit: str = "events") -> Iterator[T]:
    """Iterate ``items`` showing count, rate and (with ``total``) a bar and an ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = _stderr()
    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}")]
    if total:
        columns += [BarColumn(), TaskProgressColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed:,} " + unit)]
    columns += [TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total, rate="")
        n = 0
        for item in items:
            yield item
            n += 1
            if n % 2048 == 0:
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, completed=n, rate=f"{n / elapsed:,.0f}/s")
        bar.update(task, completed=n)


def describe(progress: IngestProgress) -> str:
    """One line on the ingest worker's running totals."""
    return (
        f"ingest: {progress.records:,} records ({progress.rate:,.0f}/s) - {progress.ingested:,} applied, "
        f"{progress.duplicates:,} duplicates, {progress.late:,} late, {progress.invalid:,} invalid"
    )


def describe_close(report: CloseReport, buckets: Buckets) -> str:
    """One line on a bucket close: forecasts published, model version, loss, learning rate, stage timings.

    >>> from tidecast.stream.forecaster import CloseReport
    >>> from tidecast.stream.timebuckets import Buckets
    >>> seconds = dict.fromkeys(("read", "learn", "forecast", "publish", "checkpoint"), 0.01)
    >>> describe_close(CloseReport(bucket=0, series=2, published=2, model_version=1, learn={"loss": 0.5},
    ...                            seconds=seconds), Buckets(86_400))
    'closed 1970-01-05T00:00: 2 forecasts, model v1, loss 0.500, lr x1.00 (read 0.01s learn 0.01s ...)'
    """
    from tidecast.stream.timebuckets import to_iso

    s = report.seconds
    learn = report.learn
    return (
        f"closed {to_iso(buckets.start_ms(report.bucket))[:16]}: {report.published:,} forecasts, "
        f"model v{report.model_version}, loss {learn.get('loss', float('nan')):.3f}, "
        f"lr x{learn.get('lr_multiplier', 1.0):.2f}{' DRIFT' if learn.get('drift') else ''} "
        f"(read {s['read']:.2f}s learn {s['learn']:.2f}s forecast {s['forecast']:.2f}s "
        + (f"explain {s['explain']:.2f}s " if "explain" in s else "")
        + f"publish {s['publish']:.2f}s checkpoint {s['checkpoint']:.2f}s)"
    )
