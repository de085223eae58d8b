"""The ``gridpulse`` command line.

Sub-commands are discovered from :mod:`gridpulse.commands`: every module there defines
``register(subparsers)``. Messages follow ``--lang`` (default: the environment, zh when unset).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import gridpulse.commands
from gridpulse import __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="gridpulse",
        description="GridPulse 网格脉搏: grid management (网格化管理) for Chinese cities",
    )
    parser.add_argument("--version", action="version", version=f"gridpulse {__version__}")
    parser.add_argument(
        "--lang", choices=("zh", "en"), default=None,
        help="message language (default: GRIDPULSE_LANG or the locale; zh when unset)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(gridpulse.commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"gridpulse.commands.{mod.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
