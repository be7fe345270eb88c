"""GET /static/<name>: the files of web/, and nothing else. A name is looked up among the files the
folder held at start-up, so no part of a request path reaches the file system: traversal,
%-encodings, NUL bytes, directories and names too long for the file system are simply not found
(aiohttp's static handler answered an over-long name with a 500)."""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

from vsession.webdir import web_dir


def files_of(root: Path) -> dict[str, Path]:
    """Regular files under `root` by their path relative to it; symlinks are not followed."""
    found: dict[str, Path] = {}
    for folder, _, names in os.walk(root):  # a linked folder is listed, not entered
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path
    return found


def add_routes(app: web.Application) -> None:
    files = files_of(web_dir())

    async def static(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app.router.add_get("/static/{name:.+}", static)
