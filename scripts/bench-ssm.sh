#!/usr/bin/env bash
# Benchmark (not a timed test): `hop TARGET -- true` and bulk transfer over Session Manager (the
# fake agent of the test bed, loopback websocket) against hop and OpenSSH through the bastion,
# in one run. Prints medians and ratios. Needs root (namespaces).
#   scripts/bench-ssm.sh [RUNS] [MIB] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-15}"
mib="${2:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hop/target}"
PY=$(scripts/install-test-deps.sh | tail -1)
hop="${3:-}"
if [[ -z "$hop" ]]; then
    cargo build --release --locked --quiet
    hop="$CARGO_TARGET_DIR/release/hop"
fi
exec "$PY" scripts/bench_ssm.py "$hop" "$runs" "$mib"
