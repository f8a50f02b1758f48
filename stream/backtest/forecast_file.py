"""``--forecasts FILE``: every scored forecast, one row per (model, series, origin, step), streamed to a file.

Columns: ``model``, ``series``, ``origin`` (ISO start of the origin bucket, the first one forecast), ``step``
(1 .. H), ``target`` (ISO start of the bucket forecast: origin + step - 1 buckets), ``mean``, one column per
quantile (``q0.1``, ``q0.5``, ``q0.9`` for the default quantiles) and ``actual``. The format follows the name:
``.csv.gz`` gzipped CSV, ``.csv`` plain CSV, ``.parquet`` Parquet (needs pyarrow, an optional extra).
Forecasts are written with 6 significant digits, actuals with 12.

Each process of a backtest writes its own models' rows (:class:`ForecastRows`, the worker processes to
:func:`part_path` files); :func:`merge_parts` appends the parts to the main file at the end (gzip members
and CSV lines concatenate; Parquet row groups are copied), so rows are grouped by process, not sorted.

>>> import gzip, tempfile
>>> import numpy as np
>>> from tidecast.stream.timebuckets import Buckets
>>> path = Path(tempfile.mkdtemp()) / "f.csv.gz"
>>> rows = ForecastRows(path, (0.1, 0.5, 0.9), Buckets(86_400))
>>> rows.names.append("all:A")
>>> rows.write("naive", 19719, 2, np.array([[1.0, 2.0, 3.5]]), np.array([2.25]), np.array([4.0]))
>>> rows.close()
>>> print(gzip.open(path, "rt").read(), end="")
model,series,origin,step,target,mean,q0.1,q0.5,q0.9,actual
naive,all:A,2024-01-01T00:00:00+00:00,2,2024-01-02T00:00:00+00:00,2.25,1,2,3.5,4
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import IO, Any

import numpy as np

from tidecast.stream.timebuckets import Buckets, to_iso

ROW_GROUP = 1_000_000
"""Parquet rows per row group (the rows a writer holds before it writes them)."""


def forecast_format(path: Path) -> str:
    """``"csv.gz"``, ``"csv"`` or ``"parquet"`` from the name; a ``ValueError`` for any other name, or for
    Parquet without pyarrow.

    >>> forecast_format(Path("out/f.csv.gz")), forecast_format(Path("f.CSV"))
    ('csv.gz', 'csv')
    """
    name = Path(path).name.lower()
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(f"--forecasts {Path(path).name}: writing Parquet needs pyarrow; install it "
                             "(pip install 'tidecast[parquet]' or pip install pyarrow) or name the file .csv.gz"
                             ) from None
        return "parquet"
    raise ValueError(f"--forecasts {Path(path).name}: the name must end in .csv.gz, .csv or .parquet")


def columns(quantiles: tuple[float, ...]) -> list[str]:
    """The file's columns for these quantiles.

    >>> columns((0.1, 0.5, 0.9))
    ['model', 'series', 'origin', 'step', 'target', 'mean', 'q0.1', 'q0.5', 'q0.9', 'actual']
    """
    return ["model", "series", "origin", "step", "target", "mean", *(f"q{q:g}" for q in quantiles), "actual"]


def part_path(path: Path, worker: int) -> Path:
    """Where worker process ``worker`` (from 1) writes its rows, next to ``path``."""
    path = Path(path)
    return path.with_name(f".part{worker}.{path.name}")


class ForecastRows:
    """Writes rows as they are scored; :attr:`names` maps series indexes to ids (the caller appends new ones).

    ``header`` False leaves out the CSV header (a part appended to a file that has one).
    """

    def __init__(self, path: Path, quantiles: tuple[float, ...], buckets: Buckets, header: bool = True) -> None:
        self.path = Path(path)
        self.kind = forecast_format(self.path)
        self.quantiles = tuple(quantiles)
        self.buckets = buckets
        self.names: list[str] = []
        self._quoted: list[str] = []
        self._iso: dict[int, str] = {}
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._number = ",".join(["%.6g"] * (1 + len(self.quantiles)) + ["%.12g"])
        self._text: IO[str] | None = None
        self._parquet: Any = None
        self._batch: dict[str, list] = {}
        self._batch_rows = 0
        if self.kind == "parquet":
            self._start_parquet()
        else:
            # open for the whole run, closed by close(); gzip level 3: fast, the rows repeat much
            opened = (gzip.open(self.path, "wt", compresslevel=3, encoding="utf-8", newline="")  # noqa: SIM115
                      if self.kind == "csv.gz" else self.path.open("w", encoding="utf-8", newline=""))
            self._text = opened
            if header:
                opened.write(",".join(columns(self.quantiles)) + "\n")

    def iso(self, bucket: int) -> str:
        """The ISO start of ``bucket`` (cached)."""
        text = self._iso.get(bucket)
        if text is None:
            if len(self._iso) > 4096:
                self._iso.clear()
            text = self._iso[bucket] = to_iso(self.buckets.start_ms(bucket))
        return text

    def write(
        self,
        model: str,
        origin: int,
        step: int,
        values: np.ndarray,
        mean: np.ndarray,
        actual: np.ndarray,
        series: np.ndarray | None = None,
    ) -> None:
        """Rows of one (model, origin, step): quantiles [n, Q], means and actuals [n] of the series ``series``
        (indexes into :attr:`names`; None: ``0 .. n-1``)."""
        n = len(mean)
        if n == 0:
            return
        self.rows += n
        target = origin + step - 1
        if self._text is None:
            self._add_parquet(model, origin, step, target, values, mean, actual, series)
            return
        wanted = n if series is None else int(np.max(series)) + 1
        while len(self._quoted) < wanted:
            self._quoted.append(_csv_cell(self.names[len(self._quoted)]))
        names = self._quoted if series is None else [self._quoted[i] for i in series.tolist()]
        head = f"{model},"
        middle = f",{self.iso(origin)},{step},{self.iso(target)},"
        number = self._number
        table = np.column_stack([mean, values, actual]).tolist()
        self._text.write("".join([f"{head}{name}{middle}{number % tuple(row)}\n"
                                  for name, row in zip(names, table, strict=False)]))

    def close(self) -> None:
        """Flush and close the file."""
        if self._text is not None:
            self._text.close()
            self._text = None
        if self._parquet is not None:
            self._flush_parquet()
            self._parquet.close()
            self._parquet = None

    # -- Parquet (pyarrow, optional) ------------------------------------------------------------------------

    def _schema(self) -> Any:
        import pyarrow as pa

        fields = [pa.field("model", pa.string()), pa.field("series", pa.string()), pa.field("origin", pa.string()),
                  pa.field("step", pa.int32()), pa.field("target", pa.string()), pa.field("mean", pa.float64())]
        fields += [pa.field(f"q{q:g}", pa.float64()) for q in self.quantiles]
        return pa.schema([*fields, pa.field("actual", pa.float64())])

    def _start_parquet(self) -> None:
        import pyarrow.parquet as pq

        self._parquet = pq.ParquetWriter(str(self.path), self._schema())
        self._batch = {name: [] for name in columns(self.quantiles)}

    def _add_parquet(self, model: str, origin: int, step: int, target: int, values: np.ndarray, mean: np.ndarray,
                     actual: np.ndarray, series: np.ndarray | None) -> None:
        n = len(mean)
        batch = self._batch
        batch["model"].append(np.full(n, model, dtype=object))
        names = self.names[:n] if series is None else [self.names[i] for i in series.tolist()]
        batch["series"].append(np.asarray(names, dtype=object))
        batch["origin"].append(np.full(n, self.iso(origin), dtype=object))
        batch["step"].append(np.full(n, step, dtype=np.int32))
        batch["target"].append(np.full(n, self.iso(target), dtype=object))
        batch["mean"].append(np.asarray(mean, dtype=np.float64))
        for j, q in enumerate(self.quantiles):
            batch[f"q{q:g}"].append(np.asarray(values[:, j], dtype=np.float64))
        batch["actual"].append(np.asarray(actual, dtype=np.float64))
        self._batch_rows += n
        if self._batch_rows >= ROW_GROUP:
            self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa

        if not self._batch_rows:
            return
        schema = self._schema()
        arrays = [pa.array(np.concatenate(self._batch[f.name]), type=f.type) for f in schema]
        self._parquet.write_table(pa.Table.from_arrays(arrays, schema=schema))
        self._batch = {name: [] for name in columns(self.quantiles)}
        self._batch_rows = 0


def merge_parts(path: Path, parts: list[Path]) -> None:
    """Append the worker processes' ``parts`` to the main file at ``path`` (closed), and delete them."""
    path = Path(path)
    present = [part for part in parts if part.exists()]
    if forecast_format(path) == "parquet" and present:
        import pyarrow.parquet as pq

        merged = path.with_name(f".{path.name}.merged")
        first = pq.ParquetFile(str(path))
        with pq.ParquetWriter(str(merged), first.schema_arrow) as writer:
            for name in [path, *present]:
                parquet = pq.ParquetFile(str(name))
                for group in range(parquet.num_row_groups):
                    writer.write_table(parquet.read_row_group(group))
        os.replace(merged, path)
    else:
        with path.open("ab") as out:
            for part in present:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
    for part in present:
        part.unlink()


def _csv_cell(text: str) -> str:
    """``text`` quoted for CSV when it holds a comma, a quote or a line break."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
