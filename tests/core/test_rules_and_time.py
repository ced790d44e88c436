from __future__ import annotations

import pytest

from herald.core.clock import iso_ms, parse_date_ms
from herald.core.entity_ref import is_user_ref, parse_entity_ref
from herald.core.errors import InputError
from herald.core.rules import absolute_link, validate_link


def test_iso_rendering_matches_javascript() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"


@pytest.mark.parametrize(("text", "ms"), [
    ("2023-11-14T22:13:20.123Z", 1_700_000_000_123),
    ("2023-11-14T22:13:20.123+00:00", 1_700_000_000_123),
    ("2023-11-14", 1_699_920_000_000),
    ("Tue, 14 Nov 2023 22:13:20 GMT", 1_700_000_000_000),
])
def test_parse_dates(text: str, ms: int) -> None:
    assert parse_date_ms(text) == ms


@pytest.mark.parametrize("text", ["", "not-a-date", "2023-13-45", "yesterday"])
def test_unparseable_dates(text: str) -> None:
    assert parse_date_ms(text) is None


@pytest.mark.parametrize("link", ["javascript:alert(document.domain)", "ftp://example.com", "mailto:a@b.c",
                                  "data:text/html,hi", "http://[::1"])
def test_links_rejected(link: str) -> None:
    with pytest.raises(InputError) as e:
        validate_link(link, "http://localhost")
    assert e.value.message == "Invalid link provided"


@pytest.mark.parametrize("link", ["http://localhost/test", "https://example.com", "/catalog", "catalog/x"])
def test_links_accepted(link: str) -> None:
    validate_link(link, "http://localhost")


def test_absolute_links() -> None:
    assert absolute_link(None, "https://example.org") == "https://example.org/notifications"
    assert absolute_link("/catalog/a", "https://example.org") == "https://example.org/catalog/a"
    assert absolute_link("https://backstage.io", "https://example.org") == "https://backstage.io/"


def test_entity_refs() -> None:
    assert parse_entity_ref("user:foo") == ("user", "default", "foo")
    assert str(parse_entity_ref("group:ns/team")) == "group:ns/team"
    assert is_user_ref("User:default/x") and not is_user_ref("group:default/x") and not is_user_ref("alice")
    with pytest.raises(ValueError):
        parse_entity_ref("alice")
