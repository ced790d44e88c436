"""One harness per processor kind for the shared contract (`herald.processors.testing.verify_contract`).

A processor without a harness here fails `test_contract.py`: registering one means testing it."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from tests.processors.conftest import self_signed

from herald.processors import Delivery, DeliveryResult, Outcome, Processor, ProcessorContext
from herald.processors._email import EmailProcessor
from herald.processors._slack import SlackProcessor
from herald.processors._webhook import WebhookProcessor
from herald.processors.testing import (
    FakeDirectory,
    HttpRecorder,
    RecordingProcessor,
    SmtpRecorder,
    make_context,
    make_delivery,
    make_notification,
)


class EmailHarness:
    processor: type[Processor[Any]] = EmailProcessor
    secrets = ("smtp-pass-SECRET-1",)

    def __init__(self, tmp: Path) -> None:
        from aiosmtpd.smtp import AuthResult

        self.tmp = tmp
        self.cert, key = self_signed(tmp)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert, key)

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            return AuthResult(success=data.password == b"smtp-pass-SECRET-1", handled=False)

        self.smtp = SmtpRecorder(tls_context=tls, require_starttls=True, authenticator=authenticator,
                                 auth_required=True)

    async def __aenter__(self) -> EmailHarness:
        self.smtp.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.smtp.stop()

    def invalid_settings(self) -> list[Any]:
        return [{}, {"sender": "a@example.com"},
                {"transportConfig": {"transport": "smtp", "hostname": "h", "port": 99999,
                                     "password": "smtp-pass-SECRET-1"}, "sender": "a@example.com"},
                {"transportConfig": {"transport": "ses"}, "sender": "a@example.com"},
                {"transportConfig": {"transport": "stream"}, "sender": "nobody"}]

    def settings(self) -> Any:
        return {"transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": self.smtp.port,
                                    "requireTls": True, "caFile": str(self.cert),
                                    "username": "herald", "password": "smtp-pass-SECRET-1"},
                "sender": "herald@example.com"}

    def context(self) -> ProcessorContext:
        d = FakeDirectory()
        d.add_user("user:default/mock", "mock@example.com")
        return make_context(directory=d, data_dir=self.tmp)

    def arrange(self, outcome: Outcome) -> None:
        if outcome == Outcome.RETRYABLE:
            self.smtp.fail.append("451 4.3.0 Try again later")
        elif outcome == Outcome.PERMANENT:
            self.smtp.fail.append("550 5.1.1 No such user")

    def delivery(self) -> Delivery:
        return make_delivery()


class _HttpHarness:
    def __init__(self) -> None:
        self.server = HttpRecorder()

    async def __aenter__(self) -> _HttpHarness:
        await self.server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.__aexit__(*exc)

    def context(self) -> ProcessorContext:
        d = FakeDirectory()
        d.add_user("user:default/mock", "mock@example.com", **{"slack.com/bot-notify": "U123"})
        return make_context(directory=d)


class WebhookHarness(_HttpHarness):
    processor: type[Processor[Any]] = WebhookProcessor
    secrets = ("hmac-key-SECRET-2-0123456789", "/path-SECRET-3", "header-SECRET-4")

    def invalid_settings(self) -> list[Any]:
        return [{}, {"endpoints": []},
                {"endpoints": [{"name": "a", "url": "https://x.example/path-SECRET-3", "secret": "short"}]},
                {"endpoints": [{"name": "a", "url": "http://127.0.0.1/path-SECRET-3",
                                "secret": "hmac-key-SECRET-2-0123456789"}]}]

    def settings(self) -> Any:
        return {"allowPrivateNetworks": True, "endpoints": [
            {"name": "ops", "url": self.server.url + "/path-SECRET-3", "secret": "hmac-key-SECRET-2-0123456789",
             "headers": {"Authorization": "Bearer header-SECRET-4"}}]}

    def arrange(self, outcome: Outcome) -> None:
        self.server.reply({Outcome.OK: 200, Outcome.RETRYABLE: 503, Outcome.PERMANENT: 400}[outcome])

    def delivery(self) -> Delivery:
        return make_delivery(target="ops")


class SlackHarness(_HttpHarness):
    processor: type[Processor[Any]] = SlackProcessor
    secrets = ("xoxb-99-SECRET-5",)

    def invalid_settings(self) -> list[Any]:
        return [[], [{"username": "x"}], [{"token": "SECRET-5-not-a-token"}], {"token": 5}]

    def settings(self) -> Any:
        return [{"token": "xoxb-99-SECRET-5", "apiUrl": self.server.url + "/api/"}]

    def arrange(self, outcome: Outcome) -> None:
        if outcome == Outcome.OK:
            self.server.reply(200, {"ok": True, "channel": "U123", "ts": "1.2"})
        elif outcome == Outcome.RETRYABLE:
            self.server.reply(429, b"", {"Retry-After": "1"})
        else:
            self.server.reply(200, {"ok": False, "error": "channel_not_found"})

    def delivery(self) -> Delivery:
        return make_delivery(make_notification(), target="0")


class RecordingHarness:
    processor: type[Processor[Any]] = RecordingProcessor
    secrets: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.instance: RecordingProcessor | None = None
        self.next: list[DeliveryResult] = []

    async def __aenter__(self) -> RecordingHarness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def invalid_settings(self) -> list[Any]:
        return [{"delayMs": "soon"}, {"filter": {"minSeverity": "urgent"}}, {"unknown": 1}]

    def settings(self) -> Any:
        return {}

    def context(self) -> ProcessorContext:
        return make_context()

    def arrange(self, outcome: Outcome) -> None:
        self.next.append(DeliveryResult(outcome, outcome.value))

    def delivery(self) -> Delivery:
        return make_delivery()


def harness_for(kind: str, tmp: Path) -> Any:
    harnesses: dict[str, Any] = {
        "email": lambda: EmailHarness(tmp),
        "webhook": WebhookHarness,
        "slack": SlackHarness,
        "recording": RecordingHarness,
    }
    factory = harnesses.get(kind)
    return factory() if factory else None
