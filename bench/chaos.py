"""Chaos bench: a real stream through real tidecast processes while they are killed and their servers fail.

    .venv/bin/python bench/chaos.py            # the full plan: ~586k events, 20 ingest and 6 forecaster kills,
                                                # Redis and the broker paused 30 s each, one FLUSHALL, 10k hostile
    .venv/bin/python bench/chaos.py --ci       # the CI plan (tests/chaos/test_chaos.py)

The harness is tests/chaos/harness.py (its docstring says what is done and checked). The report counts events
lost and double-counted in the windows against an independent recount, hostile messages missing from the DLQ,
forecasts missing for any (series, origin), crashes, and the SIGTERM exit time; it exits 1 unless all are zero.
Servers of its own run under a temporary folder (kept with the process logs when the run fails).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "chaos"), str(ROOT / "tests" / "integration")]

from harness import CI, FULL, Plan, Report, run  # noqa: E402


def parse(argv: list[str] | None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ci", action="store_true", help="the CI plan instead of the full one")
    for f in dataclasses.fields(Plan):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=float if "_s" in f.name else int, default=None,
                            help=f"override the plan's {f.name}")
    args = parser.parse_args(argv)
    plan = CI if args.ci else FULL
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(Plan) if getattr(args, f.name) is not None}
    if "flushall" in changes:
        changes["flushall"] = bool(changes["flushall"])
    return dataclasses.replace(plan, **changes)


def show(plan: Plan, report: Report) -> None:
    load = os.getloadavg()
    rows = [
        ("plan", f"{plan.series} series x {plan.days} days, {plan.ingest_workers} ingest workers"),
        ("events produced (valid)", f"{report.events:,} (+{report.duplicates_sent:,} re-sent duplicates)"),
        ("hostile messages", f"{report.hostile_sent:,} ({report.hostile_bytes / 1e6:.1f} MB)"),
        ("SIGKILLs", f"{report.kills['ingest']} ingest, {report.kills['forecaster']} forecaster"),
        ("server faults", "; ".join(report.faults) or "none"),
        ("plans sent (promotions announced 7 days ahead)", f"{report.plans_sent:,}"),
        ("ingested (store counter: events + plans)", f"{report.ingested:,}"),
        ("events lost in the windows", _fields(report.lost)),
        ("events double-counted", _fields(report.doubled)),
        ("windows differing from the recount", f"{report.windows_differing:,}"),
        ("plans: sent (last per bucket) / wrong or missing / unexpected",
         f"{report.plans:,} / {report.plans_wrong:,} / {report.plans_unexpected:,}"),
        ("hostile messages missing from the DLQ", f"{report.hostile_missing_from_dlq:,}"),
        ("DLQ messages without a reason", f"{report.dlq_without_reason:,}"),
        ("DLQ messages / largest", f"{report.dlq_messages:,} / {report.dlq_largest_bytes:,} bytes"),
        ("bucket closes checked", f"{report.origins}"),
        ("(series, origin) forecasts missing", f"{report.forecasts_missing:,} "
                                               f"({report.forecasts_published:,} messages published)"),
        ("forecast ids per (series, origin), most", f"{report.ids_per_forecast_max}"),
        ("stops on lost state (expected after FLUSHALL)", f"{report.stopped_on_lost_state}"),
        ("crashes", f"{len(report.crashes)}"),
        ("SIGTERM: slowest exit / non-zero exits", f"{report.sigterm_exit_s:.1f} s / {len(report.sigterm_nonzero)}"),
        ("wall time", f"{report.seconds:.0f} s (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
                      f"{os.cpu_count()} CPUs)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print("  top DLQ reasons: " + "; ".join(f"{reason} x{n:,}" for reason, n in report.dlq_reasons.items()))
    for crash in report.crashes + report.sigterm_nonzero:
        print(f"  ! {crash}")
    print("OK: nothing lost, doubled or crashed" if report.ok else "FAILED")


def _fields(values: dict[str, float]) -> str:
    total = sum(values.values())
    return "0" if not total else ", ".join(f"{name} {v:g}" for name, v in values.items() if v)


def main(argv: list[str] | None = None) -> int:
    plan = parse(argv)
    home = Path(tempfile.mkdtemp(prefix="tidecast-chaos-"))
    try:
        report = run(plan, home)
    except BaseException:
        print(f"the run stopped; servers' and processes' logs kept in {home}")
        raise
    show(plan, report)
    if report.ok:
        shutil.rmtree(home, ignore_errors=True)
        return 0
    print(f"servers' and processes' logs kept in {home}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
