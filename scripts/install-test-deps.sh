#!/usr/bin/env bash
# Installs what hop's integration tests need outside of cargo: a few Debian
# packages and a Python venv with moto (see tests/support/requirements.txt).
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

# Debian packages the test bed uses. Extend this list (e.g. openssh-server)
# rather than adding more apt-get calls.
APT_PACKAGES="openssh-client iproute2"

log() { echo "install-test-deps: $*" >&2; }

# `python3 -m venv` on a Debian system python needs python3-venv for ensurepip;
# pyenv/upstream builds already have it.
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
if ((${#missing[@]})); then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    log "apt-get update (missing: ${missing[*]})"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    log "apt-get install ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
    log "apt packages present: $APT_PACKAGES"
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
