"""Send fan-out and inbox query timings on PostgreSQL, through the real HTTP API.

    .venv/bin/python bench/send_and_list.py [--users 10000] [--groups 100] [--rows 100000]

Generates an org, starts `herald serve` on a fresh PostgreSQL database, then prints:
  * send to groups of about 100, 1,000 and every user (median of a few sends each), beside a raw
    `INSERT … SELECT` of the same number of rows into the same table (the floor);
  * list / filtered list / status for a user with --rows notifications (median of 50 calls each).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from bench._server import herald_server
from herald.catalog import FileCatalog
from herald.catalog.generate import generate_org


def pick_groups(catalog: FileCatalog, targets: list[int]) -> list[tuple[str, int]]:
    sizes: list[tuple[str, int]] = []
    for ref in catalog.snapshot.group_users:
        n = len(asyncio.run(catalog.resolve([ref], [])))
        sizes.append((ref, n))
    out = []
    for t in targets:
        out.append(min(sizes, key=lambda s: (abs(s[1] - t), s[0])))
    return out


def timed(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


async def raw_insert(db_url: str, n: int) -> float:
    conn = await asyncpg.connect(db_url)
    try:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            await conn.execute(
                "INSERT INTO notification (id, user_ref, origin, created, title, severity) "
                "SELECT gen_random_uuid(), 'user:default/raw-' || g, 'raw', 0, 'raw', 'normal' "
                f"FROM generate_series(1, {n}) g")
            times.append(time.perf_counter() - t0)
            await conn.execute("DELETE FROM notification WHERE origin = 'raw'")
        return statistics.median(times)
    finally:
        await conn.close()


async def seed_inbox(db_url: str, user: str, rows: int) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO notification (id, user_ref, origin, created, title, description, severity, topic, read) "
            "SELECT gen_random_uuid(), $1, 'external:seed-' || (g % 5), 1700000000000 + g * 1000, "
            "'Seeded notification ' || g, 'body ' || g, "
            "(ARRAY['critical','high','normal','low'])[1 + g % 4], 'topic-' || (g % 20), "
            "CASE WHEN g % 3 = 0 THEN 1700000000000 ELSE NULL END FROM generate_series(1, $2) g", user, rows)
        await conn.execute("ANALYZE notification")
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    org = Path(tempfile.mkdtemp(prefix="herald-org-")) / "org.yaml"
    org.write_text(generate_org(args.users, args.groups))
    catalog = FileCatalog.from_files([str(org)])
    groups = pick_groups(catalog, [100, 1000, args.users])
    print(f"org: {args.users} users, {args.groups} groups; PostgreSQL")
    with herald_server(org) as server, httpx.Client(base_url=server.base, timeout=300) as http:
        h = {"Authorization": f"Bearer {server.service_token}"}
        print(f"{'send to':>12} {'median s':>9} {'min s':>7} {'raw INSERT s':>13} {'ratio':>6}")
        for ref, n in groups:
            def send(ref: str = ref) -> None:
                r = http.post("/api/notifications/notifications", headers=h, json={
                    "recipients": {"type": "entity", "entityRef": ref},
                    "payload": {"title": "bench", "topic": "bench"}})
                assert r.status_code == 200, r.text
            t = timed(send, args.repeat)
            raw = asyncio.run(raw_insert(server.db_url, n))
            print(f"{n:>12} {statistics.median(t):>9.3f} {min(t):>7.3f} {raw:>13.4f} "
                  f"{statistics.median(t) / raw:>6.1f}")

        user = "user:default/bench-inbox"
        asyncio.run(seed_inbox(server.db_url, user, args.rows))
        uh = {"Authorization": f"Bearer {server.user_token(user)}"}
        calls = {
            "list (limit 20)": "/api/notifications/notifications?limit=20&offset=0&orderField=created%2Cdesc",
            "list unread page 50": "/api/notifications/notifications?limit=20&offset=1000&read=false",
            "list filtered": "/api/notifications/notifications?limit=20&minimumSeverity=high&topic=topic-3"
                             "&search=notification",
            "status": "/api/notifications/status",
            "topics": "/api/notifications/topics?read=false",
        }
        print(f"\ninbox of {args.rows} notifications")
        print(f"{'call':>22} {'median ms':>10} {'p90 ms':>8}")
        for label, path in calls.items():
            def call(path: str = path) -> None:
                r = http.get(path, headers=uh)
                assert r.status_code == 200, r.text
            t = sorted(timed(call, 50))
            print(f"{label:>22} {statistics.median(t) * 1000:>10.2f} {t[int(len(t) * 0.9)] * 1000:>8.2f}")


if __name__ == "__main__":
    main()
