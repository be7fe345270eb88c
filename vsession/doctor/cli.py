"""`vsession doctor`."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Adds the subcommand to `vsession`'s parser; `common` carries --config/--data-dir/--host/--port."""
