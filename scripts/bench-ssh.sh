#!/usr/bin/env bash
# Benchmark (not a timed test): `hop TARGET -- true` against OpenSSH doing the same jump
# (`ssh -o ProxyCommand='ssh -W …' …`, same keys, same known_hosts, same namespaces), in one
# run. Prints medians, the ratio hop/OpenSSH and hop's peak RSS. Needs root (namespaces).
#   scripts/bench-ssh.sh [RUNS] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-20}"
source scripts/bench-env.sh "${2:-}"
exec "$PY" scripts/bench_ssh.py "$HOP" "$runs"
