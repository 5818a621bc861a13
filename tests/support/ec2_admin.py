#!/usr/bin/env python3
"""Small CLI over the namespace lab's moto, for tests that need instances of their own.

    ec2_admin.py --endpoint URL web NAME IP       an instance like sample-web (its subnet, security
                                                  group and key) at private IP; prints its id
    ec2_admin.py --endpoint URL vpc PREFIX        a VPC of its own like sample-dev: PREFIX-bastion
                                                  (public IP) and PREFIX-web (10.0.1.10); prints
                                                  {"bastion": {"id", "public_ip"}, "web": {"id"}}
    ec2_admin.py --endpoint URL allocate          a new Elastic IP: prints "ADDRESS ALLOCATION-ID"
    ec2_admin.py --endpoint URL associate ALLOC ID  give instance ID that Elastic IP (its public IP
                                                  changes, as after a stop and start)

Each is idempotent by name (a second `web NAME` or `vpc PREFIX` prints what exists), so tests
sharing one lab may call it in any order. URL is moto_lab's endpoint (loopback only), so this
works inside `ip netns exec <client ns>`. Everything is in us-east-1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed_topology import ec2_client  # noqa: E402

REGION = "us-east-1"


def _by_name(ec2: Any, name: str) -> dict[str, Any] | None:
    found = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:Name", "Values": [name]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])["Reservations"] for i in r["Instances"]]
    return found[0] if found else None


def _tags(name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}]


def web(endpoint: str, name: str, ip: str) -> str:
    ec2 = ec2_client(endpoint, REGION)
    if (have := _by_name(ec2, name)) is not None:
        return str(have["InstanceId"])
    like = _by_name(ec2, "sample-web")
    if like is None:
        raise SystemExit("ec2_admin: no running sample-web (was moto_lab started with --seed?)")
    reply = ec2.run_instances(
        ImageId=like["ImageId"], InstanceType=like["InstanceType"], MinCount=1, MaxCount=1,
        SubnetId=like["SubnetId"], PrivateIpAddress=ip, KeyName="sample-web",
        SecurityGroupIds=[g["GroupId"] for g in like.get("SecurityGroups", [])],
        TagSpecifications=_tags(name),
    )
    return str(reply["Instances"][0]["InstanceId"])


def vpc(endpoint: str, prefix: str) -> dict[str, Any]:
    ec2 = ec2_client(endpoint, REGION)
    bastion = _by_name(ec2, f"{prefix}-bastion")
    web_i = _by_name(ec2, f"{prefix}-web")
    if bastion is None or web_i is None:
        like = _by_name(ec2, "sample-web")
        if like is None:
            raise SystemExit("ec2_admin: no running sample-web (was moto_lab started with --seed?)")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": prefix}])
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        public = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.0.0/24",
                                   AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=public, MapPublicIpOnLaunch={"Value": True})
        private = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24",
                                    AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        rtb = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=public)
        common = {"ImageId": like["ImageId"], "InstanceType": like["InstanceType"],
                  "MinCount": 1, "MaxCount": 1}
        ec2.run_instances(**common, SubnetId=public, KeyName="sample-bastion",
                          TagSpecifications=_tags(f"{prefix}-bastion"))
        ec2.run_instances(**common, SubnetId=private, KeyName="sample-web",
                          PrivateIpAddress="10.0.1.10", TagSpecifications=_tags(f"{prefix}-web"))
        bastion = _by_name(ec2, f"{prefix}-bastion")
        web_i = _by_name(ec2, f"{prefix}-web")
    assert bastion is not None and web_i is not None
    return {
        "bastion": {"id": bastion["InstanceId"], "public_ip": bastion.get("PublicIpAddress")},
        "web": {"id": web_i["InstanceId"]},
    }


def allocate(endpoint: str) -> str:
    eip = ec2_client(endpoint, REGION).allocate_address(Domain="vpc")
    return f"{eip['PublicIp']} {eip['AllocationId']}"


def associate(endpoint: str, allocation_id: str, instance_id: str) -> None:
    ec2_client(endpoint, REGION).associate_address(AllocationId=allocation_id, InstanceId=instance_id)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto_lab endpoint, http://127.0.0.1:N")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("web")
    w.add_argument("name")
    w.add_argument("ip")
    sub.add_parser("vpc").add_argument("prefix")
    sub.add_parser("allocate")
    assoc = sub.add_parser("associate")
    assoc.add_argument("allocation_id")
    assoc.add_argument("instance_id")
    a = ap.parse_args(argv)
    if a.cmd == "web":
        print(web(a.endpoint, a.name, a.ip))
    elif a.cmd == "vpc":
        print(json.dumps(vpc(a.endpoint, a.prefix)))
    elif a.cmd == "allocate":
        print(allocate(a.endpoint))
    else:
        associate(a.endpoint, a.allocation_id, a.instance_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
