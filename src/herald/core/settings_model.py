"""Notification settings: the document users see and save, and the delivery check (spec §1.7, §3.8)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class TopicSetting:
    id: str
    enabled: bool


@dataclass(slots=True)
class OriginSetting:
    id: str
    enabled: bool
    topics: list[TopicSetting] = field(default_factory=list)


@dataclass(slots=True)
class ChannelSetting:
    id: str
    origins: list[OriginSetting] = field(default_factory=list)
    enabled: bool | None = None


@dataclass(slots=True)
class SettingsDocument:
    channels: list[ChannelSetting] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredSetting:
    """One `user_settings` row: topic None is the origin-level switch."""

    user: str
    channel: str
    origin: str
    topic: str | None
    enabled: bool


def rows_to_channels(rows: Iterable[StoredSetting]) -> dict[str, dict[str, OriginSetting]]:
    """Group stored rows into channel -> origin -> OriginSetting (an origin with only topic rows is enabled)."""
    out: dict[str, dict[str, OriginSetting]] = {}
    for r in rows:
        origins = out.setdefault(r.channel, {})
        o = origins.get(r.origin)
        if o is None:
            o = origins[r.origin] = OriginSetting(r.origin, True, [])
        if r.topic is None:
            o.enabled = r.enabled
        else:
            o.topics.append(TopicSetting(r.topic, r.enabled))
    return out


def document_to_rows(user: str, doc: SettingsDocument) -> list[StoredSetting]:
    """What saving a document stores; duplicate entries are saved once (the first wins)."""
    rows: dict[tuple[str, str, str | None], StoredSetting] = {}
    for ch in doc.channels:
        for o in ch.origins:
            rows.setdefault((ch.id, o.id, None), StoredSetting(user, ch.id, o.id, None, o.enabled))
            for t in o.topics:
                rows.setdefault((ch.id, o.id, t.id),
                                StoredSetting(user, ch.id, o.id, t.id, o.enabled and t.enabled))
    return list(rows.values())


class SettingsPolicy:
    """Evaluates settings against `notifications.defaultSettings` (spec §3.8)."""

    def __init__(self, defaults: SettingsDocument | None, channels: Sequence[str]) -> None:
        self.defaults = defaults or SettingsDocument()
        self.channels = list(channels)
        self._default_by_id = {c.id.lower(): c for c in self.defaults.channels}

    def _configured(self, channel: str) -> ChannelSetting | None:
        return self._default_by_id.get(channel.lower())

    # -- delivery ---------------------------------------------------------------------------

    def is_enabled(self, channel: str, origin: str, topic: str | None,
                   user_channels: Mapping[str, Mapping[str, OriginSetting]]) -> bool:
        """The delivery check for one user, given that user's stored rows grouped by channel."""
        configured = self._configured(channel)
        ch_enabled = configured.enabled if configured else None
        origins: dict[str, OriginSetting] = {}
        lowered = channel.lower()
        for stored_channel, stored in user_channels.items():
            if stored_channel.lower() == lowered:
                origins = dict(stored)
                break
        if configured and configured.origins and ch_enabled is not False:
            for o in configured.origins:
                origins.setdefault(o.id, o)
        chosen = origins.get(origin)
        if chosen is None:
            return True if ch_enabled is None else ch_enabled
        if topic is not None:
            for t in chosen.topics:
                if t.id == topic:
                    return t.enabled
        return chosen.enabled

    # -- the effective document ---------------------------------------------------------------

    def document(self, rows: Iterable[StoredSetting], seen: Iterable[tuple[str, str | None]]
                 ) -> SettingsDocument:
        """GET /settings: `seen` are the (origin, topic) pairs of the user's own notifications."""
        stored = {k.lower(): v for k, v in rows_to_channels(rows).items()}
        origins: list[str] = []
        topics: dict[str, list[str]] = {}

        def add(origin: str, topic: str | None) -> None:
            if origin not in topics:
                origins.append(origin)
                topics[origin] = []
            if topic is not None and topic not in topics[origin]:
                topics[origin].append(topic)

        for origin, topic in seen:
            add(origin, topic)
        for ch in self.defaults.channels:
            for o in ch.origins:
                add(o.id, None)
                for t in o.topics:
                    add(o.id, t.id)

        channel_ids = list(self.channels)
        for ch in self.defaults.channels:
            if ch.id not in channel_ids:
                channel_ids.append(ch.id)

        out = SettingsDocument()
        for cid in channel_ids:
            configured = self._configured(cid)
            ch_enabled = configured.enabled if configured else None
            origin_default = True if ch_enabled is None else ch_enabled
            explicit = ch_enabled is not None
            conf_origins = {o.id.lower(): o for o in (configured.origins if configured else [])}
            user_origins = stored.get(cid.lower(), {})
            user_origins_ci = {k.lower(): v for k, v in user_origins.items()}
            channel = ChannelSetting(cid, [], ch_enabled)
            for origin in origins:
                u = user_origins_ci.get(origin.lower())
                c = conf_origins.get(origin.lower())
                enabled = u.enabled if u else (c.enabled if c else origin_default)
                topic_settings = []
                for topic in topics[origin]:
                    ut = next((t for t in u.topics if t.id.lower() == topic.lower()), None) if u else None
                    ct = next((t for t in c.topics if t.id.lower() == topic.lower()), None) if c else None
                    if ut is not None:
                        te = ut.enabled
                    elif ct is not None:
                        te = ct.enabled
                    else:
                        te = ch_enabled if explicit and ch_enabled is not None else enabled
                    topic_settings.append(TopicSetting(topic, te))
                channel.origins.append(OriginSetting(origin, enabled, topic_settings))
            out.channels.append(channel)
        return out
