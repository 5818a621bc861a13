#!/usr/bin/env bash
# Benchmark (not a timed test): plain OpenSSH through the config `hop config --write` generates,
# with OpenSSH's connection sharing (the default: ControlMaster/ControlPersist on the stanzas)
# and without (`reuse = false`), and with `hop proxy` as the web host's ProxyCommand. First and
# second `ssh web true`, scp and rsync of a small file with and without a live master, at 0 and
# 25 ms one-way per link (scripts/delay_relay.py). Prints medians and the ratios second/first.
# Needs root (namespaces).
#   scripts/bench-config.sh [RUNS] [HOP_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-10}"
source scripts/bench-env.sh "${2:-}"
exec "$PY" scripts/bench_config.py "$HOP" "$runs"
