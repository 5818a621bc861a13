#!/usr/bin/env bash
# Benchmark (not a timed test): `hop TARGET -- true` against OpenSSH doing the same jump
# (`ssh -o ProxyCommand='ssh -W …' …`, same keys, same known_hosts, same namespaces), in one
# run. Prints medians, the ratio hop/OpenSSH and hop's peak RSS. Needs root (namespaces).
#   scripts/bench-ssh.sh [RUNS] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hop/target}"
PY=$(scripts/install-test-deps.sh | tail -1)
hop="${2:-}"
if [[ -z "$hop" ]]; then
    cargo build --release --locked --quiet
    hop="$CARGO_TARGET_DIR/release/hop"
fi
exec "$PY" scripts/bench_ssh.py "$hop" "$runs"
