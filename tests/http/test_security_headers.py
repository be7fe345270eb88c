"""Security headers on every response: pages, static files, and errors the app did not plan for."""

from pathlib import Path

import pytest
from aiohttp import web

from vsession.app import create_app
from vsession.config import load_settings

SECRET_IN_ERROR = "db password is hunter2"


def csp_directives(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            assert words[0] not in directives, f"directive {words[0]} given twice"
            directives[words[0]] = words[1:]
    return directives


def permissions(value: str) -> dict[str, str]:
    features = {}
    for part in value.split(","):
        name, _, allow = part.strip().partition("=")
        features[name] = allow
    return features


def assert_security_headers(response) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy")
    assert csp, f"no CSP on {response.url}"
    directives = csp_directives(csp)
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for sources in directives.values():
        assert "'unsafe-inline'" not in sources
        assert "'unsafe-eval'" not in sources
    # No inline script at all, not even by a looser fallback.
    for name in ("script-src", "script-src-elem", "script-src-attr"):
        assert "*" not in directives.get(name, [])
    assert "unsafe-inline" not in str(dict(headers))

    assert headers.get("Referrer-Policy") == "no-referrer"
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Cross-Origin-Opener-Policy") == "same-origin"
    features = permissions(headers.get("Permissions-Policy", ""))
    assert features.get("camera") == "(self)"
    assert features.get("microphone") == "(self)"
    assert features.get("display-capture") == "(self)"


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError(SECRET_IN_ERROR)


@pytest.fixture
async def client(aiohttp_client, settings):
    app = create_app(settings)
    app.router.add_get("/boom", boom)
    return await aiohttp_client(app)


async def test_page(client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert_security_headers(response)
    assert "Strict-Transport-Security" not in response.headers


async def test_static_file(client) -> None:
    response = await client.get("/static/style.css")
    assert response.status == 200
    assert response.content_type == "text/css"
    assert_security_headers(response)


async def test_not_found_page(client) -> None:
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert_security_headers(response)


async def test_not_found_static_file(client) -> None:
    response = await client.get("/static/no-such-file.js")
    assert response.status == 404
    assert_security_headers(response)


async def test_not_found_json(client) -> None:
    response = await client.get("/api/no-such-thing")
    assert response.status == 404
    assert response.content_type == "application/json"
    assert_security_headers(response)


async def test_static_path_traversal_is_refused(client) -> None:
    response = await client.get("/static/..%2f..%2fpyproject.toml")
    assert response.status in (403, 404)
    assert_security_headers(response)
    assert "[project]" not in await response.text()


async def test_server_error(client) -> None:
    response = await client.get("/boom")
    assert response.status == 500
    assert_security_headers(response)
    body = await response.text()
    assert SECRET_IN_ERROR not in body
    assert "RuntimeError" not in body
    assert "Traceback" not in body


async def test_server_error_as_json(client) -> None:
    response = await client.get("/boom", headers={"Accept": "application/json"})
    assert response.status == 500
    assert_security_headers(response)
    assert SECRET_IN_ERROR not in await response.text()


async def test_hsts_when_serving_tls(aiohttp_client, tmp_path: Path) -> None:
    tls = load_settings(environ={}, overrides={"data_dir": tmp_path / "data", "port": 0, "self_signed": True})
    app = create_app(tls)
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    for path, status in (("/", 200), ("/static/style.css", 200), ("/nothing", 404), ("/boom", 500)):
        response = await client.get(path)
        assert response.status == status
        assert_security_headers(response)
        hsts = response.headers.get("Strict-Transport-Security", "")
        max_age = dict(p.strip().partition("=")[::2] for p in hsts.split(";")).get("max-age", "0")
        assert int(max_age) >= 15_552_000, hsts  # at least 180 days


async def test_healthz(client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert_security_headers(response)
