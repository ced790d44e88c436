"""The processor API: one small class per channel, a typed settings model, and a delivery result.

A processor is what Backstage calls a `NotificationProcessor` (spec §3.5), with one change: what
Backstage's `postProcess` sends fire-and-forget, a Herald processor *delivers* from the durable
delivery ledger, one ledger row at a time, and reports how it went::

    class Pager(Processor[PagerSettings]):
        name = "Pager"                  # the channel id users see in their settings
        kind = "pager"                  # the config key: notifications.processors.pager
        Settings = PagerSettings        # pydantic; SecretStr fields are redacted everywhere

        async def deliver(self, delivery: Delivery) -> DeliveryResult:
            ...
            return DeliveryResult.ok("paged", receipt={"incident": "P123"})

Everything else is optional: `process_options` and `pre_process` (decorate the send, in-line),
`plan` (which ledger rows a send creates), `limits` (concurrency and throttle), `start`/`aclose`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from herald.core.clock import Clock
from herald.core.model import SEVERITIES, BroadcastRecipients, Notification, SendRequest, severity_rank
from herald.core.ports import NewNotification
from herald.durations import duration_ms
from herald.processors._secrets import protect_in_logs, redact


class ProcessorConfigError(Exception):
    """A processor is registered or configured wrongly; Herald refuses to start.

    The message names the processor and the offending key, never a secret value."""


# -- results ------------------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    OK = "ok"
    """Delivered."""
    RETRYABLE = "retryable"
    """Not delivered this time (server down, timeout, 5xx, 429): try again later."""
    PERMANENT = "permanent"
    """Cannot be delivered as it is (4xx, rejected address): dead-letter it at once."""
    SKIPPED = "skipped"
    """Nothing to deliver (no address, no Slack account): done, nothing sent."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one delivery attempt went. Expected failures are results, not exceptions.

    `receipt` (JSON-able) is kept on the ledger row and handed to the next delivery of the same
    scope and destination as `Delivery.previous_receipt` (Slack edits its earlier message with it).
    `retry_after_ms` is a lower bound for the next attempt (a server's `Retry-After`)."""

    outcome: Outcome
    detail: str = ""
    receipt: Mapping[str, Any] | None = None
    retry_after_ms: int | None = None

    @classmethod
    def ok(cls, detail: str = "", *, receipt: Mapping[str, Any] | None = None) -> DeliveryResult:
        return cls(Outcome.OK, detail, receipt)

    @classmethod
    def retryable(cls, detail: str, *, retry_after_ms: int | None = None) -> DeliveryResult:
        return cls(Outcome.RETRYABLE, detail, None, retry_after_ms)

    @classmethod
    def permanent(cls, detail: str) -> DeliveryResult:
        return cls(Outcome.PERMANENT, detail)

    @classmethod
    def skipped(cls, detail: str) -> DeliveryResult:
        return cls(Outcome.SKIPPED, detail)


# -- what a processor delivers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One ledger row being delivered.

    `id` is the idempotency key: the same for every attempt at this row, different for every
    row. Put it where the receiver can de-duplicate (a `Message-ID`, an `Idempotency-Key`).
    `notification.user` is None for broadcasts and for channel messages; `target` is what the
    processor's `plan` chose (an address, an endpoint name, a Slack channel) or None."""

    id: str
    channel: str
    notification: Notification
    target: str | None = None
    attempt: int = 1
    resend: bool = False
    """The notification was updated in place by a scoped re-send (`notification.updated` is set)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The sender's `payload.metadata`."""
    recipients: tuple[str, ...] = ()
    """The entity refs the sender addressed (empty for broadcasts)."""
    broadcast: bool = False
    previous_receipt: Mapping[str, Any] | None = None
    """The receipt of the latest delivered message with the same origin, scope and destination."""

    @property
    def user(self) -> str | None:
        return self.notification.user


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """Which ledger rows a send creates for one processor (all written in the send's transaction).

    * `users`: restrict per-user deliveries to these refs (None: every resolved user whose channel
      setting allows it; Slack only DMs users the sender named explicitly);
    * `per_user`: the targets of each user's deliveries; `(None,)` is one row per user, `()` none;
    * `extra`: rows that belong to no user (broadcast receivers, channel messages), one per target.

    The default plan is Backstage's: one row per user, or one row for a broadcast."""

    users: Collection[str] | None = None
    per_user: tuple[str | None, ...] = (None,)
    extra: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """At most `concurrency` deliveries at once, and at most `per_interval` starts in any
    `interval_ms` window (p-throttle semantics; `interval_ms` 0 means no throttle)."""

    concurrency: int = 10
    per_interval: int = 10
    interval_ms: int = 0


# -- what the host gives a processor ------------------------------------------------------------


class DirectoryUser(Protocol):
    @property
    def ref(self) -> str: ...

    @property
    def display_name(self) -> str | None: ...

    @property
    def email(self) -> str | None: ...

    @property
    def annotations(self) -> Mapping[str, str]: ...


class DirectoryEntity(Protocol):
    @property
    def annotations(self) -> Mapping[str, str]: ...


class Directory(Protocol):
    """The catalog lookups processors need (`herald.catalog.FileCatalog` implements it)."""

    def user(self, ref: str) -> DirectoryUser | None: ...

    def user_emails(self) -> list[str]: ...

    def entity(self, ref: str) -> DirectoryEntity | None: ...


@dataclass(frozen=True, slots=True)
class ProcessorContext:
    app_base_url: str
    directory: Directory
    data_dir: Path
    clock: Clock
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("herald.processors"))


# -- settings -----------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


class SettingsModel(BaseModel):
    """Base for settings and their parts: camelCase keys as in app-config, unknown keys refused
    (a typo fails at start-up), frozen. Mark secrets `SecretStr` (or `SecretUrl`)."""

    model_config = ConfigDict(alias_generator=_camel, populate_by_name=True, extra="forbid", frozen=True)


class Filters(SettingsModel):
    """`NotificationProcessorFilters` (spec §1.9), read from a processor's `filter` block."""

    min_severity: str | None = None
    max_severity: str | None = None
    excluded_topics: tuple[str, ...] | None = None
    included_topics: tuple[str, ...] | None = None

    @field_validator("min_severity", "max_severity")
    @classmethod
    def _severity(cls, v: str | None, info: Any) -> str | None:
        if v is not None and v not in SEVERITIES:
            raise ValueError(f"Invalid {_camel(info.field_name)}: {v}")
        return v

    def accepts(self, severity: str | None, topic: str | None) -> bool:
        """Eligibility by filters (spec §3.5 step 2); severity None means `normal`."""
        rank = severity_rank(severity)
        if self.min_severity is not None and rank > severity_rank(self.min_severity):
            return False
        if self.max_severity is not None and rank < severity_rank(self.max_severity):
            return False
        if self.excluded_topics is not None and topic is not None and topic in self.excluded_topics:
            return False
        return not (self.included_topics is not None and (topic is None or topic not in self.included_topics))


NO_FILTERS = Filters()


class ProcessorSettings(SettingsModel):
    """What every processor's settings have: `enabled` (Herald's: false keeps a configured
    processor off) and `filter` (spec §1.9)."""

    enabled: bool = True
    filter: Filters = Field(default_factory=Filters)

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON-able data with every secret masked: the only form to show or log."""
        out = redact(self)
        assert isinstance(out, dict)
        return out


def duration_field(value: Any) -> int:
    """Validate a Backstage duration (`{seconds: 5}`, `PT5S`, `5s`, or a number of ms) to ms."""
    try:
        return duration_ms(value)
    except ValueError as e:
        raise ValueError(str(e)) from None


Duration = Annotated[int, BeforeValidator(duration_field)]
"""A settings field holding a Backstage duration, validated to milliseconds."""

S = TypeVar("S", bound=ProcessorSettings)


def format_validation_error(where: str, error: ValidationError) -> str:
    """A pydantic error as one message naming the keys, without echoing the input (secrets)."""
    parts = []
    errors = error.errors(include_input=False, include_url=False, include_context=False)
    for e in errors:
        if e["type"] == "too_short" and any(o is not e and o["loc"][:len(e["loc"])] == e["loc"] for o in errors):
            continue  # "at least 1 item" because an item was invalid: that item's error says it all
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{where}.{loc}: {msg}" if loc else f"{where}: {msg}")
    return "; ".join(parts)


# -- the processor ------------------------------------------------------------------------------


class Processor(Generic[S]):
    """Base class of every processor. Subclasses set `name`, `kind`, `Settings` and `deliver`."""

    name: ClassVar[str]
    """The channel id in user settings (`Email`, `SlackNotificationProcessor`); unique."""
    kind: ClassVar[str]
    """The configuration key under `notifications.processors`; unique."""
    Settings: ClassVar[type[ProcessorSettings]] = ProcessorSettings

    def __init__(self, settings: S, context: ProcessorContext) -> None:
        self.settings = settings
        self.context = context
        self.log = context.logger.getChild(self.kind)
        protect_in_logs(settings)

    @classmethod
    def parse_settings(cls, raw: Any) -> ProcessorSettings:
        """Validate the raw `notifications.processors.<kind>` value; ProcessorConfigError if wrong."""
        try:
            return cls.Settings.model_validate({} if raw is True else raw)
        except ValidationError as e:
            raise ProcessorConfigError(format_validation_error(f"notifications.processors.{cls.kind}", e)
                                       ) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.settings.redacted()!r}>"

    # -- optional hooks ------------------------------------------------------------------------

    @property
    def filters(self) -> Filters:
        return self.settings.filter

    def limits(self) -> Limits:
        return Limits()

    async def start(self) -> None:
        """Called once before the first delivery (open clients, check a binary exists …).
        Raise ProcessorConfigError to refuse to start."""

    async def aclose(self) -> None:
        """Release what `start` opened."""

    async def process_options(self, request: SendRequest) -> SendRequest:
        """Rewrite the send request before recipients are resolved (Backstage `processOptions`)."""
        return request

    async def pre_process(self, notification: NewNotification, request: SendRequest) -> NewNotification:
        """Rewrite the notification before it is stored (Backstage `preProcess`). Herald calls it
        once per send, with the notification all recipients share, not once per user."""
        return notification

    async def plan(self, notification: NewNotification, request: SendRequest) -> DeliveryPlan:
        """Which deliveries a send creates (see `DeliveryPlan`); called once per send, before the
        store transaction, only when the filters accept the notification."""
        if isinstance(request.recipients, BroadcastRecipients):
            return DeliveryPlan(per_user=(), extra=(None,))
        return DeliveryPlan()

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Deliver one ledger row. Return a result; raise only for bugs (they count as retryable)."""
        raise NotImplementedError
