"""Start-up cost of the ``tidecast`` commands: CPU and wall seconds per command, next to references.

    .venv/bin/python bench/startup.py [--runs 5] [--top 12]

Each command runs as ``python -m tidecast.cli ...`` in a child process, ``--runs`` times; the figures are
medians. CPU is user + system of the child (deltas of ``resource.getrusage(RUSAGE_CHILDREN)``), wall is
``time.perf_counter`` around the run. ``infra status`` and ``inspect stats --json`` run against embedded
servers started for the run (``tidecast.infra.running`` on a temporary home). The references, measured in
the same run, are an empty interpreter (``python -c pass``) and ``python -c "import torch"``; the load average
and the core count are printed because CPU figures move with the machine. Last, the modules that cost most
to import for ``--help`` (cumulative microseconds from ``python -X importtime``).

Output of one run (2026-11-30, 2 cores, other engineers' test suites running alongside; every command module
is imported for parsing, each deferring its heavy imports to its handler)::

    load average (1/5/15 min) before, after: 2.22 1.39 1.35, 2.25 1.43 1.37; 2 cores; 5 runs each, median
    command                            cpu s   wall s
    python -c pass                     0.025    0.028
    python -c "import torch"           1.804    1.856
    tidecast --help                    0.090    0.097
    tidecast infra status              0.116    0.119
    tidecast inspect stats --json      0.221    0.223
    tidecast tail --help               0.077    0.079
    tidecast produce --help            0.073    0.075
    tidecast demo --help               0.075    0.077
    tidecast backtest --help           0.076    0.077

    import time of `tidecast --help`, top 12 by cumulative time:
      cumulative us  module
              29321  tidecast.commands.backtest_cmd
              23565  tidecast.infra
              13922  site
              13841  tidecast.config
    ...
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tidecast import infra
from tidecast.config import Settings

TIDECAST = [sys.executable, "-m", "tidecast"]
REFERENCES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}
COMMANDS = {
    "tidecast --help": ["--help"],
    "tidecast infra status": ["infra", "status"],
    "tidecast inspect stats --json": ["inspect", "stats", "--json"],
    "tidecast tail --help": ["tail", "--help"],
    "tidecast produce --help": ["produce", "--help"],
    "tidecast demo --help": ["demo", "--help"],
    "tidecast backtest --help": ["backtest", "--help"],
}


def clean_env(home: Path) -> dict[str, str]:
    """This environment without TIDECAST_* settings, on ``home`` (where the embedded servers run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDECAST_")}
    return {**env, "TIDECAST_HOME": str(home)}


def measure(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median CPU seconds (user + sys of the child) and median wall seconds over ``runs`` runs."""
    cpu, wall = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(cpu), statistics.median(wall)


def import_times(env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the ``top`` costliest imports of ``tidecast --help``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tidecast", "--help"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median), default 5")
    parser.add_argument("--top", type=int, default=12, help="modules listed from -X importtime, default 12")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, infra.running(Settings(home=Path(tmp))):
        env = clean_env(Path(tmp))
        for label, command in REFERENCES.items():
            rows.append((label, *measure(command, env, args.runs)))
        for label, command in COMMANDS.items():
            rows.append((label, *measure([*TIDECAST, *command], env, args.runs)))
        imports = import_times(env, args.top)
    load = ", ".join(" ".join(f"{v:.2f}" for v in values) for values in (load_before, os.getloadavg()))
    print(f"load average (1/5/15 min) before, after: {load}; {os.cpu_count()} cores; {args.runs} runs each, median")
    print(f"{'command':<32}{'cpu s':>8}{'wall s':>9}")
    for label, cpu, wall in rows:
        print(f"{label:<32}{cpu:>8.3f}{wall:>9.3f}")
    print(f"\nimport time of `tidecast --help`, top {args.top} by cumulative time:")
    print(f"  {'cumulative us':>13}  module")
    for cumulative, name in imports:
        print(f"  {cumulative:>13}  {name}")


if __name__ == "__main__":
    main()
