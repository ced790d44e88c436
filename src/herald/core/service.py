"""The use cases behind the notifications API (spec §2, §3). Pure: talks to ports only."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence

from herald.core.clock import Clock
from herald.core.entity_ref import is_user_ref
from herald.core.errors import InputError, NotFoundError
from herald.core.model import (
    WEB_CHANNEL,
    BroadcastRecipients,
    EntityRecipients,
    ListFilter,
    ListQuery,
    Notification,
    Page,
    Principal,
    SendRequest,
    Sent,
    Status,
)
from herald.core.ports import (
    NewNotification,
    NotificationStore,
    Outbox,
    RecipientResolver,
    Signal,
    SignalPublisher,
)
from herald.core.rules import validate_payload
from herald.core.settings_model import (
    OriginSetting,
    SettingsDocument,
    SettingsPolicy,
    StoredSetting,
    document_to_rows,
    rows_to_channels,
)

_log = logging.getLogger("herald.service")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NOTIFICATIONS_CHANNEL = "notifications"


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


UserChannels = Mapping[str, Mapping[str, OriginSetting]]
"""One user's stored settings grouped by channel -> origin (see `rows_to_channels`)."""


class SendHooks:
    """Extension seam for processors (spec §3.5). The default does nothing.

    Called in this order for each send:

    * `prepare` may rewrite the request (processOptions);
    * `pre_process` may rewrite the notification shared by every recipient (preProcess, once per
      send rather than once per user, so that the store write stays one set-based statement);
    * `plan_deliveries` returns the external deliveries (an `Outbox`) that the store writes in the
      same transaction as the notifications. It gets every resolved user, those left out of the
      Web inbox included (spec §3.4.2 step 4), and every user's stored settings for all channels
      (one query for all of them);
    * `after_store` is told, after the commit, which deliveries were enqueued (to wake a worker)."""

    async def prepare(self, principal: Principal, request: SendRequest) -> SendRequest:
        return request

    async def pre_process(self, base: NewNotification, request: SendRequest) -> NewNotification:
        return base

    async def plan_deliveries(self, request: SendRequest, base: NewNotification, users: Sequence[str],
                              web_disabled_users: Sequence[str],
                              settings: Mapping[str, UserChannels]) -> Outbox | None:
        return None

    async def after_store(self, outbox: Outbox | None) -> None:
        return None


class NotificationService:
    def __init__(
        self,
        *,
        store: NotificationStore,
        resolver: RecipientResolver,
        signals: SignalPublisher,
        policy: SettingsPolicy,
        clock: Clock,
        app_base_url: str,
        hooks: SendHooks | None = None,
        id_factory: Callable[[], str] = new_id,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.signals = signals
        self.policy = policy
        self.clock = clock
        self.app_base_url = app_base_url
        self.hooks = hooks or SendHooks()
        self.new_id = id_factory

    @property
    def channels(self) -> list[str]:
        return self.policy.channels

    # -- sending ------------------------------------------------------------------------------

    async def send(self, principal: Principal, request: SendRequest) -> list[Sent]:
        origin = principal.subject
        request = await self.hooks.prepare(principal, request)
        payload = request.payload
        validate_payload(payload, self.app_base_url)
        base = NewNotification(
            origin=origin, created=self.clock.now_ms(), title=payload.title,
            description=payload.description, link=payload.link, severity=payload.severity,
            topic=payload.topic, scope=payload.scope, icon=payload.icon,
        )
        base = await self.hooks.pre_process(base, request)
        recipients = request.recipients
        if isinstance(recipients, BroadcastRecipients):
            outbox = await self.hooks.plan_deliveries(request, base, (), (), {})
            sent = [await self.store.save_broadcast(base, self.new_id(), outbox)]
            await self.signals.publish([Signal(NOTIFICATIONS_CHANNEL, _new(sent[0].notification.id))])
            await self.hooks.after_store(outbox)
            return sent
        if not isinstance(recipients, EntityRecipients):  # pragma: no cover - parsing guarantees it
            raise InputError("Invalid recipients type, please use either 'broadcast' or 'entity'")
        try:
            resolved = await self.resolver.resolve(recipients.entity_refs, recipients.excluded_refs)
        except (ValueError, LookupError) as e:
            raise InputError("Failed to send user notifications", cause=e) from None
        users = list(dict.fromkeys(u for u in resolved if is_user_ref(u)))
        settings = await self._user_settings(users)
        enabled, disabled = self._web_enabled(users, origin, payload.topic, settings)
        outbox = await self.hooks.plan_deliveries(request, base, users, disabled, settings)
        sent = await self.store.save_user_notifications(base, enabled, [self.new_id() for _ in enabled], outbox)
        if sent:
            await self.signals.publish(
                [Signal(NOTIFICATIONS_CHANNEL, _new(s.notification.id), (s.notification.user or "",))
                 for s in sent]
            )
        await self.hooks.after_store(outbox)
        return sent

    async def _user_settings(self, users: list[str]) -> dict[str, UserChannels]:
        """Every user's stored settings for every channel, with one query for all of them."""
        if not users:
            return {}
        rows = await self.store.settings_rows(users, self.policy.channels)
        by_user: dict[str, list[StoredSetting]] = {}
        for r in rows:
            by_user.setdefault(r.user, []).append(r)
        return {u: rows_to_channels(user_rows) for u, user_rows in by_user.items()}

    def _web_enabled(self, users: list[str], origin: str, topic: str | None,
                     settings: Mapping[str, UserChannels]) -> tuple[list[str], list[str]]:
        """Split users by their Web-channel setting (users without stored rows share one answer)."""
        enabled: list[str] = []
        disabled: list[str] = []
        default_on: bool | None = None
        for u in users:
            user_channels = settings.get(u)
            if user_channels is None:
                if default_on is None:
                    default_on = self.policy.is_enabled(WEB_CHANNEL, origin, topic, {})
                ok = default_on
            else:
                ok = self.policy.is_enabled(WEB_CHANNEL, origin, topic, user_channels)
            (enabled if ok else disabled).append(u)
        return enabled, disabled

    # -- reading ------------------------------------------------------------------------------

    async def list_page(self, user: str, query: ListQuery) -> Page:
        return await self.store.list_page(user, query)

    async def get(self, user: str, id: str) -> Notification:
        found = await self.store.get(user, id) if is_uuid(id) else None
        if found is None:
            raise NotFoundError("Not found")
        return found

    async def status(self, user: str) -> Status:
        return await self.store.status(user)

    async def topics(self, user: str, filter: ListFilter) -> list[str]:
        return await self.store.topics(user, filter)

    # -- updating -----------------------------------------------------------------------------

    async def update(self, user: str, ids: Sequence[str], *, read: bool | None, saved: bool | None
                     ) -> list[Notification]:
        valid = [i.lower() for i in ids if is_uuid(i)]
        rows = await self.store.mark(user, valid, read=read, saved=saved, now=self.clock.now_ms()) if valid else []
        if read is not None:
            action = "notification_read" if read else "notification_unread"
            await self.signals.publish([Signal(NOTIFICATIONS_CHANNEL,
                                               {"action": action, "notification_ids": list(ids)},
                                               (user,))])
        return rows

    # -- settings -----------------------------------------------------------------------------

    async def settings(self, user: str) -> SettingsDocument:
        rows = await self.store.settings_rows([user])
        seen = await self.store.origins_and_topics(user)
        return self.policy.document(rows, seen)

    async def save_settings(self, user: str, document: SettingsDocument) -> SettingsDocument:
        allowed = set(self.policy.channels)
        for ch in document.channels:
            if ch.id not in allowed:
                raise InputError("Invalid channel")
        await self.store.replace_settings(user, document_to_rows(user, document))
        return await self.settings(user)

    # -- retention ----------------------------------------------------------------------------

    async def clean(self, retention_ms: int) -> int:
        cutoff = self.clock.now_ms() - retention_ms
        return await self.store.delete_older_than(cutoff)


def _new(notification_id: str) -> dict[str, str]:
    return {"action": "new_notification", "notification_id": notification_id}


