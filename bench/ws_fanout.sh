#!/usr/bin/env bash
# WebSocket fan-out of one Herald process, measured with ../shared/bench/ws_fanout.sh.
#   bench/ws_fanout.sh [sqlite|postgresql] [ws_fanout.py args, e.g. --connections 10000 --users 100]
# Starts a fresh Herald (no per-user connection cap, raised file limit), runs the instrument, stops it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:-sqlite}"; shift || true
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export HERALD_SIGNALS__MAX_CONNECTIONS_PER_USER=0
pg_admin="${HERALD_BENCH_PG:-postgresql://postgres@127.0.0.1:5432/postgres}"
db=""
cleanup() {
  [ -n "${CONF_PID:-}" ] && kill "$CONF_PID" 2>/dev/null || true
  if [ -n "$db" ]; then
    "$root/.venv/bin/python" -c "import asyncio,asyncpg,sys
async def m():
    c=await asyncpg.connect(sys.argv[1]); await c.execute(f'DROP DATABASE IF EXISTS \"{sys.argv[2]}\" WITH (FORCE)'); await c.close()
asyncio.run(m())" "$pg_admin" "$db" || true
  fi
}
trap cleanup EXIT
if [ "$kind" = postgresql ]; then
  db="herald_fanout_$$"
  "$root/.venv/bin/python" -c "import asyncio,asyncpg,sys
async def m():
    c=await asyncpg.connect(sys.argv[1]); await c.execute(f'CREATE DATABASE \"{sys.argv[2]}\"'); await c.close()
asyncio.run(m())" "$pg_admin" "$db"
  export CONF_DATABASE_URL="${pg_admin%/*}/$db"
fi
eval "$("$root/scripts/conformance-target" "$root/../shared/conformance/org.yaml")"
"$root/../shared/bench/ws_fanout.sh" "$@"
