"""Settings evaluation against the upstream router tests (spec §7.1 items 12-14, 18-19, 25-29)."""

from __future__ import annotations

from herald.core.settings_model import (
    ChannelSetting,
    OriginSetting,
    SettingsDocument,
    SettingsPolicy,
    StoredSetting,
    TopicSetting,
    document_to_rows,
    rows_to_channels,
)

U = "user:default/mock"
S1, S2, S3 = "external:test-service", "external:test-service2", "external:test-service3"
DEFAULTS = SettingsDocument([ChannelSetting("Web", [
    OriginSetting(S2, False, []),
    OriginSetting(S3, True, [TopicSetting("test-topic3", False)]),
])])
SEEN = [(S1, "test-topic"), (S2, "test-topic2")]


def doc(policy: SettingsPolicy, rows: list[StoredSetting]) -> dict[str, tuple[bool, dict[str, bool]]]:
    web = policy.document(rows, SEEN).channels[0]
    return {o.id: (o.enabled, {t.id: t.enabled for t in o.topics}) for o in web.origins}


def test_item_25_stored_origin_disabled() -> None:
    p = SettingsPolicy(DEFAULTS, ["Web"])
    got = doc(p, [StoredSetting(U, "Web", S1, None, False)])
    assert got == {S1: (False, {"test-topic": False}), S2: (False, {"test-topic2": False}),
                   S3: (True, {"test-topic3": False})}
    assert p.document([], SEEN).channels[0].enabled is None


def test_item_26_stored_topic_disabled() -> None:
    got = doc(SettingsPolicy(DEFAULTS, ["Web"]), [StoredSetting(U, "Web", S1, "test-topic", False)])
    assert got[S1] == (True, {"test-topic": False})


def test_item_27_no_stored_settings() -> None:
    got = doc(SettingsPolicy(DEFAULTS, ["Web"]), [])
    assert got == {S1: (True, {"test-topic": True}), S2: (False, {"test-topic2": False}),
                   S3: (True, {"test-topic3": False})}


def test_item_28_channel_disabled_by_config() -> None:
    p = SettingsPolicy(SettingsDocument([ChannelSetting("Web", [], False)]), ["Web"])
    web = p.document([], SEEN).channels[0]
    assert web.enabled is False
    assert all(not o.enabled and not any(t.enabled for t in o.topics) for o in web.origins)


def test_item_29_opt_in_topic() -> None:
    p = SettingsPolicy(SettingsDocument([ChannelSetting("Web", [], False)]), ["Web"])
    seen = [(S1, "topic-build-failed"), (S1, "topic-deployment-success"), (S1, "topic-security-alert")]
    web = p.document([StoredSetting(U, "Web", S1, "topic-build-failed", True)], seen).channels[0]
    assert [(o.id, o.enabled) for o in web.origins] == [(S1, True)]
    assert {t.id: t.enabled for t in web.origins[0].topics} == {
        "topic-build-failed": True, "topic-deployment-success": False, "topic-security-alert": False}


def test_delivery_checks_items_12_13_14_18_19() -> None:
    p = SettingsPolicy(DEFAULTS, ["Web"])
    stored = rows_to_channels([StoredSetting(U, "Web", S1, None, False)])
    assert p.is_enabled("Web", S1, None, stored) is False                      # 12
    topic_off = rows_to_channels([StoredSetting(U, "Web", S1, "test-topic", False)])
    assert p.is_enabled("Web", S1, "test-topic", topic_off) is False          # 13
    mixed = rows_to_channels([StoredSetting(U, "Web", S1, None, True),
                              StoredSetting(U, "Web", S1, "test-topic", False)])
    assert p.is_enabled("Web", S1, None, mixed) is True                       # 14
    opt_in = SettingsPolicy(SettingsDocument([ChannelSetting("Web", [], False)]), ["Web"])
    assert opt_in.is_enabled("Web", S1, "test-topic", {}) is False            # 18
    chosen = rows_to_channels([StoredSetting(U, "Web", S1, "important-topic", True)])
    assert opt_in.is_enabled("Web", S1, "important-topic", chosen) is True    # 19
    assert p.is_enabled("Web", S2, None, {}) is False                          # configured default
    assert p.is_enabled("Web", "external:other", None, {}) is True


def test_saving_stores_origin_and_topic_rows() -> None:
    d = SettingsDocument([ChannelSetting("Web", [OriginSetting("o", False, [TopicSetting("t", True)])])])
    rows = document_to_rows(U, d)
    assert [(r.origin, r.topic, r.enabled) for r in rows] == [("o", None, False), ("o", "t", False)]
