"""The notification model, in Backstage's vocabulary (spec §1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SEVERITIES: tuple[str, ...] = ("critical", "high", "normal", "low")
"""Most severe first; comparisons use the index in this tuple."""

Severity = Literal["critical", "high", "normal", "low"]
DEFAULT_SEVERITY: Severity = "normal"
WEB_CHANNEL = "Web"
GUEST_USER = "user:default/guest"

# Stored payload fields, in the order the database shape renders them.
PAYLOAD_FIELDS: tuple[str, ...] = ("title", "description", "link", "topic", "severity", "scope", "icon")


def severity_rank(severity: str | None) -> int:
    try:
        return SEVERITIES.index(severity or DEFAULT_SEVERITY)
    except ValueError:
        return SEVERITIES.index(DEFAULT_SEVERITY)


def severities_at_least(minimum: str) -> tuple[str, ...]:
    """`minimum` and every more severe level."""
    return SEVERITIES[: severity_rank(minimum) + 1]


@dataclass(frozen=True, slots=True)
class Payload:
    """What a sender supplies (spec §1.2). `sent` keeps the keys exactly as sent, for the fresh answer."""

    title: str
    description: str | None = None
    link: str | None = None
    severity: str = DEFAULT_SEVERITY
    topic: str | None = None
    scope: str | None = None
    icon: str | None = None
    metadata: dict[str, Any] | None = None
    sent: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BroadcastRecipients:
    type: Literal["broadcast"] = "broadcast"


@dataclass(frozen=True, slots=True)
class EntityRecipients:
    entity_refs: tuple[str, ...]
    excluded_refs: tuple[str, ...] = ()
    type: Literal["entity"] = "entity"


Recipients = BroadcastRecipients | EntityRecipients


@dataclass(frozen=True, slots=True)
class SendRequest:
    recipients: Recipients
    payload: Payload


@dataclass(slots=True)
class Notification:
    """A notification as one user sees it. `user` is None for broadcasts. Times are epoch ms."""

    id: str
    user: str | None
    created: int
    origin: str
    title: str
    description: str | None = None
    link: str | None = None
    severity: str = DEFAULT_SEVERITY
    topic: str | None = None
    scope: str | None = None
    icon: str | None = None
    read: int | None = None
    saved: int | None = None
    updated: int | None = None

    @property
    def is_broadcast(self) -> bool:
        return self.user is None


@dataclass(frozen=True, slots=True)
class Sent:
    """One element of a send's answer: the stored row, and whether it was fresh (new) or re-sent."""

    notification: Notification
    fresh: bool


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. `kind` is `user` or `service`; `subject` is the user ref or the service subject."""

    kind: Literal["user", "service"]
    subject: str
    ownership_refs: tuple[str, ...] = ()

    @property
    def refs(self) -> tuple[str, ...]:
        return self.ownership_refs or (self.subject,)


@dataclass(frozen=True, slots=True)
class OrderField:
    field: str
    direction: Literal["asc", "desc"] | None = None


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Filters shared by the list, topics and count queries (spec §2.5)."""

    read: bool | None = None
    saved: bool | None = None
    topic: str | None = None
    search: str | None = None
    created_after: int | None = None
    minimum_severity: str | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: ListFilter = ListFilter()
    order: tuple[OrderField, ...] = ()
    offset: int = 0
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    notifications: list[Notification]
    total_count: int


@dataclass(frozen=True, slots=True)
class Status:
    unread: int
    read: int


ORDERABLE_FIELDS = frozenset(
    {"id", "user", "created", "saved", "read", "updated", "origin", "title", "description", "link",
     "topic", "severity", "scope", "icon"}
)
