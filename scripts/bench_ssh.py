"""SSH connect benchmark: hop vs OpenSSH through the same bastion. See bench-ssh.sh.

One run prints, at 0 ms and 25 ms one-way delay per link, the medians of RUNS interleaved runs
of `hop web -- true` (as hop runs once it knows the hosts: it remembers each server's preferred
key exchange to guess it, russh patch 0006; and on first contact, that memory cleared before
each run), of the `ssh -J` equivalent at OpenSSH's default key exchange and of the same forced
to curve25519-sha256, the ratios, and the client turns per hop (hop both ways, both OpenSSH
variants).
"""

import shutil

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_lab

repo = Path(__file__).resolve().parent.parent
hop, runs = sys.argv[1], int(sys.argv[2])
# hop flags for every first-connect run; `--no-reuse`: no connection master, so each run pays
# the whole route (the second connect, with a master, is measured apart).
HOP_FLAGS = os.environ.get("HOP_FLAGS", "--no-reuse").split()
CURVE = ["-o", "KexAlgorithms=curve25519-sha256"]
lab = None
try:
    lab = bench_lab.start()
    st, home, ssh_dir, known, ids, env = lab.state, lab.home, lab.ssh_dir, lab.known, lab.ids, lab.env
    ns = st["client_ns"]
    (home / ".config/hop").mkdir(parents=True)
    # Both sshd are reached through delaying relays on port 2222 (scripts/delay_relay.py):
    # hop through its per-host port override, OpenSSH through -p.
    (home / ".config/hop/config.toml").write_text('[hosts.sample-bastion]\nport = 2222\n[hosts.sample-web]\nport = 2222\n')
    opts = f"-F /dev/null -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o BatchMode=yes".split()

    def openssh(extra):
        jump = " ".join(["ssh", *opts, *extra, "-p", "2222", "-i", f"{ssh_dir}/sample-bastion.pem",
                         "-o", f"HostKeyAlias={ids['sample-bastion']}", "-W", "%h:%p", "ec2-user@203.0.113.10"])
        return ["ssh", *opts, *extra, "-o", f"ProxyCommand={jump}", "-p", "2222", "-i", f"{ssh_dir}/sample-web.pem",
                "-o", f"HostKeyAlias={ids['sample-web']}", "ec2-user@10.0.1.10", "true"]

    def openssh_direct(extra):
        return ["ssh", *opts, *extra, "-p", "2222", "-i", f"{ssh_dir}/sample-bastion.pem",
                "-o", f"HostKeyAlias={ids['sample-bastion']}", "ec2-user@203.0.113.10", "true"]

    hop_cmd = [hop, *HOP_FLAGS, ids["sample-web"], "--", "true"]
    # Masters live in the bench's own runtime dir, ended with `hop stop` after each section.
    env = {**env, "XDG_RUNTIME_DIR": str(home / "run")}
    (home / "run").mkdir(mode=0o700, exist_ok=True)
    hop_direct = [hop, *HOP_FLAGS, ids["sample-bastion"], "--", "true"]
    # hop's memory of each server's preferred key exchange (KexMemory).
    kex_memory = home / ".cache/hop/kex"
    FIRST = "first"  # marks the first-contact argv: memory cleared before each run
    contenders = {"hop": hop_cmd, "hop first contact": [FIRST, *hop_cmd], "OpenSSH": openssh([]),
                  "OpenSSH c25519": openssh(CURVE)}

    def timed(argv):
        if argv[0] == FIRST:
            shutil.rmtree(kex_memory, ignore_errors=True)
            argv = argv[1:]
        t = time.perf_counter()
        p = subprocess.run(["ip", "netns", "exec", ns, *argv], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert p.returncode == 0, (argv, p.stderr.decode())
        return (time.perf_counter() - t) * 1000

    def relays(delay_ms):
        logs, procs = [], []
        for name, addr in (("bastion_ns", "203.0.113.10"), ("web_ns", "10.0.1.10")):
            log = home / f"relay-{name}-{delay_ms}.log"
            p = subprocess.Popen(
                ["ip", "netns", "exec", st[name], sys.executable, str(repo / "scripts/delay_relay.py"),
                 addr, "2222", addr, "22", str(delay_ms)],
                stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
            assert p.stdout.readline().strip() == "ready"
            logs.append(log)
            procs.append(p)
        return logs, procs

    def turns(log, argv):
        """Client turns seen by the bastion's relay for one run of argv."""
        # Earlier connections report when they finish closing: let them, first.
        n = -1
        while n != len(log.read_text().splitlines()):
            n = len(log.read_text().splitlines())
            time.sleep(0.5)
        timed(argv)
        time.sleep(0.3)
        # The relay reports when both sides have closed; wait for exactly this connection's line.
        for _ in range(50):
            lines = log.read_text().splitlines()[n:]
            if lines:
                break
            time.sleep(0.1)
        assert len(lines) == 1, lines
        return int(lines[0].rsplit(" ", 1)[1])

    med = statistics.median

    def second_connect(delays):
        """`hop web -- true` with a live connection master (DESIGN 5a) against `ssh -J`-style
        OpenSSH, which pays the whole route every time; interleaved, medians."""
        reuse_cmd = [hop, ids["sample-web"], "--", "true"]
        print(f"second connect: hop with a live master (holding bastion and web) vs OpenSSH, {runs} runs each")
        print(f"{'one-way delay per link':>24} {'hop ms':>8} {'OpenSSH ms':>11} {'ratio':>6}")
        for delay_ms in delays:
            logs, procs = relays(delay_ms)
            try:
                timed(reuse_cmd)  # starts the master, which then holds web too
                timed(openssh([]))
                h, o = [], []
                for _ in range(runs):
                    h.append(timed(reuse_cmd))
                    o.append(timed(openssh([])))
            finally:
                timed([hop, "stop"])
                for p in procs:
                    p.kill()
                    p.wait()
            print(f"{delay_ms:>21} ms {med(h):>8.1f} {med(o):>11.1f} {med(h) / med(o):>6.2f}")

    print(f"runs: {runs} each, interleaved; OpenSSH = ssh -o ProxyCommand='ssh -W %h:%p bastion' web"
          f" (its default kex, and forced to curve25519-sha256); hop flags: {HOP_FLAGS or 'none'}")
    print(f"{'one-way delay per link':>24} {'hop ms':>8} {'first ms':>9} {'OpenSSH ms':>11} {'c25519 ms':>10}"
          f"   ratios hop/OpenSSH, hop/c25519 (first contact: same)")
    turn_counts = {}
    for delay_ms in (0, 25):
        logs, procs = relays(delay_ms)
        try:
            timed(hop_cmd)  # fills the discovery cache, as any later `hop` run finds it
            if delay_ms == 25:
                # At 25 ms, so a reply never races the client's next words; on fresh relays, so
                # no other connection's report interleaves.
                turn_counts = {"hop": turns(logs[0], hop_direct),
                               "hop first contact": turns(logs[0], [FIRST, *hop_direct]),
                               "OpenSSH": turns(logs[0], openssh_direct([])),
                               "OpenSSH c25519": turns(logs[0], openssh_direct(CURVE))}
            for argv in contenders.values():
                timed(argv)  # warm: page cache, sshd's first fork
            times = {name: [] for name in contenders}
            for _ in range(runs):  # interleaved, so load affects all alike
                for name, argv in contenders.items():
                    times[name].append(timed(argv))
        finally:
            for p in procs:
                p.kill()
                p.wait()
        h, f, o, c = (med(times[n]) for n in contenders)
        print(f"{delay_ms:>21} ms {h:>8.1f} {f:>9.1f} {o:>11.1f} {c:>10.1f}   {h / o:.2f}, {h / c:.2f}"
              f" (first contact: {f / o:.2f}, {f / c:.2f})", flush=True)
    second_connect(delays=(0, 25))
    rss = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/time", "-f", "%M", *hop_direct],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_kib = int(rss.stderr.strip().splitlines()[-1])
    print(f"hop peak RSS during a connect (direct to the bastion): {peak_kib / 1024:.1f} MiB")
    print("client turns for one hop (connect, auth, exec true; times the client spoke again after the server"
          " answered): " + ", ".join(f"{n} {t}" for n, t in turn_counts.items()))
finally:
    if lab:
        lab.close()
