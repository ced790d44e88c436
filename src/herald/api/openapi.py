"""The OpenAPI document served at `/api/notifications/openapi.json` (upstream's spec, paths prefixed)."""

from __future__ import annotations

from typing import Any

from herald.core.model import SEVERITIES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _q(name: str, schema: dict[str, Any], *, array: bool = False) -> dict[str, Any]:
    s = {"type": "array", "items": schema} if array else schema
    return {"name": name, "in": "query", "required": False, "allowReserved": True, "schema": s}


_FILTERS = [
    _q("search", {"type": "string"}),
    _q("read", {"type": "boolean"}),
    _q("saved", {"type": "boolean"}),
    _q("createdAfter", {"type": "string", "format": "date-time"}),
    _q("minimumSeverity", _ref("NotificationSeverity")),
]
_LIST = [
    _q("offset", {"type": "integer", "minimum": 0}),
    _q("limit", {"type": "integer", "minimum": 0}),
    _q("orderField", {"type": "string"}, array=True),
    _q("topic", {"type": "string"}),
    *_FILTERS,
]
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_USER_AUTH: list[dict[str, list[str]]] = [{"JWT": []}]


def _op(op_id: str, summary: str, *, params: list[dict[str, Any]] | None = None,
        body: str | None = None, response: dict[str, Any] | None = None,
        deprecated: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op_id, "summary": summary, "security": _USER_AUTH,
                           "parameters": params or [],
                           "responses": {"200": {"description": "Ok", "content": {
                               "application/json": {"schema": response or {}}}},
                               "default": {"description": "Error", "content": {
                                   "application/json": {"schema": _ref("Error")}}}}}
    if body:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if deprecated:
        out["deprecated"] = True
    return out


def openapi_document(prefix: str = "/api/notifications") -> dict[str, Any]:
    notification_list = {"type": "object", "required": ["totalCount", "notifications"], "properties": {
        "totalCount": {"type": "integer"}, "notifications": {"type": "array", "items": _ref("Notification")}}}
    notifications = {"type": "array", "items": _ref("Notification")}
    list_op = _op("ListNotifications", "Gets notifications of the caller", params=_LIST,
                  response=notification_list)
    paths = {
        "/notifications": {
            "get": list_op,
            "post": _op("CreateNotifications", "Sends a notification (service principals only)",
                        body="NotificationSendOptions", response=notifications),
        },
        "/": {
            "get": {**list_op, "operationId": "ListNotificationsLegacy", "deprecated": True},
            "post": _op("CreateNotificationsLegacy", "Sends a notification", body="NotificationSendOptions",
                        response=notifications, deprecated=True),
        },
        "/notifications/{id}": {"get": _op("GetNotification", "Gets one notification", params=[_ID],
                                           response=_ref("Notification"))},
        "/{id}": {"get": _op("GetNotificationLegacy", "Gets one notification", params=[_ID],
                             response=_ref("Notification"), deprecated=True)},
        "/notifications/update": {"post": _op("UpdateNotifications", "Marks notifications read or saved",
                                              body="UpdateNotificationsRequest", response=notifications)},
        "/update": {"post": _op("UpdateNotificationsLegacy", "Marks notifications read or saved",
                                body="UpdateNotificationsRequest", response=notifications, deprecated=True)},
        "/status": {"get": _op("GetStatus", "Unread and read counts", response=_ref("NotificationStatus"))},
        "/settings": {
            "get": _op("GetSettings", "Effective settings", response=_ref("NotificationSettings")),
            "post": _op("UpdateSettings", "Replaces settings", body="NotificationSettings",
                        response=_ref("NotificationSettings")),
        },
        "/topics": {"get": _op("GetTopics", "Distinct topics", params=_FILTERS, response={
            "type": "object", "properties": {"topics": {"type": "array", "items": {"type": "string"}}}})},
    }
    nullable_string = {"type": ["string", "null"]}
    nullable_date = {"type": ["string", "null"], "format": "date-time"}
    schemas: dict[str, Any] = {
        "NotificationSeverity": {"type": "string", "enum": list(SEVERITIES)},
        "NotificationPayload": {"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string", "maxLength": 255}, "description": {"type": "string"},
            "link": {"type": "string"}, "severity": _ref("NotificationSeverity"),
            "topic": {"type": "string", "maxLength": 255}, "scope": {"type": "string", "maxLength": 255},
            "icon": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}}},
        "Notification": {"type": "object", "required": ["id", "user", "created", "origin", "payload"],
                         "properties": {"id": {"type": "string"}, "user": nullable_string,
                                        "created": {"type": "string", "format": "date-time"},
                                        "saved": nullable_date, "read": nullable_date, "updated": nullable_date,
                                        "origin": {"type": "string"}, "payload": _ref("NotificationPayload")}},
        "NotificationStatus": {"type": "object", "required": ["unread", "read"], "properties": {
            "unread": {"type": "integer"}, "read": {"type": "integer"}}},
        "NotificationSendOptions": {"type": "object", "required": ["recipients", "payload"], "properties": {
            "recipients": {"oneOf": [
                {"type": "object", "required": ["type"], "properties": {"type": {"const": "broadcast"}}},
                {"type": "object", "required": ["type", "entityRef"], "properties": {
                    "type": {"const": "entity"},
                    "entityRef": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "excludeEntityRef": {"oneOf": [{"type": "string"},
                                                   {"type": "array", "items": {"type": "string"}}]}}}]},
            "payload": _ref("NotificationPayload")}},
        "UpdateNotificationsRequest": {"type": "object", "required": ["ids"], "properties": {
            "ids": {"type": "array", "items": {"type": "string"}}, "read": {"type": "boolean"},
            "saved": {"type": "boolean"}}},
        "NotificationSettings": {"type": "object", "required": ["channels"], "properties": {"channels": {
            "type": "array", "items": {"type": "object", "required": ["id", "origins"], "properties": {
                "id": {"type": "string"}, "enabled": {"type": "boolean"},
                "origins": {"type": "array", "items": {"type": "object", "required": ["id", "enabled"],
                    "properties": {"id": {"type": "string"}, "enabled": {"type": "boolean"},
                        "topics": {"type": "array", "items": {"type": "object", "required": ["id", "enabled"],
                            "properties": {"id": {"type": "string"}, "enabled": {"type": "boolean"}}}}}}}}}}}},
        "Error": {"type": "object", "required": ["error", "request", "response"], "properties": {
            "error": {"type": "object", "required": ["name", "message"], "properties": {
                "name": {"type": "string"}, "message": {"type": "string"}, "cause": {"type": "object"}}},
            "request": {"type": "object", "properties": {"method": {"type": "string"}, "url": {"type": "string"}}},
            "response": {"type": "object", "properties": {"statusCode": {"type": "integer"}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "notifications", "version": "1",
                 "description": "Herald: the Backstage notifications API"},
        "servers": [{"url": "/"}],
        "paths": {prefix + p if p != "/" else prefix + "/": v for p, v in paths.items()},
        "components": {"schemas": schemas, "securitySchemes": {
            "JWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
