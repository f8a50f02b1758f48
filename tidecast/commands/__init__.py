"""The CLI's commands, one module per command group (``tidecast/commands/``): argument parsing and printing only.

Each module exposes ``add_parser(subparsers)``, which sets a ``handler(args, settings)``; the work itself is in
``tidecast.live`` (the live jobs), ``tidecast.infra`` (the embedded servers), ``tidecast.stream.backtest`` and
the adapters. A module imports what its command needs inside the handler, so parsing stays fast. Nothing but
``tidecast.cli`` imports a command (an import-linter contract).

>>> import argparse
>>> from tidecast.commands import inspect_cmd
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> inspect_cmd.add_parser(sub)
>>> sub.choices["inspect"].parse_args(["stats", "--json"]).what
'stats'
"""
