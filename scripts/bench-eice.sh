#!/usr/bin/env bash
# Benchmark (not a timed test): connect time over an EC2 Instance Connect Endpoint vs over the
# bastion, in one run of the namespace bed: `hop sample-eice-web -- true` (the fake EICE: TLS,
# SigV4 check, websocket, dial into eice-web's namespace) vs `hop sample-web -- true` through
# sample-bastion (--no-reuse: each run pays the whole route) vs OpenSSH `ssh -J` to web, and
# OpenSSH to eice-web through `hop proxy` (what `hop config` writes). Interleaved runs, medians,
# ratios. Needs root (namespaces).
#   scripts/bench-eice.sh [RUNS] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-15}"
source scripts/bench-env.sh "${2:-}"
exec "$PY" scripts/bench_eice.py "$HOP" "$runs"
