"""Test tools for processors — Herald's own tests use them, and so can a plugin's.

* factories: `make_context`, `make_notification`, `make_delivery`, `entity_request`, `broadcast_request`;
* `FakeDirectory` (an in-memory catalog) and `FakeClock`;
* `RecordingProcessor`: records what it is asked to deliver and answers from a script;
* `HttpRecorder`: a local HTTP server that records requests and answers from a script;
* `SmtpRecorder`: a local SMTP server (aiosmtpd, a test dependency) that records messages;
* `ContractHarness` and `verify_contract`: the contract every processor passes (bad settings
  rejected, success, retryable and permanent failures, secrets never shown)::

      async def test_contract() -> None:
          await verify_contract(MyHarness())
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import logging
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol

from herald.core.model import BroadcastRecipients, EntityRecipients, Notification, Payload, SendRequest
from herald.core.ports import NewNotification
from herald.processors._api import (
    Delivery,
    DeliveryResult,
    Outcome,
    Processor,
    ProcessorConfigError,
    ProcessorContext,
    ProcessorSettings,
)
from herald.processors._registry import check_registry

__all__ = [
    "ContractHarness",
    "FakeClock",
    "FakeDirectory",
    "FakeEntity",
    "FakeUser",
    "HttpRecorder",
    "RecordedMail",
    "RecordedRequest",
    "RecordingProcessor",
    "RecordingSettings",
    "SmtpRecorder",
    "broadcast_request",
    "entity_request",
    "free_port",
    "make_context",
    "make_delivery",
    "make_notification",
    "verify_contract",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a catalog and a clock ----------------------------------------------------------------------


@dataclass(frozen=True)
class FakeUser:
    ref: str
    email: str | None = None
    display_name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeEntity:
    ref: str
    annotations: Mapping[str, str] = field(default_factory=dict)


class FakeDirectory:
    """An in-memory `Directory`: users by ref (exact), entities by ref."""

    def __init__(self, users: Sequence[FakeUser] = (), entities: Sequence[FakeEntity] = ()) -> None:
        self.users = {u.ref: u for u in users}
        self.entities = {e.ref: e for e in entities}
        self.lookups = 0

    def add_user(self, ref: str, email: str | None = None, **annotations: str) -> FakeUser:
        user = FakeUser(ref, email, None, dict(annotations))
        self.users[ref] = user
        return user

    def user(self, ref: str) -> FakeUser | None:
        self.lookups += 1
        return self.users.get(ref)

    def user_emails(self) -> list[str]:
        self.lookups += 1
        return list(dict.fromkeys(u.email for u in self.users.values() if u.email))

    def entity(self, ref: str) -> FakeEntity | None:
        return self.entities.get(ref)


class FakeClock:
    """Epoch milliseconds that only move when told to."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


# -- factories ----------------------------------------------------------------------------------


def make_context(*, directory: Any = None, app_base_url: str = "https://example.org",
                 data_dir: Path | None = None, clock: Any = None) -> ProcessorContext:
    return ProcessorContext(app_base_url=app_base_url, directory=directory or FakeDirectory(),
                            data_dir=data_dir or Path(tempfile.gettempdir()) / "herald-test-data",
                            clock=clock or FakeClock())


def make_notification(**overrides: Any) -> Notification:
    values: dict[str, Any] = {"id": "8f7e6d5c-4b3a-4921-8877-665544332211", "user": "user:default/mock",
                              "created": 1_700_000_000_000, "origin": "external:test", "title": "notification"}
    values.update(overrides)
    return Notification(**values)


def make_delivery(notification: Notification | None = None, **overrides: Any) -> Delivery:
    values: dict[str, Any] = {"id": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "channel": "Test",
                              "notification": notification or make_notification()}
    values.update(overrides)
    return Delivery(**values)


def entity_request(*refs: str, title: str = "notification", **payload: Any) -> SendRequest:
    return SendRequest(EntityRecipients(tuple(refs)), Payload(title=title, sent={"title": title}, **payload))


def broadcast_request(title: str = "notification", **payload: Any) -> SendRequest:
    return SendRequest(BroadcastRecipients(), Payload(title=title, sent={"title": title}, **payload))


# -- a recording processor ----------------------------------------------------------------------


class RecordingSettings(ProcessorSettings):
    delay_ms: int = 0
    """How long each delivery takes."""


class RecordingProcessor(Processor[RecordingSettings]):
    """Records every delivery, and answers with `script` (results in order; `ok` when empty).

    Not registered: pass it to `load_processors(..., classes=[...])` or build it directly."""

    name: ClassVar[str] = "Recording"
    kind: ClassVar[str] = "recording"
    Settings = RecordingSettings

    def __init__(self, settings: RecordingSettings, context: ProcessorContext) -> None:
        super().__init__(settings, context)
        self.deliveries: list[Delivery] = []
        self.script: deque[DeliveryResult | BaseException] = deque()
        self.calls: list[str] = []
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def aclose(self) -> None:
        self.closed = True

    async def process_options(self, request: SendRequest) -> SendRequest:
        self.calls.append("process_options")
        return request

    async def pre_process(self, notification: NewNotification, request: SendRequest) -> NewNotification:
        self.calls.append("pre_process")
        return notification

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        self.calls.append("deliver")
        self.deliveries.append(delivery)
        if self.settings.delay_ms:
            await asyncio.sleep(self.settings.delay_ms / 1000)
        if self.script:
            step = self.script.popleft()
            if isinstance(step, BaseException):
                raise step
            return step
        return DeliveryResult.ok("recorded", receipt={"n": len(self.deliveries)})


# -- a recording HTTP server --------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, Mapping[str, str], bytes]
Responder = Callable[[RecordedRequest], Reply]


class HttpRecorder:
    """A minimal HTTP/1.1 server on 127.0.0.1 that records each request and answers from a queue
    of scripted replies (then from `default`). `async with HttpRecorder() as server:`."""

    def __init__(self, default: Responder | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.replies: deque[Reply | Responder] = deque()
        self.default: Responder = default or (lambda r: (200, {"Content-Type": "application/json"}, b"{}"))
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, status: int, body: Any = b"", headers: Mapping[str, str] | None = None) -> None:
        """Queue one reply (a dict or list body is sent as JSON)."""
        h = dict(headers or {})
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.replies.append((status, h, body if isinstance(body, bytes) else str(body).encode()))

    async def __aenter__(self) -> HttpRecorder:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = RecordedRequest(method, path, headers, body)
            self.requests.append(request)
            step = self.replies.popleft() if self.replies else self.default
            status, reply_headers, reply_body = step(request) if callable(step) else step
            out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(reply_body)}", "Connection: close"]
            out += [f"{k}: {v}" for k, v in reply_headers.items()]
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + reply_body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# -- a recording SMTP server --------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedMail:
    envelope_from: str
    recipients: tuple[str, ...]
    message: EmailMessage
    """Parsed with the modern policy (`get_body`, `get_content` …)."""

    @property
    def key(self) -> str:
        """The delivery's idempotency key (`X-Herald-Delivery`)."""
        return str(self.message["X-Herald-Delivery"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


class SmtpRecorder:
    """An aiosmtpd server on 127.0.0.1 that records every message it accepts.

    `delay_s` makes each DATA slow; `fail` queues SMTP replies (e.g. `"451 4.3.0 try later"`) used
    for the next messages instead of accepting them. `stop()` / `start()` take it down and up on
    the same port. Extra keyword arguments go to aiosmtpd's Controller (TLS, auth)."""

    def __init__(self, port: int | None = None, *, delay_s: float = 0.0, **controller: Any) -> None:
        self.port = port or free_port()
        self.delay_s = delay_s
        self.messages: list[RecordedMail] = []
        self.fail: deque[str] = deque()
        self.sessions = 0
        self._controller_args = controller
        self._controller: Any = None

    def start(self) -> SmtpRecorder:
        from aiosmtpd.controller import Controller

        recorder = self

        class Handler:
            async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                                  responses: list[str]) -> list[str]:
                recorder.sessions += 1
                session.host_name = hostname
                return responses

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if recorder.delay_s:
                    await asyncio.sleep(recorder.delay_s)
                if recorder.fail:
                    return recorder.fail.popleft()
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                assert isinstance(msg, EmailMessage)
                recorder.messages.append(RecordedMail(envelope.mail_from, tuple(envelope.rcpt_tos), msg))
                return "250 2.0.0 Message accepted"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **self._controller_args)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpRecorder:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def by_recipient(self) -> dict[str, list[RecordedMail]]:
        out: dict[str, list[RecordedMail]] = {}
        for m in self.messages:
            for r in m.recipients:
                out.setdefault(r, []).append(m)
        return out

    async def wait_for(self, predicate: Callable[[list[RecordedMail]], bool], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(list(self.messages)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"SMTP recorder: condition not met after {timeout_s} s "
                                   f"({len(self.messages)} messages)")
            await asyncio.sleep(0.02)


# -- the contract -------------------------------------------------------------------------------


class ContractHarness(Protocol):
    """What `verify_contract` needs to exercise one processor class against a fake backend."""

    @property
    def processor(self) -> type[Processor[Any]]:
        """The class under test."""
        ...

    @property
    def secrets(self) -> Sequence[str]:
        """Secret values that appear in `settings()` and must never be shown."""
        ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> Any: ...

    def invalid_settings(self) -> Sequence[Any]:
        """Raw settings that must be refused at start-up (with a secret inside, where possible)."""
        ...

    def settings(self) -> Any:
        """Valid raw settings pointing at the fake backend."""
        ...

    def context(self) -> ProcessorContext: ...

    def arrange(self, outcome: Outcome) -> None:
        """Make the fake backend end the next delivery with `outcome` (ok, retryable, permanent)."""
        ...

    def delivery(self) -> Delivery: ...


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def verify_contract(harness: ContractHarness) -> None:
    """Raise AssertionError when the processor breaks the contract."""
    cls = harness.processor
    check_registry([cls])
    shown: list[str] = []
    for raw in harness.invalid_settings():
        try:
            cls.parse_settings(raw)
        except ProcessorConfigError as e:
            shown.append(str(e))
        else:
            raise AssertionError(f"{cls.__name__} accepted invalid settings")
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        async with harness:
            settings = cls.parse_settings(harness.settings())
            shown += [repr(settings), str(settings), json.dumps(settings.redacted()), settings.model_dump_json()]
            processor = cls(settings, harness.context())
            shown.append(repr(processor))
            logging.getLogger("herald.processors").info("settings: %s / %r", settings, processor)
            await processor.start()
            try:
                for outcome in (Outcome.OK, Outcome.RETRYABLE, Outcome.PERMANENT):
                    harness.arrange(outcome)
                    result = await processor.deliver(harness.delivery())
                    assert result.outcome == outcome, f"{cls.__name__}: expected {outcome}, got {result}"
                    shown += [result.detail, repr(result)]
            finally:
                await processor.aclose()
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    shown += capture.lines
    for secret in harness.secrets:
        for text in shown:
            assert secret not in text, f"{cls.__name__} shows a secret: {text[:200]}"
