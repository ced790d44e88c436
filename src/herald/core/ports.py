"""What the core needs from the outside world. Adapters implement these Protocols."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from herald.core.model import ListFilter, ListQuery, Notification, Page, Status
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


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A row written by a send, and whether it was inserted (fresh) or a scoped row updated in place."""

    notification: Notification
    fresh: bool


class NotificationStore(Protocol):
    async def save_user_notifications(
        self, base: NewNotification, users: Sequence[str], ids: Sequence[str]
    ) -> list[StoredRow]:
        """Insert one row per user, or for scoped sends update the (user, origin, scope) row in place.

        One transaction, a constant number of statements. Returns rows in `users` order."""
        ...

    async def save_broadcast(self, base: NewNotification, id: str) -> StoredRow: ...

    async def list_page(self, user: str, query: ListQuery) -> Page: ...

    async def get(self, user: str, id: str) -> Notification | None: ...

    async def by_ids(self, user: str, ids: Sequence[str]) -> list[Notification]: ...

    async def mark(self, user: str, ids: Sequence[str], *, read: bool | None, saved: bool | None,
                   now: int) -> None: ...

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
