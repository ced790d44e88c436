"""The inbox web page: `GET /` (the app shell) and `GET /static/...` (CSS, ES modules, icons).

No build step and nothing from the internet: plain HTML, CSS and JavaScript modules shipped as
package data. Every answer carries a strict Content-Security-Policy (no inline script or style, no
third-party origin; the page talks only to this server, over HTTP and WebSocket) and the usual
hardening headers. Assets are revalidated on every use (`no-cache` + ETag / Last-Modified from
`StaticFiles`): their names carry no content hash, so a long max-age would serve stale modules
after an upgrade, and a 304 on loopback costs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "connect-src 'self' ws: wss:",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

SHELL_CACHE_CONTROL = "no-cache"
STATIC_CACHE_CONTROL = "no-cache"


def static_dir() -> Path:
    """The folder of the shipped assets (inside the installed package)."""
    return Path(str(files("herald.web") / "static"))


def _with_headers(app: ASGIApp, headers: dict[str, str]) -> ASGIApp:
    """Wrap an ASGI app so that every HTTP response it starts carries `headers` (set, not added)."""
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    names = {k for k, _ in encoded}

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*raw, *encoded]
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def web_routes(directory: Path | None = None) -> list[BaseRoute]:
    """`/` (the shell; `/?id=<notification id>` deep-links one notification) and `/static/...`.

    Mount them after the API routes. `directory` overrides the shipped assets (tests)."""
    root = directory or static_dir()
    index = root / "index.html"
    if not index.is_file():
        raise RuntimeError(f"the web assets are missing: {index} (is the package installed with its data?)")

    async def shell(request: Request) -> Response:
        return FileResponse(index, media_type="text/html; charset=utf-8",
                            headers={**SECURITY_HEADERS, "Cache-Control": SHELL_CACHE_CONTROL})

    assets = StaticFiles(directory=root, follow_symlink=False)
    static_app = _with_headers(assets, {**SECURITY_HEADERS, "Cache-Control": STATIC_CACHE_CONTROL})
    return [
        Route("/", shell, methods=["GET", "HEAD"], name="web-shell"),
        Mount("/static", app=static_app, name="web-static"),
    ]
