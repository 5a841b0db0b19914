#!/usr/bin/env bash
# Makes sure the services the tests talk to are up: PostgreSQL on 127.0.0.1:5432 and Redis on
# 127.0.0.1:6379 and a Kafka-protocol broker on 127.0.0.1:9092 (scripts/kafka.sh: tansu, installed
# once per machine), and installs the SMTP server the mail tests start (aiosmtpd). Safe to run
# when they are.
set -euo pipefail

wait_for() { # name, command
  for _ in $(seq 1 60); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "services: $1 did not come up" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for PostgreSQL "pg_isready -q -h 127.0.0.1 -p 5432"
fi
echo "services: PostgreSQL ready on 127.0.0.1:5432"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis "redis-cli -h 127.0.0.1 -p 6379 ping"
fi
echo "services: Redis ready on 127.0.0.1:6379"

"$(dirname "$0")/kafka.sh" start

# The SMTP server of the mail tests (they start it themselves): aiosmtpd, from PyPI.
if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "services: installing aiosmtpd (SMTP server for the mail tests)"
  python3 -m pip install --user --quiet --disable-pip-version-check aiosmtpd
fi
echo "services: aiosmtpd available"
