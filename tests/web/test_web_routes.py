"""The inbox page's HTTP side, in process: the shell, the static assets, their headers, and
static checks of the shipped files (no inline script, nothing from the internet, no innerHTML)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from herald.web import web_routes
from herald.web.routes import CONTENT_SECURITY_POLICY, static_dir

STATIC = static_dir()
JS_FILES = sorted((STATIC / "js").glob("*.js"))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=web_routes())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
        yield client


def _csp(value: str) -> dict[str, str]:
    out = {}
    for part in value.split(";"):
        name, _, rest = part.strip().partition(" ")
        out[name] = rest.strip()
    return out


async def test_shell_is_served_at_root_with_a_strict_policy(http: httpx.AsyncClient) -> None:
    r = await http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = _csp(r.headers["content-security-policy"])
    assert csp["default-src"] == "'self'"
    assert csp["connect-src"] == "'self' ws: wss:"
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-cache"
    assert "<title>Herald</title>" in r.text
    # The deep link is the same shell; the page reads ?id= itself.
    deep = await http.get("/?id=4a1c6a4e-7c1f-4d0e-9d43-5b4c1d2e3f40")
    assert deep.status_code == 200 and deep.text == r.text
    head = await http.head("/")
    assert head.status_code == 200


async def test_static_assets_are_served_revalidated(http: httpx.AsyncClient) -> None:
    for path, kind in [("/static/js/app.js", "javascript"), ("/static/css/app.css", "text/css"),
                       ("/static/favicon.svg", "image/svg+xml")]:
        r = await http.get(path)
        assert r.status_code == 200, path
        assert kind in r.headers["content-type"], (path, r.headers["content-type"])
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert r.headers["x-content-type-options"] == "nosniff"
        etag = r.headers["etag"]
        again = await http.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304


async def test_every_module_the_page_imports_is_served(http: httpx.AsyncClient) -> None:
    for js in JS_FILES:
        r = await http.get(f"/static/js/{js.name}")
        assert r.status_code == 200, js.name
        for imported in re.findall(r"from '\./([\w-]+\.js)'", js.read_text()):
            assert (STATIC / "js" / imported).is_file(), f"{js.name} imports a missing {imported}"


async def test_missing_and_escaping_paths_are_not_served(http: httpx.AsyncClient) -> None:
    assert (await http.get("/static/nope.js")).status_code == 404
    assert (await http.get("/static/../routes.py")).status_code == 404
    assert (await http.get("/static/%2e%2e/routes.py")).status_code == 404
    assert (await http.post("/")).status_code == 405


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def test_the_shell_has_no_inline_script_style_or_handler() -> None:
    parser = _Tags()
    parser.feed((STATIC / "index.html").read_text())
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts and all((a.get("src") or "").startswith("/static/") for a in scripts)
    assert parser.script_text == ""
    assert not [t for t, _ in parser.tags if t == "style"]
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)


def test_nothing_is_fetched_from_the_internet() -> None:
    for path in [*STATIC.rglob("*.js"), *STATIC.rglob("*.css"), *STATIC.rglob("*.html"), *STATIC.rglob("*.svg")]:
        text = path.read_text()
        urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s'\"<>)]*", text)
                if "www.w3.org/2000/svg" not in u]
        assert not urls, (path.name, urls)
        assert "@import" not in text, path.name


def test_scripts_never_build_html_from_strings_or_log_tokens() -> None:
    for js in JS_FILES:
        text = js.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert banned not in text, (js.name, banned)
        for line in text.splitlines():
            if "console." in line:
                assert "token" not in line.lower(), (js.name, line)
    # The token lives in sessionStorage (tab-scoped), never in localStorage or a URL.
    auth = (STATIC / "js" / "auth.js").read_text()
    assert "sessionStorage" in auth and "localStorage" not in auth


def test_assets_are_package_data() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    for ext in ("html", "css", "js", "svg"):
        assert f'"**/*.{ext}"' in pyproject
