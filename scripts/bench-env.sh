# Sourced by the bench-*.sh scripts: the test dependencies (PY = the venv's python) and the hop
# binary to measure (HOP = $1 if given, else a fresh release build).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hop/target}"
PY=$(scripts/install-test-deps.sh | tail -1)
HOP="${1:-}"
if [[ -z "$HOP" ]]; then
    cargo build --release --locked --quiet
    HOP="$CARGO_TARGET_DIR/release/hop"
fi
