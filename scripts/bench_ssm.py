"""SSM benchmark: hop over Session Manager (fake agent, loopback) vs hop and OpenSSH through the
bastion, same sshd, same keys, one run. See bench-ssm.sh."""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_lab

repo = Path(__file__).resolve().parent.parent
hop, runs, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lab = None
try:
    lab = bench_lab.start()
    st, ssh_dir, known, ids, env = lab.state, lab.ssh_dir, lab.known, lab.ids, lab.env
    ns = st["client_ns"]

    def in_client(argv, **kw):
        return subprocess.run(["ip", "netns", "exec", ns, *argv], env=env, check=True, capture_output=True,
                              text=True, **kw)

    # An SSM-only instance whose (fake) agent dials web's sshd from inside web's namespace.
    admin = [sys.executable, str(repo / "tests/support/ssm_admin.py"), "--endpoint", st["moto"]["endpoint"]]
    ssm_id = in_client([*admin, "launch", "bench-ssm"]).stdout.strip()
    dial = {"dial": {"netns": st["web_ns"], "host": "10.0.1.10", "port": 22}}
    in_client([*admin, "target", ssm_id, __import__("json").dumps(dial)])
    with known.open("a") as f:
        f.write(f"{ssm_id} {st['web']['host_key_pub']}\n")
    key = f"{ssh_dir}/sample-web.pem"
    opts = f"-F /dev/null -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o BatchMode=yes"
    jump = (f"ssh {opts} -i {ssh_dir}/sample-bastion.pem -o HostKeyAlias={ids['sample-bastion']} "
            f"-W %h:%p ec2-user@203.0.113.10")
    cases = {
        "hop via SSM": [hop, "-l", "ec2-user", "-i", key, ssm_id, "--"],
        "hop via bastion": [hop, ids["sample-web"], "--"],
        "OpenSSH via bastion": ["ssh", *opts.split(), "-o", f"ProxyCommand={jump}", "-i", key,
                                "-o", f"HostKeyAlias={ids['sample-web']}", "ec2-user@10.0.1.10"],
    }

    def timed(argv, stdin=subprocess.DEVNULL):
        t = time.perf_counter()
        p = subprocess.run(["ip", "netns", "exec", ns, *argv], env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        assert p.returncode == 0, (argv, p.stderr.decode())
        return (time.perf_counter() - t) * 1000

    for argv in cases.values():
        timed([*argv, "true"])  # warm: discovery cache, page cache
    connect = {name: [] for name in cases}
    for _ in range(runs):  # interleaved, so load affects all alike
        for name, argv in cases.items():
            connect[name].append(timed([*argv, "true"]))
    down = {name: timed([*argv, f"head -c {mib << 20} /dev/zero"]) for name, argv in cases.items()}
    blob = repo / "target" / "bench-ssm-upload.bin"
    blob.parent.mkdir(exist_ok=True)
    with blob.open("wb") as f:
        f.truncate(mib << 20)
    up = {}
    for name, argv in cases.items():
        with blob.open("rb") as f:
            up[name] = timed([*argv, "cat >/dev/null"], stdin=f)
    blob.unlink()
    med = statistics.median
    base = med(connect["OpenSSH via bastion"])
    print(f"connect + `true`: {runs} interleaved runs, medians; throughput: {mib} MiB one run each way")
    print(f"{'':>20} {'connect ms':>10} {'/OpenSSH':>8} {'down MiB/s':>10} {'up MiB/s':>9}")
    for name in cases:
        c = med(connect[name])
        print(f"{name:>20} {c:>10.1f} {c / base:>8.2f} {mib / (down[name] / 1000):>10.1f} {mib / (up[name] / 1000):>9.1f}")
finally:
    if lab:
        lab.close()
