"""`vsession backup` and `vsession restore`."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Adds the subcommands to `vsession`'s parser; `common` carries --config/--data-dir/--host/--port."""
