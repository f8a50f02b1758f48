"""Every docstring example in the package runs, so the docs cannot rot."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("tidecast", "tidecast.stream", "tidecast.models", "tidecast.consumers", "tidecast.producers")
# the folders are mapped into one namespace (package-dir), so each package is walked on its own
MODULES = sorted(
    {
        name
        for package in PACKAGES
        for _, name, _ in pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")
    }
    - {"tidecast.infra.supervisor"}
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
