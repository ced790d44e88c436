from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from herald.bootstrap import auth_config, default_settings
from herald.config import load_config
from herald.durations import duration_ms

BACKSTAGE_APP_CONFIG = """
app:
  baseUrl: https://backstage.example.com
backend:
  auth:
    externalAccess:
      - type: static
        options:
          token: static-token-from-backstage-0123
          subject: external:ci
notifications:
  concurrencyLimit: 10
  throttleInterval: { milliseconds: 50 }
  retention: { days: 180 }
  defaultSettings:
    channels:
      - id: Web
        enabled: false
      - id: Email
        origins:
          - id: plugin:scaffolder
            enabled: false
            topics:
              - { id: deploy-failed, enabled: true }
"""


def test_backstage_app_config_is_accepted_as_is(tmp_path: Path) -> None:
    f = tmp_path / "app-config.yaml"
    f.write_text(BACKSTAGE_APP_CONFIG)
    cfg = load_config(f, environ={})
    assert cfg.app.base_url == "https://backstage.example.com"
    assert cfg.notifications.retention_ms == 180 * 86_400_000
    doc = default_settings(cfg.notifications.default_settings)
    assert doc is not None and doc.channels[0].enabled is False
    assert doc.channels[1].origins[0].topics[0].id == "deploy-failed"
    auth = auth_config(cfg)
    assert [t.subject for t in auth.service_tokens] == ["external:ci"]
    assert "static-token-from-backstage" not in repr(auth)


def test_environment_overrides(tmp_path: Path) -> None:
    cfg = load_config(None, environ={"HERALD_DATABASE_URL": "postgresql://h@db/herald",
                                     "HERALD_SERVER__PORT": "8080",
                                     "HERALD_NOTIFICATIONS__RETENTION": "false",
                                     "HERALD_DATA_DIR": str(tmp_path)})
    assert cfg.database.url == "postgresql://h@db/herald"
    assert cfg.server.port == 8080
    assert cfg.notifications.retention_ms is None
    assert cfg.data_dir == str(tmp_path)


def test_defaults_are_embedded_sqlite_and_one_year(tmp_path: Path) -> None:
    cfg = load_config(None, environ={"HERALD_DATA_DIR": str(tmp_path)})
    assert cfg.database.url == f"sqlite:///{tmp_path / 'herald.db'}"
    assert cfg.notifications.retention_ms == int(365.25 * 86_400_000)


def test_bad_retention_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="not a duration"):
        load_config(None, environ={"HERALD_NOTIFICATIONS__RETENTION": "soon"})


@pytest.mark.parametrize(("value", "ms"), [
    ({"days": 5}, 5 * 86_400_000), ("P1D", 86_400_000), ("PT0.05S", 50), ("50ms", 50), ("2h", 7_200_000),
    ("1y", int(365.25 * 86_400_000)), (1500, 1500),
])
def test_durations(value: object, ms: int) -> None:
    assert duration_ms(value) == ms
