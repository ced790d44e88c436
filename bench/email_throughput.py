"""Email delivery throughput: one send to a 1,000-member group, through `herald serve`, the ledger,
the in-process delivery worker and SMTP to a local aiosmtpd server.

    .venv/bin/python -m bench.email_throughput [--members 1000] [--concurrency 8] [--throttle-ms 0]
                                             [--database postgresql|sqlite] [--rounds 3]

Prints, per round: how long the send request took (notifications + 1,000 ledger rows in one
transaction), the time until the SMTP server had every message, and messages per second. The SMTP
server counts messages and their idempotency keys; it does not parse them (it shares the CPU).
With upstream's defaults (concurrencyLimit 2 per throttleInterval 100 ms) the throttle caps a
process at 20 messages/s; the default here lifts it to measure Herald itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench._server import herald_server
from herald.catalog.generate import generate_org
from herald.processors.testing import free_port


class CountingHandler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: list[bytes] = []
        self.done = threading.Event()
        self.expected = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        start = content.find(b"X-Herald-Delivery: ")
        key = content[start + 19:content.find(b"\r\n", start)] if start >= 0 else b"?"
        with self.lock:
            self.keys.append(key)
            if len(self.keys) >= self.expected:
                self.done.set()
        return "250 2.0.0 OK"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="notifications.processors.email.concurrencyLimit")
    parser.add_argument("--throttle-ms", type=int, default=0, help="notifications.processors.email.throttleInterval")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    work = Path(tempfile.mkdtemp(prefix="herald-bench-email-"))
    org = work / "org.yaml"
    org.write_text(generate_org(args.members, 1))  # one organization group holding every user
    handler = CountingHandler()
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    extra: dict[str, Any] = {"notifications": {
        "processors": {"email": {
            "transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": smtp_port},
            "sender": "Herald <herald@example.com>",
            "concurrencyLimit": args.concurrency, "throttleInterval": {"milliseconds": args.throttle_ms}}},
        "delivery": {"pollInterval": "200ms"}}}
    if args.database == "sqlite":
        extra["database"] = {"url": f"sqlite:///{work / 'herald.db'}"}
    print(f"email throughput: {args.members} members, concurrencyLimit {args.concurrency}, "
          f"throttleInterval {args.throttle_ms} ms, {args.database}, SMTP on 127.0.0.1:{smtp_port}")
    rates: list[float] = []
    try:
        with herald_server(org, extra=extra) as server:
            headers = {"Authorization": f"Bearer {server.service_token}"}
            with httpx.Client(base_url=server.base, headers=headers, timeout=120) as http:
                for round_no in range(1, args.rounds + 1):
                    with handler.lock:
                        handler.keys.clear()
                        handler.done.clear()
                        handler.expected = args.members
                    t0 = time.perf_counter()
                    r = http.post("/api/notifications/notifications", json={
                        "recipients": {"type": "entity", "entityRef": "group:default/acme"},
                        "payload": {"title": f"Benchmark round {round_no}", "description": "Throughput test",
                                    "link": "/catalog"}})
                    t_send = time.perf_counter() - t0
                    if r.status_code != 200 or len(r.json()) != args.members:
                        print(f"send failed: {r.status_code} {r.text[:300]}", file=sys.stderr)
                        return 1
                    if not handler.done.wait(600):
                        print(f"timed out with {len(handler.keys)} messages", file=sys.stderr)
                        return 1
                    t_all = time.perf_counter() - t0
                    time.sleep(0.5)  # late duplicates would show up here
                    with handler.lock:
                        n, distinct = len(handler.keys), len(set(handler.keys))
                    rate = args.members / t_all
                    rates.append(rate)
                    print(f"  round {round_no}: send request {t_send * 1000:.0f} ms, all {args.members} "
                          f"messages delivered in {t_all:.2f} s -> {rate:.0f} messages/s "
                          f"({n} received, {distinct} distinct keys)")
    finally:
        controller.stop()
    print(f"median: {statistics.median(rates):.0f} messages/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
