"""Forwarding benchmark: hop forward vs ssh -J -L through the same bastion. See bench-forward.sh."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

repo = Path(__file__).resolve().parent.parent
hop, gib = sys.argv[1], float(sys.argv[2])
lab = subprocess.Popen([sys.executable, str(repo / "tests/support/netns_lab.py"), "--moto"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    st = json.loads(lab.stdout.readline())
    ns, web_ns = st["client_ns"], st["web_ns"]
    home = Path(tempfile.mkdtemp(prefix="hop-bench-"))
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    for key in ("sample-bastion", "sample-web"):
        dst = ssh_dir / f"{key}.pem"
        dst.write_bytes(Path(st["keys"][key]).read_bytes())
        dst.chmod(0o600)
    ids = {k: st["moto"]["instances"][k]["id"] for k in ("sample-bastion", "sample-web")}
    known = ssh_dir / "known_hosts"
    known.write_text(f"{ids['sample-bastion']} {st['bastion']['host_key_pub']}\n{ids['sample-web']} {st['web']['host_key_pub']}\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "AWS_ENDPOINT_URL": st["moto"]["endpoint"],
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    www = home / "www"
    www.mkdir()
    (www / "small").write_text("x\n")
    procs.append(in_ns(web_ns, ["iperf3", "-s", "-B", "127.0.0.1", "-p", "5201"], stdout=subprocess.DEVNULL))
    procs.append(in_ns(web_ns, [sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", str(www)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)
    opts = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
    jump = " ".join(["ssh", *opts, "-i", f"{ssh_dir}/sample-bastion.pem", "-o", f"HostKeyAlias={ids['sample-bastion']}",
                     "-W", "%h:%p", "ec2-user@203.0.113.10"])
    tools = {
        "hop": [hop, "forward", ids["sample-web"], "25201:localhost:5201", "28080:localhost:8080"],
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
        for direction, flag in (("up", []), ("down", ["-R"])):
            cpu0 = cpu_seconds(tree(p.pid))
            out = subprocess.run(["ip", "netns", "exec", ns, "iperf3", "-c", "127.0.0.1", "-p", "25201", "-n", f"{int(gib * 1024)}M",
                                  "-J", *flag], capture_output=True, text=True, check=True)
            cpu1 = cpu_seconds(tree(p.pid))
            bps = json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]
            r[direction] = (bps / 8 / 2**20, (cpu1 - cpu0) / gib)
        for n in (100, 1000):
            out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(repo / "tests/support/load.py"), "parallel",
                                  "28080", str(n), "50"], capture_output=True, text=True, check=True)
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
    for n in (100, 1000):
        print(f"{f'{n} parallel connections (s, fails)':34} {h[f'par{n}'][0]:>6.2f} ({h[f'par{n}'][1]}) {o[f'par{n}'][0]:>6.2f} ({o[f'par{n}'][1]}) "
              f"{h[f'par{n}'][0] / o[f'par{n}'][0]:>7.2f}")
    print(f"{'peak RSS (MiB; ssh: both processes)':34} {h['rss']:>10.1f} {o['rss']:>10.1f} {h['rss'] / o['rss']:>7.2f}")
    print(f"({gib:g} GiB each way, iperf3 through the forward; client = hop, or ssh + its ProxyCommand ssh)")
finally:
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    lab.stdin.close()
    lab.wait(timeout=30)
