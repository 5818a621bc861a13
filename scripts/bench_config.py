"""OpenSSH through hop's generated config: connection sharing on and off. See bench-config.sh."""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_lab

repo = Path(__file__).resolve().parent.parent
hop, runs = sys.argv[1], int(sys.argv[2])
lab = None
relay_procs = []
try:
    lab = bench_lab.start()
    st, home, ssh_dir, known, ids, env = lab.state, lab.home, lab.ssh_dir, lab.known, lab.ids, lab.env
    ns = st["client_ns"]
    # Both sshd are reached through delaying relays on port 2222 (scripts/delay_relay.py): the
    # generated stanzas carry `Port 2222` from these overrides.
    overrides = "[hosts.sample-bastion]\nport = 2222\n[hosts.sample-web]\nport = 2222\n"
    (home / "shared.toml").write_text(overrides)
    (home / "plain.toml").write_text("reuse = false\n" + overrides)
    # What a user's ~/.ssh/config has above hop's Include: the known hosts, strict checking, no
    # prompts. (ssh reads ~ from passwd, not $HOME: absolute paths.)
    globals_ = f"UserKnownHostsFile {known}\nStrictHostKeyChecking yes\nBatchMode yes\n"

    def run(argv, extra_env=None, check=True):
        p = subprocess.run(["ip", "netns", "exec", ns, *argv], env={**env, **(extra_env or {})},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check:
            assert p.returncode == 0, (argv, p.stdout, p.stderr)
        return p

    configs = {}
    for name in ("shared", "plain"):
        user = home / name / "config"
        user.parent.mkdir(mode=0o700)
        user.write_text(globals_)
        user.chmod(0o600)
        run([hop, "config", "--write", "--file", str(user)], {"HOP_CONFIG": str(home / f"{name}.toml")})
        configs[name] = user
    text = (home / "shared/hop/config").read_text()
    assert "ControlMaster auto" in text, text
    assert "ControlMaster" not in (home / "plain/hop/config").read_text()
    # hop proxy as the web host's ProxyCommand (what `hop config` writes for SSM-only hosts): each
    # ssh pays hop's bastion connection and then its own web handshake.
    proxied = home / "proxied/config"
    proxied.parent.mkdir(mode=0o700)
    proxied.write_text(
        globals_ + f"Host sample-web\n  HostName 10.0.1.10\n  Port 2222\n  User ec2-user\n"
        f"  IdentityFile {ssh_dir}/sample-web.pem\n  IdentitiesOnly yes\n  HostKeyAlias {ids['sample-web']}\n"
        f"  ProxyCommand env HOP_CONFIG={home}/plain.toml {hop} proxy {ids['sample-web']} %p\n")
    configs["hop-proxy"] = proxied
    # Both: hop proxy for the first connection, OpenSSH's master for the next ones.
    both = home / "both/config"
    (both.parent / "hop/cm").mkdir(mode=0o700, parents=True)
    both.write_text(proxied.read_text() + f"  ControlMaster auto\n  ControlPath {both.parent}/hop/cm/%C\n"
                    "  ControlPersist 10m\n")
    configs["proxy+cm"] = both
    payload = home / "payload"
    payload.write_bytes(bytes(range(256)) * 64)  # 16 KiB

    def timed(argv):
        t = time.perf_counter()
        run(argv)
        return (time.perf_counter() - t) * 1000

    def ssh(cfg):
        return ["ssh", "-F", str(cfg), "sample-web", "true"]

    def scp(cfg):
        return ["scp", "-q", "-F", str(cfg), str(payload), "sample-web:/tmp/hop-bench-payload"]

    def rsync(cfg):
        return ["rsync", "-e", f"ssh -F {cfg}", str(payload), "sample-web:/tmp/hop-bench-payload-r"]

    def exit_masters(cfg):
        for host in ("sample-web", "sample-bastion"):
            run(["ssh", "-F", str(cfg), "-O", "exit", host], check=False)
        # The masters are gone once their sockets are (bounded wait).
        cm = cfg.parent / "hop/cm"
        deadline = time.monotonic() + 10
        while cm.is_dir() and any(cm.iterdir()):
            assert time.monotonic() < deadline, list(cm.iterdir())
            time.sleep(0.02)

    def relays(delay_ms):
        procs = []
        for name, addr in (("bastion_ns", "203.0.113.10"), ("web_ns", "10.0.1.10")):
            p = subprocess.Popen(
                ["ip", "netns", "exec", st[name], sys.executable, str(repo / "scripts/delay_relay.py"),
                 addr, "2222", addr, "22", str(delay_ms)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert p.stdout.readline().strip() == "ready"
            procs.append(p)
        return procs

    med = statistics.median
    print(f"runs: {runs} per cell, interleaved; ms are medians; first = no master, second = the next command")
    print(f"{'delay':>6} {'config':>10} {'ssh 1st':>8} {'ssh 2nd':>8} {'2nd/1st':>8} "
          f"{'scp 1st':>8} {'scp 2nd':>8} {'rsync 2nd':>9}")
    for delay_ms in (0, 25):
        relay_procs = relays(delay_ms)
        cells = {name: {k: [] for k in ("ssh1", "ssh2", "scp1", "scp2", "rsync2")} for name in configs}
        try:
            for cfg in configs.values():  # warm: hop's discovery cache, the page cache
                exit_masters(cfg)
                timed(ssh(cfg))
                exit_masters(cfg)
            for _ in range(runs):  # interleaved, so load affects every config alike
                for name, cfg in configs.items():
                    c = cells[name]
                    c["ssh1"].append(timed(ssh(cfg)))
                    c["ssh2"].append(timed(ssh(cfg)))
                    c["scp2"].append(timed(scp(cfg)))
                    c["rsync2"].append(timed(rsync(cfg)))
                    exit_masters(cfg)
                    c["scp1"].append(timed(scp(cfg)))
                    exit_masters(cfg)
        finally:
            for p in relay_procs:
                p.kill()
                p.wait()
            relay_procs = []
        for name, c in cells.items():
            s1, s2 = med(c["ssh1"]), med(c["ssh2"])
            print(f"{delay_ms:>3} ms {name:>10} {s1:>8.1f} {s2:>8.1f} {s2 / s1:>8.2f} "
                  f"{med(c['scp1']):>8.1f} {med(c['scp2']):>8.1f} {med(c['rsync2']):>9.1f}")
    print("shared = hop config's default (ControlMaster auto, ControlPersist 10m on every stanza);"
          " plain = reuse = false; hop-proxy = ProxyCommand hop proxy on the web stanza;"
          " proxy+cm = hop-proxy with the same ControlMaster lines")
finally:
    for p in relay_procs:
        p.kill()
        p.wait()
    if lab:
        for name in ("shared", "plain", "both"):
            cfg = lab.home / name / "config"
            if cfg.exists():
                for host in ("sample-web", "sample-bastion"):
                    subprocess.run(["ip", "netns", "exec", lab.state["client_ns"], "ssh", "-F", str(cfg), "-O", "exit",
                                    host], stdin=subprocess.DEVNULL, capture_output=True)
        lab.close()
