"""A thin async database seam over the drivers (asyncpg, aiosqlite).

SQLAlchemy defines the schema and runs migrations; the request path executes plain SQL on the
driver directly, because SQLAlchemy's async execution layer costs 3-4x the driver's CPU
(ARCHITECTURE.md, "Measured"). SQL is written once with `:name` parameters and converted once
per statement text to the driver's style (`$n` for asyncpg, kept as-is for sqlite3).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

Row = Sequence[Any]
Params = Mapping[str, Any]

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Executor(Protocol):
    """What statements run on: the database itself (autocommit) or an open transaction."""

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None: ...

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run a statement; returns the number of rows it changed when the driver tells."""
        ...


class Database(Executor, Protocol):
    dialect: Dialect

    def transaction(self) -> Any:
        """`async with db.transaction() as tx:` — tx is an Executor."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Dialect:
    """The few places where PostgreSQL and SQLite SQL differ."""

    name: Literal["postgresql", "sqlite"]

    def in_list(self, column: str, param: str, *, uuid: bool = False) -> str:
        """`column` is one of the values of list parameter `param` (pass it through `encode_list`)."""
        if self.name == "postgresql":
            return f"{column} = ANY(:{param}::{'uuid' if uuid else 'text'}[])"
        return f"{column} IN (SELECT value FROM json_each(:{param}))"

    def encode_list(self, values: Sequence[Any]) -> Any:
        return list(values) if self.name == "postgresql" else orjson.dumps(list(values)).decode()

    def fold(self, expr: str) -> str:
        """Unicode-aware lower-casing of a column (SQLite's LOWER folds ASCII only)."""
        return f"lower({expr})" if self.name == "postgresql" else f"herald_lower({expr})"

    def contains(self, haystack: str, param: str) -> str:
        """Literal substring test (no LIKE wildcards)."""
        fn = "strpos" if self.name == "postgresql" else "instr"
        return f"{fn}({haystack}, :{param}) > 0"


class _Converter:
    """`:name` SQL -> (driver SQL, parameter order), cached per statement text."""

    def __init__(self, style: Literal["dollar", "named"]) -> None:
        self.style = style
        self.cache: dict[str, tuple[str, tuple[str, ...]]] = {}

    def __call__(self, sql: str) -> tuple[str, tuple[str, ...]]:
        hit = self.cache.get(sql)
        if hit is not None:
            return hit
        if self.style == "named":
            names = tuple(dict.fromkeys(_PARAM.findall(sql)))
            out = (sql, names)
        else:
            order: dict[str, int] = {}

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name not in order:
                    order[name] = len(order) + 1
                return f"${order[name]}"

            out = (_PARAM.sub(sub, sql), tuple(order))
        if len(self.cache) < 4096:
            self.cache[sql] = out
        return out


# --------------------------------------------------------------------------------------------
# PostgreSQL (asyncpg)
# --------------------------------------------------------------------------------------------


async def _init_pg_connection(conn: Any) -> None:
    # ids stay strings end to end; no uuid.UUID round trips on the hot path
    await conn.set_type_codec("uuid", encoder=str, decoder=str, schema="pg_catalog", format="text")


class _PgExecutor:
    def __init__(self, conn: Any, convert: _Converter) -> None:
        self._conn = conn
        self._convert = convert

    def _args(self, sql: str, params: Params | None) -> tuple[str, list[Any]]:
        text, names = self._convert(sql)
        return text, [params[n] for n in names] if params else []

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        text, args = self._args(sql, params)
        return list(await self._conn.fetch(text, *args))

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        text, args = self._args(sql, params)
        row: Row | None = await self._conn.fetchrow(text, *args)
        return row

    async def execute(self, sql: str, params: Params | None = None) -> int:
        text, args = self._args(sql, params)
        status: str = await self._conn.execute(text, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


class PostgresDatabase:
    dialect = Dialect("postgresql")

    def __init__(self, pool: Any, dsn: str) -> None:
        self._pool = pool
        self.dsn = dsn
        self._convert = _Converter("dollar")

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> PostgresDatabase:
        import asyncpg

        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                         init=_init_pg_connection)
        return cls(pool, dsn)

    @property
    def pool(self) -> Any:
        return self._pool

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        async with self._pool.acquire() as conn:
            return await _PgExecutor(conn, self._convert).fetch(sql, params)

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        async with self._pool.acquire() as conn:
            return await _PgExecutor(conn, self._convert).fetchrow(sql, params)

    async def execute(self, sql: str, params: Params | None = None) -> int:
        async with self._pool.acquire() as conn:
            return await _PgExecutor(conn, self._convert).execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgExecutor(conn, self._convert)

    async def close(self) -> None:
        await self._pool.close()


# --------------------------------------------------------------------------------------------
# SQLite (aiosqlite)
# --------------------------------------------------------------------------------------------


def _herald_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _SqliteExecutor:
    def __init__(self, conn: Any, convert: _Converter) -> None:
        self._conn = conn
        self._convert = convert

    def _args(self, sql: str, params: Params | None) -> tuple[str, dict[str, Any]]:
        text, names = self._convert(sql)
        return text, {n: params[n] for n in names} if params else {}

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        text, args = self._args(sql, params)
        async with self._conn.execute(text, args) as cur:
            return list(await cur.fetchall())

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params | None = None) -> int:
        text, args = self._args(sql, params)
        async with self._conn.execute(text, args) as cur:
            return int(cur.rowcount or 0)


class SqliteDatabase:
    """One connection, serialised by a lock: SQLite has a single writer anyway, and WAL lets other
    processes (the CLI, a `herald worker`) read while this one writes."""

    dialect = Dialect("sqlite")

    def __init__(self, conn: Any, path: str) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._convert = _Converter("named")
        self._ex = _SqliteExecutor(conn, self._convert)

    @classmethod
    async def connect(cls, path: str) -> SqliteDatabase:
        import aiosqlite

        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.create_function("herald_lower", 1, _herald_lower, deterministic=True)
        return cls(conn, path)

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        async with self._lock:
            return await self._ex.fetch(sql, params)

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        async with self._lock:
            return await self._ex.fetchrow(sql, params)

    async def execute(self, sql: str, params: Params | None = None) -> int:
        async with self._lock:
            return await self._ex.execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._ex
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def close(self) -> None:
        await self._conn.close()


# --------------------------------------------------------------------------------------------


def sqlite_path(url: str) -> str | None:
    """The file path of a `sqlite:///path` URL (None for other schemes)."""
    for prefix in ("sqlite+aiosqlite://", "sqlite://"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if rest.startswith("/"):
                rest = rest[1:]
            return rest or ":memory:"
    return None


def postgres_dsn(url: str) -> str | None:
    """A plain `postgresql://` DSN for asyncpg from any SQLAlchemy-style PostgreSQL URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return None


async def connect(url: str) -> Database:
    path = sqlite_path(url)
    if path is not None:
        return await SqliteDatabase.connect(path)
    dsn = postgres_dsn(url)
    if dsn is not None:
        return await PostgresDatabase.connect(dsn)
    raise ValueError(f"Unsupported database URL (use sqlite:///path or postgresql://…): {url.split('@')[-1]}")
