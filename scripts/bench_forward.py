"""Forwarding benchmark: hop forward vs ssh -J -L through the same bastion. See bench-forward.sh."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import bench_lab

repo = Path(__file__).resolve().parent.parent
hop, gib = sys.argv[1], float(sys.argv[2])
lab = None
procs = []


def in_ns(ns, argv, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)


def cpu_seconds(pids):
    """User+system CPU of these processes and their children so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        except FileNotFoundError:
            pass
    return total


def sshd_pids(ns_name):
    """The sshd processes (listener, monitors, sessions) in network namespace ns_name."""
    inode = os.stat(f"/run/netns/{ns_name}").st_ino
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.readlink(d / "ns/net") == f"net:[{inode}]" and (d / "comm").read_text().strip() == "sshd":
                out.append(int(d.name))
        except OSError:
            pass
    return out


def own_cpu_seconds(pids):
    """User+system CPU of these processes themselves (children that ended are not counted)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:13]) / tick  # utime stime
        except FileNotFoundError:
            pass
    return total


def tree(pid):
    """pid and its descendants (ssh's ProxyCommand child)."""
    out = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        out += tree(int(child))
    return out


def peak_rss_kib(pids):
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


try:
    lab = bench_lab.start()
    st, home, ssh_dir, known, ids, env = lab.state, lab.home, lab.ssh_dir, lab.known, lab.ids, lab.env
    ns, web_ns = st["client_ns"], st["web_ns"]
    www = home / "www"
    www.mkdir()
    (www / "small").write_text("x\n")
    procs.append(in_ns(web_ns, ["iperf3", "-s", "-B", "127.0.0.1", "-p", "5201"], stdout=subprocess.DEVNULL))
    procs.append(in_ns(web_ns, [sys.executable, str(repo / "tests/support/www.py"), "8080", str(www)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)
    opts = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
    jump = " ".join(["ssh", *opts, "-i", f"{ssh_dir}/sample-bastion.pem", "-o", f"HostKeyAlias={ids['sample-bastion']}",
                     "-W", "%h:%p", "ec2-user@203.0.113.10"])
    tools = {
        # --no-reuse: hop's own connection, as ssh's (a connection master would carry the bastion
        # hop in another process, whose CPU and memory this tree does not count).
        "hop": [hop, "--no-reuse", "forward", ids["sample-web"], "25201:localhost:5201", "28080:localhost:8080"],
        "OpenSSH": ["ssh", *opts, "-o", f"ProxyCommand={jump}", "-i", f"{ssh_dir}/sample-web.pem",
                    "-o", f"HostKeyAlias={ids['sample-web']}", "-N", "-L", "25201:localhost:5201", "-L", "28080:localhost:8080",
                    "ec2-user@10.0.1.10"],
    }
    results = {}
    for name, argv in tools.items():
        p = in_ns(ns, argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        time.sleep(2.5)  # connected (both print nothing when ready); generous
        pids = tree(p.pid)
        r = {}
        sshds = sshd_pids(st["bastion_ns"]) + sshd_pids(st["web_ns"])
        for direction, flag in (("up", []), ("down", ["-R"])):
            cpu0, sshd0 = cpu_seconds(tree(p.pid)), own_cpu_seconds(sshds)
            out = subprocess.run(["ip", "netns", "exec", ns, "iperf3", "-c", "127.0.0.1", "-p", "25201", "-n", f"{int(gib * 1024)}M",
                                  "-J", *flag], capture_output=True, text=True, check=True)
            cpu1, sshd1 = cpu_seconds(tree(p.pid)), own_cpu_seconds(sshds)
            bps = json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]
            r[direction] = (bps / 8 / 2**20, (cpu1 - cpu0) / gib, (sshd1 - sshd0) / gib)
        # All at once: N client threads connect together (bounded: load.py's 30 s per request).
        for n in (100, 1000):
            out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(repo / "tests/support/load.py"), "parallel",
                                  "28080", str(n), str(n)], capture_output=True, text=True, check=True)
            rep = json.loads(out.stdout)
            r[f"par{n}"] = (rep["seconds"], rep["failures"])
        r["rss"] = peak_rss_kib(tree(p.pid)) / 1024
        results[name] = r
        p.terminate()
        p.wait()
    h, o = results["hop"], results["OpenSSH"]
    print(f"{'':34} {'hop':>10} {'OpenSSH':>10} {'ratio':>7}")
    for d in ("up", "down"):
        print(f"{'throughput ' + d + ' (MiB/s)':34} {h[d][0]:>10.1f} {o[d][0]:>10.1f} {h[d][0] / o[d][0]:>7.2f}")
        print(f"{'client CPU s/GiB ' + d:34} {h[d][1]:>10.2f} {o[d][1]:>10.2f} {h[d][1] / o[d][1]:>7.2f}")
        print(f"{'both sshds CPU s/GiB ' + d:34} {h[d][2]:>10.2f} {o[d][2]:>10.2f} {h[d][2] / o[d][2]:>7.2f}")
    for n in (100, 1000):
        print(f"{f'{n} parallel connections (s, fails)':34} {h[f'par{n}'][0]:>6.2f} ({h[f'par{n}'][1]}) {o[f'par{n}'][0]:>6.2f} ({o[f'par{n}'][1]}) "
              f"{h[f'par{n}'][0] / o[f'par{n}'][0]:>7.2f}")
    print(f"{'peak RSS (MiB; ssh: both processes)':34} {h['rss']:>10.1f} {o['rss']:>10.1f} {h['rss'] / o['rss']:>7.2f}")
    # Issue #11's goals, against OpenSSH in this run.
    goals = [
        ("throughput up >= 1.3x", h["up"][0] / o["up"][0] >= 1.3),
        ("throughput down >= 1.3x", h["down"][0] / o["down"][0] >= 1.3),
        ("client CPU per GiB <= 0.6x (up and down)", all(h[d][1] / o[d][1] <= 0.6 for d in ("up", "down"))),
        ("peak RSS <= 1.0x", h["rss"] / o["rss"] <= 1.0),
        ("1000 parallel: no slower, 0 failures", h["par1000"][0] <= o["par1000"][0] and h["par1000"][1] == 0),
    ]
    print("goals: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in goals))
    print(f"({gib:g} GiB each way, iperf3 through the forward; client = hop, or ssh + its ProxyCommand ssh;"
          f" sshds = bastion's and web's, which serve the same tool's connections; N parallel = N at once)")
finally:
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    if lab:
        lab.close()
