"""The `SlackNotificationProcessor` (spec §5.5): direct messages and channel messages, Block Kit.

Configuration `notifications.processors.slack` is a list, one entry per workspace, as upstream::

    - token: xoxb-…                   # required, secret
      username: Herald                # display name override
      broadcastChannels: [C0123]      # deprecated upstream; used when no route matches
      broadcastRoutes:
        - { origin: plugin:catalog, topic: deploy, channel: C0456 }
        - { origin: plugin:scaffolder, channel: [C01, C02] }
      concurrencyLimit: 10            # at most 10 messages …
      throttleInterval: { minutes: 1 }  # … per minute (upstream's default)
      name: acme                      # Herald: target prefix (default: the entry's index)
      apiUrl: https://slack.com/api/  # Herald: a proxy, or a local fake in tests

Deliveries:

* a user named explicitly in `recipients.entityRef` (not one resolved from a group) gets a DM at
  the user's `slack.com/bot-notify` annotation, else at the Slack account found by
  `users.lookupByEmail` with the user's catalog email;
* every other entity ref gets a channel message at `payload.metadata.slackChannel`, else at the
  entity's `slack.com/bot-notify` annotation (upstream posts these from processOptions; Herald
  writes them to the ledger with the send, so they are durable too);
* a broadcast goes to the first route matching origin and topic, else the first origin-only
  route, else the first topic-only route, else `broadcastChannels`.

A scoped re-send edits the earlier message (`chat.update` with the stored channel and `ts`).
HTTP 429 and Slack's `ratelimited` are retried after `Retry-After`; 5xx and Slack's transient
errors are retried; other errors (`channel_not_found`, `invalid_auth` …) are permanent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from herald.core.entity_ref import is_user_ref
from herald.core.model import BroadcastRecipients, EntityRecipients, SendRequest
from herald.core.ports import NewNotification
from herald.core.rules import absolute_link
from herald.processors._api import (
    Delivery,
    DeliveryPlan,
    DeliveryResult,
    Duration,
    Limits,
    Processor,
    ProcessorConfigError,
    ProcessorContext,
    ProcessorSettings,
    SettingsModel,
    format_validation_error,
)
from herald.processors._email.addresses import TtlCache
from herald.processors._http import LazyClient
from herald.processors._throttle import Throttle
from herald.processors._webhook import retry_after_ms

ANNOTATION = "slack.com/bot-notify"
COLORS = {"critical": "#FF0000", "high": "#FFA500"}
DEFAULT_COLOR = "#00A699"
RETRYABLE_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout", "team_added_to_org"})
UPDATE_FALLBACK_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_MENTION = re.compile(r"<@(user:[^>\s]+)>")


class Route(SettingsModel):
    origin: str | None = None
    topic: str | None = None
    channel: tuple[str, ...]

    @field_validator("channel", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class Workspace(SettingsModel):
    token: SecretStr
    username: str | None = None
    broadcast_channels: tuple[str, ...] = ()
    broadcast_routes: tuple[Route, ...] = ()
    concurrency_limit: int = Field(10, ge=1, le=1000)
    throttle_interval: Duration = 60_000
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    api_url: str = "https://slack.com/api/"

    @field_validator("token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        if not re.fullmatch(r"xox[a-z]-[A-Za-z0-9-]+", v.get_secret_value()):
            raise ValueError("token must be a Slack token (xoxb-…)")
        return v

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("apiUrl must be an http(s) URL")
        return v if v.endswith("/") else v + "/"


class SlackSettings(ProcessorSettings):
    workspaces: tuple[Workspace, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> SlackSettings:
        keys = [w.name or str(i) for i, w in enumerate(self.workspaces)]
        if len(set(keys)) != len(keys):
            raise ValueError("workspace names must be unique")
        return self


class _Workspace:
    def __init__(self, key: str, settings: Workspace, now_ms: Any) -> None:
        self.key = key
        self.settings = settings
        self.throttle = Throttle(settings.concurrency_limit, settings.throttle_interval)
        self.user_ids: TtlCache[str | None] = TtlCache(10 * 60_000, now_ms)

    def broadcast_channels(self, origin: str, topic: str | None) -> tuple[str, ...]:
        routes = self.settings.broadcast_routes
        for r in routes:
            if r.origin is not None and r.topic is not None and r.origin == origin and r.topic == topic:
                return r.channel
        for r in routes:
            if r.origin is not None and r.topic is None and r.origin == origin:
                return r.channel
        for r in routes:
            if r.topic is not None and r.origin is None and r.topic == topic:
                return r.channel
        return self.settings.broadcast_channels


class SlackProcessor(Processor[SlackSettings]):
    name: ClassVar[str] = "SlackNotificationProcessor"
    kind: ClassVar[str] = "slack"
    Settings = SlackSettings

    def __init__(self, settings: SlackSettings, context: ProcessorContext,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, context)
        self.workspaces = {w.name or str(i): _Workspace(w.name or str(i), w, context.clock.now_ms)
                           for i, w in enumerate(settings.workspaces)}
        self._http = LazyClient(transport, timeout=15.0)

    @classmethod
    def parse_settings(cls, raw: Any) -> ProcessorSettings:
        """Upstream's shape is a list of workspaces; a single mapping is one workspace."""
        if isinstance(raw, list):
            raw = {"workspaces": raw}
        elif isinstance(raw, dict) and "workspaces" not in raw and "token" in raw:
            raw = {"workspaces": [raw]}
        try:
            return cls.Settings.model_validate(raw)
        except ValueError as e:
            from pydantic import ValidationError

            if isinstance(e, ValidationError):
                raise ProcessorConfigError(format_validation_error("notifications.processors.slack", e)) from None
            raise

    def limits(self) -> Limits:
        ws = [w.settings for w in self.workspaces.values()]
        if len(ws) == 1:
            return Limits(ws[0].concurrency_limit, ws[0].concurrency_limit, ws[0].throttle_interval)
        total = sum(w.concurrency_limit for w in ws)
        return Limits(total, total, 0)  # each workspace throttles itself in deliver()

    @property
    def client(self) -> httpx.AsyncClient:
        return self._http.get()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- planning ---------------------------------------------------------------------------

    async def plan(self, notification: NewNotification, request: SendRequest) -> DeliveryPlan:
        recipients = request.recipients
        if isinstance(recipients, BroadcastRecipients):
            extra = tuple(f"{w.key}|{c}" for w in self.workspaces.values()
                          for c in w.broadcast_channels(notification.origin, notification.topic))
            return DeliveryPlan(per_user=(), extra=extra)
        assert isinstance(recipients, EntityRecipients)
        explicit = {r for r in recipients.entity_refs if is_user_ref(r)}
        metadata = request.payload.metadata or {}
        channels: list[str] = []
        for ref in recipients.entity_refs:
            if ref in explicit:
                continue
            channel = metadata.get("slackChannel")
            if not isinstance(channel, str) or not channel:
                entity = self.context.directory.entity(ref)
                channel = entity.annotations.get(ANNOTATION) if entity is not None else None
            if channel and channel not in channels:
                channels.append(channel)
        extra = tuple(f"{w.key}|{c}" for w in self.workspaces.values() for c in channels)
        return DeliveryPlan(users=explicit, per_user=tuple(self.workspaces), extra=extra)

    # -- delivering -------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        key, _, channel = (delivery.target or "").partition("|")
        ws = self.workspaces.get(key)
        if ws is None:
            return DeliveryResult.permanent(f"no Slack workspace {key!r} is configured")
        if len(self.workspaces) > 1:
            await ws.throttle.acquire()
        if not channel:
            if delivery.user is None:
                return DeliveryResult.skipped("no Slack destination")
            found = await self.slack_id(ws, delivery.user)
            if isinstance(found, DeliveryResult):
                return found
            if found is None:
                return DeliveryResult.skipped(f"{delivery.user} has no Slack account (no {ANNOTATION} "
                                              "annotation, no Slack user with their email)")
            channel = found
        message = await self.message(ws, delivery)
        previous = delivery.previous_receipt or {}
        prev_channel, prev_ts = previous.get("channel"), previous.get("ts")
        if isinstance(prev_channel, str) and isinstance(prev_ts, str):
            answer = await self.call(ws, "chat.update", {**message, "channel": prev_channel, "ts": prev_ts})
            if isinstance(answer, dict):
                return DeliveryResult.ok("updated the earlier message",
                                         receipt={"channel": answer.get("channel", prev_channel),
                                                  "ts": answer.get("ts", prev_ts)})
            if not answer.detail.endswith(tuple(UPDATE_FALLBACK_ERRORS)):
                return answer
        body: dict[str, Any] = {**message, "channel": channel}
        if ws.settings.username:
            body["username"] = ws.settings.username
        answer = await self.call(ws, "chat.postMessage", body)
        if isinstance(answer, DeliveryResult):
            return answer
        return DeliveryResult.ok(f"posted to {answer.get('channel', channel)}",
                                 receipt={"channel": answer.get("channel", channel), "ts": answer.get("ts")})

    async def slack_id(self, ws: _Workspace, user: str) -> str | DeliveryResult | None:
        """The user's annotation, else the Slack account with the user's email (cached 10 min)."""
        info = self.context.directory.user(user)
        if info is None:
            return None
        annotated = info.annotations.get(ANNOTATION)
        if annotated:
            return annotated
        if not info.email:
            return None
        cache_key = info.email.lower()
        cached, value = ws.user_ids.lookup(cache_key)
        if cached:
            return value
        answer = await self.call(ws, "users.lookupByEmail", {"email": info.email}, form=True)
        if isinstance(answer, DeliveryResult):
            if answer.detail.endswith("users_not_found"):
                ws.user_ids.set(cache_key, None)
                return None
            return answer
        slack_user = answer.get("user")
        found = slack_user.get("id") if isinstance(slack_user, dict) else None
        found = found if isinstance(found, str) else None
        ws.user_ids.set(cache_key, found)
        return found

    async def message(self, ws: _Workspace, delivery: Delivery) -> dict[str, Any]:
        n = delivery.notification
        description = await self._mrkdwn(ws, n.description) if n.description else "No description provided"
        link = absolute_link(n.link, self.context.app_base_url)
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": description},
             "accessory": {"type": "button", "text": {"type": "plain_text", "text": "View More"},
                           "action_id": "button-action", "url": link}},
            {"type": "context", "elements": [
                {"type": "plain_text", "text": f"Severity: {n.severity}", "emoji": True},
                {"type": "plain_text", "text": f"Topic: {n.topic or 'N/A'}", "emoji": True}]},
        ]
        return {"text": _escape(n.title),
                "attachments": [{"color": COLORS.get(n.severity, DEFAULT_COLOR), "blocks": blocks,
                                 "fallback": n.title}]}

    async def _mrkdwn(self, ws: _Workspace, text: str) -> str:
        """Escape `& < >` and turn `<@user:default/x>` mentions into Slack mentions."""
        out: list[str] = []
        pos = 0
        for m in _MENTION.finditer(text):
            out.append(_escape(text[pos:m.start()]))
            found = await self.slack_id(ws, m.group(1))
            out.append(f"<@{found}>" if isinstance(found, str) else _escape(m.group(0)))
            pos = m.end()
        out.append(_escape(text[pos:]))
        return "".join(out)

    async def call(self, ws: _Workspace, method: str, payload: Mapping[str, Any], *, form: bool = False
                   ) -> dict[str, Any] | DeliveryResult:
        """One Web API call: the answer when `ok`, else a failed DeliveryResult ending in the error."""
        url = ws.settings.api_url + method
        headers = {"Authorization": f"Bearer {ws.settings.token.get_secret_value()}"}
        try:
            if form:
                response = await self.client.post(url, data=dict(payload), headers=headers)
            else:
                response = await self.client.post(url, json=dict(payload), headers=headers)
        except httpx.TimeoutException:
            return DeliveryResult.retryable(f"{method}: timed out")
        except (httpx.HTTPError, OSError) as e:
            return DeliveryResult.retryable(f"{method}: {type(e).__name__}: {e}")
        code = response.status_code
        if code == 429:
            return DeliveryResult.retryable(f"{method}: HTTP 429 ratelimited",
                                            retry_after_ms=retry_after_ms(response.headers) or 1000)
        if code >= 500:
            return DeliveryResult.retryable(f"{method}: HTTP {code}", retry_after_ms=retry_after_ms(response.headers))
        if code != 200:
            return DeliveryResult.permanent(f"{method}: HTTP {code}")
        try:
            answer = response.json()
        except ValueError:
            return DeliveryResult.retryable(f"{method}: the answer is not JSON")
        if not isinstance(answer, dict):
            return DeliveryResult.retryable(f"{method}: unexpected answer")
        if answer.get("ok") is True:
            return answer
        error = str(answer.get("error") or "unknown_error")
        if error in RETRYABLE_ERRORS:
            return DeliveryResult.retryable(f"{method}: {error}", retry_after_ms=retry_after_ms(response.headers))
        return DeliveryResult.permanent(f"{method}: {error}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
