"""The import-linter contracts (pyproject.toml) name the stream core module by module; this keeps that list
complete, so a new core module cannot slip past the dependency rule. `make lint` runs the contracts."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGE = ("tidecast.stream.adapters", "tidecast.stream.backtest")  # the stream package's edge, not its core


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["name"]: contract for contract in config["contracts"]}


def stream_core() -> set[str]:
    package = importlib.import_module("tidecast.stream")
    names = {name for _, name, _ in pkgutil.walk_packages(package.__path__, "tidecast.stream.")}
    return {name for name in names if not name.startswith(EDGE)}


def test_the_stream_core_contracts_list_every_core_module() -> None:
    core = stream_core()
    assert "tidecast.stream.forecaster" in core and len(core) >= 9
    for name in ("The stream core imports no model library, I/O client, plotting or process pool",
                 "The core (stream core, models) depends on nothing outside it"):
        listed = {m for m in contracts()[name]["source_modules"] if m.startswith("tidecast.stream")}
        assert listed == core, f"{name}: add {sorted(core - listed)}, drop {sorted(listed - core)}"


def test_the_stream_package_itself_imports_nothing() -> None:
    # its __init__ cannot be a contract source without taking in adapters/ and backtest/, so it stays empty
    tree = ast.parse((ROOT / "stream" / "__init__.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
