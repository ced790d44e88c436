"""The Email processor: upstream behaviour (spec §5.4, §7.4), templates, transports, and a real SMTP
server (aiosmtpd on loopback) behind the whole send path on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import stat
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from tests.processors.conftest import herald_config, org_yaml, running_app, self_signed

from herald.processors import DeliveryResult, Outcome, ProcessorConfigError
from herald.processors._email import EmailProcessor, EmailSettings, is_valid_address
from herald.processors._email.transports import SendmailTransport, SmtpTransport, StreamTransport
from herald.processors.testing import (
    FakeClock,
    FakeDirectory,
    SmtpRecorder,
    broadcast_request,
    entity_request,
    make_context,
    make_delivery,
    make_notification,
)

SENDER = "backstage@backstage.io"


class Capture:
    """A transport that keeps what it is given, parsed back the way a receiver would."""

    def __init__(self) -> None:
        self.sent: list[tuple[EmailMessage, str, str]] = []

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    def options(self) -> dict[str, Any]:
        return {}

    async def send(self, message: Message, envelope_from: str, recipient: str) -> DeliveryResult:
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.sent.append((parsed, envelope_from, recipient))
        return DeliveryResult.ok("captured")


def processor(raw: dict[str, Any] | None = None, *, directory: FakeDirectory | None = None,
              app_base_url: str = "https://example.org", clock: FakeClock | None = None,
              tmp: Path | None = None) -> tuple[EmailProcessor, Capture]:
    settings = EmailProcessor.parse_settings({"transportConfig": {"transport": "stream"}, "sender": SENDER,
                                              **(raw or {})})
    assert isinstance(settings, EmailSettings)
    d = directory or FakeDirectory()
    if directory is None:
        d.add_user("user:default/mock", "mock@backstage.io")
    p = EmailProcessor(settings, make_context(directory=d, app_base_url=app_base_url, clock=clock,
                                              data_dir=tmp))
    capture = Capture()
    p.transport = capture
    return p, capture


def mail(capture: Capture, i: int = 0) -> dict[str, Any]:
    msg, _, to = capture.sent[i]
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return {"from": msg["From"], "to": to, "subject": msg["Subject"], "replyTo": msg["Reply-To"],
            "text": text.get_content().rstrip("\n"), "html": html.get_content().rstrip("\n")}  # type: ignore[attr-defined]


# -- spec §7.4 ------------------------------------------------------------------------------------


def test_7_4_81_smtp_transport_options() -> None:
    settings = EmailProcessor.parse_settings({"transportConfig": {
        "transport": "smtp", "hostname": "localhost", "port": 465, "secure": True, "requireTls": False},
        "sender": SENDER})
    p = EmailProcessor(settings, make_context())  # type: ignore[arg-type]
    assert isinstance(p.transport, SmtpTransport)
    assert p.transport.options() == {"host": "localhost", "port": 465, "requireTLS": False, "secure": True}


def test_smtp_auth_only_with_both_username_and_password() -> None:
    base = {"transport": "smtp", "hostname": "h", "port": 25}
    only_user = EmailProcessor.parse_settings({"transportConfig": {**base, "username": "u"}, "sender": SENDER})
    both = EmailProcessor.parse_settings({"transportConfig": {**base, "username": "u", "password": "pw-SECRET"},
                                          "sender": SENDER})
    assert "auth" not in EmailProcessor(only_user, make_context()).transport.options()  # type: ignore[arg-type]
    t = EmailProcessor(both, make_context()).transport  # type: ignore[arg-type]
    assert t.options()["auth"] == {"user": "u", "pass": "**********"}
    assert "SECRET" not in repr(both) + str(both.redacted())


def test_7_4_83_sendmail_transport_options() -> None:
    settings = EmailProcessor.parse_settings({"transportConfig": {"transport": "sendmail",
                                                                  "path": "/usr/local/bin/sendmail"},
                                              "sender": SENDER})
    p = EmailProcessor(settings, make_context())  # type: ignore[arg-type]
    assert p.transport.options() == {"sendmail": True, "path": "/usr/local/bin/sendmail", "newline": "unix"}


@pytest.mark.parametrize("transport", ["ses", "azure"])
def test_7_4_82_unsupported_transports_fail_start_up(transport: str) -> None:
    with pytest.raises(ProcessorConfigError, match=f"transport '{transport}' is not supported by Herald"):
        EmailProcessor.parse_settings({"transportConfig": {"transport": transport}, "sender": SENDER})


async def test_7_4_84_default_mail() -> None:
    p, capture = processor()
    result = await p.deliver(make_delivery(make_notification(user="user:default/mock", title="notification")))
    assert result.outcome == Outcome.OK
    assert mail(capture) == {
        "from": SENDER, "to": "mock@backstage.io", "subject": "notification", "replyTo": None,
        "html": '<p><a href="https://example.org/notifications">https://example.org/notifications</a></p>',
        "text": "https://example.org/notifications"}


async def test_7_4_85_broadcast_to_catalog_users() -> None:
    d = FakeDirectory()
    d.add_user("user:default/a", "a@example.com")
    d.add_user("user:default/b", None)
    d.add_user("user:default/c", "bad address")
    p, capture = processor({"broadcastConfig": {"receiver": "users"}}, directory=d)
    plan = await p.plan(None, broadcast_request())  # type: ignore[arg-type]
    assert plan.extra == ("a@example.com",) and plan.per_user == ()
    await p.deliver(make_delivery(make_notification(user=None), target="a@example.com", broadcast=True))
    assert mail(capture)["to"] == "a@example.com"


async def test_7_4_86_broadcast_to_configured_receivers() -> None:
    p, _ = processor({"broadcastConfig": {"receiver": "config", "receiverEmails": ["broadcast@backstage.io"]}})
    assert (await p.plan(None, broadcast_request())).extra == ("broadcast@backstage.io",)  # type: ignore[arg-type]
    none, _ = processor({"broadcastConfig": {"receiver": "none"}})
    assert (await none.plan(None, broadcast_request())).extra == ()  # type: ignore[arg-type]
    missing, _ = processor()
    assert (await missing.plan(None, broadcast_request())).extra == ()  # type: ignore[arg-type]
    user_plan = await p.plan(None, entity_request("user:default/mock"))  # type: ignore[arg-type]
    assert user_plan.per_user == (None,) and user_plan.extra == ()


def test_broadcast_receiver_must_be_known() -> None:
    with pytest.raises(ProcessorConfigError, match=r"broadcastConfig\.receiver"):
        processor({"broadcastConfig": {"receiver": "everyone"}})


@pytest.mark.parametrize(("link", "expected"), [
    ("catalog/user/default/john.doe", "https://example.org/catalog/user/default/john.doe"),
    ("/catalog/user/default/jane.doe", "https://example.org/catalog/user/default/jane.doe"),
    ("https://backstage.io", "https://backstage.io/"),
])
async def test_7_4_87_88_links_are_absolute(link: str, expected: str) -> None:
    p, capture = processor()
    await p.deliver(make_delivery(make_notification(link=link)))
    m = mail(capture)
    assert m["text"] == expected
    assert m["html"] == f'<p><a href="{expected}">{expected}</a></p>'


async def test_7_4_89_reply_to_and_description() -> None:
    p, capture = processor({"replyTo": "no-reply@backstage.io"})
    await p.deliver(make_delivery(make_notification(description="Build 42 passed")))
    m = mail(capture)
    assert m["replyTo"] == "no-reply@backstage.io"
    assert m["text"] == "Build 42 passed\n\nhttps://example.org/notifications"
    assert m["html"] == ('<p>Build 42 passed<br/><a href="https://example.org/notifications">'
                         'https://example.org/notifications</a></p>')


def test_ses_config_is_accepted_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    processor({"sesConfig": {"fromArn": "arn:aws:ses:x"}})
    assert "sesConfig is ignored" in caplog.text


@pytest.mark.parametrize("address", ["user@example.com", "user+tag@example.com", "User.Name@Example.COM"])
def test_7_4_90_valid_addresses(address: str) -> None:
    assert is_valid_address(address)


@pytest.mark.parametrize("address", ["", " user@example.com", "user@example.com ", "us er@example.com",
                                     '"user"@example.com', "a@b.com,c@d.com", "a@b.com;c@d.com", "a@b.com:c",
                                     "Name <a@b.com>", "<a@b.com>", "not-an-email", "user@@example.com",
                                     "@example.com", "user@"])
def test_7_4_91_invalid_addresses(address: str) -> None:
    assert not is_valid_address(address)


@pytest.mark.parametrize(("raw", "address", "sent"), [
    ({"allowedEmailDomains": ["Example.com"]}, "u@example.COM", True),
    ({"allowedEmailDomains": ["example.com"]}, "u@other.com", False),
    ({"allowlistEmailAddresses": [" VIP@other.com "]}, "vip@other.com", True),
    ({"allowlistEmailAddresses": ["vip@other.com"]}, "u@other.com", False),  # closed mode
    ({"allowlistEmailAddresses": ["vip@other.com"], "allowedEmailDomains": ["example.com"]}, "u@example.com",
     True),
    ({"allowedEmailDomains": ["example.com"], "denylistEmailAddresses": ["U@example.com"]}, "u@example.com",
     False),
    ({"denylistEmailAddresses": ["u@example.com"]}, "x@example.com", True),
])
async def test_allow_and_deny_lists(raw: dict[str, Any], address: str, sent: bool) -> None:
    d = FakeDirectory()
    d.add_user("user:default/mock", address)
    p, capture = processor(raw, directory=d)
    result = await p.deliver(make_delivery())
    assert (result.outcome == Outcome.OK) is sent
    if not sent:
        assert result.outcome == Outcome.SKIPPED and "no allowed email address" in result.detail
    assert len(capture.sent) == int(sent)


async def test_user_without_email_is_skipped() -> None:
    d = FakeDirectory()
    d.add_user("user:default/mock", None)
    p, capture = processor(directory=d)
    result = await p.deliver(make_delivery())
    assert result == DeliveryResult.skipped("user:default/mock has no email address")
    assert capture.sent == []


async def test_address_cache_has_a_ttl() -> None:
    clock = FakeClock()
    d = FakeDirectory()
    d.add_user("user:default/mock", "old@example.com")
    p, capture = processor({"cache": {"ttl": {"minutes": 5}}}, directory=d, clock=clock)
    await p.deliver(make_delivery())
    d.add_user("user:default/mock", "new@example.com")
    await p.deliver(make_delivery())
    clock.advance(5 * 60_000)
    await p.deliver(make_delivery())
    assert [to for _, _, to in capture.sent] == ["old@example.com", "old@example.com", "new@example.com"]


# -- templates ------------------------------------------------------------------------------------


async def test_html_is_escaped_and_subject_is_one_line() -> None:
    p, capture = processor()
    n = make_notification(title="Deploy\r\nBcc: victim@example.com", description='<script>alert("x")</script> & co',
                          link='https://example.org/"><img>')
    await p.deliver(make_delivery(n))
    m = mail(capture)
    assert m["subject"] == "Deploy Bcc: victim@example.com"
    assert "<script>" not in m["html"] and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in m["html"]
    assert '"><img>' not in m["html"]
    assert m["text"].startswith('<script>alert("x")</script> & co')  # plain text stays plain


async def test_operator_templates_override_the_built_ins(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text("[{{ notification.severity | upper }}] {{ notification.title }}")
    (tmp_path / "body.html.j2").write_text("<h1>{{ notification.title }}</h1><p>Hi {{ user.display_name or "
                                           "recipient }}, see {{ link }}</p>")
    p, capture = processor({"templates": str(tmp_path)})
    await p.start()
    await p.deliver(make_delivery(make_notification(title="<b>Build</b>", severity="high")))
    m = mail(capture)
    assert m["subject"] == "[HIGH] <b>Build</b>"
    assert m["html"] == ("<h1>&lt;b&gt;Build&lt;/b&gt;</h1><p>Hi mock@backstage.io, see "
                         "https://example.org/notifications</p>")
    assert m["text"] == "https://example.org/notifications"  # body.txt.j2 not overridden: built-in


async def test_broken_templates_fail_start_up(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text("{{ notification.title ")
    p, _ = processor({"templates": str(tmp_path)})
    with pytest.raises(ProcessorConfigError, match=r"notifications\.processors\.email\.templates"):
        await p.start()
    missing, _ = processor({"templates": str(tmp_path / "nope")})
    with pytest.raises(ProcessorConfigError, match="is not a directory"):
        await missing.start()


async def test_headers_carry_the_idempotency_key_and_thread_resends() -> None:
    p, capture = processor({"replyTo": "r@example.com"})
    await p.deliver(make_delivery(id="11111111-2222-4333-8444-555555555555",
                                  previous_receipt={"messageId": "<old@backstage.io>"}))
    msg = capture.sent[0][0]
    assert msg["Message-ID"] == "<11111111-2222-4333-8444-555555555555@backstage.io>"
    assert msg["X-Herald-Delivery"] == "11111111-2222-4333-8444-555555555555"
    assert msg["In-Reply-To"] == msg["References"] == "<old@backstage.io>"
    assert msg["Auto-Submitted"] == "auto-generated"


def test_settings_reject_bad_values() -> None:
    bad: list[dict[str, Any]] = [{"sender": "not an address"}, {"concurrencyLimit": 0}, {"throttleInterval": "soon"},
                                 {"transportConfig": {"transport": "smtp", "hostname": "h"}},
                                 {"replyTo": "a@example.com\r\nBcc: x@example.com"}]
    for raw in bad:
        with pytest.raises(ProcessorConfigError):
            processor(raw)


# -- transports -----------------------------------------------------------------------------------


async def test_stream_transport_writes_one_file_per_key(tmp_path: Path) -> None:
    p, _ = processor(tmp=tmp_path)
    p.transport = StreamTransport(tmp_path / "mail")
    await p.start()
    delivery = make_delivery()
    await p.deliver(delivery)
    await p.deliver(delivery)  # a redelivery of the same key replaces the file
    files = list((tmp_path / "mail").iterdir())
    assert [f.name for f in files] == [f"{delivery.id}.eml"]
    assert b"X-Herald-Delivery: " + delivery.id.encode() in files[0].read_bytes()


def fake_sendmail(tmp_path: Path, exit_code: int) -> Path:
    script = tmp_path / f"sendmail-{exit_code}"
    script.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args-{exit_code}"\ncat > "{tmp_path}/msg-{exit_code}"\n'
                      f'echo "exit {exit_code}" >&2\nexit {exit_code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.parametrize(("code", "outcome"), [(0, Outcome.OK), (75, Outcome.RETRYABLE), (67, Outcome.PERMANENT)])
async def test_sendmail_transport(tmp_path: Path, code: int, outcome: Outcome) -> None:
    t = SendmailTransport(path=str(fake_sendmail(tmp_path, code)), newline="windows")
    await t.start()
    msg = EmailMessage()
    msg["Subject"] = "s"
    msg.set_content("line1\nline2")
    result = await t.send(msg, "from@example.com", "to@example.com")
    assert result.outcome == outcome, result
    assert (tmp_path / f"args-{code}").read_text().split() == ["-i", "-f", "from@example.com", "--",
                                                               "to@example.com"]
    assert b"line1\r\nline2" in (tmp_path / f"msg-{code}").read_bytes()


async def test_missing_sendmail_fails_start_up(tmp_path: Path) -> None:
    with pytest.raises(ProcessorConfigError, match="is not an executable file"):
        await SendmailTransport(path=str(tmp_path / "nope")).start()


# -- a real SMTP server ---------------------------------------------------------------------------


def smtp_config(port: int, **extra: Any) -> dict[str, Any]:
    return {"transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": port, **extra},
            "sender": "Herald <herald@example.com>", "replyTo": "ops@example.com",
            "concurrencyLimit": 4, "throttleInterval": 0}


async def test_smtp_outcomes(tmp_path: Path) -> None:
    with SmtpRecorder() as smtp:
        p, _ = processor(smtp_config(smtp.port))
        p.transport = p._transport()
        await p.start()
        try:
            assert (await p.deliver(make_delivery())).outcome == Outcome.OK
            smtp.fail.append("451 4.3.0 Try again later")
            r = await p.deliver(make_delivery())
            assert r.outcome == Outcome.RETRYABLE and "451" in r.detail
            smtp.fail.append("550 5.1.1 No such user")
            r = await p.deliver(make_delivery())
            assert r.outcome == Outcome.PERMANENT and "550" in r.detail
            assert (await p.deliver(make_delivery())).outcome == Outcome.OK  # the pool recovers
        finally:
            await p.aclose()
        assert len(smtp.messages) == 2
    r = await p.deliver(make_delivery())  # server gone
    assert r.outcome == Outcome.RETRYABLE and "cannot connect" in r.detail
    await p.aclose()


async def test_smtp_starttls_with_auth(tmp_path: Path) -> None:
    from aiosmtpd.smtp import AuthResult

    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"pw-SECRET-123", handled=False)

    smtp = SmtpRecorder(tls_context=tls, require_starttls=True, authenticator=authenticator, auth_required=True)
    with smtp:
        cfg = smtp_config(smtp.port, requireTls=True, username="herald", password="pw-SECRET-123",
                          caFile=str(cert))
        p, _ = processor(cfg)
        p.transport = p._transport()
        await p.start()
        try:
            assert (await p.deliver(make_delivery())).outcome == Outcome.OK
        finally:
            await p.aclose()
        bad, _ = processor({**cfg, "transportConfig": {**cfg["transportConfig"], "password": "wrong"}})
        bad.transport = bad._transport()
        await bad.start()
        r = await bad.deliver(make_delivery())
        await bad.aclose()
    assert logins[0] == ("herald", "pw-SECRET-123")
    assert set(logins[1:]) == {("herald", "wrong")}  # the client may try more than one mechanism
    assert len(smtp.messages) == 1
    assert r.outcome == Outcome.RETRYABLE and "authentication failed" in r.detail


async def test_smtp_implicit_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with SmtpRecorder(ssl_context=tls, server_hostname="localhost") as smtp:
        p, _ = processor(smtp_config(smtp.port, secure=True, caFile=str(cert)))
        p.transport = p._transport()
        await p.start()
        try:
            assert (await p.deliver(make_delivery())).outcome == Outcome.OK
        finally:
            await p.aclose()
    assert len(smtp.messages) == 1


# -- the whole path: API -> ledger -> worker -> SMTP ------------------------------------------------

MEMBERS = 12


@pytest.fixture
def org(tmp_path: Path) -> Path:
    path = tmp_path / "org.yaml"
    path.write_text(org_yaml(MEMBERS, email=lambda i: None if i == MEMBERS - 1 else f"u{i}@example.com"))
    return path


async def test_group_send_yields_one_message_per_member(db_url: str, tmp_path: Path, org: Path) -> None:
    with SmtpRecorder() as smtp:
        cfg = herald_config(db_url, tmp_path, org, processors={"email": smtp_config(smtp.port)})
        async with running_app(cfg) as app:
            sent = await app.to("group:default/team", title="Release 1.2 is out", description="Notes: <b>big</b>",
                                link="/catalog/default/component/api", severity="high", topic="release")
            assert len(sent) == MEMBERS
            await app.settle()
            await asyncio.sleep(0.05)
            by_user = {s["user"]: s["id"] for s in sent}
            rows = [d for nid in by_user.values() for d in await app.deliveries_of(nid)]
        by_rcpt = smtp.by_recipient()
        assert sorted(by_rcpt) == sorted(f"u{i}@example.com" for i in range(MEMBERS - 1))
        assert all(len(v) == 1 for v in by_rcpt.values())
        keys = {m.key for m in smtp.messages}
        assert len(keys) == MEMBERS - 1
        for m in smtp.messages:
            msg = m.message
            assert m.envelope_from == "herald@example.com"
            assert msg["From"] == "Herald <herald@example.com>" and msg["Reply-To"] == "ops@example.com"
            assert msg["To"] == m.recipients[0] and msg["Subject"] == "Release 1.2 is out"
            assert msg["Message-ID"] == f"<{m.key}@example.com>"
            link = "https://backstage.example.org/catalog/default/component/api"
            assert m.body("plain").rstrip("\n") == f"Notes: <b>big</b>\n\n{link}"
            html = f'<p>Notes: &lt;b&gt;big&lt;/b&gt;<br/><a href="{link}">{link}</a></p>'
            assert m.body("html").rstrip("\n") == html
        statuses = {(d["user"], d["status"]) for d in rows}
        assert (f"user:default/u{MEMBERS - 1}", "skipped") in statuses
        assert sum(1 for _, s in statuses if s == "delivered") == MEMBERS - 1
        assert {d["id"] for d in rows if d["status"] == "delivered"} == keys


async def test_messages_wait_while_smtp_is_down_and_arrive_once(db_url: str, tmp_path: Path, org: Path) -> None:
    smtp = SmtpRecorder()  # not started: connection refused
    cfg = herald_config(db_url, tmp_path, org, processors={"email": smtp_config(smtp.port)},
                        delivery={"initialBackoff": "100ms", "maxBackoff": "300ms", "maxAttempts": 100})
    async with running_app(cfg) as app:
        await app.to("group:default/team", title="while down")
        ledger = app.deliveries.ledger

        async def failed_attempts() -> int:
            return sum(r.attempts for r in await ledger.find(status="pending", limit=1000))

        for _ in range(1000):
            if await failed_attempts() >= 2 * (MEMBERS - 1):
                break
            await asyncio.sleep(0.02)
        pending = await ledger.find(status="pending", limit=1000)
        assert len(pending) == MEMBERS - 1
        assert all("cannot connect" in (r.detail or "") for r in pending)
        smtp.start()
        try:
            await smtp.wait_for(lambda ms: len(ms) >= MEMBERS - 1)
            await app.settle()
            await asyncio.sleep(0.3)  # anything extra would arrive now
        finally:
            smtp.stop()
        counts = await ledger.counts()
    assert counts["Email"] == {"delivered": MEMBERS - 1, "skipped": 1}
    by_rcpt = smtp.by_recipient()
    assert len(by_rcpt) == MEMBERS - 1 and all(len(v) == 1 for v in by_rcpt.values())
    assert len({m.key for m in smtp.messages}) == MEMBERS - 1


async def test_a_rejected_address_becomes_a_dead_letter_and_can_be_retried(db_url: str, tmp_path: Path,
                                                                           org: Path) -> None:
    with SmtpRecorder() as smtp:
        cfg = herald_config(db_url, tmp_path, org, processors={"email": smtp_config(smtp.port)})
        async with running_app(cfg) as app:
            smtp.fail.append("550 5.7.1 Rejected")
            await app.to("user:default/u0")
            await app.settle()
            [dead] = await app.deliveries.ledger.find(status="dead")
            assert "550" in (dead.detail or "") and dead.attempts == 1
            retried = await app.deliveries.ledger.retry(dead.id, now=dead.updated)
            app.deliveries.worker.wake()
            assert retried.status == "pending"
            await app.settle()
            again = await app.deliveries.ledger.get(dead.id)
            assert again is not None and again.status == "delivered" and again.attempts == 2
        assert [m.key for m in smtp.messages] == [dead.id]
