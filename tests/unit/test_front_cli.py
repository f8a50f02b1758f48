"""The front's commands and import discipline: every command listed in ``--help`` with its help line, and
parsing any command loading no torch, numpy, kafka, redis or rich; the live wiring's error paths; the embedded
servers' supervisor check."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stand_ins import CheckpointRedis, RecordingSink

from tidecast import live
from tidecast.cli import build_parser, main

HEAVY = ("torch", "numpy", "river", "lightgbm", "matplotlib", "kafka", "redis", "rich", "tidecast.models.",
         "tidecast.stream.backtest")
LIGHT = ("tidecast.models.quantiles",)  # pure Python: the settings validate quantiles with it


HELP_LINES = (
    "infra start or stop the embedded Kafka-compatible broker and Redis",
    "produce send events to Kafka (synthetic or from a file)",
    "ingest consume clicks and sales into the Redis feature windows",
    "forecast close buckets as watermarks pass: learn, forecast, publish",
    "run ingest and forecast together (the single-machine default)",
    "whatif forecast chosen series under other plans, read-only (no learning)",
    "tail follow the forecast topic",
    "inspect show a series' windows or the ingest counters",
    "demo run the whole pipeline end to end on the embedded servers",
    "backtest replay a history file through the pipeline; score tidecast against baselines",
)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse pads and may wrap a help line
    missing = [line for line in HELP_LINES if line not in out]
    assert missing == []
    assert [out.index(line) for line in HELP_LINES] == sorted(out.index(line) for line in HELP_LINES)


def test_a_command_parses_with_its_own_flags() -> None:
    args = build_parser().parse_args(["--home", "/tmp/x", "run", "--until-idle", "5"])
    assert (args.command, args.until_idle, args.handler.__name__) == ("run", 5.0, "run_both")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tail", "--no-such-flag"])


@pytest.mark.parametrize("argv", [
    ["--help"], ["inspect", "stats", "--json"], ["infra", "status"], ["infra", "up"], ["tail"],
    ["produce", "synthetic"], ["ingest"], ["forecast"], ["run"], ["whatif", "s.jsonl"], ["demo"],
    ["backtest", "history.csv"],
])
def test_parsing_a_light_command_imports_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys; from tidecast.cli import build_parser\n"
        f"try:\n    build_parser().parse_args({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r}) and m not in {LIGHT!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "[]"


def test_stop_on_signals_restores_the_previous_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    calls = []
    with live.stop_on_signals() as stop:
        stop.call(lambda: calls.append("first"))
        stop.call(lambda: calls.append("second"))  # replaces the first: one running worker at a time
        signal.raise_signal(signal.SIGTERM)
    assert stop.requested and calls == ["second"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_no_signals_leaves_the_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    with live.stop_on_signals(()) as stop:
        assert signal.getsignal(signal.SIGINT) is before
    assert not stop.requested


def test_a_refused_checkpoint_is_a_config_error_and_closes_the_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    from tidecast.config import ConfigError, Endpoints, Settings
    from tidecast.models import checkpoint
    from tidecast.producers import forecast_publisher

    blob = checkpoint.dumps({"format": "tidecast.forecaster/1", "last_closed": 3})
    client = CheckpointRedis(blob)
    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(lambda url, **kwargs: client))
    monkeypatch.setattr(forecast_publisher, "KafkaForecastSink", RecordingSink)
    RecordingSink.instances.clear()
    endpoints = Endpoints("127.0.0.1:1", "redis://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match=r"Redis key x\.checkpoint:forecaster:all .*another tidecast version"):
        live.build(Settings(topic_prefix="x."), endpoints)
    assert [sink.closed for sink in RecordingSink.instances] == [True]
    assert any("DEL" in script for script in client.scripts_run)  # the lease was given up


def _lookalike(*argv: str) -> subprocess.Popen:
    """A sleeping Python process whose command line reads ``python -c ... ARGV`` (once it has exec'd: until
    then /proc shows the forking parent's command line)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])
    deadline = time.monotonic() + 10
    while b"time.sleep(60)" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the look-alike process did not start"
        time.sleep(0.01)
    return proc


@pytest.mark.parametrize(("argv", "is_supervisor"), [
    (("-m", "tidecast.infra.supervisor", "--home", "h"), True),
    (("-m", "tidecast.supervisor", "--home", "h"), True),  # started by the version before tidecast.infra
    (("-m", "tidecast.supervisors", "--home", "h"), False),
    (("tidecast.supervisor.log",), False),  # a reused PID that merely mentions the name
])
def test_supervisor_check_knows_this_and_the_previous_module(argv: tuple[str, ...], is_supervisor: bool) -> None:
    from tidecast.infra.embedded import supervisor_runs

    proc = _lookalike(*argv)
    try:
        assert supervisor_runs(proc.pid) is is_supervisor
    finally:
        proc.kill()
        proc.wait()
    assert not supervisor_runs(proc.pid)


def test_servers_of_the_previous_version_are_found_and_stopped(tmp_path) -> None:
    import json

    from tidecast import infra
    from tidecast.config import Settings
    from tidecast.infra.embedded import supervisor_runs

    old = _lookalike("-m", "tidecast.supervisor", "--home", str(tmp_path))
    try:
        (tmp_path / "infra").mkdir()
        (tmp_path / "infra" / "state.json").write_text(json.dumps({
            "ready": True, "kafka": "127.0.0.1:1", "redis": "redis://127.0.0.1:2/0",
            "pids": {"supervisor": old.pid}}))  # no server PIDs: down skips them
        settings = Settings(home=tmp_path)
        assert infra.find(settings) == infra.Endpoints("127.0.0.1:1", "redis://127.0.0.1:2/0")
        assert infra.down(settings, timeout=5)
        assert not supervisor_runs(old.pid)  # stopped (and reaped: it is our child) by down
    finally:
        old.kill()
        old.wait()


def test_a_hold_is_told_once_each_time_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    class Loop:
        held: str | None = None

    holder = type("LiveForecaster", (), {"forecaster": Loop()})()
    told: list[str] = []
    holds = live._Holds(holder, told.append)  # type: ignore[arg-type]
    for held in (None, "10 empty buckets", "10 empty buckets", None, "10 empty buckets"):
        holder.forecaster.held = held
        holds.check()
    assert told == ["10 empty buckets", "10 empty buckets"]
    live.say_held("10 empty buckets")
    assert "HOLDING: 10 empty buckets" in capsys.readouterr().err


def test_forecast_and_run_take_an_allowance_of_empty_buckets() -> None:
    parser = build_parser()
    assert parser.parse_args(["forecast", "--allow-empty-buckets", "30"]).allow_empty_buckets == 30
    assert parser.parse_args(["run"]).allow_empty_buckets == 0


def test_sigterm_while_a_job_starts_is_a_clean_stop(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "TIDECAST_HOME": str(tmp_path), "TIDECAST_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "TIDECAST_REDIS_URL": "redis://127.0.0.1:1/0", "TIDECAST_OUTAGE_TIMEOUT": "60s"}
    job = subprocess.Popen([sys.executable, "-m", "tidecast", "forecast"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    time.sleep(3)  # still starting: its Redis is unreachable, and it waits for it
    assert job.poll() is None
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=30)
    assert job.returncode == 0, stderr.decode()[-2000:]


def test_sigterm_while_the_commands_import_is_a_clean_stop() -> None:
    """The signal arrives while ``tidecast.cli`` loads (a finder raises it there): exit 0, not death by -15."""
    import subprocess
    import sys

    script = (
        "import signal, sys\n"
        "class SigtermOnImport:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tidecast.cli':\n"
        "            signal.raise_signal(signal.SIGTERM)\n"
        "        return None\n"
        "sys.meta_path.insert(0, SigtermOnImport())\n"
        "from tidecast.__main__ import main\n"
        "sys.exit(main(['--version']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"tidecast" not in done.stdout  # it stopped before the command ran
