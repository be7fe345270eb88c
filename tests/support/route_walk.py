"""The route walk: hypothesis-made cases (tests/support/route_cases.py) sent to every route of the
app's router, in the world of tests/support/route_world.py, each reply checked.

Case i goes to route i mod n, where the routes are every (method, resource) pair of
app.router.routes(), so each route gets its share and a new route is walked without being listed.
For every case:
- the status is below 500 and the reply carries no traceback;
- the server logged nothing at ERROR or above, and no exception;
- a refusal (4xx), and any GET, HEAD or OPTIONS, changed nothing in the database beyond what
  tests/support/db_digest.py lets a refusal leave behind.
The world is repaired after a case that succeeded in changing something."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from tests.support.app_client import EVIL_ORIGIN, Server
from tests.support.db_digest import Digester, refusal_audit_problems
from tests.support.route_cases import Body, Case, Long, Param, Raw, Ref, generate
from tests.support.route_world import World, build_world
from vsession.auth.signins import COOKIE
from vsession.http.csrf import SAFE_METHODS
from vsession.rooms.invites import GUEST_COOKIE

CLEAR_FAILURES_EVERY = 200  # cases; see World.repair
JUNK_TOKEN = "A" * 43
# Characters a request target may carry as they are (RFC 3986 pchar, and "/" and "%"): "raw"
# parameters keep these, so traversal and broken %-escapes reach the server unaltered.
RAW_SAFE = "/%:@!$&'()*+,;=-._~"
STATIC_FILES = ["style.css", "favicon.svg", "js/protocol.js", "index.html", "call.html", "js"]
LINE_LIMIT = 8190  # aiohttp's request line limit (its refusal of a longer HEAD has a body)


@dataclass(frozen=True)
class Route:
    method: str
    resource: web.AbstractResource

    @property
    def name(self) -> str:
        return f"{self.method} {self.resource.canonical}"


def app_routes(app: web.Application) -> list[Route]:
    """Every (method, resource) pair of the router, in a stable order."""
    found = {(r.method, r.resource.canonical): Route(r.method, r.resource) for r in app.router.routes()}
    return [found[key] for key in sorted(found)]


@dataclass
class Figures:
    cases: int = 0
    seconds: float = 0.0
    repairs: int = 0
    unsent: int = 0  # cases the client itself could not send (none expected)
    unreadable: int = 0  # HEADs over aiohttp's line limit, refused with a body the client cannot read
    statuses: Counter[int] = field(default_factory=Counter)
    by_route: dict[str, Counter[int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        statuses = dict(sorted(self.statuses.items()))
        lines = [
            f"{self.cases} cases over {len(self.by_route)} routes in {self.seconds:.1f} s ({self.repairs} "
            f"repairs, {self.unreadable} unreadable HEAD refusals, {self.unsent} not sendable); "
            f"statuses {statuses}",
        ]
        for name, counts in sorted(self.by_route.items()):
            lines.append(f"  {name:58} {sum(counts.values()):6}  {dict(sorted(counts.items()))}")
        return "\n".join(lines)


class LogWatch(logging.Handler):
    """Everything the server logs at ERROR or above, or with an exception attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        taken = [
            f"{r.name}: {r.getMessage()}" + (f" ({r.exc_info[1]!r})" if r.exc_info else "")
            for r in self.records
        ]
        self.records.clear()
        return taken


def _text(value: str | Long) -> str:
    return value.unit * value.count if isinstance(value, Long) else value


def _encode(text: str, encoding: str) -> str:
    if encoding == "quote":
        return quote(text, safe="")
    if encoding == "double":
        return quote(quote(text, safe=""), safe="")
    return quote(text, safe=RAW_SAFE)


# What a parameter's name says it holds; any other name is given the session ids.
OBJECTS = {"sid": "session", "rid": "recording", "name": "file"}


def _param_value(refs: dict[str, Any], name: str, param: Param, pattern: str | None) -> str:
    choices = pattern.split("|") if pattern and all(c.isalnum() for c in pattern.split("|")) else None
    if choices and param.use_choice:
        return choices[param.number % len(choices)]
    if param.ref is not None and name == "seat":
        return str(param.number)
    if param.ref is not None and OBJECTS.get(name) == "file":
        return STATIC_FILES[param.number % len(STATIC_FILES)]
    if param.ref is not None:
        return str(refs[f"{param.ref}_{OBJECTS.get(name, 'session')}"])
    return _encode(_text(param.text), param.encoding)


def _path(refs: dict[str, Any], route: Route, case: Case) -> str:
    info = route.resource.get_info()
    if "formatter" not in info:
        return info["path"]
    patterns = dict(_group_patterns(info["pattern"].pattern))
    path = info["formatter"]
    for param, name in zip(case.params, patterns, strict=False):
        path = path.replace("{" + name + "}", _param_value(refs, name, param, patterns[name]), 1)
    return path


def _group_patterns(regex: str) -> list[tuple[str, str | None]]:
    """(name, pattern) of each (?P<name>pattern) group; None for aiohttp's default [^{}/]+."""
    found = []
    rest = regex
    while "(?P<" in rest:
        rest = rest.split("(?P<", 1)[1]
        name, rest = rest.split(">", 1)
        depth, end = 1, 0
        while depth:
            depth += {"(": 1, ")": -1}.get(rest[end], 0)
            end += 1
        pattern = rest[: end - 1]
        found.append((name, None if pattern == "[^{}/]+" else pattern))
    return found


def _json(value: Any, refs: dict[str, Any]) -> str:
    if isinstance(value, Ref):
        return json.dumps(refs[value.name])
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Long):
        return json.dumps(_text(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(_text(k))}: {_json(v, refs)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json(v, refs) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # json.dumps refuses whole numbers past 4300 digits
    return json.dumps(value)


def _body(body: Body, refs: dict[str, Any]) -> bytes | None:
    if body.kind == "none":
        return None
    if body.kind == "bytes":
        return body.data
    if body.kind == "repeat":
        prefix, unit, count, suffix = body.data
        return prefix + unit * count + suffix
    return _json(body.data, refs).encode("utf-8", "surrogatepass")


def _headers(world: World, case: Case) -> dict[str, str]:
    actor = world.actors.get(case.actor)
    headers: dict[str, str] = {}
    origin = {"ok": world.server.origin, "evil": EVIL_ORIGIN, "null": "null"}.get(case.origin)
    if origin is not None:
        headers["Origin"] = origin
    cookies = []
    if actor is not None and actor.therapist_cookie:
        cookies.append(f"{COOKIE}={actor.therapist_cookie}")
    if actor is not None and actor.guest_cookie:
        cookies.append(f"{GUEST_COOKIE}={actor.guest_cookie}")
    if case.extra_cookie == "junk_therapist":
        cookies.append(f"{COOKIE}={JUNK_TOKEN}")
    elif case.extra_cookie == "junk_guest":
        cookies.append(f"{GUEST_COOKIE}={JUNK_TOKEN}")
    elif case.extra_cookie == "owner_and_guest":
        cookies.append(f"{COOKIE}={world.actors['owner'].therapist_cookie}")
        cookies.append(f"{GUEST_COOKIE}={world.actors['guest_own'].guest_cookie}")
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    other = world.actors["other_therapist"] if case.actor != "other_therapist" else world.actors["owner"]
    csrf = {
        "own": actor.csrf if actor is not None else None,
        "other": other.csrf,
        "junk": JUNK_TOKEN,
    }.get(case.csrf)
    if csrf:
        headers["X-CSRF-Token"] = csrf
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    if case.accept is not None:
        headers["Accept"] = case.accept
    return headers


def _reply_problems(status: int, text: bytes) -> list[str]:
    found = [f"status {status}"] if status >= 500 else []
    if b"Traceback" in text or b'File "' in text:
        found.append("a traceback in the reply")
    return found


def describe(route: Route, method: str, path: str, headers: dict[str, str], body: bytes | None) -> str:
    shown = "" if body is None else f", body {len(body)} bytes {body[:160]!r}"
    return f"{route.name}: {method} {path[:200]} headers {headers}{shown}"


async def walk(
    server: Server,
    world: World,
    cases: list[Case],
    first_index: int = 0,
    figures: Figures | None = None,
    progress: Callable[[Figures], None] | None = None,
    routes: list[Route] | None = None,
) -> Figures:
    figures = figures or Figures()
    routes = routes or app_routes(server.app)
    digester = Digester(server.settings.db_path)
    watch = LogWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    session = server.client.session
    base = str(server.client.make_url("/")).rstrip("/")
    started = time.monotonic()
    try:
        before = digester.snapshot()
        for offset, case in enumerate(cases):
            index = first_index + offset
            route = routes[index % len(routes)]
            if index % CLEAR_FAILURES_EVERY == 0 and index:
                await world.repair(clear_failures=True)
                figures.repairs += 1
                before = digester.snapshot()
            refs = world.refs()
            method = case.method or route.method
            path = _path(refs, route, case)
            query = case.query.replace("{sid}", path.rsplit("/", 1)[-1])
            headers = _headers(world, case)
            body = _body(case.body, refs)
            where = describe(route, method, path + query, headers, body)
            url = URL(base + path + quote(query, safe=RAW_SAFE + "?"), encoded=True)
            try:
                async with session.request(
                    method, url, headers=headers, data=body, allow_redirects=False
                ) as reply:
                    status, text = reply.status, await reply.read()
            except aiohttp.ClientResponseError as exc:
                figures.unreadable += 1
                if not (method == "HEAD" and len(url.raw_path_qs) > LINE_LIMIT):
                    figures.problems.append(f"{where}\n  -> unreadable reply: {exc!r}")
                status, text = 0, b""
            except (aiohttp.ClientError, ValueError, UnicodeError) as exc:
                figures.unsent += 1
                figures.problems.append(f"{where}\n  -> not sent: {exc!r}")
                before = digester.snapshot()
                continue
            figures.cases += 1
            found = [f"logged {line}" for line in watch.take()]
            after = digester.snapshot()
            if status:  # else an unreadable HEAD refusal (see above): only the log is checked
                figures.statuses[status] += 1
                figures.by_route.setdefault(route.name, Counter())[status] += 1
                found += _reply_problems(status, text)
                if status >= 400 or method in SAFE_METHODS:
                    changed = before.changed(after)
                    if changed:
                        found.append(f"changed {changed} on a {status} to {method}")
                    if status >= 400:
                        found += refusal_audit_problems(digester.audit_since(before.audit_seq))
            if found:
                figures.problems.append(f"{where}\n  -> {status} {text[:300]!r}: " + "; ".join(found))
            if 0 < status < 400 and method not in SAFE_METHODS:
                await world.repair()
                figures.repairs += 1
                after = digester.snapshot()
            before = after
            if progress is not None:
                progress(figures)
    finally:
        figures.seconds += time.monotonic() - started
        root.removeHandler(watch)
        digester.close()
    return figures


def chunk_seed(seed: int, chunk: int) -> int:
    """The hypothesis seed of a run's chunk: chunk 0 is the run's own seed."""
    if chunk == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{chunk}".encode()).digest()[:4], "big")


async def walk_seed(
    server: Server,
    seed: int,
    count: int,
    chunk: int = 5000,
    progress: Callable[[Figures], None] | None = None,
) -> Figures:
    """`count` cases from `seed`, made `chunk` at a time in a fresh interpreter each (the next chunk
    is made while this one is walked), walked in one world built on `server`."""
    sizes = [min(chunk, count - start) for start in range(0, count, chunk)]
    making = asyncio.ensure_future(generate(sizes[0], chunk_seed(seed, 0)))
    world = await build_world(server)
    figures = Figures()
    done = 0
    for number, size in enumerate(sizes):
        cases = await making
        if number + 1 < len(sizes):
            making = asyncio.ensure_future(generate(sizes[number + 1], chunk_seed(seed, number + 1)))
        await walk(server, world, cases, first_index=done, figures=figures, progress=progress)
        done += size
    return figures
