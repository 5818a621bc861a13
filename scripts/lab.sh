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

# A lab left running by an earlier --keep is stopped first, by its recorded PID.
if [[ -f "$lab/lab.pid" ]]; then
    kill "$(cat "$lab/lab.pid")" 2>/dev/null || true
    rm -f "$lab/lab.pid"
fi
rm -f "$lab/state.json"

# With root, the full lab: bastion and web in network namespaces running OpenSSH sshd, and
# moto inside the client namespace (where hop runs), so `hop sample-web -- CMD` really jumps.
# Without root, only moto: discovery, routes and config.
if [[ $(id -u) -eq 0 ]]; then
    mode=ssh
    "$PY" tests/support/netns_lab.py --moto --foreground --state-file "$lab/state.json" \
        >"$lab/lab.out" 2>"$lab/lab.log" &
else
    mode=moto
    echo "lab.sh: not root: no network namespaces, so no SSH hosts (discovery only)" >&2
    "$PY" tests/support/moto_lab.py --port 0 --seed --foreground --state-file "$lab/state.json" \
        >"$lab/lab.out" 2>"$lab/lab.log" &
fi
lab_pid=$!
echo "$lab_pid" >"$lab/lab.pid"
stop() {
    kill "$lab_pid" 2>/dev/null || true
    wait "$lab_pid" 2>/dev/null || true
    rm -f "$lab/lab.pid"
}
$keep || trap stop EXIT
for _ in $(seq 1 120); do
    [[ -s "$lab/state.json" ]] && break
    kill -0 "$lab_pid" 2>/dev/null || { cat "$lab/lab.log" >&2; exit 1; }
    sleep 0.5
done
field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("for k in sys.argv[2:]: d=d[k]"); print(d)' "$lab/state.json" "$@"; }

if [[ $mode == ssh ]]; then
    endpoint=$(field moto endpoint)
    ns=$(field client_ns)
    # The tutorial's key files, where hop looks for them (~/.ssh/<KeyName>.pem).
    for key in sample-bastion sample-web; do
        install -m 600 "$(field keys "$key")" "$lab/home/.ssh/$key.pem"
    done
    # The hosts' keys as an admin would have verified them, under their instance ids (the
    # HostKeyAlias hop and `hop config` use).
    {
        echo "$(field moto instances sample-bastion id) $(field bastion host_key_pub)"
        echo "$(field moto instances sample-web id) $(field web host_key_pub)"
        # sample-worker is SSM-only: the lab's fake Session Manager agent dials web's sshd from
        # inside web's namespace, as a real agent dials localhost:22 on its instance.
        echo "$(field moto instances sample-worker id) $(field web host_key_pub)"
        # sample-eice-web sits in a VPC with an EC2 Instance Connect Endpoint and no bastion;
        # the lab's fake endpoint dials it inside its namespace (nothing else reaches it).
        echo "$(field moto instances sample-eice-web id) $(field eice_web host_key_pub)"
    } >"$lab/home/.ssh/known_hosts"
    # The fake endpoint's TLS certificate comes from the lab's test CA; its names resolve to it
    # inside the client namespace (netns_lab.py writes /etc/netns/<ns>/hosts).
    eice_ca=$(field moto eice ca)
    ip netns exec "$ns" "$PY" tests/support/ssm_admin.py --endpoint "$endpoint" target \
        "$(field moto instances sample-worker id)" \
        "{\"dial\": {\"netns\": \"$(field web_ns)\", \"host\": \"10.0.1.10\", \"port\": 22}}" >/dev/null
    # web's sshd knows ec2-user and sample-web's key (the worker's tags say ssm-user).
    mkdir -p "$lab/config/hop"
    printf '[hosts.sample-worker]\nuser = "ec2-user"\nidentity = "%s"\n' "$lab/home/.ssh/sample-web.pem" \
        >"$lab/config/hop/config.toml"
    run_in=(ip netns exec "$ns")
else
    endpoint=$(field endpoint)
    for key in sample-bastion sample-web; do
        [[ -f "$lab/home/.ssh/$key.pem" ]] || (umask 077 && echo "lab placeholder, not a key" >"$lab/home/.ssh/$key.pem")
    done
    run_in=()
    eice_ca=
fi

# Everything points at the lab: its own HOME and cache, dummy credentials, no metadata probes.
lab_env=(
    HOME="$lab/home" XDG_CACHE_HOME="$lab/cache" XDG_CONFIG_HOME="$lab/config"
    AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$lab/home/.aws/config"
    AWS_SHARED_CREDENTIALS_FILE="$lab/home/.aws/credentials" TERM="${TERM:-dumb}"
    XDG_RUNTIME_DIR="$lab/run"
)
if [[ -n $eice_ca ]]; then
    lab_env+=(SSL_CERT_FILE="$eice_ca")
fi
demo() {
    echo
    echo "\$ hop $*"
    "${run_in[@]}" env -i PATH="$PATH" "${lab_env[@]}" "$hop" "$@" </dev/null || echo "(exit $?)"
}
demo ls
demo route sample-web
demo route sample-worker
demo route sample-eice-web
demo config
demo doctor sample-web --my-ip 192.0.2.10
demo doctor sample-worker
if [[ $mode == ssh ]]; then
    demo sample-web -- hostname
    demo sample-web -- uname -a
    demo sample-worker -- 'echo "over Session Manager: $(hostname)"'
    # No key for it anywhere: launched without a key pair, the lab's ~/.ssh holds only the
    # tutorial's two .pem files (any other key file there is removed) and env -i leaves no
    # agent. hop makes a key in memory, pushes it with EC2 Instance Connect and goes through
    # the endpoint's tunnel.
    for f in "$lab/home/.ssh"/id_* "$lab/home/.ssh"/*.pem; do
        case ${f##*/} in sample-bastion.pem | sample-web.pem) ;; *) rm -f "$f" ;; esac
    done
    demo sample-eice-web -- hostname
    # The first sample-web command left a connection master behind (README: connection reuse).
    $keep || demo stop
fi

if $keep; then
    echo
    echo "The lab keeps running (PID $lab_pid). Use it with:"
    printf ' '; printf ' %q' "${run_in[@]}" env "${lab_env[@]}"; printf ' %q ls\n' "$hop"
    echo "Stop it with: kill $lab_pid"
fi
