#!/usr/bin/env bash
# README command (2): install the test dependencies and run every check and test.
# Idempotent. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Builds are reused across clones and CI runs (aws-sdk-ec2 alone takes minutes to compile).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hop/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        echo "test.sh: rustup component add $component" >&2
        rustup component add "$component" >&2
    fi
done

HOP_TEST_PYTHON=$(scripts/install-test-deps.sh | tail -1)
export HOP_TEST_PYTHON

echo "test.sh: cargo fmt --check" >&2
cargo fmt --all -- --check
echo "test.sh: cargo clippy" >&2
cargo clippy --locked --all-targets -- -D warnings
echo "test.sh: cargo test" >&2
cargo test --locked -- --test-threads="${HOP_TEST_THREADS:-4}"
