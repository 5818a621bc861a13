#!/usr/bin/env bash
# README command (1): on a fresh Debian machine, install what is needed, build hop, start a
# local lab (moto's EC2 emulator seeded with the tutorial topology) and run hop against it.
#
#   scripts/lab.sh           run the demo, then stop the lab
#   scripts/lab.sh --keep    leave the lab running and print the environment to use it
#
# Idempotent. Touches nothing of yours: the lab's HOME, cache and ~/.ssh live under .lab/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
keep=false
[[ "${1:-}" == "--keep" ]] && keep=true

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hop/target}"
if ! command -v cargo >/dev/null; then
    echo "lab.sh: cargo not found; install Rust first: https://rustup.rs" >&2
    exit 2
fi
PY=$(scripts/install-test-deps.sh | tail -1)
echo "lab.sh: building hop (the first build compiles aws-sdk-ec2: several minutes)" >&2
cargo build --locked --quiet
hop="$CARGO_TARGET_DIR/debug/hop"

lab="$repo/.lab"
mkdir -p "$lab/home/.ssh"
chmod 700 "$lab/home/.ssh"
# The tutorial's key file names (hop infers IdentityFile from the instance's key pair).
for key in sample-bastion sample-web; do
    [[ -f "$lab/home/.ssh/$key.pem" ]] || (umask 077 && echo "lab placeholder, not a key" >"$lab/home/.ssh/$key.pem")
done

# A lab left running by an earlier --keep is stopped first, by its recorded PID.
if [[ -f "$lab/moto.pid" ]]; then
    kill "$(cat "$lab/moto.pid")" 2>/dev/null || true
    rm -f "$lab/moto.pid"
fi
rm -f "$lab/state.json"
"$PY" tests/support/moto_lab.py --port 0 --seed --foreground --state-file "$lab/state.json" \
    >"$lab/moto.out" 2>"$lab/moto.log" &
moto_pid=$!
echo "$moto_pid" >"$lab/moto.pid"
stop() {
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    rm -f "$lab/moto.pid"
}
$keep || trap stop EXIT
for _ in $(seq 1 120); do
    [[ -s "$lab/state.json" ]] && break
    kill -0 "$moto_pid" 2>/dev/null || { cat "$lab/moto.log" >&2; exit 1; }
    sleep 0.5
done
endpoint=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$lab/state.json")

# Everything points at the lab: its own HOME and cache, dummy credentials, no metadata probes.
lab_env=(
    HOME="$lab/home" XDG_CACHE_HOME="$lab/cache" XDG_CONFIG_HOME="$lab/config"
    AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$lab/home/.aws/config"
    AWS_SHARED_CREDENTIALS_FILE="$lab/home/.aws/credentials"
)
demo() {
    echo
    echo "\$ hop $*"
    env "${lab_env[@]}" "$hop" "$@" || echo "(exit $?)"
}
demo ls
demo route sample-web
demo route sample-worker
demo config

if $keep; then
    echo
    echo "The lab keeps running (PID $moto_pid). Use it with:"
    printf '  env'; printf ' %q' "${lab_env[@]}"; printf ' %q ls\n' "$hop"
    echo "Stop it with: kill $moto_pid"
fi
