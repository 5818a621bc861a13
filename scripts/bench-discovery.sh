#!/usr/bin/env bash
# Benchmark discovery against the same moto server in one run (not a timed test):
#   - `hop --region us-west-2 ls` (151 instances, 15 reservations) vs a boto3 paginator over
#     the same DescribeInstances, both including process/client start;
#   - `hop route sample-web` with a warm cache;
#   - `hop` failing with no region configured.
# Prints medians and the ratio hop/boto3.  Usage: scripts/bench-discovery.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-15}"
source scripts/bench-env.sh
exec "$PY" scripts/bench_discovery.py "$HOP" "$runs"
