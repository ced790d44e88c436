"""The processors on the send path: processOptions, preProcess, and the ledger rows of a send.

Deviation from Backstage, on purpose: `pre_process` runs once per send on the notification every
recipient shares (Backstage runs it per recipient user, with the user's channel setting). Per-user
pre-processing would make the store write one statement per user; Herald keeps it one
set-based statement per send. Eligibility for `pre_process` is therefore filters only.

Eligibility for deliveries follows spec §3.5 and §3.8: the processor's filters, then each user's
setting for the processor's channel, evaluated in Python for all users from the one settings
query the service makes. Users whose Web channel is disabled still get their external deliveries
(spec §3.4.2 step 4); their ledger rows get a notification id of their own, as upstream's
unsaved notification had.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from herald.core.clock import Clock
from herald.core.model import BroadcastRecipients, EntityRecipients, Principal, SendRequest
from herald.core.ports import NewNotification, Outbox, OutboxEntry
from herald.core.service import SendHooks, UserChannels
from herald.core.settings_model import SettingsPolicy
from herald.processors._api import Processor

_log = logging.getLogger("herald.processors")


def _new_id() -> str:
    return str(uuid.uuid4())


def snapshot(base: NewNotification, request: SendRequest) -> dict[str, Any]:
    """What every delivery of a send delivers (stored as JSON on each ledger row)."""
    recipients = request.recipients
    if isinstance(recipients, EntityRecipients):
        to: dict[str, Any] = {"type": "entity", "entityRef": list(recipients.entity_refs)}
        if recipients.excluded_refs:
            to["excludeEntityRef"] = list(recipients.excluded_refs)
    else:
        to = {"type": "broadcast"}
    return {
        "origin": base.origin, "created": base.created, "title": base.title, "description": base.description,
        "link": base.link, "severity": base.severity, "topic": base.topic, "scope": base.scope,
        "icon": base.icon, "metadata": request.payload.metadata, "recipients": to,
    }


class ProcessorHooks(SendHooks):
    def __init__(self, processors: Sequence[Processor[Any]], policy: SettingsPolicy, *, clock: Clock,
                 id_factory: Callable[[], str] = _new_id, on_enqueued: Callable[[], None] | None = None) -> None:
        self.processors = list(processors)
        self.policy = policy
        self.clock = clock
        self.new_id = id_factory
        self.on_enqueued = on_enqueued

    async def prepare(self, principal: Principal, request: SendRequest) -> SendRequest:
        for p in self.processors:
            if not p.filters.accepts(request.payload.severity, request.payload.topic):
                continue
            try:
                request = await p.process_options(request)
            except Exception as e:
                _log.exception("Error while processing notification options with %s: %s", p.name, e)
        return request

    async def pre_process(self, base: NewNotification, request: SendRequest) -> NewNotification:
        for p in self.processors:
            if not p.filters.accepts(base.severity, base.topic):
                continue
            try:
                base = await p.pre_process(base, request)
            except Exception as e:
                _log.exception("Error while pre processing notification with %s: %s", p.name, e)
        return base

    async def plan_deliveries(self, request: SendRequest, base: NewNotification, users: Sequence[str],
                              web_disabled_users: Sequence[str],
                              settings: Mapping[str, UserChannels]) -> Outbox | None:
        if not self.processors:
            return None
        is_broadcast = isinstance(request.recipients, BroadcastRecipients)
        send_id = self.new_id()
        own_ids: dict[str, str] = {}  # users without a stored row (Web disabled) get an id of their own
        for u in web_disabled_users:
            own_ids[u] = self.new_id()
        entries: list[OutboxEntry] = []
        for p in self.processors:
            if not p.filters.accepts(base.severity, base.topic):
                continue
            try:
                plan = await p.plan(base, request)
            except Exception as e:
                _log.exception("Error while planning deliveries with %s: %s", p.name, e)
                continue
            if users and plan.per_user:
                allowed = None if plan.users is None else set(plan.users)
                default_on: bool | None = None
                for u in users:
                    if allowed is not None and u not in allowed:
                        continue
                    user_channels = settings.get(u)
                    if user_channels is None:
                        if default_on is None:
                            default_on = self.policy.is_enabled(p.name, base.origin, base.topic, {})
                        enabled = default_on
                    else:
                        enabled = self.policy.is_enabled(p.name, base.origin, base.topic, user_channels)
                    if not enabled:
                        continue
                    for target in dict.fromkeys(plan.per_user):
                        entries.append(OutboxEntry(self.new_id(), p.name, u, target, own_ids.get(u)))
            for target in dict.fromkeys(plan.extra):
                entries.append(OutboxEntry(self.new_id(), p.name, None, target,
                                           None if is_broadcast else send_id))
        if not entries:
            return None
        return Outbox(send_id=send_id, origin=base.origin, scope=base.scope,
                      snapshot=orjson.dumps(snapshot(base, request)).decode(), entries=tuple(entries),
                      now=self.clock.now_ms())

    async def after_store(self, outbox: Outbox | None) -> None:
        if outbox is not None and self.on_enqueued is not None:
            self.on_enqueued()
