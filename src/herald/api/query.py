"""Strict query-string parsing, as upstream's OpenAPI validator does it (spec §2.5, §2.11, §11.4)."""

from __future__ import annotations

import re
from typing import Literal, cast
from urllib.parse import parse_qsl

from herald.core.clock import parse_date_ms
from herald.core.errors import InputError
from herald.core.model import ORDERABLE_FIELDS, SEVERITIES, ListFilter, ListQuery, OrderField

FILTER_PARAMS = frozenset({"search", "read", "saved", "createdAfter", "minimumSeverity"})
LIST_PARAMS = FILTER_PARAMS | {"offset", "limit", "orderField", "topic"}
_REPEATABLE = frozenset({"orderField"})
_INT = re.compile(r"^\d{1,15}$")


def parse_params(query_string: bytes, allowed: frozenset[str]) -> dict[str, list[str]]:
    try:
        pairs = parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"Malformed query string: {e}") from None
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        if key not in allowed:
            raise InputError(f"Unknown query parameter '{key}'")
        if value == "":
            raise InputError(f"Empty value found for query parameter '{key}'")
        out.setdefault(key, []).append(value)
    for key, values in out.items():
        if len(values) > 1 and key not in _REPEATABLE:
            raise InputError(f"request/query/{key} must not be repeated")
    return out


def _bool(params: dict[str, list[str]], key: str) -> bool | None:
    if key not in params:
        return None
    v = params[key][0]
    if v not in ("true", "false"):
        raise InputError(f"request/query/{key} must be boolean")
    return v == "true"


def _int(params: dict[str, list[str]], key: str) -> int | None:
    if key not in params:
        return None
    v = params[key][0]
    if not _INT.match(v):
        raise InputError(f"request/query/{key} must be integer >= 0")
    return int(v)


def parse_filter(params: dict[str, list[str]]) -> ListFilter:
    created_after = None
    if "createdAfter" in params:
        created_after = parse_date_ms(params["createdAfter"][0])
        if created_after is None:
            raise InputError("Unexpected date format")
    severity = None
    if "minimumSeverity" in params:
        severity = params["minimumSeverity"][0]
        if severity not in SEVERITIES:
            raise InputError("request/query/minimumSeverity must be equal to one of the allowed values: "
                             + ", ".join(SEVERITIES))
    return ListFilter(
        read=_bool(params, "read"),
        saved=_bool(params, "saved"),
        topic=params["topic"][0] if "topic" in params else None,
        search=params["search"][0] if "search" in params else None,
        created_after=created_after,
        minimum_severity=severity,
    )


def parse_order(values: list[str]) -> tuple[OrderField, ...]:
    out = []
    for value in values:
        field, sep, direction = value.partition(",")
        if sep and direction not in ("asc", "desc"):
            raise InputError("Invalid order field order, must be asc or desc")
        if field not in ORDERABLE_FIELDS:
            raise InputError(f"Invalid order field '{field}', must be one of "
                             + ", ".join(sorted(ORDERABLE_FIELDS)))
        out.append(OrderField(field, cast(Literal["asc", "desc"], direction) if sep else None))
    return tuple(out)


def parse_list_query(query_string: bytes) -> ListQuery:
    params = parse_params(query_string, LIST_PARAMS)
    return ListQuery(
        filter=parse_filter(params),
        order=parse_order(params.get("orderField", [])),
        offset=_int(params, "offset") or 0,
        limit=_int(params, "limit"),
    )


def parse_topics_query(query_string: bytes) -> ListFilter:
    return parse_filter(parse_params(query_string, FILTER_PARAMS))


def require_no_params(query_string: bytes) -> None:
    parse_params(query_string, frozenset())
