#!/usr/bin/env bash
# Benchmark (not a timed test): `hop forward` against OpenSSH's `ssh -J … -L` on the same lab
# namespaces, in one run: iperf3 throughput up and down, client CPU seconds per GiB, peak RSS,
# and the time for 100 / 1000 parallel short connections. Prints each ratio. Needs root.
#   scripts/bench-forward.sh [GIB] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
gib="${1:-1}"
source scripts/bench-env.sh "${2:-}"
exec "$PY" scripts/bench_forward.py "$HOP" "$gib"
