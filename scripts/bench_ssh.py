"""SSH connect benchmark: hop vs OpenSSH through the same bastion. See bench-ssh.sh."""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_lab

repo = Path(__file__).resolve().parent.parent
hop, runs = sys.argv[1], int(sys.argv[2])
lab = None
try:
    lab = bench_lab.start()
    st, home, ssh_dir, known, ids, env = lab.state, lab.home, lab.ssh_dir, lab.known, lab.ids, lab.env
    ns = st["client_ns"]
    (home / ".config/hop").mkdir(parents=True)
    # Both sshd are reached through delaying relays on port 2222 (scripts/delay_relay.py):
    # hop through its per-host port override, OpenSSH through -p.
    (home / ".config/hop/config.toml").write_text('[hosts.sample-bastion]\nport = 2222\n[hosts.sample-web]\nport = 2222\n')
    opts = f"-F /dev/null -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o BatchMode=yes"
    jump = (f"ssh {opts} -p 2222 -i {ssh_dir}/sample-bastion.pem -o HostKeyAlias={ids['sample-bastion']} "
            f"-W %h:%p ec2-user@203.0.113.10")
    openssh = ["ssh", *opts.split(), "-o", f"ProxyCommand={jump}", "-p", "2222", "-i", f"{ssh_dir}/sample-web.pem",
               "-o", f"HostKeyAlias={ids['sample-web']}", "ec2-user@10.0.1.10", "true"]
    # First connects: no connection master (each run pays the whole route, as without reuse).
    hop_cmd = [hop, "--no-reuse", ids["sample-web"], "--", "true"]
    # Masters live in the bench's own runtime dir, ended with `hop stop` after each section.
    env = {**env, "XDG_RUNTIME_DIR": str(home / "run")}
    (home / "run").mkdir(mode=0o700, exist_ok=True)

    def timed(argv):
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

    # One hop, direct to the bastion: the handshake's round trips, hop vs OpenSSH.
    hop_direct = [hop, "--no-reuse", ids["sample-bastion"], "--", "true"]
    ssh_direct = ["ssh", *opts.split(), "-p", "2222", "-i", f"{ssh_dir}/sample-bastion.pem",
                  "-o", f"HostKeyAlias={ids['sample-bastion']}", "ec2-user@203.0.113.10", "true"]

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
                timed(openssh)
                h, o = [], []
                for _ in range(runs):
                    h.append(timed(reuse_cmd))
                    o.append(timed(openssh))
            finally:
                timed([hop, "stop"])
                for p in procs:
                    p.kill()
                    p.wait()
            print(f"{delay_ms:>21} ms {med(h):>8.1f} {med(o):>11.1f} {med(h) / med(o):>6.2f}")

    print(f"runs: {runs} each, interleaved; OpenSSH = ssh -o ProxyCommand='ssh -W %h:%p bastion' web")
    print(f"{'one-way delay per link':>24} {'hop ms':>8} {'OpenSSH ms':>11} {'ratio':>6}")
    for delay_ms in (0, 25):
        logs, procs = relays(delay_ms)
        try:
            if delay_ms == 0:
                # Measured first, on fresh relays, so no other connection's report interleaves.
                timed(hop_cmd)  # fills the discovery cache
                turns_hop, turns_ssh = turns(logs[0], hop_direct), turns(logs[0], ssh_direct)
            timed(hop_cmd)  # fills the discovery cache, as any later `hop` run finds it
            timed(openssh)
            h, o = [], []
            for _ in range(runs):  # interleaved, so load affects both alike
                h.append(timed(hop_cmd))
                o.append(timed(openssh))
        finally:
            for p in procs:
                p.kill()
                p.wait()
        print(f"{delay_ms:>21} ms {med(h):>8.1f} {med(o):>11.1f} {med(h) / med(o):>6.2f}")
    second_connect(delays=(0, 25))
    rss = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/time", "-f", "%M", hop, ids["sample-bastion"], "--", "true"],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_kib = int(rss.stderr.strip().splitlines()[-1])
    print(f"hop peak RSS during a connect (direct to the bastion): {peak_kib / 1024:.1f} MiB")
    print(f"client turns for one hop (connect, auth, exec true): hop {turns_hop}, OpenSSH {turns_ssh}"
          " (times the client spoke again after the server answered)")
finally:
    if lab:
        lab.close()
