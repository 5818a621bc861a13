#!/usr/bin/env bash
# Refresh the repository's copies of the protocol specs and their test vectors from the specs'
# source directory (by default ../shared/specs beside the repository), and say what changed.
# The repository never reads that directory otherwise: a plain clone tests itself.
#   scripts/sync-specs.sh [SPEC_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src="${1:-../shared/specs}"
[[ -d "$src" ]] || { echo "sync-specs.sh: $src not found" >&2; exit 2; }
for f in ssm-data-channel.md ec2-instance-connect.md; do
    cmp -s "$src/$f" "docs/specs/$f" || { install -m 644 "$src/$f" "docs/specs/$f"; echo "updated docs/specs/$f"; }
done
for f in ssm-data-channel-vectors.json ec2-instance-connect-vectors.json; do
    cmp -s "$src/$f" "tests/data/$f" || { install -m 644 "$src/$f" "tests/data/$f"; echo "updated tests/data/$f"; }
done
