"""The process that owns the embedded broker and valkey-server (started by :func:`tidecast.infra.up`).

Run as ``python -m tidecast.infra.supervisor --home DIR``. It starts both servers on free loopback ports with a
parent-death signal, waits until they answer, creates the four topics with their final partition
counts, writes ``DIR/infra/state.json`` and then watches: it tears everything down on SIGTERM or
SIGINT, when a server dies, or when ``--owner-pid`` is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tidecast.config import Topics
from tidecast.infra.embedded import binaries
from tidecast.infra.processes import die_with_parent, free_port, pid_alive, wait_for_port
from tidecast.stream.adapters.kafka_clients import create_topics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tidecast.infra.supervisor")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--topic-prefix", default="tidecast.")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--owner-pid", type=int)
    args = parser.parse_args(argv)

    folder = args.home / "infra"
    folder.mkdir(parents=True, exist_ok=True)
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    tansu, valkey = binaries()
    kafka_port, redis_port = free_port(), free_port()
    children: dict[str, subprocess.Popen] = {}
    try:
        children["redis"] = _spawn(
            [str(valkey), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder), "--protected-mode", "yes", "--loglevel", "warning"],
            folder / "valkey.log",
        )
        children["kafka"] = _spawn(
            [str(tansu), "broker", "--listener-url", f"tcp://127.0.0.1:{kafka_port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{kafka_port}", "--storage-engine", "memory://tansu/"],
            folder / "tansu.log",
        )
        for name, port in (("redis", redis_port), ("kafka", kafka_port)):
            if not wait_for_port(port, 30):
                raise RuntimeError(f"{name} did not open port {port}")
        bootstrap = f"127.0.0.1:{kafka_port}"
        create_topics(bootstrap, Topics(args.topic_prefix).all, args.partitions)
        state = {
            "ready": True,
            "kafka": bootstrap,
            "redis": f"redis://127.0.0.1:{redis_port}/0",
            "pids": {"supervisor": os.getpid(), **{name: p.pid for name, p in children.items()}},
            "topic_prefix": args.topic_prefix,
            "partitions": args.partitions,
        }
        tmp = folder / "state.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(folder / "state.json")
        print(f"embedded infrastructure ready: {json.dumps(state)}", flush=True)
        while not stopping:
            if args.owner_pid is not None and not pid_alive(args.owner_pid):
                print(f"owner {args.owner_pid} is gone; stopping", flush=True)
                break
            dead = [name for name, p in children.items() if p.poll() is not None]
            if dead:
                print(f"server(s) exited unexpectedly: {dead}", flush=True)
                return 1
            time.sleep(0.2)
        return 0
    except Exception as exc:
        print(f"supervisor failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
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


def _spawn(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )


if __name__ == "__main__":
    sys.exit(main())
