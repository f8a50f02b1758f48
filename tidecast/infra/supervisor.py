"""The process that owns the embedded broker and valkey-server (started by :func:`tidecast.infra.up`).

Run as ``python -m tidecast.infra.supervisor --home DIR``. It starts both servers on free loopback ports with a
parent-death signal, waits until they answer, creates the five topics with their final partition
counts, writes ``DIR/infra/state.json`` and then watches: it tears everything down on SIGTERM or
SIGINT, when the broker dies (its topics lived in its memory: they are gone), or when ``--owner-pid`` is gone.
When valkey-server dies it is started again on the same port (its data is lost; the ingest reports the lost
state) and the state file gets its new PID; the broker and its topics stay up.

``main`` is the five steps in order: :func:`parse_args`, :func:`start_servers`, :func:`publish` (topics and
the state file), :func:`watch`, :func:`tear_down`.

>>> parse_args(["--home", "/tmp/h", "--partitions", "3"]).partitions
3
>>> watch({}, owner_pid=None, stopping=lambda: True)  # asked to stop: a clean exit
0
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tidecast.config import Settings, Topics, redact
from tidecast.infra.embedded import binaries
from tidecast.infra.processes import die_with_parent, free_port, pid_alive, wait_for_port
from tidecast.stream.adapters.kafka_clients import create_topics, topic_retention_ms


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tidecast.infra.supervisor")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--topic-prefix", default="tidecast.")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--owner-pid", type=int)
    return parser.parse_args(argv)


def start_servers(folder: Path, children: dict[str, subprocess.Popen]) -> tuple[str, str]:
    """Start valkey-server and Tansu on free loopback ports, adding them to ``children`` as they start (so a
    failure half way still tears down the first); wait until both answer. Returns (bootstrap, redis URL)."""
    tansu, _ = binaries()
    kafka_port, redis_port = free_port(), free_port()
    children["redis"] = spawn_redis(folder, redis_port)
    children["kafka"] = _spawn(
        [str(tansu), "broker", "--listener-url", f"tcp://127.0.0.1:{kafka_port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{kafka_port}", "--storage-engine", "memory://tansu/"],
        folder / "tansu.log",
    )
    for name, port in (("redis", redis_port), ("kafka", kafka_port)):
        if not wait_for_port(port, 30):
            raise RuntimeError(f"{name} did not open port {port}")
    return f"127.0.0.1:{kafka_port}", f"redis://127.0.0.1:{redis_port}/0"


def spawn_redis(folder: Path, port: int) -> subprocess.Popen:
    """valkey-server on ``127.0.0.1:port``, in memory only (no snapshot, no append-only file)."""
    _, valkey = binaries()
    return _spawn(
        [str(valkey), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--protected-mode", "yes", "--loglevel", "warning"],
        folder / "valkey.log",
    )


def restart_redis(folder: Path, state: dict, children: dict[str, subprocess.Popen], timeout: float = 30.0) -> bool:
    """Start valkey-server again on its port and record its new PID in the state file; False if it does not
    answer within ``timeout`` seconds."""
    port = int(state["redis"].rsplit(":", 1)[1].split("/", 1)[0])
    children["redis"] = spawn_redis(folder, port)
    if not wait_for_port(port, timeout):
        return False
    state["pids"]["redis"] = children["redis"].pid
    write_state(folder, state)
    return True


def write_state(folder: Path, state: dict) -> None:
    """Write ``state.json`` atomically (a reader sees the old file or the new one)."""
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(folder / "state.json")


def publish(args: argparse.Namespace, folder: Path, children: dict[str, subprocess.Popen], bootstrap: str,
            redis_url: str) -> dict:
    """Create the topics, then write the state file (atomically) that tells later commands where the servers are."""
    create_topics(bootstrap, Topics(args.topic_prefix).all, args.partitions,
                  retention_ms=topic_retention_ms(Settings.from_env()))  # TIDECAST_RETENTION x TIDECAST_BUCKET
    state = {
        "ready": True,
        "kafka": bootstrap,
        "redis": redis_url,
        "pids": {"supervisor": os.getpid(), **{name: p.pid for name, p in children.items()}},
        "topic_prefix": args.topic_prefix,
        "partitions": args.partitions,
    }
    write_state(folder, state)
    print(f"embedded infrastructure ready: {json.dumps({**state, 'redis': redact(redis_url)})}", flush=True)
    return state


def watch(children: dict[str, subprocess.Popen], owner_pid: int | None, stopping: Callable[[], bool],
          poll_seconds: float = 0.2, restart: dict[str, Callable[[], bool]] | None = None) -> int:
    """Until ``stopping()`` or the owner is gone (0), or a server died that ``restart`` cannot start again (1).

    ``restart`` maps a server's name to what starts it again (True once it answers).

    >>> class Exited:
    ...     def poll(self): return 1
    >>> watch({"redis": Exited()}, None, stopping=lambda: False)
    server redis exited unexpectedly (code 1); stopping everything
    1
    """
    restart = restart or {}
    while not stopping():
        if owner_pid is not None and not pid_alive(owner_pid):
            print(f"owner {owner_pid} is gone; stopping", flush=True)
            break
        for name, proc in list(children.items()):
            code = proc.poll()
            if code is None:
                continue
            if name not in restart:
                print(f"server {name} exited unexpectedly (code {code}); stopping everything", flush=True)
                return 1
            print(f"server {name} exited (code {code}); starting it again on the same port (its data is lost)",
                  flush=True)
            if not restart[name]():
                print(f"server {name} did not come back; stopping everything", flush=True)
                return 1
            print(f"server {name} is back", flush=True)
        time.sleep(poll_seconds)
    return 0


def tear_down(folder: Path, children: dict[str, subprocess.Popen]) -> None:
    """Stop the servers (SIGTERM, SIGKILL after 5 s) and remove the state file if it is still this process's."""
    for proc in children.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in children.values():
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    state_file = folder / "state.json"
    try:
        if json.loads(state_file.read_text())["pids"]["supervisor"] == os.getpid():
            state_file.unlink()
    except (OSError, ValueError, KeyError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.home / "infra"
    folder.mkdir(parents=True, exist_ok=True)
    stop_requested = []
    for sig in (signal.SIGTERM, signal.SIGINT):  # held for the life of the process: a request ends the watch
        signal.signal(sig, lambda signum, frame: stop_requested.append(signum))
    children: dict[str, subprocess.Popen] = {}
    try:
        bootstrap, redis_url = start_servers(folder, children)
        state = publish(args, folder, children, bootstrap, redis_url)
        return watch(children, args.owner_pid, stopping=lambda: bool(stop_requested),
                     restart={"redis": lambda: restart_redis(folder, state, children)})
    except Exception as exc:
        print(f"supervisor failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        tear_down(folder, children)


def _spawn(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )


if __name__ == "__main__":
    sys.exit(main())
