"""JSON shapes on the wire (spec §1.3, §2.6) and strict parsing of request bodies.

Validation messages follow the OpenAPI validator upstream uses (`request/body/... must ...`), so
they name the offending field.
"""

from __future__ import annotations

from typing import Any

from herald.core.clock import iso_ms, iso_ms_or_none
from herald.core.errors import InputError
from herald.core.model import (
    SEVERITIES,
    BroadcastRecipients,
    EntityRecipients,
    Notification,
    Payload,
    SendRequest,
    Sent,
)
from herald.core.settings_model import ChannelSetting, OriginSetting, SettingsDocument, TopicSetting

_PAYLOAD_STRINGS = ("title", "description", "link", "topic", "scope", "icon")

# -- responses ------------------------------------------------------------------------------------


def db_shape(n: Notification) -> dict[str, Any]:
    """A notification as read from the database: every key present, absent values null."""
    return {
        "id": n.id,
        "user": n.user,
        "created": iso_ms(n.created),
        "saved": iso_ms_or_none(n.saved),
        "read": iso_ms_or_none(n.read),
        "updated": iso_ms_or_none(n.updated),
        "origin": n.origin,
        "payload": {
            "title": n.title, "description": n.description, "link": n.link, "topic": n.topic,
            "severity": n.severity, "scope": n.scope, "icon": n.icon,
        },
    }


def fresh_shape(n: Notification, payload: Payload) -> dict[str, Any]:
    """A freshly created notification: only the keys that were set (spec §2.6)."""
    body = dict(payload.sent)
    body["severity"] = payload.severity
    return {"id": n.id, "user": n.user, "created": iso_ms(n.created), "origin": n.origin, "payload": body}


def send_answer(sent: list[Sent], payload: Payload) -> list[dict[str, Any]]:
    return [fresh_shape(s.notification, payload) if s.fresh else db_shape(s.notification) for s in sent]


def settings_shape(doc: SettingsDocument) -> dict[str, Any]:
    channels = []
    for ch in doc.channels:
        c: dict[str, Any] = {"id": ch.id}
        if ch.enabled is not None:
            c["enabled"] = ch.enabled
        c["origins"] = [
            {"id": o.id, "enabled": o.enabled, "topics": [{"id": t.id, "enabled": t.enabled} for t in o.topics]}
            for o in ch.origins
        ]
        channels.append(c)
    return {"channels": channels}


# -- requests -------------------------------------------------------------------------------------


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where} must be object")
    return value


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise InputError(f"{where} must have required property '{key}'")
    return obj[key]


def _refs(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InputError(f"{where} must be string or array of strings")


def parse_send(body: Any) -> SendRequest:
    where = "request/body"
    body = _obj(body, where)
    missing = [k for k in ("recipients", "payload") if k not in body]
    if missing:
        raise InputError(f"{where} must have required property '{missing[0]}'")
    rec = _obj(body["recipients"], f"{where}/recipients")
    payload = parse_payload(_obj(body["payload"], f"{where}/payload"))
    rtype = _required(rec, "type", f"{where}/recipients")
    if rtype == "broadcast":
        return SendRequest(BroadcastRecipients(), payload)
    if rtype == "entity":
        refs = _refs(_required(rec, "entityRef", f"{where}/recipients"), f"{where}/recipients/entityRef")
        excluded: tuple[str, ...] = ()
        if rec.get("excludeEntityRef") is not None:
            excluded = _refs(rec["excludeEntityRef"], f"{where}/recipients/excludeEntityRef")
        return SendRequest(EntityRecipients(refs, excluded), payload)
    raise InputError("Invalid recipients type, please use either 'broadcast' or 'entity'")


def parse_payload(p: dict[str, Any]) -> Payload:
    where = "request/body/payload"
    _required(p, "title", where)
    sent: dict[str, Any] = {}
    for key in _PAYLOAD_STRINGS:
        if key in p and p[key] is not None:
            if not isinstance(p[key], str):
                raise InputError(f"{where}/{key} must be string")
            sent[key] = p[key]
    if not sent.get("title"):
        raise InputError("Invalid notification request received: missing title")
    severity = p.get("severity")
    if severity is not None:
        if severity not in SEVERITIES:
            raise InputError(f"{where}/severity must be equal to one of the allowed values: "
                             + ", ".join(SEVERITIES))
        sent["severity"] = severity
    metadata = p.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InputError(f"{where}/metadata must be object")
        sent["metadata"] = metadata
    return Payload(
        title=sent["title"], description=sent.get("description"), link=sent.get("link"),
        severity=severity or "normal", topic=sent.get("topic"), scope=sent.get("scope"),
        icon=sent.get("icon"), metadata=metadata, sent=sent,
    )


def parse_update(body: Any) -> tuple[list[str], bool | None, bool | None]:
    where = "request/body"
    body = _obj(body, where)
    ids = _required(body, "ids", where)
    if not isinstance(ids, list):
        raise InputError(f"{where}/ids must be array")
    for i, v in enumerate(ids):
        if not isinstance(v, str):
            raise InputError(f"{where}/ids/{i} must be string")
    flags: list[bool | None] = []
    for key in ("read", "saved"):
        v = body.get(key)
        if v is not None and not isinstance(v, bool):
            raise InputError(f"{where}/{key} must be boolean")
        flags.append(v)
    return ids, flags[0], flags[1]


def parse_settings(body: Any) -> SettingsDocument:
    where = "request/body"
    body = _obj(body, where)
    channels = _required(body, "channels", where)
    if not isinstance(channels, list):
        raise InputError(f"{where}/channels must be array")
    doc = SettingsDocument()
    for ci, ch in enumerate(channels):
        cw = f"{where}/channels/{ci}"
        ch = _obj(ch, cw)
        cid = _string(_required(ch, "id", cw), f"{cw}/id")
        origins = _required(ch, "origins", cw)
        if not isinstance(origins, list):
            raise InputError(f"{cw}/origins must be array")
        enabled = ch.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise InputError(f"{cw}/enabled must be boolean")
        channel = ChannelSetting(cid, [])
        for oi, o in enumerate(origins):
            ow = f"{cw}/origins/{oi}"
            o = _obj(o, ow)
            oid = _string(_required(o, "id", ow), f"{ow}/id")
            oen = _bool(_required(o, "enabled", ow), f"{ow}/enabled")
            origin = OriginSetting(oid, oen, [])
            topics = o.get("topics")
            if topics is not None:
                if not isinstance(topics, list):
                    raise InputError(f"{ow}/topics must be array")
                for ti, t in enumerate(topics):
                    tw = f"{ow}/topics/{ti}"
                    t = _obj(t, tw)
                    origin.topics.append(TopicSetting(_string(_required(t, "id", tw), f"{tw}/id"),
                                                      _bool(_required(t, "enabled", tw), f"{tw}/enabled")))
            channel.origins.append(origin)
        doc.channels.append(channel)
    return doc


def _string(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise InputError(f"{where} must be string")
    if len(v) > 255:
        raise InputError(f"{where} must NOT have more than 255 characters")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise InputError(f"{where} must be boolean")
    return v
