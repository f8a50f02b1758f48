"""Console helpers: progress bars on stderr, so stdout stays clean for ``--json``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

err = Console(stderr=True)


def progress(items: Iterable[T], description: str, total: int | None = None, unit: str = "events") -> Iterator[T]:
    """Iterate ``items`` showing count, rate and (with ``total``) a bar and an ETA."""
    columns = [TextColumn("[bold]{task.description}")]
    if total:
        columns += [BarColumn(), TaskProgressColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed:,} " + unit)]
    columns += [TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as bar:
        task = bar.add_task(description, total=total, rate="")
        n = 0
        for item in items:
            yield item
            n += 1
            if n % 2048 == 0:
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, completed=n, rate=f"{n / elapsed:,.0f}/s")
        bar.update(task, completed=n)
