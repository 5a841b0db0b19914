#!/usr/bin/env bash
# HTTP load benchmark (a measurement, not a test): starts the release server on SQLite and on
# PostgreSQL with seed-demo data, then drives it over 127.0.0.1 with wrk, 32 connections:
# GET task detail, GET list (page of 50 and of 200), POST create task, GET JWKS.
# Prints req/s, p50, p99 and the server's RSS per backend and route.
#
#   scripts/bench-http.sh            # 2,000 seeded tasks, 15 s per route
#   TASKS=100000 DURATION=30 scripts/bench-http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${TASKS:-2000}
DURATION=${DURATION:-15}
CONNECTIONS=32
PG_ADMIN=${TASKHUB_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PORT=18090

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)"
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
scripts/services.sh >/dev/null
cargo build --release -q -p taskhub-http --features postgres
BIN=target/release/taskhub
WORK=$(mktemp -d)
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# wrk's report → "req/s p50 p99"
measure() { # url [lua]
  local out
  if [ -n "${2:-}" ]; then
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$2" "$1")
  else
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$1")
  fi
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}

printf '%-9s %-22s %10s %9s %9s %8s %9s\n' backend route "req/s" p50 p99 non-2xx "RSS MiB"
for backend in sqlite postgres; do
  if [ "$backend" = sqlite ]; then
    DB="sqlite://$WORK/load.db"
  else
    name="taskhub_load_$$"
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $name" -qc "CREATE DATABASE $name" >/dev/null
    DB="${PG_ADMIN%/*}/$name"
  fi
  export TASKHUB_DATABASE_URL="$DB" TASKHUB_KEYS_DIR="$WORK/keys-$backend" TASKHUB_AUTH_RATE_LIMIT=0 RUST_LOG=warn
  "$BIN" seed-demo --tasks "$TASKS" --quiet >/dev/null
  "$BIN" --bind "127.0.0.1:$PORT" --role http >"$WORK/server-$backend.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  TOKEN=$(curl -fsS -H 'content-type: application/json' -d '{"username":"alan","password":"taskhub-demo-password"}' \
    "http://127.0.0.1:$PORT/api/auth/login/" | json 'd["data"]["access"]')
  TASK=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/tasks/?page_size=1" | json 'd["data"][0]["id"]')
  cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"title": "load test task", "priority": "high", "tags": ["load"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
  for route in "GET /api/tasks/{id}/" "GET /api/tasks/ (50)" "GET /api/tasks/ (200)" "POST /api/tasks/" "GET /.well-known/jwks"; do
    case "$route" in
      "GET /api/tasks/{id}/") r=$(measure "http://127.0.0.1:$PORT/api/tasks/$TASK/") ;;
      "GET /api/tasks/ (50)") r=$(measure "http://127.0.0.1:$PORT/api/tasks/?page_size=50") ;;
      "GET /api/tasks/ (200)") r=$(measure "http://127.0.0.1:$PORT/api/tasks/?page_size=200") ;;
      "POST /api/tasks/") r=$(measure "http://127.0.0.1:$PORT/api/tasks/" "$WORK/post.lua") ;;
      *) r=$(measure "http://127.0.0.1:$PORT/.well-known/jwks.json") ;;
    esac
    rss=$(( $(ps -o rss= -p "$SERVER") / 1024 ))
    read -r rps p50 p99 non2xx <<<"$r"
    printf '%-9s %-22s %10s %9s %9s %8s %9s\n' "$backend" "$route" "$rps" "$p50" "$p99" "$non2xx" "$rss"
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  [ "$backend" = postgres ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null
done
