"""Session-wide test settings and the embedded servers.

Property tests explore new random examples on every local run; CI sets ``HYPOTHESIS_PROFILE=ci`` (see
``.ci/run``) for a fixed, reproducible set, so a landing never hangs on a draw. A failure found locally is
added as an ``@example``.

``servers``: the embedded broker and valkey-server, started once per test session when a test first asks
for them, on free loopback ports. They are tied to the pytest process (parent-death signal), so not even a
killed test run leaves them behind, and are stopped by PID at the end of the session.

``cluster``: the URL (``redis+cluster://...``) of a three-master Redis Cluster of embedded valkey-servers on
loopback (:func:`tidecast.infra.cluster.running_cluster`: slots dealt by the fixture, no replicas), started
once per session when a test first asks for it, its servers tied to the pytest process and stopped by PID.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tidecast import infra
from tidecast.config import Endpoints, Settings
from tidecast.infra.cluster import running_cluster

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    home = tmp_path_factory.mktemp("infra")
    with infra.running(Settings(home=home)) as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url
