#!/usr/bin/env bash
# Benchmark (not a timed test): `hop TARGET -- true` and bulk transfer over Session Manager (the
# fake agent of the test bed, loopback websocket) against hop and OpenSSH through the bastion,
# in one run. Prints medians and ratios. Needs root (namespaces).
#   scripts/bench-ssm.sh [RUNS] [MIB] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-15}"
mib="${2:-20}"
source scripts/bench-env.sh "${3:-}"
exec "$PY" scripts/bench_ssm.py "$HOP" "$runs" "$mib"
