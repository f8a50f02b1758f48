"""A Redis Cluster of embedded valkey-servers on loopback: the tests' and benches' stand-in for a production
cluster (``TIDECAST_REDIS_URL=redis+cluster://...``, docs/operations.md).

:func:`running_cluster` starts ``masters`` valkey-servers with ``--cluster-enabled yes`` on free loopback ports
(their cluster bus ports chosen free too), deals the 16,384 hash slots among them in even ranges, has every
node meet the first, waits until every node reports ``cluster_state:ok``, and yields the cluster's URL. No
replicas, in memory only. The servers die with the process that started them (parent-death signal) and are
stopped by PID on the way out.

>>> cluster_url([6379, 6380])
'redis+cluster://127.0.0.1:6379,127.0.0.1:6380'
>>> slot_ranges(3)
[(0, 5460), (5461, 10922), (10923, 16383)]
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from tidecast.infra.embedded import InfraError, binaries
from tidecast.infra.processes import die_with_parent, free_port, stop_pid, wait_for_port

SLOTS = 16_384


def cluster_url(ports: list[int], host: str = "127.0.0.1") -> str:
    return "redis+cluster://" + ",".join(f"{host}:{port}" for port in ports)


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """``masters`` contiguous slot ranges covering all 16,384 slots, as even as they can be."""
    bounds = [round(i * SLOTS / masters) for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


@contextlib.contextmanager
def running_cluster(folder: Path, masters: int = 3, timeout: float = 30.0) -> Iterator[str]:
    """Start a ``masters``-node cluster under ``folder`` (logs, node files); yield its URL; stop it."""
    _, valkey = binaries()
    folder.mkdir(parents=True, exist_ok=True)
    nodes: list[tuple[int, int, subprocess.Popen]] = []
    try:
        for _ in range(masters):
            nodes.append(_started_node(valkey, folder, {p for node in nodes for p in node[:2]}, timeout))
        clients = [redis.Redis(host="127.0.0.1", port=port) for port, _, _ in nodes]
        for client, (low, high) in zip(clients, slot_ranges(masters), strict=True):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        first_port, first_bus, _ = nodes[0]
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", first_port, first_bus)
        _wait_ok(clients, masters, timeout, folder)
        for client in clients:
            client.close()
        yield cluster_url([port for port, _, _ in nodes])
    finally:
        for _, _, process in nodes:
            if process.poll() is None:
                stop_pid(process.pid, "valkey-server")
            process.wait()


def _started_node(valkey: Path, folder: Path, taken: set[int], timeout: float,
                  tries: int = 3) -> tuple[int, int, subprocess.Popen]:
    """One listening cluster node on free ports (not in ``taken``): a free port can be taken by another process
    between choosing it and binding it, so a node that exits before it listens is started again on new ports."""
    for _ in range(tries):
        port, bus = _free_ports(2, taken)
        with open(folder / f"valkey-{port}.log", "ab") as log:
            process = subprocess.Popen(
                [str(valkey), "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-port", str(bus), "--cluster-config-file", str(folder / f"nodes-{port}.conf"),
                 "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no", "--dir", str(folder),
                 "--protected-mode", "yes", "--loglevel", "warning"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if wait_for_port(port, 0.5):
                return port, bus, process
        if process.poll() is None:
            stop_pid(process.pid, "valkey-server")
            process.wait()
    raise InfraError(f"valkey-server (cluster node) did not listen on 127.0.0.1 in {tries} tries; see the "
                     f"valkey-*.log files in {folder}")


def _free_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` distinct free loopback ports, none in ``taken``.

    >>> a, b = _free_ports(2, set())
    >>> a != b
    True
    """
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in taken and port not in ports:
            ports.append(port)
    return ports


def _wait_ok(clients: list[redis.Redis], masters: int, timeout: float, folder: Path) -> None:
    """Until every node knows ``masters`` nodes and says ``cluster_state:ok``."""
    deadline = time.monotonic() + timeout
    while True:
        infos = [client.cluster("INFO") for client in clients]
        if all(info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == masters
               for info in infos):
            return
        if time.monotonic() > deadline:
            raise InfraError(f"the {masters}-node cluster did not form within {timeout:g} s: {infos}; see {folder}")
        time.sleep(0.05)
