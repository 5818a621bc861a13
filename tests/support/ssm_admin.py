#!/usr/bin/env python3
"""Small CLI over moto_lab.py's fake SSM, for hop's integration tests.

    ssm_admin.py --endpoint URL launch NAME      run an instance like sample-worker; prints its id
    ssm_admin.py --endpoint URL target ID JSON   merge knobs into target ID (registers it)
    ssm_admin.py --endpoint URL state            print the fake's recorded state JSON

`launch` starts one EC2 instance (us-east-1) in sample-worker's subnet and security groups (the
SSM-only VPC, no public IP) with sample-worker's tags, except Name=NAME. Knobs and the state
shape are described in fake_ssm.py. URL is moto_lab's endpoint (must be loopback), so this
works inside `ip netns exec <client ns>` as well.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def admin(endpoint: str, path: str, body: Any = None) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoint.rstrip("/") + path, data=data,
                                 method="GET" if data is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with opener.open(req, timeout=30) as resp:
        return json.loads(resp.read())


def launch(endpoint: str, name: str) -> str:
    from seed_topology import ec2_client

    ec2 = ec2_client(endpoint, "us-east-1")
    found = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:Name", "Values": ["sample-worker"]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])["Reservations"] for i in r["Instances"]]
    if not found:
        raise SystemExit("ssm_admin: no running sample-worker (was moto_lab started with --seed?)")
    worker = found[0]
    tags = [{"Key": "Name", "Value": name}]
    tags += [t for t in worker.get("Tags", []) if t["Key"] != "Name"]
    reply = ec2.run_instances(
        ImageId=worker["ImageId"], InstanceType=worker["InstanceType"], MinCount=1, MaxCount=1,
        SubnetId=worker["SubnetId"],
        SecurityGroupIds=[g["GroupId"] for g in worker.get("SecurityGroups", [])],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return str(reply["Instances"][0]["InstanceId"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto_lab endpoint, http://127.0.0.1:N")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("launch").add_argument("name")
    t = sub.add_parser("target")
    t.add_argument("instance_id")
    t.add_argument("knobs", help="JSON object of knobs, merged into the existing ones")
    sub.add_parser("state")
    a = ap.parse_args(argv)
    if a.cmd == "launch":
        print(launch(a.endpoint, a.name))
    elif a.cmd == "target":
        knobs = json.loads(a.knobs)
        if not isinstance(knobs, dict):
            raise SystemExit("ssm_admin: knobs must be a JSON object")
        print(json.dumps(admin(a.endpoint, "/__fake_ssm/target",
                               {"instance_id": a.instance_id, "knobs": knobs})))
    else:
        print(json.dumps(admin(a.endpoint, "/__fake_ssm/state"), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
