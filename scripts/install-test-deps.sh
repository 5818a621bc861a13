#!/usr/bin/env bash
# Installs what hop's integration tests need outside of cargo: a few Debian
# packages, the `ec2-user` account the lab's sshd servers log in to, and a
# Python venv with moto (see tests/support/requirements.txt).
#
# Idempotent and quick when there is nothing to do. Progress goes to stderr;
# the venv's python path is printed alone on the last line of stdout, so
# callers can do:  PY=$(scripts/install-test-deps.sh | tail -1)
#
# Environment:
#   HOP_VENV  venv location (default: ~/.cache/hop/venv-<hash of requirements.txt>)
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
requirements="$repo_root/tests/support/requirements.txt"

# Debian packages the test bed uses. Extend this list rather than adding more
# apt-get calls. openssh-server provides the /usr/sbin/sshd that
# tests/support/netns_lab.py runs inside the bastion and web namespaces.
APT_PACKAGES="openssh-client openssh-server iproute2 rsync curl iperf3"

log() { echo "install-test-deps: $*" >&2; }

# `python3 -m venv` on a Debian system python needs python3-venv for ensurepip;
# pyenv/upstream builds already have it.
# Building hop compiles C (aws-lc-sys, the TLS crypto under the AWS SDK and russh).
if ! command -v cc >/dev/null 2>&1; then
    APT_PACKAGES="$APT_PACKAGES build-essential"
fi

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    APT_PACKAGES="$APT_PACKAGES python3-venv"
fi

missing=()
for pkg in $APT_PACKAGES; do
    # dpkg -s succeeds for removed-but-configured packages too, so check Status.
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi

installing_sshd=false
for pkg in "${missing[@]}"; do
    if [[ $pkg == openssh-server ]]; then installing_sshd=true; fi
done

if ((${#missing[@]})); then
    if $installing_sshd; then
        # The tests only run sshd themselves, in namespaces, with their own
        # configs. The package's postinst would also start the system sshd on
        # port 22 of the host, an open door nobody asked for. Debian's unit and
        # init script both skip starting when this file exists, so creating it
        # first means the system sshd never starts, not even for a moment
        # (/usr/sbin/sshd run directly ignores the file). Only when we install
        # the package: on a machine that already had it, its sshd is the
        # owner's business and may be how they logged in.
        log "openssh-server: keeping the system sshd service off (/etc/ssh/sshd_not_to_be_run)"
        "${sudo[@]}" mkdir -p /etc/ssh
        "${sudo[@]}" touch /etc/ssh/sshd_not_to_be_run
    fi
    log "apt-get update (missing: ${missing[*]})"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    log "apt-get install ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    if $installing_sshd; then
        # Belt and braces: stop and disable the service in case something
        # started it anyway (e.g. a unit without the condition). Neither step
        # may fail the install: in containers there is often no init system.
        if [[ -d /run/systemd/system ]]; then
            "${sudo[@]}" systemctl disable --now ssh.service ssh.socket >&2 || true
        else
            "${sudo[@]}" service ssh stop >&2 || true
            "${sudo[@]}" update-rc.d ssh disable >&2 || true
        fi
    fi
else
    log "apt packages present: $APT_PACKAGES"
fi

# The account the lab's sshd servers accept (AllowUsers ec2-user), named like
# the Amazon Linux default so the tutorial's commands read the same. A system
# account with a real shell: sshd runs the user's commands through it.
if ! getent passwd ec2-user >/dev/null; then
    log "creating user ec2-user"
    "${sudo[@]}" useradd --system --create-home --home-dir /home/ec2-user \
        --shell /bin/bash ec2-user
fi
# useradd leaves the password as "!", which sshd (UsePAM no, as in the lab)
# takes for a locked account and refuses even for public keys. "*" matches no
# password yet is not "locked": key-only login. Reading the shadow field needs
# root, hence sudo.
if "${sudo[@]}" getent shadow ec2-user | cut -d: -f2 | grep -q '^!'; then
    log "unlocking ec2-user for public-key login (password field '*')"
    "${sudo[@]}" usermod -p '*' ec2-user
fi

req_hash=$(sha256sum "$requirements" | cut -c1-12)
venv="${HOP_VENV:-$HOME/.cache/hop/venv-$req_hash}"
stamp="$venv/.hop-installed"

# The stamp records which requirements the venv was completed with; it is
# written last, so an interrupted install is redone rather than trusted.
if [[ -f "$stamp" && "$(cat "$stamp")" == "$req_hash" && -x "$venv/bin/python" ]]; then
    log "venv up to date: $venv"
else
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating venv $venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv"
    fi
    log "pip install -r $requirements"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$requirements" >&2
    echo "$req_hash" >"$stamp"
    log "venv ready: $venv"
fi

echo "$venv/bin/python"
