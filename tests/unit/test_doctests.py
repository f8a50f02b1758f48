"""The one doctest runner: every module of the package has a runnable example, and each runs once.

The folders are linked into the one ``tidecast`` package (``tidecast/stream -> ../stream``, ...), so one walk
finds every module exactly once.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tidecast

MODULES = ["tidecast", *sorted(name for _, name, _ in pkgutil.walk_packages(tidecast.__path__, "tidecast."))]
NO_EXAMPLE: dict[str, str] = {}  # module -> why it cannot have a runnable example (none so far)


def test_the_walk_finds_every_module_once() -> None:
    assert len(MODULES) == len(set(MODULES))
    assert {"tidecast.stream.events", "tidecast.models.learner", "tidecast.consumers.ingest_worker",
            "tidecast.producers.synthetic", "tidecast.stream.backtest.engine", "tidecast.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name not in NO_EXAMPLE:
        assert result.attempted > 0, f"{name} has no example in its docstrings: add a short runnable one"
