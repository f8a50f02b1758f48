"""Write Rossmann as a weekly store panel with planned promotions: the shape of a retailer's weekly file.

Weeks start on Monday; a week's `sales` is the sum of its days, `promo` 1.0 if the store ran its promotion on
any day of it (Rossmann's run Monday to Friday) and `open` 1 if the store opened on any day. The first and
last weeks of the file are partial (2013-01-01 is a Tuesday, 2015-07-31 a Friday) and are left out. The 180
stores without rows in the second half of 2014 have no rows in those weeks either.

    .venv/bin/python bench/rossmann_weekly.py /tmp/rossmann_weekly.csv.gz
    tidecast backtest /tmp/rossmann_weekly.csv.gz --columns ts=week,store=store,qty=sales,promo=promo,open=open \\
        --known promo,open --bucket 1w --horizon 8
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
from collections import defaultdict
from pathlib import Path

DAILY = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "rossmann" / "rossmann_daily.csv.gz"


def weekly(daily: Path) -> dict[tuple[dt.date, str], list[float]]:
    """(Monday, store) -> [sales, promo, open] summed or or-ed over the week's days."""
    weeks: dict[tuple[dt.date, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    with gzip.open(daily, "rt", newline="") as f:
        for row in csv.DictReader(f):
            day = dt.date.fromisoformat(row["date"])
            cell = weeks[(day - dt.timedelta(days=day.weekday()), row["store"])]
            cell[0] += float(row["sales"])
            cell[1] = max(cell[1], float(row["promo"]))
            cell[2] = max(cell[2], float(row["open"]))
    return weeks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the weekly CSV to write (.csv.gz)")
    parser.add_argument("--daily", type=Path, default=DAILY, help="rossmann_daily.csv.gz")
    args = parser.parse_args()
    weeks = weekly(args.daily)
    mondays = sorted({monday for monday, _ in weeks})
    whole = set(mondays[1:-1])  # the first and last weeks are partial
    with gzip.open(args.out, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["week", "store", "sales", "promo", "open"])
        for (monday, store), (sales, promo, is_open) in sorted(weeks.items()):
            if monday in whole:
                writer.writerow([monday.isoformat(), store, int(sales), f"{promo:.1f}", int(is_open)])
    print(f"{args.out}: {sum(1 for monday, _ in weeks if monday in whole):,} store-weeks, {len(whole)} weeks")


if __name__ == "__main__":
    main()
