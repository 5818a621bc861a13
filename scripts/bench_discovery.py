"""Discovery benchmark: hop vs boto3 against one moto lab, in one run. See bench-discovery.sh."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

repo = Path(__file__).resolve().parent.parent
hop, runs = sys.argv[1], int(sys.argv[2])
lab = subprocess.Popen(
    [sys.executable, str(repo / "tests/support/moto_lab.py"), "--port", "0", "--seed"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
)
try:
    state = json.loads(lab.stdout.readline())
    endpoint = state["endpoint"]
    home = tempfile.mkdtemp(prefix="hop-bench-")
    env = {
        "PATH": os.environ["PATH"], "HOME": home, "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
    }

    def timed(argv, extra_env=None, want=0):
        e = dict(env, **(extra_env or {}))
        t = time.perf_counter()
        p = subprocess.run(argv, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = (time.perf_counter() - t) * 1000
        assert p.returncode == want, (argv, p.returncode)
        return elapsed

    boto = [sys.executable, "-c", f"""
import boto3
c = boto3.client("ec2", region_name="us-west-2", endpoint_url="{endpoint}")
n = sum(len(r["Instances"]) for p in c.get_paginator("describe_instances").paginate() for r in p["Reservations"])
assert n == 151, n
"""]
    # Warm both paths once (moto builds its backends lazily).
    timed([hop, "--region", "us-west-2", "ls"])
    timed(boto)
    hop_ls = [timed([hop, "--region", "us-west-2", "ls"]) for _ in range(runs)]
    boto_ls = [timed(boto) for _ in range(runs)]
    timed([hop, "route", "sample-web"])  # fills the cache
    route_warm = [timed([hop, "route", "sample-web"]) for _ in range(runs)]
    # Instance metadata as off EC2: nothing answers. A listening socket nobody reads from is
    # the worst case (the connection succeeds, the answer never comes).
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    no_region = [
        timed([hop, "ls"], {"AWS_REGION": "", "AWS_EC2_METADATA_DISABLED": "false",
                            "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}"},
              want=2)
        for _ in range(5)
    ]
    silent.close()
    med = statistics.median
    print(f"runs per case: {runs}")
    print(f"hop ls (151 instances, 2 pages)          median {med(hop_ls):7.1f} ms")
    print(f"boto3 paginator, same server             median {med(boto_ls):7.1f} ms")
    print(f"ratio hop/boto3                          {med(hop_ls) / med(boto_ls):7.2f}")
    print(f"hop route sample-web, warm cache         median {med(route_warm):7.1f} ms")
    print(f"hop with no region (metadata silent)     median {med(no_region):7.1f} ms")
finally:
    lab.stdin.close()
    lab.wait(timeout=30)
