"""Run Alembic migrations programmatically (`herald db upgrade`, and at start-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from herald.store.database import postgres_dsn, sqlite_path

_HERE = Path(__file__).parent


def sqlalchemy_url(url: str) -> str:
    """The async SQLAlchemy URL for a Herald database URL."""
    path = sqlite_path(url)
    if path is not None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    dsn = postgres_dsn(url)
    if dsn is not None:
        return "postgresql+asyncpg://" + dsn[len("postgresql://"):]
    raise ValueError("Unsupported database URL")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking; runs its own event loop (call it from a thread when a loop is running)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)
