"""Connect time over EICE vs over the bastion, same run. See bench-eice.sh.

Every contender runs `true` on its target, RUNS times, interleaved (one of each per round), with
no connection master. sample-eice-web is opened by a key of the bench's own in its sshd's
authorized_keys, as the bastion route's hosts are (so the number is the transport's, not a key
push's nor the bed's AuthorizedKeysCommand's). Discovery comes from hop's cache (filled once before the runs) for both hop
routes alike.
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_lab

hop, runs = sys.argv[1], int(sys.argv[2])
HOP_FLAGS = os.environ.get("HOP_FLAGS", "--no-reuse").split()
lab = None
try:
    lab = bench_lab.start()
    st, home, ssh_dir, ids, env = lab.state, lab.home, lab.ssh_dir, lab.ids, lab.env
    ns = st["client_ns"]
    eice_id = st["moto"]["instances"]["sample-eice-web"]["id"]
    # The bed's known_hosts: every lab host by instance id, eice-web included.
    known = ssh_dir / "known_hosts"
    known.write_text(Path(st["known_hosts"]).read_text())
    env = {**env, "SSL_CERT_FILE": st["moto"]["eice"]["ca"], "XDG_RUNTIME_DIR": str(home / "run")}
    (home / "run").mkdir(mode=0o700, exist_ok=True)
    own = ssh_dir / "own"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(own)], check=True)
    # Authorized the way the bastion route's keys are (sshd's authorized_keys file), so the two
    # hop routes differ only in their transport; the bed's AuthorizedKeysCommand (a shell script
    # run twice per login) is paid by the pushed-key contender alone.
    auth = Path(st["eice_web"]["authorized_keys"])
    with auth.open("a") as f:
        f.write((ssh_dir / "own.pub").read_text().strip() + "\n")
    opts = f"-F /dev/null -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o BatchMode=yes".split()
    jump = f"ec2-user@{st['bastion']['public_ip']}"
    contenders = {
        "hop eice": [hop, *HOP_FLAGS, "-i", str(own), "sample-eice-web", "--", "true"],
        "hop bastion": [hop, *HOP_FLAGS, "sample-web", "--", "true"],
        "OpenSSH -J": ["ssh", *opts, "-o",
                       f"ProxyCommand=ssh {' '.join(opts)} -i {ssh_dir}/sample-bastion.pem "
                       f"-o HostKeyAlias={ids['sample-bastion']} -W %h:%p {jump}",
                       "-i", f"{ssh_dir}/sample-web.pem", "-o", f"HostKeyAlias={ids['sample-web']}",
                       "ec2-user@10.0.1.10", "true"],
        "OpenSSH via hop proxy (eice)": ["ssh", *opts, "-o", f"ProxyCommand={hop} proxy {eice_id} %p",
                                         "-i", str(own), "-o", "IdentitiesOnly=yes",
                                         "-o", f"HostKeyAlias={eice_id}", "ec2-user@10.1.1.10", "true"],
    }

    # The user's flow with no key at all (hop pushes one with SendSSHPublicKey, spec part B),
    # measured when this hop build pushes keys.
    pushed = [hop, *HOP_FLAGS, "sample-eice-web", "--", "true"]
    probe = subprocess.run(["ip", "netns", "exec", ns, *pushed], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe.returncode == 0:
        contenders = {"hop eice, key pushed": pushed, **contenders}
    else:
        print("(this hop does not push keys: `hop eice, key pushed` not measured)")

    def timed(argv):
        t = time.perf_counter()
        p = subprocess.run(["ip", "netns", "exec", ns, *argv], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert p.returncode == 0, (argv, p.stderr.decode())
        return (time.perf_counter() - t) * 1000

    # Fill hop's discovery cache (instances and endpoints) and warm every path once.
    subprocess.run(["ip", "netns", "exec", ns, hop, "ls"], env=env, check=True, stdout=subprocess.DEVNULL)
    for argv in contenders.values():
        timed(argv)
    times = {name: [] for name in contenders}
    for _ in range(runs):
        for name, argv in contenders.items():
            times[name].append(timed(argv))
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"connect + `true`, {runs} interleaved runs each, medians (ms); min..max")
    for name, t in times.items():
        print(f"  {name:32} {med[name]:7.1f}   {min(t):7.1f}..{max(t):7.1f}")
    print(f"  ratio hop eice / hop bastion:       {med['hop eice'] / med['hop bastion']:.2f}")
    if "hop eice, key pushed" in med:
        print(f"  ratio hop eice pushed / hop bastion: {med['hop eice, key pushed'] / med['hop bastion']:.2f}")
    print(f"  ratio hop eice / OpenSSH -J:        {med['hop eice'] / med['OpenSSH -J']:.2f}")
    print(f"  ratio hop bastion / OpenSSH -J:     {med['hop bastion'] / med['OpenSSH -J']:.2f}")
finally:
    if lab is not None:
        lab.close()
        shutil.rmtree(lab.home, ignore_errors=True)
