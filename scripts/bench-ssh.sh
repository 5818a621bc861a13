#!/usr/bin/env bash
# Benchmark (not a timed test): `hop TARGET -- true` against OpenSSH doing the same jump
# (`ssh -o ProxyCommand='ssh -W …' …`, same keys, same known_hosts, same namespaces), in one
# run, at 0 and 25 ms per link: medians, ratios against OpenSSH at its default kex and forced to
# curve25519-sha256, client turns per hop, hop's peak RSS. Needs root (namespaces).
# HOP_FLAGS="..." adds flags to every hop run.
#   scripts/bench-ssh.sh [RUNS] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-15}"
source scripts/bench-env.sh "${2:-}"
exec "$PY" scripts/bench_ssh.py "$HOP" "$runs"
