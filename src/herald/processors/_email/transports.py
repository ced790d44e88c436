"""Mail transports: SMTP (pooled connections, implicit TLS or STARTTLS, auth), sendmail, and a
file "stream" transport for development.

Every transport sends one message to one recipient and maps what happened to a DeliveryResult:
a 5xx reply is permanent, a 4xx reply, a dropped connection or a timeout is retryable.

SMTP is at-least-once at the protocol level: when the connection breaks after the end of DATA but
before the server's reply, the sender cannot know whether the server took the message, and the
ledger sends it again. Both copies carry the same `Message-ID` and `X-Herald-Delivery` (the
delivery's idempotency key), so receiving systems and tests can drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import os
import ssl
from email.message import Message
from pathlib import Path
from typing import Any, Protocol

from herald.processors._api import DeliveryResult, ProcessorConfigError

_AUTH_CODES = {530, 534, 535, 538}
_SMTP_POLICY = email.policy.compat32.clone(linesep="\r\n")


class MailTransport(Protocol):
    async def start(self) -> None: ...

    async def send(self, message: Message, envelope_from: str, recipient: str) -> DeliveryResult: ...

    async def aclose(self) -> None: ...

    def options(self) -> dict[str, Any]:
        """The effective transport options (nodemailer's shape), for tests and diagnostics."""
        ...


def _code_result(code: int, text: str, what: str) -> DeliveryResult:
    detail = f"{what}: {code} {text}".strip()
    if 500 <= code < 600 and code not in _AUTH_CODES:
        return DeliveryResult.permanent(detail)
    return DeliveryResult.retryable(detail)


class SmtpTransport:
    """SMTP with a small pool of open connections (at most `pool_size`, one message at a time each).

    `secure` is implicit TLS (port 465); otherwise STARTTLS is used when the server offers it, and
    required with `require_tls`. Auth happens only when both username and password are set."""

    def __init__(self, *, hostname: str, port: int, secure: bool = False, require_tls: bool = False,
                 username: str | None = None, password: str | None = None, timeout_s: float = 30.0,
                 ca_file: str | None = None, pool_size: int = 2) -> None:
        self.hostname = hostname
        self.port = port
        self.secure = secure
        self.require_tls = require_tls
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self.ca_file = ca_file
        self.pool_size = max(1, pool_size)
        self._idle: list[Any] = []
        self._tls: ssl.SSLContext | None = None

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.hostname, "port": self.port, "requireTLS": self.require_tls,
                               "secure": self.secure}
        if self.username and self._password:
            out["auth"] = {"user": self.username, "pass": "**********"}
        return out

    async def start(self) -> None:
        if self.ca_file:
            try:
                self._tls = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise ProcessorConfigError(
                    f"notifications.processors.email.transportConfig.caFile: cannot load {self.ca_file}: {e}"
                ) from None

    async def _connect(self) -> Any:
        import aiosmtplib

        auth = bool(self.username and self._password)
        client = aiosmtplib.SMTP(
            hostname=self.hostname, port=self.port, use_tls=self.secure,
            start_tls=False if self.secure else (True if self.require_tls else None),
            username=self.username if auth else None, password=self._password if auth else None,
            timeout=self.timeout_s, tls_context=self._tls,
        )
        await client.connect()
        return client

    async def send(self, message: Message, envelope_from: str, recipient: str) -> DeliveryResult:
        import aiosmtplib

        data = message.as_bytes(policy=_SMTP_POLICY)
        client: Any = None
        reused = False
        for _ in range(2):
            if self._idle:
                client, reused = self._idle.pop(), True
            else:
                try:
                    client, reused = await self._connect(), False
                except aiosmtplib.SMTPAuthenticationError as e:
                    return DeliveryResult.retryable(f"SMTP authentication failed: {e.code} {e.message}")
                except aiosmtplib.SMTPResponseException as e:
                    return _code_result(e.code, e.message, "SMTP server refused the connection")
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
                    return DeliveryResult.retryable(f"cannot connect to {self.hostname}:{self.port}: {e}")
            try:
                _, reply = await client.sendmail(envelope_from, [recipient], data)
            except aiosmtplib.SMTPServerDisconnected as e:
                await self._discard(client)
                if reused:
                    continue  # an idle connection the server had closed: once more on a fresh one
                return DeliveryResult.retryable(f"SMTP server disconnected: {e}")
            except aiosmtplib.SMTPRecipientsRefused as e:
                await self._discard(client)
                refused = e.recipients[0] if e.recipients else None
                if refused is None:
                    return DeliveryResult.retryable("recipient refused")
                return _code_result(refused.code, refused.message, "recipient refused")
            except aiosmtplib.SMTPResponseException as e:
                await self._discard(client)
                return _code_result(e.code, e.message, "SMTP error")
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
                await self._discard(client)
                return DeliveryResult.retryable(f"SMTP failure: {type(e).__name__}: {e}")
            if len(self._idle) < self.pool_size:
                self._idle.append(client)
            else:
                await self._discard(client)
            return DeliveryResult.ok(f"accepted by {self.hostname}:{self.port}: {reply}".strip())
        return DeliveryResult.retryable("SMTP server disconnected")

    async def _discard(self, client: Any) -> None:
        with contextlib.suppress(Exception):
            client.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), 2)
            await self._discard(client)


# sysexits.h codes that mean "try again later"
_SENDMAIL_TEMPORARY = {69, 70, 71, 73, 74, 75}


class SendmailTransport:
    """Pipes the message to `path -i -f <from> -- <to>`; exit 0 is success, EX_TEMPFAIL and
    friends are retryable, any other code is permanent."""

    def __init__(self, *, path: str = "/usr/sbin/sendmail", newline: str = "unix", timeout_s: float = 60.0
                 ) -> None:
        self.path = path
        self.newline = newline
        self.timeout_s = timeout_s

    def options(self) -> dict[str, Any]:
        return {"sendmail": True, "path": self.path, "newline": self.newline}

    async def start(self) -> None:
        if not await asyncio.to_thread(_executable, self.path):
            raise ProcessorConfigError(
                f"notifications.processors.email.transportConfig.path: {self.path} is not an executable file")

    async def send(self, message: Message, envelope_from: str, recipient: str) -> DeliveryResult:
        linesep = "\r\n" if self.newline == "windows" else "\n"
        data = message.as_bytes(policy=email.policy.compat32.clone(linesep=linesep))
        try:
            proc = await asyncio.create_subprocess_exec(
                self.path, "-i", "-f", envelope_from, "--", recipient, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as e:
            return DeliveryResult.retryable(f"cannot run {self.path}: {e}")
        try:
            _, err = await asyncio.wait_for(proc.communicate(data), self.timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return DeliveryResult.retryable(f"{self.path} timed out after {self.timeout_s:g} s")
        code = proc.returncode or 0
        detail = f"{self.path} exited with {code}" + (f": {err.decode(errors='replace').strip()[:500]}" if err else "")
        if code == 0:
            return DeliveryResult.ok(f"handed to {self.path}")
        if code in _SENDMAIL_TEMPORARY:
            return DeliveryResult.retryable(detail)
        return DeliveryResult.permanent(detail)

    async def aclose(self) -> None:
        return None


class StreamTransport:
    """Development transport: writes each message to `<directory>/<delivery id>.eml` (atomically,
    so a re-delivery of the same key replaces the file instead of adding a copy). Nothing is sent."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def options(self) -> dict[str, Any]:
        return {"streamTransport": True, "directory": str(self.directory)}

    async def start(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProcessorConfigError(
                f"notifications.processors.email.transportConfig.directory: cannot create {self.directory}: {e}"
            ) from None

    async def send(self, message: Message, envelope_from: str, recipient: str) -> DeliveryResult:
        key = str(message.get("X-Herald-Delivery") or "message")
        path = self.directory / f"{key}.eml"
        try:
            await asyncio.to_thread(_write_atomically, path, bytes(message))
        except OSError as e:
            return DeliveryResult.retryable(f"cannot write {path}: {e}")
        return DeliveryResult.ok(f"written to {path}")

    async def aclose(self) -> None:
        return None


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
