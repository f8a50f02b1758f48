"""`tidecast infra up|down`: endpoints as JSON, found by later commands, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline import TIDECAST

from tidecast.infra.processes import pid_alive

pytestmark = pytest.mark.integration


def tidecast(home: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDECAST_")}
    return subprocess.run([*TIDECAST, "--home", str(home), *args], env=env, capture_output=True, text=True,
                          timeout=120, **kw)


def server_pids(home: Path) -> list[int]:
    state = json.loads((home / "infra" / "state.json").read_text())
    return list(state["pids"].values())


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if pid_alive(p)]


def test_up_json_status_and_down(tmp_path: Path) -> None:
    up = tidecast(tmp_path, "infra", "up", "--json")
    assert up.returncode == 0, up.stderr
    endpoints = json.loads(up.stdout)
    assert endpoints["kafka"].startswith("127.0.0.1:") and endpoints["redis"].startswith("redis://127.0.0.1:")
    pids = server_pids(tmp_path)
    try:
        assert all(pid_alive(p) for p in pids)
        again = tidecast(tmp_path, "infra", "up", "--json")  # idempotent: the same servers
        assert json.loads(again.stdout) == endpoints
        stats = tidecast(tmp_path, "inspect", "stats", "--json")  # a later command finds them
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["ingested"] == 0
    finally:
        down = tidecast(tmp_path, "infra", "down")
    assert down.returncode == 0
    assert wait_gone(pids) == []
    assert not (tmp_path / "infra" / "state.json").exists()


def test_servers_die_with_their_owner(tmp_path: Path) -> None:
    owner = subprocess.Popen(["sleep", "60"])
    up = tidecast(tmp_path, "infra", "up", "--json", "--owner-pid", str(owner.pid))
    assert up.returncode == 0, up.stderr
    pids = server_pids(tmp_path)
    owner.kill()
    owner.wait()
    assert wait_gone(pids) == []


def test_a_sigkilled_parent_takes_its_embedded_servers_along(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from tidecast import infra; from tidecast.config import Settings;"
        f"infra.up(Settings(home=Path({str(tmp_path)!r})), detach=False); print('up', flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "up"
    pids = server_pids(tmp_path)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_gone(pids) == []


def test_commands_without_servers_say_what_to_do(tmp_path: Path) -> None:
    result = tidecast(tmp_path, "inspect", "stats")
    assert result.returncode == 2 and "tidecast infra up" in result.stderr


def test_invalid_configuration_names_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "TIDECAST_BUCKET": "fortnightly"}
    result = subprocess.run([*TIDECAST, "inspect", "stats"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "TIDECAST_BUCKET" in result.stderr
