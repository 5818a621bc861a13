"""What the SSH benchmarks share: the namespace lab (netns_lab.py --moto) and a HOME for hop
with the tutorial's keys and known_hosts for both hosts, as an admin would have them."""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class BenchLab:
    proc: subprocess.Popen
    state: dict
    home: Path
    ssh_dir: Path
    known: Path
    ids: dict
    env: dict

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def start() -> BenchLab:
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/support/netns_lab.py"), "--moto"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    st = json.loads(proc.stdout.readline())
    home = Path(tempfile.mkdtemp(prefix="hop-bench-"))
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    for key in ("sample-bastion", "sample-web"):
        dst = ssh_dir / f"{key}.pem"
        dst.write_bytes(Path(st["keys"][key]).read_bytes())
        dst.chmod(0o600)
    ids = {k: st["moto"]["instances"][k]["id"] for k in ("sample-bastion", "sample-web")}
    known = ssh_dir / "known_hosts"
    known.write_text(
        f"{ids['sample-bastion']} {st['bastion']['host_key_pub']}\n{ids['sample-web']} {st['web']['host_key_pub']}\n"
    )
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "AWS_ENDPOINT_URL": st["moto"]["endpoint"],
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return BenchLab(proc, st, home, ssh_dir, known, ids, env)
