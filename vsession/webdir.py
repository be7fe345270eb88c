"""Where the web/ files are, whether vsession runs from a checkout or a plain `pip install`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


@cache
def web_dir() -> Path:
    return Path(str(resources.files("vsession.web")))
