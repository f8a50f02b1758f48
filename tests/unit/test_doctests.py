"""Every docstring example in the package runs, so the docs cannot rot."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tidecast

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(tidecast.__path__, "tidecast.")
    if name not in {"tidecast.supervisor"}
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
