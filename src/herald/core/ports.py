"""What the core needs from the outside world. Adapters implement these Protocols."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from herald.core.model import ListFilter, ListQuery, Notification, Page, Sent, Status
from herald.core.settings_model import StoredSetting


@dataclass(frozen=True, slots=True)
class NewNotification:
    """Everything a send stores, shared by all its recipients."""

    origin: str
    created: int
    title: str
    description: str | None
    link: str | None
    severity: str
    topic: str | None
    scope: str | None
    icon: str | None


def route_key(channel: str, user: str | None, target: str | None) -> str:
    """Where a delivery goes, as one indexed string: a scoped re-send supersedes pending deliveries
    with the same origin, scope and route key, and finds the receipt of the earlier message."""
    return f"{channel}|{user or ''}|{target or ''}"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One external delivery of a send: a (notification, user, channel, target) row of the ledger.

    `id` is the delivery's stable idempotency key. `notification_id` None means "the id of the
    row stored for `user`" (or of the broadcast), which is only known after the upsert: a scoped
    re-send keeps the existing id."""

    id: str
    channel: str
    user: str | None = None
    target: str | None = None
    notification_id: str | None = None

    @property
    def route_key(self) -> str:
        return route_key(self.channel, self.user, self.target)


@dataclass(frozen=True, slots=True)
class Outbox:
    """External deliveries to write in the same transaction as the notification (transactional
    outbox). `snapshot` is the JSON of what they deliver, shared by every entry, so that a
    delivery never needs the notification row (which users with Web disabled do not get)."""

    send_id: str
    origin: str
    scope: str | None
    snapshot: str
    entries: tuple[OutboxEntry, ...]
    now: int


class NotificationStore(Protocol):
    async def save_user_notifications(
        self, base: NewNotification, users: Sequence[str], ids: Sequence[str],
        outbox: Outbox | None = None,
    ) -> list[Sent]:
        """Insert one row per user, or for scoped sends update the (user, origin, scope) row in place.

        With an outbox, its deliveries are written in the same transaction (and pending deliveries
        of the same scope and destination are superseded). One transaction, a constant number of
        statements. Returns rows in `users` order."""
        ...

    async def save_broadcast(self, base: NewNotification, id: str, outbox: Outbox | None = None
                             ) -> Sent: ...

    async def list_page(self, user: str, query: ListQuery) -> Page: ...

    async def get(self, user: str, id: str) -> Notification | None: ...

    async def by_ids(self, user: str, ids: Sequence[str]) -> list[Notification]: ...

    async def mark(self, user: str, ids: Sequence[str], *, read: bool | None, saved: bool | None,
                   now: int) -> list[Notification]:
        """Change read/saved; return the caller-visible rows with these ids afterwards, newest first."""
        ...

    async def status(self, user: str) -> Status: ...

    async def topics(self, user: str, filter: ListFilter) -> list[str]: ...

    async def settings_rows(self, users: Sequence[str], channels: Sequence[str] | None = None
                            ) -> list[StoredSetting]: ...

    async def replace_settings(self, user: str, rows: Sequence[StoredSetting]) -> None: ...

    async def origins_and_topics(self, user: str) -> list[tuple[str, str | None]]:
        """Distinct (origin, topic) of the user's own (non-broadcast) notifications."""
        ...

    async def delete_older_than(self, cutoff_ms: int) -> int: ...


class RecipientResolver(Protocol):
    """Turns entity refs into user refs (spec §3.7). The file catalog implements it; a Backstage
    catalog HTTP client can too."""

    async def resolve(self, entity_refs: Sequence[str], excluded: Sequence[str]) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Signal:
    """A message for the signals channel `channel`, to every subscriber (users None) or to `users`."""

    channel: str
    message: dict[str, Any]
    users: tuple[str, ...] | None = None


class SignalPublisher(Protocol):
    async def publish(self, signals: Iterable[Signal]) -> None:
        """Deliver after the data they describe is committed. Never raises for delivery problems."""
        ...
