"""Fixtures for the web tests: a real `herald serve` on a free loopback port, and a headless
Chromium driven by Playwright.

The browser is Debian's Chromium (`/usr/bin/chromium`, or `$HERALD_CHROMIUM`), never a browser
build downloaded by Playwright; `scripts/install-browser` installs both. Without a browser the
browser tests are skipped locally and fail under CI=true.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ORIGIN = "external:web-tests"
APP_BASE_URL = "http://backstage.test"
# Console messages that are expected while signals are not mounted (the page then polls).
_EXPECTED_CONSOLE = re.compile(r"WebSocket connection to .* failed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium through Playwright")
    config.addinivalue_line("markers", "signals: needs /api/signals mounted in `herald serve`")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; see scripts/install-browser)",
                    pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HeraldServer:
    """A running `herald serve` with dev sign-in, the demo org and one static service token."""

    base: str
    service_token: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.workdir / "herald.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, to: str | list[str] | None = None, **payload: Any) -> list[dict[str, Any]]:
        """Send as `external:web-tests`; `to=None` broadcasts. Returns the Web deliveries."""
        recipients: dict[str, Any] = {"type": "broadcast"} if to is None else {"type": "entity", "entityRef": to}
        r = httpx.post(f"{self.base}/api/notifications/notifications",
                       json={"recipients": recipients, "payload": payload},
                       headers={"Authorization": f"Bearer {self.service_token}"}, timeout=30)
        assert r.status_code == 200, r.text
        result: list[dict[str, Any]] = r.json()
        return result

    def user_token(self, user: str) -> str:
        if user not in self._tokens:
            r = httpx.post(f"{self.base}/api/herald/dev/token", json={"user": user}, timeout=30)
            assert r.status_code == 200, r.text
            self._tokens[user] = r.json()["token"]
        return self._tokens[user]

    def user_get(self, user: str, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.base}/api/notifications{path}", params=params or None,
                      headers={"Authorization": f"Bearer {self.user_token(user)}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def signals_mounted(self) -> bool:
        """Whether `/api/signals` accepts a WebSocket (it is wired in bootstrap)."""
        from websockets.exceptions import InvalidHandshake
        from websockets.sync.client import connect

        url = self.base.replace("http://", "ws://") + "/api/signals"
        try:
            with connect(url, subprotocols=[self.user_token("user:default/henry")],  # type: ignore[list-item]
                         open_timeout=10):
                return True
        except (InvalidHandshake, OSError, TimeoutError):
            return False


@pytest.fixture
def herald_server() -> Iterator[HeraldServer]:
    work = Path(tempfile.mkdtemp(prefix="herald-web-"))
    port = _free_port()
    token = secrets.token_urlsafe(24)
    config = {
        "app": {"baseUrl": APP_BASE_URL},
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"url": f"sqlite:///{work / 'herald.db'}"},
        "dataDir": str(work / "data"),
        "catalog": {"watch": False},
        "auth": {"dev": True, "serviceTokens": [{"token": token, "subject": ORIGIN}]},
    }
    cfg = work / "herald.yaml"
    cfg.write_text(yaml.safe_dump(config))
    herald = Path(sys.executable).parent / "herald"
    with open(work / "herald.log", "wb") as log:
        proc = subprocess.Popen([str(herald), "serve", "--config", str(cfg), "--no-demo"], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    server = HeraldServer(base, token, work, proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"herald serve exited with {proc.returncode}:\n{server.log_text()}")
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"herald serve did not become ready in 60 s:\n{server.log_text()}")
            time.sleep(0.1)
        shell = httpx.get(base + "/", timeout=10)
        if shell.status_code != 200 or "text/html" not in shell.headers.get("content-type", ""):
            pytest.fail("GET / does not serve the inbox page: mount herald.web.web_routes() in "
                        "herald.bootstrap.build()", pytrace=False)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while it is
    started, which would stop later asyncio tests from running theirs."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (run scripts/install-browser)")
        return
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (run scripts/install-browser)")
        return
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
    except Error as e:
        pw.stop()
        _unavailable(f"Chromium did not start: {e}")
        return
    try:
        yield b
    finally:
        b.close()
        pw.stop()


class PageFactory:
    """`new_page(**context_options)` → a page in a fresh browser context. Console errors and page
    errors are recorded; the test fails at the end on any that is not expected (`allow(regex)`)."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.messages: list[str] = []
        self.allowed = [_EXPECTED_CONSOLE]

    def __call__(self, **options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 860})
        context = self.browser.new_context(**options)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))
        return page

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text}")

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(p.search(m) for p in self.allowed)]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[PageFactory]:
    factory = PageFactory(browser)
    yield factory
    factory.close()
    assert not factory.unexpected(), factory.unexpected()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
