"""The processor API: filters (spec §1.9, §3.5), results, settings validation and redaction."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import SecretStr

from herald.core.model import SEVERITIES
from herald.processors import (
    DeliveryResult,
    Filters,
    Outcome,
    Processor,
    ProcessorConfigError,
    ProcessorSettings,
    SecretUrl,
)
from herald.processors.testing import make_context


def filters(**raw: object) -> Filters:
    return Filters.model_validate(raw)


@pytest.mark.parametrize(("raw", "severity", "topic", "expected"), [
    ({}, None, None, True),
    ({"minSeverity": "high"}, "critical", None, True),
    ({"minSeverity": "high"}, "high", None, True),
    ({"minSeverity": "high"}, "normal", None, False),
    ({"minSeverity": "high"}, None, None, False),  # missing severity counts as normal
    ({"maxSeverity": "normal"}, "high", None, False),
    ({"maxSeverity": "normal"}, "low", None, True),
    ({"maxSeverity": "normal"}, None, None, True),
    ({"excludedTopics": ["noise"]}, None, "noise", False),
    ({"excludedTopics": ["noise"]}, None, "deploy", True),
    ({"excludedTopics": ["noise"]}, None, None, True),
    ({"includedTopics": ["deploy"]}, None, "deploy", True),
    ({"includedTopics": ["deploy"]}, None, "other", False),
    ({"includedTopics": ["deploy"]}, None, None, False),  # included topics need a topic
    ({"includedTopics": [], "minSeverity": "low"}, "critical", "x", False),
])
def test_filters_follow_spec(raw: dict[str, object], severity: str | None, topic: str | None,
                             expected: bool) -> None:
    assert filters(**raw).accepts(severity, topic) is expected


def test_filters_every_severity_bound() -> None:
    for i, bound in enumerate(SEVERITIES):
        f_min, f_max = filters(minSeverity=bound), filters(maxSeverity=bound)
        for j, s in enumerate(SEVERITIES):
            assert f_min.accepts(s, None) is (j <= i)
            assert f_max.accepts(s, None) is (j >= i)


@pytest.mark.parametrize("key", ["minSeverity", "maxSeverity"])
def test_invalid_severity_is_refused_with_upstream_message(key: str) -> None:
    class P(Processor[ProcessorSettings]):
        name = "P"
        kind = "p"

    with pytest.raises(ProcessorConfigError) as e:
        P.parse_settings({"filter": {key: "urgent"}})
    assert f"notifications.processors.p.filter.{key}: Invalid {key}: urgent" in str(e.value)


def test_result_constructors() -> None:
    assert DeliveryResult.ok("x", receipt={"a": 1}) == DeliveryResult(Outcome.OK, "x", {"a": 1})
    assert DeliveryResult.retryable("y", retry_after_ms=5).retry_after_ms == 5
    assert DeliveryResult.permanent("z").outcome is Outcome.PERMANENT
    assert DeliveryResult.skipped("w").outcome is Outcome.SKIPPED


class _Secretive(ProcessorSettings):
    token: SecretStr
    url: SecretUrl
    items: tuple[SecretStr, ...] = ()


class _SecretProcessor(Processor[_Secretive]):
    name = "Secretive"
    kind = "secretive"
    Settings = _Secretive


def test_secrets_are_redacted_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    raw = {"token": "tok-SECRET-1", "url": "https://hooks.example.com/path-SECRET-2?k=SECRET-3",
           "items": ["SECRET-4"]}
    settings = _SecretProcessor.parse_settings(raw)
    processor = _SecretProcessor(settings, make_context())  # type: ignore[arg-type]
    redacted = settings.redacted()
    assert redacted["url"] == "https://hooks.example.com/****"
    assert redacted["token"] == "**********"
    with caplog.at_level(logging.INFO):
        logging.getLogger("herald.test").info("settings %s %r %r", settings, settings, processor)
    texts = [repr(settings), str(settings), json.dumps(redacted), settings.model_dump_json(), repr(processor),
             caplog.text]
    for text in texts:
        assert "SECRET" not in text, text


def test_validation_errors_never_echo_input() -> None:
    with pytest.raises(ProcessorConfigError) as e:
        _SecretProcessor.parse_settings({"token": "tok-SECRET", "url": "ftp-SECRET", "bogus": "SECRET-x"})
    text = str(e.value)
    assert "SECRET" not in text
    assert "notifications.processors.secretive.bogus" in text


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ProcessorConfigError, match=r"filter\.minSeverty"):
        _SecretProcessor.parse_settings({"token": "t", "url": "https://x.example", "filter": {"minSeverty": "low"}})
