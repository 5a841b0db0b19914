#!/usr/bin/env bash
# The Kafka-protocol broker for tests and local use: tansu (crates.io, Apache-2.0), listening on
# 127.0.0.1:9092 with in-memory storage. Installed once per machine into a fixed root (skipped when
# the binary is there, ~10 min on 2 cores otherwise) and started when nothing answers on its port.
#   scripts/kafka.sh            install if missing, start if not running
#   scripts/kafka.sh install    install only
#   scripts/kafka.sh stop       stop the broker this script started
# TaskHub itself only speaks the Kafka protocol (--kafka-brokers); nothing depends on tansu.
set -euo pipefail

TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
ROOT="${TASKHUB_TOOLS_ROOT:-$HOME/.cache/taskhub-tools}"
BIN="$ROOT/bin/tansu"
ADDR="${TASKHUB_KAFKA_ADDR:-127.0.0.1:9092}"
RUN_DIR="${TMPDIR:-/tmp}/taskhub-kafka"
PID_FILE="$RUN_DIR/tansu.pid"

port_open() { (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null; }

install() {
  if [[ -x "$BIN" ]]; then return 0; fi
  echo "kafka: installing tansu into $ROOT (once per machine, ~10 min)"
  cargo install tansu --locked --features dynostore --root "$ROOT" ${TANSU_VERSION:+--version "$TANSU_VERSION"}
}

start() {
  if port_open; then echo "kafka: broker already answering on $ADDR"; return 0; fi
  install
  mkdir -p "$RUN_DIR"
  nohup "$BIN" broker --listener-url "tcp://$ADDR" --advertised-listener-url "tcp://$ADDR" \
    --storage-engine "memory://tansu/" >"$RUN_DIR/tansu.log" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    if port_open; then echo "kafka: tansu ready on $ADDR (pid $(cat "$PID_FILE"))"; return 0; fi
    sleep 0.1
  done
  echo "kafka: tansu did not come up; log:" >&2
  cat "$RUN_DIR/tansu.log" >&2
  return 1
}

stop() {
  if [[ -f "$PID_FILE" ]]; then kill "$(cat "$PID_FILE")" 2>/dev/null || true; rm -f "$PID_FILE"; fi
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|install|stop]" >&2; exit 2 ;;
esac
