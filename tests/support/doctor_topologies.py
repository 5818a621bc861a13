#!/usr/bin/env python3
"""Builds one small VPC per `hop doctor` scenario in a running moto server.

    python doctor_topologies.py --endpoint URL [--region ap-southeast-2]

Prints one line of JSON: {"region": R, "my_ip": "203.0.113.5/32", "scenarios": {NAME: {...}}},
each scenario holding the ids of its VPC, subnets, route tables, gateways, groups, instances and
endpoints (keys: see _empty; absent ones are null). Nothing is reset, so this can share
moto_lab.py's seeded server, in a region no other test lists (not us-east-1/us-west-2/eu-west-1).
Resources are tagged doctor-lab=<scenario>/<role> and the output is always read back from the
tags: a second run builds nothing and prints the same JSON. Ids are moto's; names, CIDRs and
private addresses are fixed.

Healthy baseline (the AWS bastion tutorial); scenario i gets VPC 10.(10+i).0.0/16 = 10.x:
  public subnet 10.x.0.0/24 (MapPublicIpOnLaunch) routed 0.0.0.0/0 -> attached IGW;
  private subnet 10.x.1.0/24 routed 0.0.0.0/0 -> NAT gateway (EIP, in the public subnet);
  bastion doc-<s>-bastion (hop:role=bastion, key doc-key, 10.x.0.10, public IP) in bastion-sg
  (tcp/22 from 203.0.113.0/24); target doc-<s>-web (10.x.1.10, no public IP, key doc-key,
  instance profile doc-ssm-profile) in web-sg (tcp/22 from bastion-sg); default NACL; interface
  endpoints ssm, ssmmessages, ec2messages in the private subnet (private DNS on, endpoint-sg:
  tcp/443 from the VPC CIDR); S3 gateway endpoint on the private route table. Every group keeps
  the default allow-all egress.

Scenarios (the one thing changed from healthy):
  healthy                       nothing
  no_igw_route                  public route table has no 0.0.0.0/0 route
  igw_detached                  IGW detached after its route was made (the route stays)
  bastion_no_public_ip          bastion launched without a public IP (the subnet's
                                MapPublicIpOnLaunch is off for that launch only, then back on)
  sg_wrong_cidr                 bastion-sg allows 22 only from 192.0.2.0/24
  target_sg_without_bastion_sg  web-sg allows 22 only from 10.99.0.0/16
  nat_route_missing             private route table: local only (no NAT route, no S3 endpoint)
  nat_instance_srcdst_on        NAT instance doc-<s>-nat (public subnet, public IP, 10.x.0.20,
                                nat-sg: tcp/80,443 from the private subnet) instead of a NAT
                                gateway, SourceDestCheck left on; no S3 endpoint
  nat_instance_ok               same, SourceDestCheck off
  ssm_no_endpoints_no_nat       no bastion (web-sg: no ingress), no NAT, no endpoints at all
  ssm_missing_profile           no bastion, no NAT; endpoints present; target has no profile
  ssm_healthy                   no bastion, no NAT; endpoints present; target has the profile
  prefix_lists                  bastion-sg allows 22 from managed prefix list doc-admins
                                (203.0.113.0/24) and from 2001:db8::/32; web-sg from list
                                doc-public-subnet (10.x.0.0/24), not from bastion-sg; the default
                                NACL also allows ::/0 (rules 101 in and out)

EC2 Instance Connect scenarios (eice_*): no bastion, no NAT, no VPC endpoints, no instance
profile; the target is launched without a key pair; an EC2 Instance Connect Endpoint (moto_lab's
patched API, fake_eice.py) in a third subnet 10.x.2.0/24 (AZ b) with group eice-sg, whose only
egress is TCP 22 to the VPC CIDR; web-sg allows 22 from eice-sg.
  eice_healthy                  nothing more
  eice_egress_broken            eice-sg's only egress: TCP 22 to 10.99.0.0/16
  eice_no_target_ingress        web-sg allows 22 only from 10.99.0.0/16
  eice_create_failed            the endpoint's state is create-failed (fake_eice's state knob,
                                POST /__fake_eice/knobs, set again on every run)
  eice_preserve_ip              the endpoint has PreserveClientIp=true; web-sg allows 22 from the
                                endpoint's subnet only (not the caller), and the target is an
                                m3.medium (a type such an endpoint cannot reach)
fake_ssm.py knows none of these targets until a test registers them (/__fake_ssm/target).

What moto 5.2.5 fakes or lacks here:
  - Routes are always State "active" (never blackhole), even to a detached IGW, a deleted NAT
    gateway or a stopped NAT instance; detach_internet_gateway is accepted while a route still
    points at the IGW. Routes to an instance carry InstanceId but no NetworkInterfaceId.
  - NAT gateways are "available" at once; NatGatewayAddresses[].PrivateIp is invented (random
    10.x.x.x, outside the subnet); PublicIp/AllocationId are the EIP's.
  - describe_instances: IamInstanceProfile.Id is the association id (iip-assoc-...), not the
    profile id. SourceDestCheck set by modify_instance_attribute changes the instance's flag
    only: NetworkInterfaces[].SourceDestCheck stays true. An instance launched with
    NetworkInterfaces=[...] lists its groups on the ENI only (SecurityGroups is empty).
  - describe_iam_instance_profile_associations honours the instance-id and state filters and
    silently ignores unknown ones (vpc-id returns every association of the region).
  - VPC endpoints: PrivateDnsEnabled and Groups are echoed as given (no group given -> [], not
    the default group); DnsEntries are made up. Gateway endpoints also say PrivateDnsEnabled
    true, and add a route {DestinationPrefixListId: pl-..., GatewayId: vpce-...}.
  - The AWS-managed AmazonSSMManagedInstanceCore policy is absent from moto's IAM (by
    default), so the role gets an equivalent inline policy instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed_topology import AMI_ID, CREDENTIALS, INSTANCE_TYPE, ec2_client  # noqa: E402

REGION = "ap-southeast-2"
FORBIDDEN_REGIONS = {"us-east-1", "us-west-2", "eu-west-1"}
MY_IP = "203.0.113.5/32"
ADMIN_CIDR = "203.0.113.0/24"
KEY_NAME = "doc-key"
PROFILE = "doc-ssm-profile"
ROLE = "doc-ssm-role"
TAG = "doctor-lab"  # value "<scenario>/<role>"; kept out of hop's own hop:* namespace
INTERFACE_SERVICES = ("ssm", "ssmmessages", "ec2messages")


@dataclass(frozen=True)
class Scenario:
    bastion: bool = True
    igw_route: bool = True
    igw_attached: bool = True
    bastion_public_ip: bool = True
    bastion_ssh_from: str = ADMIN_CIDR
    web_ssh_from_cidr: str | None = None  # None: from bastion-sg (if there is a bastion)
    nat: str | None = "gateway"  # "gateway", "instance" or None
    nat_source_dest_check: bool = True
    interface_endpoints: bool = True
    s3_endpoint: bool = True
    profile: bool = True
    prefix_lists: bool = False
    eice: bool = False
    eice_egress_cidr: str | None = None  # None: the VPC CIDR
    eice_state: str | None = None  # set through the fake's knob after creation
    eice_preserve_ip: bool = False
    web_ssh_from_eice_subnet: bool = False
    instance_type: str = INSTANCE_TYPE


def _eice(**changes: Any) -> Scenario:
    return Scenario(bastion=False, nat=None, interface_endpoints=False, s3_endpoint=False,
                    profile=False, eice=True, **changes)


SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario(),
    "no_igw_route": Scenario(igw_route=False),
    "igw_detached": Scenario(igw_attached=False),
    "bastion_no_public_ip": Scenario(bastion_public_ip=False),
    "sg_wrong_cidr": Scenario(bastion_ssh_from="192.0.2.0/24"),
    "target_sg_without_bastion_sg": Scenario(web_ssh_from_cidr="10.99.0.0/16"),
    "nat_route_missing": Scenario(nat=None, s3_endpoint=False),
    "nat_instance_srcdst_on": Scenario(nat="instance", s3_endpoint=False),
    "nat_instance_ok": Scenario(nat="instance", nat_source_dest_check=False, s3_endpoint=False),
    "ssm_no_endpoints_no_nat": Scenario(
        bastion=False, nat=None, interface_endpoints=False, s3_endpoint=False),
    "ssm_missing_profile": Scenario(bastion=False, nat=None, profile=False),
    "ssm_healthy": Scenario(bastion=False, nat=None),
    "prefix_lists": Scenario(prefix_lists=True),
    # New scenarios go last: a scenario's index is its VPC's CIDR.
    "eice_healthy": _eice(),
    "eice_egress_broken": _eice(eice_egress_cidr="10.99.0.0/16"),
    "eice_no_target_ingress": _eice(web_ssh_from_cidr="10.99.0.0/16"),
    "eice_create_failed": _eice(eice_state="create-failed"),
    "eice_preserve_ip": _eice(eice_preserve_ip=True, web_ssh_from_eice_subnet=True,
                              instance_type="m3.medium"),
}


def ensure_shared(ec2: Any, iam: Any) -> None:
    """The key pair (per region) and the SSM role + instance profile (IAM is global)."""
    if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [KEY_NAME]}])["KeyPairs"]:
        ec2.create_key_pair(KeyName=KEY_NAME, KeyType="ed25519")
    if any(p["InstanceProfileName"] == PROFILE
           for p in iam.list_instance_profiles()["InstanceProfiles"]):
        return
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "ec2.amazonaws.com"}}]}
    core = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "ssm:UpdateInstanceInformation", "ssmmessages:*", "ec2messages:*"]}]}
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=ROLE, PolicyName="ssm-core", PolicyDocument=json.dumps(core))
    iam.create_instance_profile(InstanceProfileName=PROFILE)
    iam.add_role_to_instance_profile(InstanceProfileName=PROFILE, RoleName=ROLE)


def _tcp(port: int, **source: Any) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **source}


class _Builder:
    """Creates one scenario's VPC; every create call tags its resource with its role."""

    def __init__(self, ec2: Any, region: str, name: str, index: int):
        self.ec2, self.region, self.name = ec2, region, name
        self.net = f"10.{10 + index}"

    def tags(self, resource_type: str, role: str, suffix: str, **extra: str) -> list[Any]:
        name = f"doc-{self.name}-{suffix}" if suffix else f"doc-{self.name}"
        tags = {"Name": name, TAG: f"{self.name}/{role}", **extra}
        return [{"ResourceType": resource_type,
                 "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]

    def sg(self, role: str, group_name: str, vpc: str, rules: list[dict[str, Any]]) -> str:
        sg = self.ec2.create_security_group(
            GroupName=group_name, Description=f"hop doctor {self.name} {group_name}", VpcId=vpc,
            TagSpecifications=self.tags("security-group", role, group_name))["GroupId"]
        if rules:
            self.ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=rules)
        return str(sg)

    def run(self, role: str, suffix: str, subnet: str, sg: str, private_ip: str,
            profile: bool = False, extra_tags: dict[str, str] | None = None,
            key: bool = True, instance_type: str = INSTANCE_TYPE) -> str:
        kwargs: dict[str, Any] = {
            "ImageId": AMI_ID, "InstanceType": instance_type, "MinCount": 1, "MaxCount": 1,
            "SubnetId": subnet, "SecurityGroupIds": [sg],
            "PrivateIpAddress": private_ip,
            "TagSpecifications": self.tags("instance", role, suffix, **(extra_tags or {})),
        }
        if key:
            kwargs["KeyName"] = KEY_NAME
        if profile:
            kwargs["IamInstanceProfile"] = {"Name": PROFILE}
        return str(self.ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"])

    def prefix_list(self, suffix: str, cidrs: list[str]) -> str:
        """A customer-managed IPv4 prefix list of these CIDRs; returns its id."""
        return str(self.ec2.create_managed_prefix_list(
            PrefixListName=f"{suffix}-{self.name}", MaxEntries=10, AddressFamily="IPv4",
            Entries=[{"Cidr": c} for c in cidrs],
            TagSpecifications=self.tags("prefix-list", suffix, suffix))["PrefixList"]["PrefixListId"])

    def map_public_ip(self, subnet: str, on: bool) -> None:
        self.ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": on})

    def default_route(self, rtb: str, **target: str) -> None:
        self.ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", **target)

    def build(self, s: Scenario) -> None:
        ec2, net = self.ec2, self.net
        vpc_cidr = f"{net}.0.0/16"
        # Tagged "building" until the end, so a half-built scenario is never taken for done.
        vpc = ec2.create_vpc(CidrBlock=vpc_cidr,
                             TagSpecifications=self.tags("vpc", "building", ""))["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        igw = ec2.create_internet_gateway(TagSpecifications=self.tags(
            "internet-gateway", "igw", "igw"))["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        subnet, rtb = {}, {}
        for kind, third in (("public", 0), ("private", 1)):
            subnet[kind] = ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"{net}.{third}.0/24", AvailabilityZone=f"{self.region}a",
                TagSpecifications=self.tags("subnet", f"{kind}_subnet", kind))["Subnet"]["SubnetId"]
            rtb[kind] = ec2.create_route_table(VpcId=vpc, TagSpecifications=self.tags(
                "route-table", f"{kind}_route_table", f"{kind}-rt"))["RouteTable"]["RouteTableId"]
            ec2.associate_route_table(RouteTableId=rtb[kind], SubnetId=subnet[kind])
        self.map_public_ip(subnet["public"], True)
        if s.igw_route:
            self.default_route(rtb["public"], GatewayId=igw)

        bastion_sg = eice_sg = eice_subnet = None
        if s.eice:
            eice_subnet = ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"{net}.2.0/24", AvailabilityZone=f"{self.region}b",
                TagSpecifications=self.tags("subnet", "eice_subnet", "eice"))["Subnet"]["SubnetId"]
            eice_sg = self.sg("eice_sg", "eice-sg", vpc, [])
            # Only TCP 22 leaves the endpoint (a new group allows all egress by default).
            ec2.revoke_security_group_egress(GroupId=eice_sg, IpPermissions=[
                {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            ec2.authorize_security_group_egress(GroupId=eice_sg, IpPermissions=[
                _tcp(22, IpRanges=[{"CidrIp": s.eice_egress_cidr or vpc_cidr}])])
        if s.prefix_lists:
            admins = self.prefix_list("doc-admins", [s.bastion_ssh_from])
            subnet_list = self.prefix_list("doc-public-subnet", [f"{net}.0.0/24"])
            bastion_sg = self.sg("bastion_sg", "bastion-sg", vpc, [_tcp(
                22, PrefixListIds=[{"PrefixListId": admins}],
                Ipv6Ranges=[{"CidrIpv6": "2001:db8::/32"}])])
            web_rules = [_tcp(22, PrefixListIds=[{"PrefixListId": subnet_list}])]
            acl = ec2.describe_network_acls(Filters=[
                {"Name": "vpc-id", "Values": [vpc]}, {"Name": "default", "Values": ["true"]},
            ])["NetworkAcls"][0]["NetworkAclId"]
            for egress in (False, True):
                ec2.create_network_acl_entry(
                    NetworkAclId=acl, RuleNumber=101, Protocol="-1", RuleAction="allow",
                    Egress=egress, Ipv6CidrBlock="::/0")
        else:
            if s.bastion:
                bastion_sg = self.sg("bastion_sg", "bastion-sg", vpc,
                                     [_tcp(22, IpRanges=[{"CidrIp": s.bastion_ssh_from}])])
            if s.web_ssh_from_cidr:
                web_rules = [_tcp(22, IpRanges=[{"CidrIp": s.web_ssh_from_cidr}])]
            elif s.web_ssh_from_eice_subnet:
                web_rules = [_tcp(22, IpRanges=[{"CidrIp": f"{net}.2.0/24"}])]
            else:
                source = bastion_sg or eice_sg
                web_rules = [_tcp(22, UserIdGroupPairs=[{"GroupId": source}])] if source else []
        web_sg = self.sg("target_sg", "web-sg", vpc, web_rules)

        if s.nat == "gateway":
            eip = ec2.allocate_address(
                Domain="vpc", TagSpecifications=self.tags("elastic-ip", "nat_eip", "nat-eip"),
            )["AllocationId"]
            nat = ec2.create_nat_gateway(
                SubnetId=subnet["public"], AllocationId=eip,
                TagSpecifications=self.tags("natgateway", "nat", "nat"),
            )["NatGateway"]["NatGatewayId"]
            self.default_route(rtb["private"], NatGatewayId=nat)
        elif s.nat == "instance":
            nat_sg = self.sg("nat_sg", "nat-sg", vpc,
                             [_tcp(p, IpRanges=[{"CidrIp": f"{net}.1.0/24"}]) for p in (80, 443)])
            nat_instance = self.run("nat_instance", "nat", subnet["public"], nat_sg, f"{net}.0.20")
            if not s.nat_source_dest_check:
                ec2.modify_instance_attribute(
                    InstanceId=nat_instance, SourceDestCheck={"Value": False})
            self.default_route(rtb["private"], InstanceId=nat_instance)

        if bastion_sg:
            # Without a public IP: auto-assign off for this one launch (the console's "Auto-assign
            # public IP: Disable"), not NetworkInterfaces=[{AssociatePublicIpAddress: False}],
            # which makes moto leave the instance's SecurityGroups empty.
            self.map_public_ip(subnet["public"], s.bastion_public_ip)
            self.run("bastion", "bastion", subnet["public"], bastion_sg, f"{net}.0.10",
                     extra_tags={"hop:role": "bastion"})
            self.map_public_ip(subnet["public"], True)
        self.run("target", "web", subnet["private"], web_sg, f"{net}.1.10", profile=s.profile,
                 key=not s.eice, instance_type=s.instance_type)
        if s.eice:
            ec2.create_instance_connect_endpoint(
                SubnetId=eice_subnet, SecurityGroupIds=[eice_sg],
                PreserveClientIp=s.eice_preserve_ip,
                TagSpecifications=self.tags("instance-connect-endpoint", "eice", "eice"))

        endpoints: dict[str, dict[str, Any]] = {}
        if s.interface_endpoints:
            endpoint_sg = self.sg("endpoint_sg", "endpoint-sg", vpc,
                                  [_tcp(443, IpRanges=[{"CidrIp": vpc_cidr}])])
            endpoints = {svc: {"VpcEndpointType": "Interface", "SubnetIds": [subnet["private"]],
                               "SecurityGroupIds": [endpoint_sg], "PrivateDnsEnabled": True}
                         for svc in INTERFACE_SERVICES}
        if s.s3_endpoint:
            endpoints["s3"] = {"VpcEndpointType": "Gateway", "RouteTableIds": [rtb["private"]]}
        for svc, kwargs in endpoints.items():
            ec2.create_vpc_endpoint(
                VpcId=vpc, ServiceName=f"com.amazonaws.{self.region}.{svc}", **kwargs,
                TagSpecifications=self.tags("vpc-endpoint", f"endpoint:{svc}", f"vpce-{svc}"))

        if not s.igw_attached:  # with its 0.0.0.0/0 route in place (moto allows it)
            ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": TAG, "Value": f"{self.name}/vpc"}])


# (describe method, its filter parameter, list key, id key) per tagged resource kind
KINDS = (
    ("describe_vpcs", "Filters", "Vpcs", "VpcId"),
    ("describe_subnets", "Filters", "Subnets", "SubnetId"),
    ("describe_route_tables", "Filters", "RouteTables", "RouteTableId"),
    ("describe_internet_gateways", "Filters", "InternetGateways", "InternetGatewayId"),
    ("describe_nat_gateways", "Filter", "NatGateways", "NatGatewayId"),
    ("describe_addresses", "Filters", "Addresses", "AllocationId"),
    ("describe_security_groups", "Filters", "SecurityGroups", "GroupId"),
    ("describe_vpc_endpoints", "Filters", "VpcEndpoints", "VpcEndpointId"),
    ("describe_instance_connect_endpoints", "Filters", "InstanceConnectEndpoints",
     "InstanceConnectEndpointId"),
)
TAG_FILTER = [{"Name": "tag-key", "Values": [TAG]}]


def _empty(name: str) -> dict[str, Any]:
    keys = ("vpc", "vpc_cidr", "public_subnet", "private_subnet", "public_route_table",
            "private_route_table", "igw", "nat", "nat_eip", "nat_instance", "nat_sg",
            "bastion", "bastion_name", "bastion_private_ip", "bastion_public_ip", "bastion_sg",
            "target", "target_name", "target_private_ip", "target_sg", "endpoint_sg",
            "eice", "eice_sg", "eice_subnet", "eice_subnet_cidr")
    out: dict[str, Any] = dict.fromkeys(keys)
    out.update(key_name=KEY_NAME, endpoints={},
               instance_profile=PROFILE if SCENARIOS[name].profile else None)
    return out


def _tagged(items: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(scenario, role, item) for each item this module tagged."""
    for item in items:
        for t in item.get("Tags") or []:
            scenario, _, role = t["Value"].partition("/")
            if t["Key"] == TAG and scenario in SCENARIOS and item.get("State") != "deleted":
                yield scenario, role, item


def collect(ec2: Any) -> dict[str, dict[str, Any]]:
    """Every scenario's ids, read back from the tags. Fails loudly when moto did not give a
    scenario the thing it is about (so a moto upgrade shows up here, not in hop's tests)."""
    out = {name: _empty(name) for name in SCENARIOS}
    for method, param, list_key, id_key in KINDS:
        for name, role, item in _tagged(getattr(ec2, method)(**{param: TAG_FILTER})[list_key]):
            o = out[name]
            if role.startswith("endpoint:"):
                o["endpoints"][role.split(":", 1)[1]] = item[id_key]
                continue
            o[role] = item[id_key]
            if role == "vpc":
                o["vpc_cidr"] = item["CidrBlock"]
            if role == "eice_subnet":
                o["eice_subnet_cidr"] = item["CidrBlock"]
            if role == "nat" and item["State"] != "available":
                raise SystemExit(f"doctor_topologies: NAT gateway {o[role]} is {item['State']}")
    live = TAG_FILTER + [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    pages = ec2.get_paginator("describe_instances").paginate(Filters=live)
    source_dest_check: dict[str, bool] = {}
    for name, role, inst in _tagged(
            [i for page in pages for r in page["Reservations"] for i in r["Instances"]]):
        o = out[name]
        o[role] = inst["InstanceId"]
        if role in ("bastion", "target"):
            o[f"{role}_name"] = next(t["Value"] for t in inst["Tags"] if t["Key"] == "Name")
            o[f"{role}_private_ip"] = inst.get("PrivateIpAddress")
        if role == "bastion":
            o["bastion_public_ip"] = inst.get("PublicIpAddress")
        if role == "nat_instance":
            source_dest_check[name] = inst["SourceDestCheck"]
    for name, s in SCENARIOS.items():
        o = out[name]
        if (not (o["vpc"] and o["target"] and o["target_sg"])
                or (s.eice and not (o["eice"] and o["eice_sg"] and o["eice_subnet"]))
                or (s.bastion and bool(o["bastion_public_ip"]) != s.bastion_public_ip)
                or (s.nat == "instance"
                    and source_dest_check.get(name) != s.nat_source_dest_check)):
            raise SystemExit(f"doctor_topologies: {name} is not as built: {json.dumps(o)}")
    return out


def build_all(endpoint: str, region: str) -> dict[str, Any]:
    """Builds every scenario not complete yet, then reports all of them."""
    if region in FORBIDDEN_REGIONS:
        raise SystemExit(f"doctor_topologies: other tests list {region}; use another region")
    ec2 = ec2_client(endpoint, region)  # also checks loopback and bypasses proxies
    iam = boto3.client("iam", region_name=region, endpoint_url=endpoint,
                       config=Config(retries={"total_max_attempts": 1}), **CREDENTIALS)
    ec2.describe_availability_zones()  # builds the region's backend
    ensure_shared(ec2, iam)
    done = {t["Value"] for v in ec2.describe_vpcs(Filters=TAG_FILTER)["Vpcs"]
            for t in v["Tags"] if t["Key"] == TAG}
    for index, (name, scenario) in enumerate(SCENARIOS.items()):
        if f"{name}/building" in done:
            raise SystemExit(f"doctor_topologies: {name} is half built; reset the moto server")
        if f"{name}/vpc" not in done:
            _Builder(ec2, region, name, index).build(scenario)
    scenarios = collect(ec2)
    for name, s in SCENARIOS.items():
        if s.eice_state:
            _eice_state(endpoint, scenarios[name]["eice"], s.eice_state)
    return {"region": region, "my_ip": MY_IP, "scenarios": scenarios}


def _eice_state(endpoint: str, eice_id: str, state: str) -> None:
    """The endpoint's state, in moto and the fake alike (fake_eice.py's state knob): the patched
    API creates endpoints create-complete only. A knob reset restores the state, so this runs on
    every call."""
    body = json.dumps({"endpoint": eice_id, "state": state}).encode()
    req = urllib.request.Request(f"{endpoint}/__fake_eice/knobs", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with opener.open(req, timeout=30) as answer:
        if answer.status != 200:
            raise SystemExit(f"doctor_topologies: the state knob answered {answer.status}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto endpoint, http://127.0.0.1:N")
    ap.add_argument("--region", default=REGION, help=f"default {REGION}")
    args = ap.parse_args(argv)
    print(json.dumps(build_all(args.endpoint.rstrip("/"), args.region)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
