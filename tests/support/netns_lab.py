#!/usr/bin/env python3
"""Builds hop's SSH test bed: client, bastion, web and eice-web network namespaces with real sshd.

    netns_lab.py [--moto] [--moto-python PY] [--state-file PATH] [--foreground] [--verbose]
    netns_lab.py --self-test [--moto]
    netns_lab.py restart --dir DIR {bastion,web,eice_web} [--new-host-key]
    netns_lab.py restart-web --dir DIR [--new-host-key]      (same as: restart web)
    netns_lab.py stop --dir DIR {bastion,web,eice_web}

Needs root, /usr/sbin/sshd (Debian's openssh-server) and the ec2-user account:
scripts/install-test-deps.sh provides both.

Topology (DESIGN.md section 12), with names unique to this launcher's PID:

    client ns hopc-PID             bastion ns hopb-PID                web ns hopw-PID
    203.0.113.1/24 ------ veth ---- 203.0.113.10/24 (public)
                                    10.0.0.4/24 (private) -- veth --- 10.0.1.10/24
                                    + route 10.0.1.0/24 on that link   + route 10.0.0.0/24

    eice-web ns hope-PID: 10.1.1.10/24 on eth0, a veth whose peer stays in
                          hope-PID (the kernel has no dummy driver): linked to nothing

The bastion's two legs mirror AWS: its public address (what moto_lab reports as
sample-bastion's public IP) and its private 10.0.0.4 in 10.0.0.0/24, which
reaches web's 10.0.1.0/24 through the VPC router. Here the "router" is just a
link-scoped /24 route on each end of the bastion-web veth, so web sees
connections from 10.0.0.4 as it would in the VPC. No namespace has a default
route and the bastion does not forward (ip_forward=0), so the client cannot
reach 10.0.1.10 ("Network is unreachable") and web cannot reach the client:
the only way in to web is an SSH hop through the bastion. IPv6 is off in all
three, so nothing but the IPv4 above exists. Nothing is added to the root
namespace: veths are created directly inside the namespaces.

The fourth namespace is sample-eice-web (the EICE VPC of the #12 bed, bed12.md):
10.1.1.10/24 and lo, no link to any other namespace, no route out. Nothing
reaches it by TCP but the fake EC2 Instance Connect Endpoint in moto_lab
(tests/support/fake_eice.py), which dials it with setns into this namespace, so a passing EICE test proves the tunnel carried the bytes. It has
no KeyName in moto, so its authorized_keys is empty: only pushed keys open it.

sshd runs in bastion, web and eice-web, each from its own config, host key
(ed25519), authorized_keys and log in the launcher's directory, and in its own
UTS namespace so `hostname` prints sample-bastion / sample-web /
sample-eice-web there. The two user keys follow the tutorial:
keys/sample-bastion.pem is authorized on the bastion only, keys/sample-web.pem
on web only. DIR/known_hosts lists the three host keys under their addresses
and, with --moto, also under their instance ids (what hop's HostKeyAlias uses).
The host is named `eice_web` everywhere (state key, restart/stop argument).

Keys pushed with EC2 Instance Connect (spec ec2-instance-connect.md §D.4): the
run directory /run/hop-netns-PID/ (root, 0755, outside /tmp because sshd
refuses an AuthorizedKeysCommand under a directory that is not root-owned or is
group/world-writable) holds
    eic/                 the key store, passed to moto_lab as --eic-store: its
                         SendSSHPublicKey appends blocks to eic/<instance-id>/<user>
    eic-keys             the AuthorizedKeysCommand (a copy of eic_keys.sh)
    instance/<host>      the instance id(s) a host's sshd stands for, written
                         once moto has seeded (set_instance_ids() adds more)
    akc.log              one line per command call (owned by nobody)
Every sshd has `AuthorizedKeysCommand /run/hop-netns-PID/eic-keys HOST %u %f`
and `AuthorizedKeysCommandUser nobody`; its authorized_keys (.pem) keep working.
sshd also lets root in, but only through that command (no authorized_keys, no
user CA for root), so "a key pushed for ec2-user does not open root" is decided
by the command, not by AllowUsers.

With --moto, moto_lab runs with --eic-store, --eice-netns
(10.1.1.10=hope-PID,10.0.1.10=hopw-PID,10.0.0.4=hopb-PID: where the fake EICE
dials each private IP) and --eice-dir DIR/eice (its test CA and certificates),
and once it is ready /etc/netns/hopc-PID/hosts maps every seeded endpoint's
DnsName and FipsDnsName to 127.0.0.1 (where the fake EICE listens), after the
lines of the machine's own /etc/hosts: `ip netns exec` bind-mounts it over
/etc/hosts, so hop resolves the names with the system resolver. It is removed
at teardown (an empty /etc/netns is left).

Prints exactly one line of JSON to stdout once every sshd answers with an SSH
banner (and moto, with --moto, is ready):

    {"client_ns": "hopc-PID", "bastion_ns": "hopb-PID", "web_ns": "hopw-PID",
     "eice_web_ns": "hope-PID",
     "dir": "/tmp/hop-netns-PID-xxxx", "user": "ec2-user", "known_hosts": PATH,
     "launcher_pid": PID, "run_dir": "/run/hop-netns-PID",
     "bastion": {"public_ip": "203.0.113.10", "private_ip": "10.0.0.4",
                 "hostname": "sample-bastion", "host_key_pub": "ssh-ed25519 AAAA...",
                 "host_key": PATH, "sshd_config": PATH, "authorized_keys": PATH,
                 "sshd_pid": N, "log": PATH},
     "web": {"ip": "10.0.1.10", "hostname": "sample-web", ... same fields ...},
     "eice_web": {"ns": "hope-PID", "ip": "10.1.1.10", "hostname": "sample-eice-web",
                  ... same fields as web ...},
     "eic": {"store": "/run/hop-netns-PID/eic", "akc_log": PATH, "command": PATH,
             "instance_dir": "/run/hop-netns-PID/instance"},
     "keys": {"sample-bastion": PATH, "sample-web": PATH, "user_ca": PATH},
     "moto": {...moto_lab.py's ready JSON...},        (only with --moto)
     "hosts_file": "/etc/netns/hopc-PID/hosts"}       (only with --moto)

The same JSON is kept in DIR/state.json (updated by restart/stop) and, with
--state-file, written there too (removed on exit, as moto_lab.py does).

Running things in the lab: `ip netns exec <client_ns> CMD` runs CMD where hop
runs (it reaches 203.0.113.10 and, with --moto, moto on 127.0.0.1 there).

Lifetime: as moto_lab.py. Runs until stdin reaches EOF or SIGTERM/SIGINT;
--foreground ignores stdin. Then, and also when setup fails half way, it tears
everything down: sshd (SIGTERM, SIGKILL after 2 s), moto (its stdin is closed),
any other process left in the namespaces (SSH sessions, a restarted sshd), the
namespaces, the directory, the run directory and /etc/netns/hopc-PID. sshd is
started with a parent-death signal, so even a SIGKILLed launcher does not leave them running; the namespaces, directories
(/tmp/hop-netns-PID-*, /run/hop-netns-PID) and /etc/netns/hop?-PID entries such
a launcher leaves behind are removed by the next launcher (names and
directories carry the owner's PID, and only those whose owner is gone are
touched).

Host key changes (restart): `restart web --new-host-key` replaces web's host
key in place and sends sshd SIGHUP, which makes sshd re-execute itself and
reload its keys under the same PID; it returns once sshd answers again with the
new key. DIR/known_hosts and state.json are rewritten to list the current keys,
so a test that wants the "changed key" case must keep its own copy of
known_hosts from before. `stop HOST` kills that sshd (e.g. "bastion down");
`restart HOST` then starts a fresh one (its PID is in the printed JSON and
state.json; teardown still removes it). The same operations are available as
functions: restart_sshd(dir, host, new_host_key=...), stop_sshd(dir, host).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lifecycle import Stop, atomic_write, remove_state, stop_events  # noqa: E402

HERE = Path(__file__).resolve().parent

SSHD = "/usr/sbin/sshd"
USER = "ec2-user"
PRIVSEP_DIR = Path("/run/sshd")

CLIENT_IP = "203.0.113.1"
BASTION_PUBLIC_IP = "203.0.113.10"  # = moto_lab's first instance public IP (sample-bastion)
BASTION_PRIVATE_IP = "10.0.0.4"  # sample-bastion in public-subnet 10.0.0.0/24
BASTION_SUBNET = "10.0.0.0/24"
WEB_IP = "10.0.1.10"  # sample-web in private-subnet 10.0.1.0/24
WEB_SUBNET = "10.0.1.0/24"
EICE_WEB_IP = "10.1.1.10"  # sample-eice-web in sample-eice-a 10.1.1.0/24 (bed12.md)

HOSTS = ("bastion", "web", "eice_web")
HOSTNAMES = {"bastion": "sample-bastion", "web": "sample-web", "eice_web": "sample-eice-web"}
# The moto seed key of each host's instance (= its Name tag).
INSTANCE_KEYS = HOSTNAMES
USER_KEYS = ("sample-bastion", "sample-web")

# Names this launcher (and only it) creates; the number is the owner's PID.
NS_NAME = re.compile(r"^hop[cbwe]-(\d+)$")
DIR_PREFIX = "hop-netns-"
DIR_NAME = re.compile(r"^hop-netns-(\d+)-")
# The run directory (AuthorizedKeysCommand and key store): root-owned all the way up.
RUN_ROOT = Path("/run")
RUN_NAME = re.compile(r"^hop-netns-(\d+)$")
# `ip netns exec NS` bind-mounts /etc/netns/NS/FILE over /etc/FILE.
NETNS_ETC = Path("/etc/netns")
AKC_USER = "nobody"
AKC_SOURCE = HERE / "eic_keys.sh"

READY_TIMEOUT = 10.0  # per sshd, from start to answering with a banner
MOTO_TIMEOUT = 120.0  # moto's first start imports the EC2 models (~7 s), seeding adds more
KILL_GRACE = 2.0

# Connects from inside a namespace and reads the SSH banner: proof that sshd
# (not just something) listens. bash's /dev/tcp keeps this to one process; a
# failed `exec` redirection does not exit a non-interactive bash.
BANNER_PROBE = (
    'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r -t 2 banner <&3 && [[ $banner == SSH-2.0-* ]]'
)
# Just the connect; its error (e.g. "Network is unreachable") goes to stderr.
CONNECT_PROBE = 'exec 3<>"/dev/tcp/$1/$2"'

# Sets the hostname of the fresh UTS namespace (unshare --uts), then becomes
# sshd, so the PID the launcher records is sshd's own. Writing the sysctl
# avoids depending on the `hostname` binary.
SET_HOSTNAME_AND_EXEC = 'echo "$0" >/proc/sys/kernel/hostname && exec "$@"'

log = logging.getLogger("netns_lab")


class LabError(Exception):
    """Setup or a lab operation failed; the message says what and why."""


# --------------------------------------------------------------------------- helpers


def run(
    argv: list[str], *, check: bool = True, timeout: float = 15.0
) -> subprocess.CompletedProcess[str]:
    """Runs argv, capturing output; raises LabError with its stderr when check fails."""
    log.debug("run: %s", " ".join(argv))
    try:
        r = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from e
    if check and r.returncode != 0:
        raise LabError(f"failed ({r.returncode}): {' '.join(argv)}\n{r.stderr.strip()}")
    return r


def in_ns(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def pid_cmdline(pid: int) -> bytes:
    """The process's command line, b"" when it is gone or a zombie."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def process_state(pid: int) -> str | None:
    """The state letter from /proc/PID/stat ("R", "S", "Z", ...), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def owner_alive(pid: int) -> bool:
    # A live PID is not enough (PIDs get reused): the owner must still be a
    # netns_lab process.
    return b"netns_lab" in pid_cmdline(pid)


def ns_pids(ns: str) -> list[int]:
    r = run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []


def kill_pids(pids: list[int], grace: float = KILL_GRACE) -> None:
    """SIGTERM, then SIGKILL whatever is still there after `grace` seconds."""
    pids = [p for p in pids if p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if pid_cmdline(p)]
        if pids:
            time.sleep(0.02)
    for pid in pids:
        log.info("pid %d ignored SIGTERM; killing", pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def namespaces() -> list[str]:
    r = run(["ip", "netns", "list"], check=False)
    # Lines look like "hopw-123 (id: 2)" or just "hopw-123".
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def delete_namespace(ns: str) -> None:
    # Processes keep a namespace (and its veths) alive after `ip netns del`
    # drops its name, so empty it first. Everything in it is ours: we made it.
    kill_pids(ns_pids(ns))
    run(["ip", "netns", "del", ns], check=False)


def sweep_stale() -> None:
    """Removes namespaces and directories of launchers that are gone."""
    for ns in namespaces():
        m = NS_NAME.match(ns)
        if m and not owner_alive(int(m.group(1))):
            log.info("removing stale namespace %s", ns)
            delete_namespace(ns)
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(f"{DIR_PREFIX}*"):
        m = DIR_NAME.match(d.name)
        if m and d.is_dir() and not d.is_symlink() and not owner_alive(int(m.group(1))):
            log.info("removing stale directory %s", d)
            shutil.rmtree(d, ignore_errors=True)
    for d in RUN_ROOT.glob(f"{DIR_PREFIX}*"):
        m = RUN_NAME.match(d.name)
        if m and d.is_dir() and not d.is_symlink() and not owner_alive(int(m.group(1))):
            log.info("removing stale run directory %s", d)
            shutil.rmtree(d, ignore_errors=True)
    if NETNS_ETC.is_dir():
        for d in NETNS_ETC.iterdir():
            m = NS_NAME.match(d.name)
            if m and d.is_dir() and not d.is_symlink() and not owner_alive(int(m.group(1))):
                log.info("removing stale %s", d)
                shutil.rmtree(d, ignore_errors=True)


def keygen(path: Path, comment: str) -> str:
    """Makes an ed25519 keypair (OpenSSH format, private part 0600, no passphrase).

    Returns the public key as "ssh-ed25519 AAAA..." (no comment), the form
    known_hosts and the ready JSON use.
    """
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)  # ssh-keygen would ask before overwriting
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return " ".join(path.with_name(path.name + ".pub").read_text().split()[:2])


def wait_for_banner(
    ns: str, ip: str, *, proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None, timeout: float = READY_TIMEOUT,
) -> None:
    """Waits until sshd at ip:22 answers with an SSH banner, probing from inside ns."""
    deadline = time.monotonic() + timeout
    while True:
        r = subprocess.run(
            in_ns(ns, ["timeout", "3", "bash", "-c", BANNER_PROBE, "probe", ip, "22"]),
            stdin=subprocess.DEVNULL, capture_output=True,
        )
        if r.returncode == 0:
            return
        if proc is not None and proc.poll() is not None:
            raise LabError(f"sshd for {ip} exited with {proc.returncode}{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise LabError(
                f"sshd at {ip}:22 not answering from {ns} after {timeout}s{log_tail(log_path)}"
            )
        time.sleep(0.05)


def log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- {path} (last {len(tail)} lines) ---\n" + "\n".join(tail)


def check_prerequisites() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces, sshd)")
    if not os.access(SSHD, os.X_OK):
        problems.append(f"{SSHD} missing (Debian package openssh-server)")
    for tool in ("ip", "ssh-keygen", "unshare", "setpriv", "sysctl", "bash", "timeout"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} not on PATH")
    try:
        pwd.getpwnam(USER)
        # sshd with UsePAM no refuses a locked account ("!" password) even
        # for public keys; the install script sets it to "*".
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == USER and fields[1].startswith("!"):
                problems.append(f"{USER} is locked (password field starts with '!')")
            if fields[0] == "root" and fields[1].startswith("!"):
                # Not fatal (the install script leaves root alone), but sshd then refuses root
                # before asking the AuthorizedKeysCommand.
                log.warning("root is locked ('!' in /etc/shadow): pushed keys for root will "
                            "not open the lab hosts")
    except KeyError:
        problems.append(f"user {USER} missing")
    except OSError:
        pass  # not root: already reported
    try:
        pwd.getpwnam(AKC_USER)  # runs the AuthorizedKeysCommand
    except KeyError:
        problems.append(f"user {AKC_USER} missing")
    if problems:
        raise LabError(
            "cannot build the lab: " + "; ".join(problems)
            + " (scripts/install-test-deps.sh sets up what is missing)"
        )


# --------------------------------------------------------------------------- sshd


def sshd_config(host: str, hdir: Path, run_dir: Path) -> str:
    listen = {
        "bastion": [BASTION_PUBLIC_IP, BASTION_PRIVATE_IP],
        "web": [WEB_IP],
        "eice_web": [EICE_WEB_IP],
    }[host]
    lines = [
        "# Written by tests/support/netns_lab.py; one per lab host.",
        "Port 22",
        "AddressFamily inet",
        *(f"ListenAddress {a}" for a in listen),
        f"HostKey {hdir / 'ssh_host_ed25519_key'}",
        # No pid file: the launcher knows the PID (it started sshd), and a
        # shared /run/sshd.pid would clash between hosts and with the system's.
        "PidFile none",
        # Key-only logins, as on EC2. UsePAM no keeps PAM (and its session
        # modules) out; it is also why ec2-user must not have a "!" password.
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "HostbasedAuthentication no",
        # root only with a pushed key (the Match block included at the end takes its other
        # ways away), so the command, not AllowUsers, decides that a key pushed for ec2-user
        # does not open root.
        "PermitRootLogin prohibit-password",
        f"AllowUsers {USER} root",
        f"AuthorizedKeysFile {hdir / 'authorized_keys'}",
        f"TrustedUserCAKeys {hdir.parent / 'user_ca.pub'}",
        # Keys pushed with EC2 Instance Connect, as Amazon Linux's ec2-instance-connect
        # package wires them (spec §B.2): after authorized_keys, the command prints the
        # unexpired pushed keys of this host's instance for %u whose fingerprint is %f.
        f"AuthorizedKeysCommand {run_dir / 'eic-keys'} {host} %u %f",
        f"AuthorizedKeysCommandUser {AKC_USER}",
        # The files live under /tmp, which StrictModes rejects (world-writable).
        "StrictModes no",
        # The bastion is a jump host: hop and ssh -J/-W need direct-tcpip. Web allows it
        # too (as Amazon Linux does by default): `hop forward` opens its channels there.
        "AllowTcpForwarding yes",
        # Agent forwarding is allowed on both, so a client that wrongly asks
        # for it on the bastion gets it (and a test can see it) rather than
        # being silently refused.
        "AllowAgentForwarding yes",
        "X11Forwarding no",
        "PermitUserEnvironment no",
        "AcceptEnv LANG LC_* TERM",
        # scp in OpenSSH >= 9.0 speaks SFTP; in-process, so no extra binary.
        "Subsystem sftp internal-sftp",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        # Parallel tests and benchmarks open many connections at once; the
        # default 10:30:100 would randomly drop some before authentication.
        "MaxStartups 200",
        "MaxSessions 50",
        "LoginGraceTime 30",
        "LogLevel VERBOSE",
        # A Match block in an included file ends with that file, so tests that append
        # options to a copy of this config (tests/forward.rs) still append global ones.
        f"Include {hdir / 'match_root.conf'}",
    ]
    return "\n".join(lines) + "\n"


# root's other ways in taken away: with AllowUsers listing root, only pushed keys open it.
MATCH_ROOT = "Match User root\n    AuthorizedKeysFile none\n    TrustedUserCAKeys none\n"


def sshd_argv(ns: str, host: str, config: Path, *, tie_to_parent: bool) -> list[str]:
    argv = ["ip", "netns", "exec", ns]
    if tie_to_parent:
        # If the launcher dies without tearing down (SIGKILL), sshd gets
        # SIGTERM instead of running on. Survives the execs below (none is
        # setuid), and sshd's SIGHUP re-exec.
        argv += ["setpriv", "--pdeathsig", "TERM"]
    # -D: stay in the foreground (our child, our PID); -e: log to stderr,
    # which is the host's log file. sshd re-executes itself (per connection
    # and on SIGHUP), so it must be started by absolute path.
    argv += [
        "unshare", "--uts", "--", "/bin/sh", "-c", SET_HOSTNAME_AND_EXEC, HOSTNAMES[host],
        SSHD, "-D", "-e", "-f", str(config),
    ]
    return argv


def start_sshd(state: dict[str, Any], host: str, *, tie_to_parent: bool) -> subprocess.Popen[bytes]:
    """Starts the host's sshd and waits until it answers. Returns its Popen."""
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)  # sshd refuses to start without it
    h = state[host]
    ns = state[f"{host}_ns"]
    log_path = Path(h["log"])
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            sshd_argv(ns, host, Path(h["sshd_config"]), tie_to_parent=tie_to_parent),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
            # Own session: a terminal's Ctrl-C reaches the launcher only,
            # which then stops everything in order.
            start_new_session=True,
        )
    probe_ns, probe_ip = probe_point(state, host)
    try:
        wait_for_banner(probe_ns, probe_ip, proc=proc, log_path=log_path)
    except BaseException:
        kill_pids([proc.pid])
        proc.poll()
        raise
    return proc


def probe_point(state: dict[str, Any], host: str) -> tuple[str, str]:
    """Where a host's sshd is reached from: the bastion from the client, web from the bastion,
    eice-web (linked to nothing) from inside its own namespace."""
    if host == "bastion":
        return state["client_ns"], state["bastion"]["public_ip"]
    if host == "eice_web":
        return state["eice_web_ns"], state["eice_web"]["ip"]
    return state["bastion_ns"], state["web"]["ip"]


def host_address(state: dict[str, Any], host: str) -> str:
    return state[host]["public_ip"] if host == "bastion" else state[host]["ip"]


def write_known_hosts(state: dict[str, Any]) -> None:
    """DIR/known_hosts: every host's key under its address and, once moto has seeded, under
    its instance id (the name hop checks, as HostKeyAlias in `hop config` stanzas)."""
    lines = [f"{host_address(state, h)} {state[h]['host_key_pub']}" for h in HOSTS]
    instances = state.get("moto", {}).get("instances", {})
    for h in HOSTS:
        inst = instances.get(INSTANCE_KEYS[h])
        if inst and inst.get("id"):
            lines.append(f"{inst['id']} {state[h]['host_key_pub']}")
    atomic_write(Path(state["known_hosts"]), "".join(line + "\n" for line in lines))


def set_instance_ids(state: dict[str, Any], host: str, ids: list[str]) -> None:
    """Which instance ids the host's sshd stands for: its AuthorizedKeysCommand accepts the
    blocks pushed to any of them (e.g. an SSM-only instance whose fake agent dials web)."""
    for i in ids:
        if not re.fullmatch(r"i-[0-9a-f]{8,32}", i):
            raise LabError(f"not an instance id: {i!r}")
    path = Path(state["eic"]["instance_dir"]) / host
    atomic_write(path, "".join(i + "\n" for i in ids))
    path.chmod(0o644)


def push_block(
    state: dict[str, Any], instance_id: str, user: str, key_line: str, *, expires: int,
    block_instance: str | None = None,
) -> None:
    """Appends a key block to the store as moto's SendSSHPublicKey does (bed12.md), by hand:
    #Instance = block_instance (default instance_id), #Timestamp = expires. For self-tests."""
    d = Path(state["eic"]["store"]) / instance_id
    d.mkdir(mode=0o755, exist_ok=True)
    f = d / user
    old = f.read_text() if f.exists() else ""
    block = (
        f"#Timestamp={expires}\n#Instance={block_instance or instance_id}\n"
        f"#Caller=arn:aws:iam::123456789012:user/netns-lab\n#Request=netns-lab-{time.time_ns()}\n"
        f"{key_line}\n\n"
    )
    atomic_write(f, old + block)
    f.chmod(0o644)


def write_hosts_file(state: dict[str, Any]) -> Path | None:
    """/etc/netns/<client ns>/hosts: the seeded endpoints' DnsName and FipsDnsName -> 127.0.0.1
    (the fake EICE listens there). None when moto reported no endpoints."""
    endpoints = state.get("moto", {}).get("eice", {}).get("endpoints", {})
    names: list[str] = []
    for ep in endpoints.values():
        dns = ep.get("dns_name")
        if not dns:
            continue
        fips = ep.get("fips_dns_name") or dns.replace(
            ".ec2-instance-connect-endpoint.", ".fips.ec2-instance-connect-endpoint.", 1)
        names += [n for n in (dns, fips) if n not in names]
    if not names:
        return None
    d = NETNS_ETC / state["client_ns"]
    NETNS_ETC.mkdir(mode=0o755, exist_ok=True)
    d.mkdir(mode=0o755, exist_ok=True)
    path = d / "hosts"
    # The machine's own lines first (localhost and whatever else it has), so nothing but the
    # endpoints' names resolves differently in the client namespace.
    try:
        base = Path("/etc/hosts").read_text()
    except OSError:
        base = "127.0.0.1\tlocalhost\n"
    if base and not base.endswith("\n"):
        base += "\n"
    text = (
        base + "# Added by tests/support/netns_lab.py: the lab's EC2 Instance Connect Endpoints\n"
        + "".join(f"127.0.0.1\t{n}\n" for n in names)
    )
    atomic_write(path, text)
    path.chmod(0o644)
    return path


def load_state(dir_or_state: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(dir_or_state, dict):
        return dir_or_state
    return json.loads((Path(dir_or_state) / "state.json").read_text())


def save_state(state: dict[str, Any]) -> None:
    atomic_write(Path(state["dir"]) / "state.json", json.dumps(state) + "\n")


def sshd_running(state: dict[str, Any], host: str) -> bool:
    # The recorded PID is this host's sshd only if it still runs with the
    # host's config (not gone, not a zombie, not reused).
    pid = state[host]["sshd_pid"]
    return state[host]["sshd_config"].encode() in pid_cmdline(pid)


def stop_sshd(dir_or_state: str | Path | dict[str, Any], host: str) -> dict[str, Any]:
    """Stops the host's listening sshd (SIGTERM, SIGKILL after 2 s), e.g. for "bastion down".

    Established sessions keep running (as on a real host whose sshd is
    stopped). Returns the state.
    """
    state = load_state(dir_or_state)
    if sshd_running(state, host):
        kill_pids([state[host]["sshd_pid"]])
        log.info("stopped sshd on %s (pid %d)", host, state[host]["sshd_pid"])
    return state


def restart_sshd(
    dir_or_state: str | Path | dict[str, Any], host: str, *, new_host_key: bool = False
) -> dict[str, Any]:
    """Restarts the host's sshd, optionally with a freshly generated host key.

    A running sshd gets SIGHUP: it re-executes itself under the same PID and
    reloads config and keys. A stopped one is started anew, detached from the
    caller (the lab's teardown still removes it). Returns once sshd answers,
    with the updated state (also saved to DIR/state.json, and DIR/known_hosts
    rewritten with the current keys).
    """
    state = load_state(dir_or_state)
    h = state[host]
    if new_host_key:
        # Generate beside the old key, then rename over it: sshd re-reading
        # during the switch sees either the old or the new key, never none.
        key = Path(h["host_key"])
        tmp = key.with_name("new_" + key.name)
        h["host_key_pub"] = keygen(tmp, f"{HOSTNAMES[host]} host key")
        tmp.with_name(tmp.name + ".pub").replace(key.with_name(key.name + ".pub"))
        tmp.replace(key)
        write_known_hosts(state)
    log_path = Path(h["log"])
    if sshd_running(state, host):
        offset = log_path.stat().st_size
        os.kill(h["sshd_pid"], signal.SIGHUP)
        # The banner probe alone could still reach the old process before it
        # handled the signal; the re-executed sshd logs "Server listening"
        # once its sockets are open again.
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            with open(log_path, "rb") as f:
                f.seek(offset)
                if b"Server listening on" in f.read():
                    break
            if time.monotonic() > deadline or not sshd_running(state, host):
                raise LabError(f"sshd on {host} did not come back after SIGHUP{log_tail(log_path)}")
            time.sleep(0.02)
        probe_ns, probe_ip = probe_point(state, host)
        wait_for_banner(probe_ns, probe_ip, log_path=log_path)
        log.info("reloaded sshd on %s (pid %d)", host, h["sshd_pid"])
    else:
        proc = start_sshd(state, host, tie_to_parent=False)
        h["sshd_pid"] = proc.pid
        log.info("started sshd on %s (pid %d)", host, proc.pid)
    save_state(state)
    return state


# --------------------------------------------------------------------------- the lab


class Lab:
    """Creates the namespaces, keys and sshd servers; teardown() undoes all of it.

    Everything is recorded before (or as) it is made, so teardown() after a
    failure half way removes exactly what exists. teardown() is idempotent.
    """

    def __init__(self, tag: int | None = None):
        tag = os.getpid() if tag is None else tag
        self.client_ns = f"hopc-{tag}"
        self.bastion_ns = f"hopb-{tag}"
        self.web_ns = f"hopw-{tag}"
        self.eice_web_ns = f"hope-{tag}"
        self.run_dir = RUN_ROOT / f"{DIR_PREFIX}{tag}"
        self.run_dir_made = False
        self.hosts_file: Path | None = None
        self.tag = tag
        self.created_ns: list[str] = []
        self.sshd: dict[str, subprocess.Popen[bytes]] = {}
        self.moto: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None
        self.state: dict[str, Any] = {}
        self._torn_down = False

    # -- setup

    def setup(
        self, *, with_moto: bool = False, moto_python: str = sys.executable,
        stop: threading.Event | None = None,
    ) -> dict[str, Any]:
        check_prerequisites()
        sweep_stale()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{self.tag}-"))
        # ec2-user must traverse to its authorized_keys: sshd reads that file
        # with the user's privileges. Private keys stay 0600 (root's).
        self.dir.chmod(0o755)
        self._make_run_dir()

        for ns in (self.client_ns, self.bastion_ns, self.web_ns, self.eice_web_ns):
            if ns in namespaces():
                raise LabError(f"namespace {ns} already exists (another lab with this PID?)")
            self.created_ns.append(ns)  # before creating: a half-made one is removed too
            run(["ip", "netns", "add", ns])
            # lo up; IPv4 only; no forwarding, whatever the root namespace has
            # (new namespaces copy its IPv4 settings, e.g. Docker's ip_forward=1).
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(in_ns(ns, [
                "sysctl", "-q", "-w",
                "net.ipv4.ip_forward=0",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]))

        if with_moto:
            # Started first: it takes seconds, the rest well under one.
            self._start_moto(moto_python)

        self._wire()
        state = self._make_files()
        self.state = state

        for host in HOSTS:
            self.sshd[host] = start_sshd(state, host, tie_to_parent=True)
            state[host]["sshd_pid"] = self.sshd[host].pid

        if with_moto:
            state["moto"] = self._read_moto(stop)
            self._after_moto(state)
        save_state(state)
        return state

    def _make_run_dir(self) -> None:
        """/run/hop-netns-TAG: the AuthorizedKeysCommand, the key store, the instance ids."""
        d = self.run_dir
        if d.exists():
            raise LabError(f"{d} already exists (another lab with this PID?)")
        self.run_dir_made = True  # before creating: a half-made one is removed too
        d.mkdir(mode=0o755)
        d.chmod(0o755)  # whatever the umask
        for sub in ("eic", "instance"):
            (d / sub).mkdir(mode=0o755)
            (d / sub).chmod(0o755)
        cmd = d / "eic-keys"
        shutil.copyfile(AKC_SOURCE, cmd)
        cmd.chmod(0o755)
        akc_log = d / "akc.log"
        akc_log.touch(mode=0o644)
        nobody = pwd.getpwnam(AKC_USER)
        os.chown(akc_log, nobody.pw_uid, nobody.pw_gid)

    def _after_moto(self, state: dict[str, Any]) -> None:
        """What needs the seeded ids and names: each sshd's instance id, known_hosts by
        instance id, the client namespace's hosts file for the endpoints."""
        instances = state["moto"].get("instances", {})
        for host in HOSTS:
            inst = instances.get(INSTANCE_KEYS[host])
            if inst and inst.get("id"):
                set_instance_ids(state, host, [inst["id"]])
            else:
                log.info("moto has no %s: its sshd accepts no pushed key", INSTANCE_KEYS[host])
        write_known_hosts(state)
        self.hosts_file = NETNS_ETC / self.client_ns / "hosts"  # before writing: teardown
        written = write_hosts_file(state)
        if written is None:
            log.info("moto reported no EC2 Instance Connect Endpoints: no hosts file")
        else:
            state["hosts_file"] = str(written)

    def _wire(self) -> None:
        c, b, w, e = self.client_ns, self.bastion_ns, self.web_ns, self.eice_web_ns
        # Each veth is created with both ends already in their namespaces:
        # nothing ever appears in the root namespace.
        run(["ip", "-n", c, "link", "add", "to-bastion", "type", "veth",
             "peer", "name", "to-client", "netns", b])
        run(["ip", "-n", b, "link", "add", "to-web", "type", "veth",
             "peer", "name", "to-bastion", "netns", w])
        for ns, dev, addr in (
            (c, "to-bastion", f"{CLIENT_IP}/24"),
            (b, "to-client", f"{BASTION_PUBLIC_IP}/24"),
            (b, "to-web", f"{BASTION_PRIVATE_IP}/24"),
            (w, "to-bastion", f"{WEB_IP}/24"),
        ):
            run(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        # The "VPC router" between 10.0.0.0/24 and 10.0.1.0/24: on-link routes
        # across the bastion-web veth. No default routes anywhere.
        run(["ip", "-n", b, "route", "add", WEB_SUBNET, "dev", "to-web", "scope", "link"])
        run(["ip", "-n", w, "route", "add", BASTION_SUBNET, "dev", "to-bastion", "scope", "link"])
        # sample-eice-web: its address on an interface linked to nothing outside. This kernel
        # has no `dummy` driver, so it is a veth whose peer stays in the same namespace with
        # no address (an empty "subnet": other 10.1.1.x get no ARP answer). The connected /24
        # is its only route; only the fake EICE's setns reaches it.
        run(["ip", "-n", e, "link", "add", "eth0", "type", "veth", "peer", "name", "subnet"])
        run(["ip", "-n", e, "addr", "add", f"{EICE_WEB_IP}/24", "dev", "eth0"])
        run(["ip", "-n", e, "link", "set", "subnet", "up"])
        run(["ip", "-n", e, "link", "set", "eth0", "up"])

    def _make_files(self) -> dict[str, Any]:
        assert self.dir is not None
        d = self.dir
        keys_dir = d / "keys"
        keys_dir.mkdir(mode=0o700)
        keys = {}
        user_pub = {}
        for name in USER_KEYS:
            path = keys_dir / f"{name}.pem"
            user_pub[name] = keygen(path, f"{name} user key (hop lab)")
            keys[name] = str(path)
        # A user CA both sshd trust (TrustedUserCAKeys), so tests can log in with an OpenSSH
        # certificate for a key no authorized_keys lists. Its public half sits where sshd can
        # read it (the lab directory is 0755), the private half with the other keys.
        ca = keys_dir / "user_ca"
        keygen(ca, "hop lab user CA")
        shutil.copyfile(ca.with_name("user_ca.pub"), d / "user_ca.pub")
        (d / "user_ca.pub").chmod(0o644)
        keys["user_ca"] = str(ca)

        state: dict[str, Any] = {
            "client_ns": self.client_ns,
            "bastion_ns": self.bastion_ns,
            "web_ns": self.web_ns,
            "eice_web_ns": self.eice_web_ns,
            "dir": str(d),
            "user": USER,
            "known_hosts": str(d / "known_hosts"),
            "launcher_pid": os.getpid(),
            "run_dir": str(self.run_dir),
            "eic": {
                "store": str(self.run_dir / "eic"),
                "akc_log": str(self.run_dir / "akc.log"),
                "command": str(self.run_dir / "eic-keys"),
                "instance_dir": str(self.run_dir / "instance"),
            },
        }
        for host in HOSTS:
            hdir = d / host
            hdir.mkdir(mode=0o755)
            key = hdir / "ssh_host_ed25519_key"
            entry: dict[str, Any] = {
                "bastion": {"public_ip": BASTION_PUBLIC_IP, "private_ip": BASTION_PRIVATE_IP},
                "web": {"ip": WEB_IP},
                "eice_web": {"ns": self.eice_web_ns, "ip": EICE_WEB_IP},
            }[host]
            entry.update({
                "hostname": HOSTNAMES[host],
                "host_key_pub": keygen(key, f"{HOSTNAMES[host]} host key"),
                "host_key": str(key),
                "sshd_config": str(hdir / "sshd_config"),
                "authorized_keys": str(hdir / "authorized_keys"),
                "sshd_pid": None,
                "log": str(hdir / "sshd.log"),
            })
            (hdir / "sshd_config").write_text(sshd_config(host, hdir, self.run_dir))
            (hdir / "match_root.conf").write_text(MATCH_ROOT)
            auth = hdir / "authorized_keys"
            # sample-eice-web was launched without a key pair: only pushed keys open it.
            auth.write_text(user_pub[HOSTNAMES[host]] + "\n" if HOSTNAMES[host] in user_pub else "")
            auth.chmod(0o644)
            state[host] = entry
        state["keys"] = keys
        write_known_hosts(state)
        return state

    def _start_moto(self, python: str) -> None:
        # In the client namespace, so hop run there reaches it on 127.0.0.1.
        # We hold its stdin: closing it (teardown, or our death) stops it.
        # The EC2 Instance Connect side (bed12.md): pushed keys go to the run dir's store, the
        # fake EICE dials each private IP inside its host's namespace, its CA lives with the lab.
        assert self.dir is not None
        eice_dir = self.dir / "eice"
        eice_dir.mkdir(mode=0o755, exist_ok=True)
        netns_map = ",".join([
            f"{EICE_WEB_IP}={self.eice_web_ns}", f"{WEB_IP}={self.web_ns}",
            f"{BASTION_PRIVATE_IP}={self.bastion_ns}",
        ])
        self.moto = subprocess.Popen(
            in_ns(self.client_ns, [
                python, str(HERE / "moto_lab.py"), "--port", "0", "--seed",
                "--eic-store", str(self.run_dir / "eic"), "--eice-netns", netns_map,
                "--eice-dir", str(eice_dir),
                # Consoles print the hosts' first-boot keys: their public key files now.
                "--host-keys", ",".join(
                    f"{h}={self.dir / h / 'ssh_host_ed25519_key.pub'}" for h in HOSTS),
            ]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )

    def _read_moto(self, stop: threading.Event | None) -> dict[str, Any]:
        assert self.moto is not None and self.moto.stdout is not None
        fd = self.moto.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + MOTO_TIMEOUT
        while b"\n" not in buf:
            if stop is not None and stop.is_set():
                raise Stop("stdin closed")
            if time.monotonic() > deadline:
                raise LabError(f"moto_lab.py not ready after {MOTO_TIMEOUT}s")
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise LabError(f"moto_lab.py exited before ready ({self.moto.wait()})")
                buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])

    # -- teardown

    def poll_children(self) -> None:
        """Reaps children that exited (e.g. an sshd stopped through `stop`)."""
        for host, proc in self.sshd.items():
            if proc.returncode is None and proc.poll() is not None:
                log.info("sshd on %s (pid %d) exited with %d", host, proc.pid, proc.returncode)

    def teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        # Signal everything first, then wait once: the waits overlap.
        if self.moto is not None and self.moto.stdin is not None:
            try:
                self.moto.stdin.close()
            except OSError:
                pass
            if "moto" not in self.state and self.moto.poll() is None:
                # Not ready yet: moto_lab notices stdin EOF only after seeding
                # (seconds); SIGTERM abandons startup at once.
                self.moto.send_signal(signal.SIGTERM)
        for proc in self.sshd.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        for proc in self.sshd.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.info("sshd pid %d ignored SIGTERM; killing", proc.pid)
                proc.kill()
                proc.wait()
        if self.moto is not None:
            try:
                self.moto.wait(10)
            except subprocess.TimeoutExpired:
                log.info("moto pid %d did not stop on stdin EOF; killing", self.moto.pid)
                self.moto.kill()
                self.moto.wait()
            if self.moto.stdout is not None:
                self.moto.stdout.close()
        # Then whatever else is in our namespaces (SSH sessions, an sshd
        # started by `restart`), and the namespaces themselves.
        for ns in reversed(self.created_ns):
            delete_namespace(ns)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.run_dir_made and self.run_dir.is_dir() and not self.run_dir.is_symlink():
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.hosts_file is not None:
            shutil.rmtree(self.hosts_file.parent, ignore_errors=True)


# --------------------------------------------------------------------------- self-test


def _ssh_base(state: dict[str, Any], known_hosts: str) -> list[str]:
    # Nothing from root's own ssh setup: no config, agent or known hosts.
    return [
        "ssh", "-F", "/dev/null",
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
    ]


def _ssh_bastion(
    state: dict[str, Any], key: str, cmd: list[str], known_hosts: str | None = None
) -> list[str]:
    kh = known_hosts or state["known_hosts"]
    return in_ns(state["client_ns"], [
        *_ssh_base(state, kh), "-i", state["keys"][key],
        f"{USER}@{state['bastion']['public_ip']}", *cmd,
    ])


def _ssh_web(
    state: dict[str, Any], bastion_key: str, web_key: str, cmd: list[str],
    known_hosts: str | None = None,
) -> list[str]:
    kh = known_hosts or state["known_hosts"]
    # ProxyCommand rather than -J: -J cannot give the jump its own key
    # without a config file. ssh splits ProxyCommand itself; the paths have
    # no spaces.
    proxy = " ".join([
        *_ssh_base(state, kh), "-i", state["keys"][bastion_key],
        "-W", "%h:%p", f"{USER}@{state['bastion']['public_ip']}",
    ])
    return in_ns(state["client_ns"], [
        *_ssh_base(state, kh), "-o", f"ProxyCommand={proxy}", "-i", state["keys"][web_key],
        f"{USER}@{state['web']['ip']}", *cmd,
    ])


def _ssh_pushed(
    state: dict[str, Any], key: Path, cmd: list[str], *, user: str = USER, host: str = "web"
) -> list[str]:
    """ssh with `key` alone to web (through the bastion, which takes sample-bastion.pem) or to
    eice-web (from inside its own namespace: nothing else reaches it)."""
    kh = state["known_hosts"]
    if host == "eice_web":
        return in_ns(state["eice_web_ns"], [
            *_ssh_base(state, kh), "-i", str(key), f"{user}@{state['eice_web']['ip']}", *cmd,
        ])
    proxy = " ".join([
        *_ssh_base(state, kh), "-i", state["keys"]["sample-bastion"],
        "-W", "%h:%p", f"{USER}@{state['bastion']['public_ip']}",
    ])
    return in_ns(state["client_ns"], [
        *_ssh_base(state, kh), "-o", f"ProxyCommand={proxy}", "-i", str(key),
        f"{user}@{state['web']['ip']}", *cmd,
    ])


def _root_ns_snapshot() -> str:
    return "\n".join(
        run(argv).stdout for argv in (
            ["ip", "-o", "addr"], ["ip", "route"], ["ip", "-6", "route"], ["ip", "-o", "link"],
        )
    )


def _self_test_eic(state: dict[str, Any], check: Any, sh: Any) -> None:
    """Pushed keys: blocks written by hand as moto's SendSSHPublicKey writes them."""
    inst = state.get("moto", {}).get("instances", {})
    ids = {h: inst.get(INSTANCE_KEYS[h], {}).get("id") for h in HOSTS}
    for n, h in enumerate(HOSTS, start=1):
        if not ids[h]:  # no moto: stand-in ids
            ids[h] = f"i-{n:017x}"
            set_instance_ids(state, h, [ids[h]])
    d = Path(state["dir"]) / "selftest"
    d.mkdir(mode=0o700, exist_ok=True)
    keys = {}
    for name in ("pushed", "expired", "other", "root"):
        keys[name] = d / name
        keygen(keys[name], f"self-test {name}")

    def line(name: str) -> str:
        return " ".join(keys[name].with_name(f"{name}.pub").read_text().split()[:2])

    now = int(time.time())
    push_block(state, ids["web"], USER, line("pushed"), expires=now + 300)
    push_block(state, ids["eice_web"], USER, line("pushed"), expires=now + 300)
    push_block(state, ids["web"], USER, line("expired"), expires=now - 1)
    push_block(state, ids["web"], USER, line("other"), expires=now + 300,
               block_instance=ids["bastion"])
    push_block(state, ids["web"], "root", line("root"), expires=now + 300)
    akc_log = Path(state["eic"]["akc_log"])
    log_start = akc_log.stat().st_size

    r = sh(_ssh_pushed(state, keys["pushed"], ["hostname"]))
    check("pushed block opens web (through the bastion)", r.stdout.strip() == "sample-web",
          f"rc={r.returncode} {r.stderr.strip()}")
    for name, what in (("expired", "expired block"), ("other", "block for another instance")):
        r = sh(_ssh_pushed(state, keys[name], ["true"]))
        check(f"{what} refused by web", r.returncode == 255 and "Permission denied" in r.stderr,
              f"rc={r.returncode} {r.stderr.strip()}")
    r = sh(_ssh_pushed(state, keys["pushed"], ["true"], user="root"))
    check("block for ec2-user does not open root", r.returncode == 255
          and "Permission denied" in r.stderr, f"rc={r.returncode} {r.stderr.strip()}")
    r = sh(_ssh_pushed(state, keys["root"], ["id", "-un"], user="root"))
    check("block for root opens root (so the refusal above is the command's)",
          r.stdout.strip() == "root", f"rc={r.returncode} {r.stderr.strip()}")
    r = sh(_ssh_pushed(state, Path(state["keys"]["sample-web"]), ["true"], user="root"))
    check("sample-web.pem does not open root", r.returncode == 255, f"rc={r.returncode}")
    r = sh(_ssh_pushed(state, keys["pushed"], ["hostname"], host="eice_web"))
    check("pushed block opens eice-web (from its own namespace)",
          r.stdout.strip() == "sample-eice-web", f"rc={r.returncode} {r.stderr.strip()}")
    r = sh(_ssh_pushed(state, Path(state["keys"]["sample-web"]), ["true"], host="eice_web"))
    check("sample-web.pem refused by eice-web (no key pair)", r.returncode == 255,
          f"rc={r.returncode}")
    with open(akc_log) as f:
        f.seek(log_start)
        calls = f.read().splitlines()
    check("the command logged its calls (owned by nobody)",
          any(" host=web user=ec2-user " in c and " printed=1 " in c for c in calls)
          and any(" host=web user=root " in c and " printed=0 " in c for c in calls)
          and any(" expired=1 " in c for c in calls)
          and akc_log.stat().st_uid == pwd.getpwnam(AKC_USER).pw_uid,
          f"{len(calls)} lines")


def self_test(with_moto: bool, moto_python: str) -> int:
    results: list[tuple[bool, str, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append((ok, name, detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name}", flush=True)
        if detail:
            print(f"          {detail}", flush=True)

    def sh(argv: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        return run(argv, check=False, timeout=timeout)

    root_before = _root_ns_snapshot()
    lab = Lab()
    pids: list[int] = []
    state: dict[str, Any] = {}
    me = [sys.executable, str(Path(__file__).resolve())]
    print(f"netns_lab self-test (pid {os.getpid()}{', with moto' if with_moto else ''})",
          flush=True)
    t0 = time.monotonic()
    setup_s = teardown_s = float("nan")
    try:
        state = lab.setup(with_moto=with_moto, moto_python=moto_python)
        setup_s = time.monotonic() - t0
        pids += [state[h]["sshd_pid"] for h in HOSTS]
        if lab.moto is not None:
            pids.append(lab.moto.pid)
        print(f"  setup: {setup_s:.2f}s, dir {state['dir']}", flush=True)

        # Routing: nothing but the links; the bastion does not forward.
        for ns in (state["client_ns"], state["bastion_ns"], state["web_ns"], state["eice_web_ns"]):
            routes = sh(["ip", "-n", ns, "-4", "route"]).stdout.strip().replace("\n", "; ")
            check(f"{ns}: no default route", "default" not in routes, routes)
        fwd = sh(in_ns(state["bastion_ns"], ["sysctl", "-n", "net.ipv4.ip_forward"])).stdout.strip()
        check("bastion: ip_forward=0", fwd == "0", f"ip_forward={fwd}")

        # 1. Bastion with its key and a known_hosts built from the reported keys.
        r = sh(_ssh_bastion(state, "sample-bastion", ["hostname"]))
        check("ssh bastion (sample-bastion.pem, strict known_hosts) -> hostname",
              r.returncode == 0 and r.stdout.strip() == "sample-bastion",
              r.stdout.strip() if r.returncode == 0 else f"rc={r.returncode} {r.stderr.strip()}")

        # 2. The jump; the far side proves it is the web namespace.
        r = sh(_ssh_web(state, "sample-bastion", "sample-web", ["hostname; ip -4 -o addr show"]))
        out = r.stdout
        check("ssh web via bastion (ProxyCommand ssh -W) -> web namespace",
              r.returncode == 0 and out.startswith("sample-web\n") and f"inet {WEB_IP}/24" in out
              and BASTION_PUBLIC_IP not in out,
              f"rc={r.returncode} out={out.strip()!r} {r.stderr.strip()}"
              if r.returncode else out.split("\n")[0] + ", " + WEB_IP)
        blog = Path(state["web"]["log"]).read_text()
        check("web sees the hop from the bastion's private address",
              f"Accepted publickey for {USER} from {BASTION_PRIVATE_IP}" in blog)

        # 3. No direct paths.
        for ns, ip, what in (
            (state["client_ns"], WEB_IP, "client -> web 10.0.1.10:22"),
            (state["web_ns"], CLIENT_IP, "web -> client 203.0.113.1:22"),
            (state["web_ns"], BASTION_PUBLIC_IP, "web -> bastion public 203.0.113.10:22"),
            (state["client_ns"], EICE_WEB_IP, "client -> eice-web 10.1.1.10:22"),
            (state["bastion_ns"], EICE_WEB_IP, "bastion -> eice-web 10.1.1.10:22"),
            (state["web_ns"], EICE_WEB_IP, "web -> eice-web 10.1.1.10:22"),
            (state["eice_web_ns"], WEB_IP, "eice-web -> web 10.0.1.10:22"),
        ):
            r = sh(in_ns(ns, ["timeout", "5", "bash", "-c", CONNECT_PROBE, "probe", ip, "22"]))
            err = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
            check(f"{what} fails", r.returncode != 0 and "Network is unreachable" in r.stderr, err)

        # 4. Keys are per hop.
        r = sh(_ssh_bastion(state, "sample-web", ["true"]))
        check("sample-web.pem refused by the bastion",
              r.returncode == 255 and "Permission denied" in r.stderr, r.stderr.strip())
        r = sh(_ssh_web(state, "sample-bastion", "sample-bastion", ["true"]))
        check("sample-bastion.pem refused by web",
              r.returncode == 255 and "Permission denied" in r.stderr, r.stderr.strip())

        # 4b. Keys pushed with EC2 Instance Connect, decided by the AuthorizedKeysCommand.
        _self_test_eic(state, check, sh)

        # 5. Host key change on web through the CLI: the old known_hosts now
        #    fails, the rewritten one works; same sshd PID (SIGHUP reload).
        old_kh = Path(state["dir"]) / "known_hosts.before"
        shutil.copy(state["known_hosts"], old_kh)
        t = time.monotonic()
        r = sh([*me, "restart-web", "--dir", state["dir"], "--new-host-key"])
        restart_s = time.monotonic() - t
        new = json.loads(r.stdout) if r.returncode == 0 else {}
        check("restart-web --new-host-key",
              r.returncode == 0 and new.get("host_key_pub") != state["web"]["host_key_pub"]
              and new.get("sshd_pid") == state["web"]["sshd_pid"],
              f"{restart_s:.2f}s, same pid" if r.returncode == 0 else r.stderr.strip())
        r = sh(_ssh_web(state, "sample-bastion", "sample-web", ["true"], known_hosts=str(old_kh)))
        check("old known_hosts: web's changed key is rejected",
              r.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr,
              f"rc={r.returncode}")
        r = sh(_ssh_web(state, "sample-bastion", "sample-web", ["hostname"]))
        check("updated known_hosts: web accepted", r.returncode == 0, r.stderr.strip())

        # 6. Bastion down, then back (a fresh, detached sshd).
        r = sh([*me, "stop", "--dir", state["dir"], "bastion"])
        lab.poll_children()
        r = sh(_ssh_bastion(state, "sample-bastion", ["true"]))
        check("bastion stopped: ssh fails with 255 (connection refused)",
              r.returncode == 255 and "Connection refused" in r.stderr, r.stderr.strip())
        r = sh([*me, "restart", "--dir", state["dir"], "bastion"])
        new = json.loads(r.stdout) if r.returncode == 0 else {}
        if new.get("sshd_pid"):
            pids.append(new["sshd_pid"])
        r2 = sh(_ssh_bastion(state, "sample-bastion", ["hostname"]))
        check("bastion restarted: new sshd, login works",
              r.returncode == 0 and new.get("sshd_pid") != state["bastion"]["sshd_pid"]
              and r2.stdout.strip() == "sample-bastion",
              f"pid {new.get('sshd_pid')}" if r.returncode == 0 else r.stderr.strip())

        # 6b. eice-web's sshd restarts with a new key like the others.
        r = sh([*me, "restart", "--dir", state["dir"], "eice_web", "--new-host-key"])
        new = json.loads(r.stdout) if r.returncode == 0 else {}
        kh = Path(state["known_hosts"]).read_text()
        check("restart eice_web --new-host-key: same pid, known_hosts rewritten",
              r.returncode == 0 and new.get("sshd_pid") == state["eice_web"]["sshd_pid"]
              and f"{EICE_WEB_IP} {new.get('host_key_pub')}\n" in kh,
              r.stderr.strip() if r.returncode else f"pid {new.get('sshd_pid')}")
        r = sh(_ssh_pushed(state, Path(state["dir"]) / "selftest" / "pushed", ["hostname"],
                           host="eice_web"))
        check("eice-web after restart: a pushed key still opens it", r.stdout.strip() ==
              "sample-eice-web", f"rc={r.returncode} {r.stderr.strip()}")

        # 7. moto in the client namespace.
        if with_moto:
            m = state["moto"]
            port = str(m["port"])
            probe = (
                'exec 3<>"/dev/tcp/127.0.0.1/$1"'
                ' && printf "GET /moto-api/ HTTP/1.0\\r\\n\\r\\n" >&3'
                ' && IFS= read -r -t 5 line <&3 && echo "$line"'
            )
            r = sh(in_ns(state["client_ns"], ["bash", "-c", probe, "probe", port]))
            check("moto answers on 127.0.0.1 inside the client namespace",
                  r.returncode == 0 and r.stdout.startswith("HTTP/1."),
                  r.stdout.strip() or r.stderr.strip())
            inst = m["instances"]
            check("moto's sample-bastion public IP is the bastion namespace's",
                  inst["sample-bastion"]["public_ip"] == BASTION_PUBLIC_IP,
                  str(inst["sample-bastion"].get("public_ip")))
            check("moto's sample-bastion private IP is the bastion's private leg",
                  inst["sample-bastion"].get("private_ip") == BASTION_PRIVATE_IP,
                  str(inst["sample-bastion"].get("private_ip")))
            check("moto's sample-web private IP is web's",
                  inst["sample-web"]["private_ip"] == WEB_IP, str(inst["sample-web"]["private_ip"]))
            eice_inst = inst.get("sample-eice-web", {})
            check("moto's sample-eice-web private IP is eice-web's",
                  eice_inst.get("private_ip") == EICE_WEB_IP, str(eice_inst.get("private_ip")))
            kh = Path(state["known_hosts"]).read_text()
            now = load_state(state["dir"])  # the restarts above changed host keys
            check("known_hosts lists the hosts under their instance ids",
                  all(f"{inst[INSTANCE_KEYS[h]]['id']} {now[h]['host_key_pub']}\n" in kh
                      for h in HOSTS if INSTANCE_KEYS[h] in inst)
                  and all(INSTANCE_KEYS[h] in inst for h in HOSTS), kh.replace("\n", "; ")[:300])
            eps = m.get("eice", {}).get("endpoints", {})
            check("moto reports the seeded endpoints and its CA",
                  len(eps) >= 2 and Path(m.get("eice", {}).get("ca", "/nonexistent")).is_file(),
                  json.dumps(m.get("eice"))[:300])
            hosts = Path(state.get("hosts_file", "/nonexistent"))
            for ep in eps.values():
                for name in {ep.get("dns_name"), ep.get("fips_dns_name") or ""} - {""}:
                    r = sh(in_ns(state["client_ns"], ["getent", "hosts", name]))
                    check(f"client namespace resolves {name}",
                          r.returncode == 0 and r.stdout.split()[:1] == ["127.0.0.1"],
                          r.stdout.strip() or f"rc={r.returncode}")
            check("hosts file has the FIPS names too",
                  hosts.is_file() and ".fips.ec2-instance-connect-endpoint." in hosts.read_text())
    except LabError as e:
        check("setup and checks ran", False, str(e))
    finally:
        t1 = time.monotonic()
        lab.teardown()
        teardown_s = time.monotonic() - t1

    # 8. Nothing left behind.
    mine = (lab.client_ns, lab.bastion_ns, lab.web_ns, lab.eice_web_ns)
    left = [ns for ns in namespaces() if ns in mine]
    check("namespaces removed", not left, " ".join(left) or " ".join(mine))
    # A zombie is dead: an sshd started by `restart` was orphaned when that
    # command exited, and its reaper (init) may not have collected it yet.
    alive = [p for p in pids if process_state(p) not in (None, "Z")]
    check("sshd/moto processes gone", not alive,
          f"alive: {alive}" if alive else f"checked pids {pids}")
    check("directory removed", not state or not Path(state["dir"]).exists())
    check("run directory removed", not lab.run_dir.exists(), str(lab.run_dir))
    check("/etc/netns entry removed", not (NETNS_ETC / lab.client_ns).exists(),
          str(NETNS_ETC / lab.client_ns))
    check("root namespace addresses/routes/links unchanged", _root_ns_snapshot() == root_before)

    failed = [name for ok, name, _ in results if not ok]
    print(f"  timings: setup {setup_s:.2f}s, teardown {teardown_s:.2f}s")
    passed = len(results) - len(failed)
    print(f"{'FAILED' if failed else 'OK'}: {passed}/{len(results)} checks passed")
    return 1 if failed else 0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moto", action="store_true",
                        help="also run moto_lab.py --seed in the client namespace")
    parser.add_argument("--moto-python", default=sys.executable,
                        help="python with moto installed (default: this one)")
    parser.add_argument("--state-file", type=Path, help="also write the ready JSON here")
    parser.add_argument("--foreground", action="store_true",
                        help="ignore stdin; run until signalled")
    parser.add_argument("--self-test", action="store_true",
                        help="set up, prove the topology with OpenSSH, tear down; exit 0/1")
    parser.add_argument("--verbose", action="store_true", help="log every command to stderr")
    sub = parser.add_subparsers(dest="command")
    for name, help_text in (
        ("restart", "restart a host's sshd (SIGHUP, or start if stopped)"),
        ("restart-web", "same as: restart web"),
        ("stop", "stop a host's sshd"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dir", required=True, type=Path, help="the lab's directory (JSON 'dir')")
        if name != "restart-web":
            p.add_argument("host", choices=HOSTS)
        if name != "stop":
            p.add_argument("--new-host-key", action="store_true",
                           help="generate a new host key first (rewrites DIR/known_hosts)")
    args = parser.parse_args(argv)

    ready_out = sys.stdout
    sys.stdout = sys.stderr  # stdout carries only the ready line
    logging.basicConfig(
        stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
        format="netns_lab: %(message)s",
    )

    if args.command:
        host = "web" if args.command == "restart-web" else args.host
        try:
            if args.command == "stop":
                state = stop_sshd(args.dir, host)
            else:
                state = restart_sshd(args.dir, host, new_host_key=args.new_host_key)
        except (LabError, OSError) as e:
            log.error("%s", e)
            return 1
        ready_out.write(json.dumps(state[host]) + "\n")
        ready_out.flush()
        return 0

    if args.self_test:
        sys.stdout = ready_out  # the report is the output
        return self_test(args.moto, args.moto_python)

    stop, ready = stop_events(args.foreground)

    started = time.monotonic()
    lab = Lab()
    line = ""
    state_written = False
    try:
        state = lab.setup(with_moto=args.moto, moto_python=args.moto_python, stop=stop)
        if stop.is_set():
            log.info("stdin closed before ready")
            return 1
        line = json.dumps(state)
        if args.state_file:
            atomic_write(args.state_file, line + "\n")
            state_written = True
        try:
            ready_out.write(line + "\n")
            ready_out.flush()
        except BrokenPipeError:
            log.info("nobody is reading stdout any more")
            return 1
        ready.set()
        log.info("ready after %.2fs: %s %s %s, dir %s", time.monotonic() - started,
                 lab.client_ns, lab.bastion_ns, lab.web_ns, lab.dir)
        while not stop.wait(0.2):
            lab.poll_children()
        log.info("stopping")
        return 0
    except Stop as e:
        log.info("interrupted by %s before ready", e)
        return 1
    except LabError as e:
        log.error("%s", e)
        return 1
    finally:
        # Signals from here on must not interrupt the teardown itself.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        t = time.monotonic()
        lab.teardown()
        if state_written:
            remove_state(args.state_file, line)
        log.info("torn down in %.2fs", time.monotonic() - t)


if __name__ == "__main__":
    sys.exit(main())
