"""Sub-commands of the ``gridpulse`` CLI, one module per area.

Each module defines ``register(subparsers) -> None`` that adds its sub-commands; every
sub-command's handler takes the parsed ``argparse.Namespace`` and returns an exit code.
``gridpulse.cli`` discovers the modules here, so adding a file adds its commands.
"""
