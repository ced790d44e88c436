"""The `Webhook` processor: POSTs a signed JSON document to configured endpoints.

Configuration `notifications.processors.webhook` (Herald's own)::

    endpoints:
      - name: ops                     # required, unique: the delivery target
        url: https://hooks.example.com/herald      # secret (shown as https://hooks.example.com/****)
        secret: s3cr3t-signing-key    # required, secret: HMAC-SHA256 key
        filter: { minSeverity: high, includedTopics: [deploy] }
        headers: { X-Team: ops }      # extra headers (values are secret)
        timeout: { seconds: 10 }
        allowPrivateNetwork: false    # this endpoint may be on a loopback/private address
    timeout: { seconds: 10 }
    allowPrivateNetworks: false       # every endpoint may be on a loopback/private address
    concurrencyLimit: 10
    throttleInterval: 0
    filter: { ... }                   # for the whole channel

One delivery per recipient user and endpoint (one per endpoint for a broadcast). Each request
carries `X-Herald-Delivery` (also `Idempotency-Key`, stable across retries), `X-Herald-Timestamp`
(Unix seconds) and `X-Herald-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`;
`verify_signature` checks one. 2xx is success; 408, 429 (honouring `Retry-After`), 5xx, timeouts
and connection errors are retried; other statuses (redirects included) are permanent failures.

Unless allowed, endpoints must resolve to public addresses only: the host is resolved once, every
address checked, and the request sent to the checked address (no DNS rebinding in between).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from pydantic import Field, SecretStr, field_validator, model_validator

from herald.core.clock import iso_ms, iso_ms_or_none
from herald.core.model import BroadcastRecipients, SendRequest
from herald.core.ports import NewNotification
from herald.core.rules import absolute_link
from herald.processors._api import (
    Delivery,
    DeliveryPlan,
    DeliveryResult,
    Duration,
    Filters,
    Limits,
    Processor,
    ProcessorContext,
    ProcessorSettings,
    SettingsModel,
)
from herald.processors._http import LazyClient
from herald.processors._secrets import SecretUrl

SIGNATURE_HEADER = "X-Herald-Signature"
TIMESTAMP_HEADER = "X-Herald-Timestamp"
DELIVERY_HEADER = "X-Herald-Delivery"
USER_AGENT = "Herald-Webhook/1"


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>")."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, timestamp: str | int, signature: str, *,
                     tolerance_s: int | None = 300, now_s: float | None = None) -> bool:
    """For receivers: True when `signature` signs `body` at `timestamp` and, with a tolerance, the
    timestamp is recent (replay protection). Constant-time comparison."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance_s is not None and abs((time.time() if now_s is None else now_s) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


class Endpoint(SettingsModel):
    name: str = Field(min_length=1, max_length=200)
    url: SecretUrl
    secret: SecretStr
    filter: Filters = Field(default_factory=Filters)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: Duration | None = None
    allow_private_network: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, v: SecretUrl) -> SecretUrl:
        parts = urlsplit(v.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http(s) URL")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("secret must be at least 16 characters")
        return v


class WebhookSettings(ProcessorSettings):
    endpoints: tuple[Endpoint, ...] = Field(min_length=1)
    timeout: Duration = 10_000
    allow_private_networks: bool = False
    concurrency_limit: int = Field(10, ge=1, le=1000)
    throttle_interval: Duration = 0

    @model_validator(mode="after")
    def _check(self) -> WebhookSettings:
        names = [e.name for e in self.endpoints]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"endpoint names must be unique: {', '.join(dupes)}")
        for i, e in enumerate(self.endpoints):
            host = urlsplit(e.url.get_secret_value()).hostname or ""
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                continue
            if not (self.allow_private_networks or e.allow_private_network) and not _public(ip):
                raise ValueError(f"endpoints.{i}.url: {ip} is a loopback/private address; set "
                                 "allowPrivateNetwork to allow it")
        return self


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _Refused(Exception):
    pass


class WebhookProcessor(Processor[WebhookSettings]):
    name: ClassVar[str] = "Webhook"
    kind: ClassVar[str] = "webhook"
    Settings = WebhookSettings

    def __init__(self, settings: WebhookSettings, context: ProcessorContext,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, context)
        self._endpoints = {e.name: e for e in settings.endpoints}
        self._http = LazyClient(transport, headers={"User-Agent": USER_AGENT})

    def limits(self) -> Limits:
        s = self.settings
        return Limits(concurrency=s.concurrency_limit, per_interval=s.concurrency_limit,
                      interval_ms=s.throttle_interval)

    @property
    def client(self) -> httpx.AsyncClient:
        return self._http.get()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def plan(self, notification: NewNotification, request: SendRequest) -> DeliveryPlan:
        names = tuple(e.name for e in self.settings.endpoints
                      if e.filter.accepts(notification.severity, notification.topic))
        if isinstance(request.recipients, BroadcastRecipients):
            return DeliveryPlan(per_user=(), extra=names)
        return DeliveryPlan(per_user=names)

    def document(self, delivery: Delivery) -> dict[str, Any]:
        n = delivery.notification
        return {
            "type": "notification",
            "deliveryId": delivery.id,
            "attempt": delivery.attempt,
            "resend": delivery.resend,
            "broadcast": delivery.broadcast,
            "notification": {
                "id": n.id, "user": n.user, "created": iso_ms(n.created), "updated": iso_ms_or_none(n.updated),
                "origin": n.origin,
                "payload": {"title": n.title, "description": n.description, "link": n.link,
                            "severity": n.severity, "topic": n.topic, "scope": n.scope, "icon": n.icon,
                            "metadata": dict(delivery.metadata) or None},
            },
            "link": absolute_link(n.link, self.context.app_base_url),
        }

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        endpoint = self._endpoints.get(delivery.target or "")
        if endpoint is None:
            return DeliveryResult.permanent(f"no webhook endpoint named {delivery.target!r} is configured")
        body = orjson.dumps(self.document(delivery))
        ts = self.context.clock.now_ms() // 1000
        headers = {k: v.get_secret_value() for k, v in endpoint.headers.items()}
        headers.update({
            "Content-Type": "application/json", DELIVERY_HEADER: delivery.id, "Idempotency-Key": delivery.id,
            TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(endpoint.secret.get_secret_value(), ts, body),
        })
        url = endpoint.url.get_secret_value()
        timeout = (endpoint.timeout or self.settings.timeout) / 1000
        extensions: dict[str, Any] = {}
        try:
            if not (self.settings.allow_private_networks or endpoint.allow_private_network):
                url, host_header, sni = await _pin_public(url)
                headers["Host"] = host_header
                if sni:
                    extensions["sni_hostname"] = sni
            response = await self.client.post(url, content=body, headers=headers, timeout=timeout,
                                              extensions=extensions)
        except _Refused as e:
            return DeliveryResult.permanent(f"{endpoint.name}: {e}")
        except httpx.TimeoutException:
            return DeliveryResult.retryable(f"{endpoint.name}: timed out after {timeout:g} s")
        except (httpx.HTTPError, OSError) as e:
            return DeliveryResult.retryable(f"{endpoint.name}: {type(e).__name__}: {e}")
        return _status_result(endpoint.name, response)


def _status_result(name: str, response: httpx.Response) -> DeliveryResult:
    code = response.status_code
    if 200 <= code < 300:
        return DeliveryResult.ok(f"{name}: {code}", receipt={"status": code})
    detail = f"{name}: HTTP {code}"
    if code in (408, 425, 429) or code >= 500:
        return DeliveryResult.retryable(detail, retry_after_ms=retry_after_ms(response.headers))
    return DeliveryResult.permanent(detail)


def retry_after_ms(headers: Mapping[str, str]) -> int | None:
    """`Retry-After` in seconds (the date form is rare for APIs and treated as absent)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0, int(float(value) * 1000))
    except ValueError:
        return None


async def _pin_public(url: str) -> tuple[str, str, str | None]:
    """Resolve the URL's host, refuse non-public addresses, and return the URL with the host
    replaced by the checked address, the Host header, and the TLS server name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise httpx.ConnectError(f"cannot resolve {host}: {e}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise httpx.ConnectError(f"cannot resolve {host}")
    for ip in addresses:
        if not _public(ip):
            raise _Refused(f"{host} resolves to {ip}, a loopback/private address (allowPrivateNetwork is off)")
    ip = addresses[0]
    netloc_host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{netloc_host}:{parts.port}" if parts.port else netloc_host
    host_header = parts.netloc.rsplit("@", 1)[-1]
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return pinned, host_header, (host if parts.scheme == "https" and literal is None else None)
