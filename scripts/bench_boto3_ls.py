#!/usr/bin/env python3
"""Baseline for `hop ls`: how long boto3 takes to list every instance in a region.

    PY=$(scripts/install-test-deps.sh | tail -1)
    $PY scripts/bench_boto3_ls.py ENDPOINT REGION [RUNS]

ENDPOINT is a moto_lab.py endpoint (loopback only). Each run creates a fresh
boto3 session and EC2 client (a CLI pays that on every invocation) and walks
the DescribeInstances paginator to the end. Prints the median wall time of a
run in milliseconds alone on stdout; details go to stderr.
"""

from __future__ import annotations

import ipaddress
import os
import statistics
import sys
import time
import urllib.parse

import boto3
from botocore.config import Config


def one_run(endpoint: str, region: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=region,
    )
    client = session.client(
        "ec2", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1})
    )
    instances = pages = 0
    for page in client.get_paginator("describe_instances").paginate():
        pages += 1
        instances += sum(len(r["Instances"]) for r in page["Reservations"])
    return (time.perf_counter() - started) * 1000, instances, pages


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, region = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) == 4 else 10

    host = urllib.parse.urlsplit(endpoint).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        print(f"refusing non-loopback endpoint {endpoint!r}", file=sys.stderr)
        return 2
    # Keep any registry proxy from the environment off loopback traffic.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

    # One untimed run so the first timed one does not also pay for Python's
    # lazy imports inside botocore.
    one_run(endpoint, region)
    times = []
    for _ in range(runs):
        ms, instances, pages = one_run(endpoint, region)
        times.append(ms)
    median = statistics.median(times)
    print(
        f"bench_boto3_ls: {region}: {instances} instances in {pages} page(s); "
        f"{runs} runs: median {median:.1f} ms, min {min(times):.1f}, max {max(times):.1f}",
        file=sys.stderr,
    )
    print(f"{median:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
