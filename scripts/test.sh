#!/usr/bin/env bash
# The test command of the README: starts what the tests need, then runs every test of the
# workspace with every feature, on SQLite and on the real PostgreSQL. A backend that cannot be
# reached fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
profile=default
[ "${CI:-}" = "true" ] && profile=ci
# Doc tests first (nextest does not run them), so the run closes on nextest's summary.
cargo test --workspace --all-features --doc --quiet
cargo nextest run --workspace --all-features --profile "$profile" "$@"
