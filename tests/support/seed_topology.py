"""Builds hop's fixed EC2 test topology in a running moto server.

Used by moto_lab.py --seed, and importable by demo scripts:

    from seed_topology import seed
    state = seed("http://127.0.0.1:PORT")

The topology is described in DESIGN.md section 12 and in the brief this file
was written from; the names below are what hop's tests match on, so change
them only together with the tests. The EC2 Instance Connect part (sample-eice-vpc,
_seed_eice) needs the endpoint actions moto_lab.py patches into moto, so seed() runs only
against moto_lab.py, not a plain moto server.

Determinism: seed() resets moto and seeds its RNG before creating anything,
then issues the same calls in the same order every time, so resource ids are
stable from run to run. Public addresses are only stable (203.0.113.10, ...)
when the server is moto_lab.py, which replaces moto's address generators and
rewinds them on every /moto-api/reset.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

RANDOM_SEED = 42
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# ami-785db401 (Ubuntu 16.04) is in moto's region-independent AMI list, so it
# exists in every region; a Linux image keeps Platform/PlatformDetails unset,
# as for the hosts hop really targets.
AMI_ID = "ami-785db401"
INSTANCE_TYPE = "t3.micro"

# Any valid ed25519 public keys do: EC2 key pairs are only metadata here, the
# SSH fixtures make their own keys for sshd.
PUBLIC_KEYS = {
    "sample-bastion": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFpRC2MIcDvFnkn2KmBhmoMJFj6pOWBndj6urtBePJJq hop-testbed",
    "sample-web": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEy051KCS4mJtMdIWamafq+cIC/F+Wqbug4wNtC03+5p hop-testbed",
}

FLEET_REGION = "us-west-2"
FLEET_SIZE = 150
# One reservation per run_instances call. moto pages DescribeInstances by reservation, 100 to a
# page when no MaxResults is given (hop gives none: real AWS then answers in as few pages as it
# can), so the fleet needs more than 100 reservations to span two pages: 100 single-instance
# reservations, then the rest in batches of 10 (105 reservations, 106 with the bastion).
FLEET_SINGLES = 100
FLEET_BATCH = 10


def _check_loopback(endpoint: str) -> None:
    # The test bed must never talk to anything but this machine.
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing to seed non-loopback endpoint {endpoint!r}")


def _bypass_proxies_for_loopback() -> None:
    # botocore honours HTTP(S)_PROXY from the environment; make sure a proxy
    # configured for package registries never sees our loopback traffic.
    for var in ("NO_PROXY", "no_proxy"):
        entries = [e for e in os.environ.get(var, "").split(",") if e]
        for host in ("127.0.0.1", "localhost"):
            if host not in entries:
                entries.append(host)
        os.environ[var] = ",".join(entries)


def _moto_api(endpoint: str, path: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(endpoint + path, data=b"", method="POST")
    with opener.open(req, timeout=60) as resp:
        resp.read()


def ec2_client(endpoint: str, region: str) -> Any:
    """An EC2 client for the emulator.

    Retries are off: moto answers unimplemented filters with HTTP 500, which
    the SDK would otherwise retry for seconds before failing.
    """
    _check_loopback(endpoint)
    _bypass_proxies_for_loopback()
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            # moto loads its EC2 models on the first call (several seconds).
            read_timeout=120,
        ),
        **CREDENTIALS,
    )


def _tag_spec(resource_type: str, name: str, **extra: str) -> list[dict[str, Any]]:
    tags = [{"Key": "Name", "Value": name}]
    tags += [{"Key": k, "Value": v} for k, v in extra.items()]
    return [{"ResourceType": resource_type, "Tags": tags}]


class _Region:
    """Thin helpers over one region's client so the topology reads like a list."""

    def __init__(self, endpoint: str, region: str):
        self.region = region
        self.ec2 = ec2_client(endpoint, region)
        # Launch order, as (name, instance id); names may repeat.
        self.launched: list[tuple[str, str]] = []
        self.vpcs: dict[str, str] = {}

    def warm_up(self) -> None:
        # The first call in a region builds its backend (default VPC, AMIs).
        self.ec2.describe_availability_zones()

    def key_pairs(self) -> None:
        for name, key in PUBLIC_KEYS.items():
            self.ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key.encode())

    def vpc(self, name: str, cidr: str) -> str:
        vpc = self._vpc(name, cidr)
        self.vpcs[name] = vpc
        return vpc

    def _vpc(self, name: str, cidr: str) -> str:
        vpc = self.ec2.create_vpc(
            CidrBlock=cidr, TagSpecifications=_tag_spec("vpc", name)
        )["Vpc"]["VpcId"]
        # Real VPCs made by the console have these on; hop may rely on DNS names.
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        return vpc

    def igw(self, name: str, vpc: str) -> str:
        igw = self.ec2.create_internet_gateway(
            TagSpecifications=_tag_spec("internet-gateway", name)
        )["InternetGateway"]["InternetGatewayId"]
        self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        return igw

    def subnet(self, name: str, vpc: str, cidr: str, az: str, public: bool) -> str:
        subnet = self.ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=cidr,
            AvailabilityZone=az,
            TagSpecifications=_tag_spec("subnet", name),
        )["Subnet"]["SubnetId"]
        if public:
            # Public IPs come from the subnet's MapPublicIpOnLaunch, which lets
            # every launch use the plain SubnetId/SecurityGroupIds style.
            self.ec2.modify_subnet_attribute(
                SubnetId=subnet, MapPublicIpOnLaunch={"Value": True}
            )
        return subnet

    def route_table(
        self, name: str, vpc: str, subnets: list[str], **default_route: str
    ) -> str:
        """A route table whose 0.0.0.0/0 goes to GatewayId= or NatGatewayId=."""
        rtb = self.ec2.create_route_table(
            VpcId=vpc, TagSpecifications=_tag_spec("route-table", name)
        )["RouteTable"]["RouteTableId"]
        self.ec2.create_route(
            RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", **default_route
        )
        for subnet in subnets:
            self.ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
        return rtb

    def security_group(
        self, name: str, vpc: str, description: str, ssh_from: dict[str, Any]
    ) -> str:
        """A group allowing tcp/22 from `ssh_from`, an IpPermissions fragment
        such as {"IpRanges": [...]} or {"UserIdGroupPairs": [...]}."""
        sg = self.ec2.create_security_group(
            GroupName=name,
            Description=description,
            VpcId=vpc,
            TagSpecifications=_tag_spec("security-group", name),
        )["GroupId"]
        self.ec2.authorize_security_group_ingress(
            GroupId=sg,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, **ssh_from}
            ],
        )
        return sg

    def run(
        self,
        name: str,
        subnet: str,
        security_groups: list[str],
        key_name: str | None = None,
        private_ip: str | None = None,
        count: int = 1,
        **tags: str,
    ) -> list[str]:
        """Launches `count` instances named `name` in one reservation."""
        kwargs: dict[str, Any] = {
            "ImageId": AMI_ID,
            "InstanceType": INSTANCE_TYPE,
            "MinCount": count,
            "MaxCount": count,
            "SubnetId": subnet,
            "SecurityGroupIds": security_groups,
            "TagSpecifications": _tag_spec("instance", name, **tags),
        }
        if key_name:
            kwargs["KeyName"] = key_name
        if private_ip:
            kwargs["PrivateIpAddress"] = private_ip
        ids = [i["InstanceId"] for i in self.ec2.run_instances(**kwargs)["Instances"]]
        self.launched += [(name, i) for i in ids]
        return ids

    def describe(self) -> dict[str, dict[str, Any]]:
        """Final view of every instance in the region, by instance id."""
        out = {}
        for page in self.ec2.get_paginator("describe_instances").paginate():
            for reservation in page["Reservations"]:
                for inst in reservation["Instances"]:
                    out[inst["InstanceId"]] = {
                        "id": inst["InstanceId"],
                        "region": self.region,
                        "private_ip": inst.get("PrivateIpAddress"),
                        "public_ip": inst.get("PublicIpAddress"),
                        "state": inst["State"]["Name"],
                    }
        return out


def _seed_us_east_1(r: _Region) -> None:
    # The NAT's EIP is the first address allocated: 198.51.100.10.
    nat_eip = r.ec2.allocate_address(
        Domain="vpc", TagSpecifications=_tag_spec("elastic-ip", "sample-nat-eip")
    )["AllocationId"]

    # sample-dev: the classic bastion -> private web layout.
    dev = r.vpc("sample-dev", "10.0.0.0/16")
    dev_igw = r.igw("sample-igw", dev)
    public = r.subnet("public-subnet", dev, "10.0.0.0/24", "us-east-1a", public=True)
    private = r.subnet("private-subnet", dev, "10.0.1.0/24", "us-east-1a", public=False)
    private_b = r.subnet("private-subnet-b", dev, "10.0.2.0/24", "us-east-1b", public=False)
    nat = r.ec2.create_nat_gateway(
        SubnetId=public,
        AllocationId=nat_eip,
        TagSpecifications=_tag_spec("natgateway", "sample-nat"),
    )["NatGateway"]["NatGatewayId"]
    r.route_table("public-route", dev, [public], GatewayId=dev_igw)
    r.route_table("private-route", dev, [private, private_b], NatGatewayId=nat)

    sg_bastion = r.security_group(
        "sample-bastion", dev, "SSH from the admin address",
        {"IpRanges": [{"CidrIp": "192.0.2.10/32"}]},
    )
    sg_web = r.security_group(
        "sample-web", dev, "SSH from the bastion",
        {"UserIdGroupPairs": [{"GroupId": sg_bastion}]},
    )

    # Launch order fixes the public addresses: this is 203.0.113.10.
    r.run("sample-bastion", public, [sg_bastion], key_name="sample-bastion")
    r.run("sample-web", private, [sg_web], key_name="sample-web", private_ip="10.0.1.10")
    # Same Name twice, in two reservations and two AZs: hop must disambiguate.
    r.run("sample-api", private, [sg_web], key_name="sample-web")
    r.run("sample-api", private_b, [sg_web], key_name="sample-web")
    (old,) = r.run("sample-old", private, [sg_web], key_name="sample-web")
    r.ec2.stop_instances(InstanceIds=[old])

    # sample-ssm: no way in but SSM.
    ssm = r.vpc("sample-ssm", "10.1.0.0/16")
    ssm_private = r.subnet("ssm-private", ssm, "10.1.1.0/24", "us-east-1a", public=False)
    ssm_sg = r.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [ssm]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    r.run("sample-worker", ssm_private, [ssm_sg], **{"hop:user": "ssm-user"})

    # sample-tagged: the bastion is found by tag, not by name.
    tagged = r.vpc("sample-tagged", "10.2.0.0/16")
    tagged_igw = r.igw("sample-tagged-igw", tagged)
    edge_public = r.subnet("edge-public", tagged, "10.2.0.0/24", "us-east-1a", public=True)
    edge_private = r.subnet("edge-private", tagged, "10.2.1.0/24", "us-east-1a", public=False)
    r.route_table("edge-public-route", tagged, [edge_public], GatewayId=tagged_igw)
    tagged_sg = r.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [tagged]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    # Second public address: 203.0.113.11.
    r.run("edge-jump", edge_public, [tagged_sg], key_name="sample-bastion", **{"hop:role": "bastion"})
    r.run("sample-app", edge_private, [tagged_sg], key_name="sample-web", **{"hop:user": "ubuntu"})


def _seed_us_west_2(r: _Region) -> None:
    # Enough instances and reservations to exercise pagination.
    vpc = r.vpc("fleet", "10.3.0.0/16")
    igw = r.igw("fleet-igw", vpc)
    public = r.subnet("fleet-public", vpc, "10.3.0.0/24", "us-west-2a", public=True)
    private = r.subnet("fleet-private", vpc, "10.3.1.0/24", "us-west-2a", public=False)
    r.route_table("fleet-public-route", vpc, [public], GatewayId=igw)
    sg = r.security_group(
        "fleet-bastion", vpc, "SSH from the admin address",
        {"IpRanges": [{"CidrIp": "192.0.2.10/32"}]},
    )
    r.run("fleet-bastion", public, [sg], key_name="sample-bastion")

    sizes = [1] * FLEET_SINGLES + [FLEET_BATCH] * ((FLEET_SIZE - FLEET_SINGLES) // FLEET_BATCH)
    assert sum(sizes) == FLEET_SIZE
    first = 0
    for size in sizes:
        # Tag specifications apply one Name to the whole reservation; each
        # instance then gets its own Name (create_tags sets one value per call).
        ids = r.run(
            "fleet", private, [sg], key_name="sample-web",
            count=size, Environment="fleet",
        )
        for k, instance_id in enumerate(ids):
            r.ec2.create_tags(
                Resources=[instance_id],
                Tags=[{"Key": "Name", "Value": f"fleet-{first + k:03d}"}],
            )
        first += size


def _seed_eu_west_1(r: _Region) -> None:
    vpc = r.vpc("eu-dev", "10.4.0.0/16")
    igw = r.igw("eu-igw", vpc)
    public = r.subnet("eu-public", vpc, "10.4.0.0/24", "eu-west-1a", public=True)
    private = r.subnet("eu-private", vpc, "10.4.1.0/24", "eu-west-1a", public=False)
    r.route_table("eu-public-route", vpc, [public], GatewayId=igw)
    sg_bastion = r.security_group(
        "eu-bastion", vpc, "SSH from the admin address",
        {"IpRanges": [{"CidrIp": "192.0.2.10/32"}]},
    )
    sg_web = r.security_group(
        "eu-web", vpc, "SSH from the bastion",
        {"UserIdGroupPairs": [{"GroupId": sg_bastion}]},
    )
    r.run("eu-bastion", public, [sg_bastion], key_name="sample-bastion")
    r.run("eu-web", private, [sg_web], key_name="sample-web")


def _ssm_ready(endpoint: str, r: _Region) -> None:
    """sample-ssm as Session Manager needs it (`hop doctor sample-worker` passes): interface
    endpoints ssm, ssmmessages and ec2messages with private DNS and 443 from the VPC, and an
    instance profile on sample-worker."""
    vpc = r.ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["sample-ssm"]}])["Vpcs"][0]["VpcId"]
    subnet = r.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    sg = r.ec2.create_security_group(GroupName="ssm-endpoints", Description="HTTPS from the VPC", VpcId=vpc)["GroupId"]
    r.ec2.authorize_security_group_ingress(
        GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                    "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}]
    )
    for service in ("ssm", "ssmmessages", "ec2messages"):
        r.ec2.create_vpc_endpoint(
            VpcId=vpc, VpcEndpointType="Interface", ServiceName=f"com.amazonaws.{r.region}.{service}",
            SubnetIds=[subnet], SecurityGroupIds=[sg], PrivateDnsEnabled=True,
        )
    iam = boto3.client("iam", region_name=r.region, endpoint_url=endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    iam.create_role(RoleName="sample-ssm-role", AssumeRolePolicyDocument=trust)
    iam.create_instance_profile(InstanceProfileName="sample-ssm-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="sample-ssm-profile", RoleName="sample-ssm-role")
    worker = next(i for name, i in r.launched if name == "sample-worker")
    r.ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "sample-ssm-profile"}, InstanceId=worker)


def _seed_eice(r: _Region) -> dict[str, dict[str, str]]:
    """sample-eice-vpc: no bastion, no SSM, two EC2 Instance Connect Endpoints, and
    sample-eice-web launched without a key pair (spec ec2-instance-connect.md part D). The
    endpoint actions are moto_lab's patches (fake_eice.py). Returns the endpoints by Name:
    {"id", "dns_name", "fips_dns_name", "subnet_id", "sg"}."""
    vpc = r.vpc("sample-eice-vpc", "10.1.0.0/16")
    subnet_a = r.subnet("sample-eice-a", vpc, "10.1.1.0/24", "us-east-1a", public=False)
    subnet_b = r.subnet("sample-eice-b", vpc, "10.1.2.0/24", "us-east-1b", public=False)
    ep_sg = r.ec2.create_security_group(
        GroupName="sample-eice-ep-sg", Description="EICE: SSH out to the VPC", VpcId=vpc,
        TagSpecifications=_tag_spec("security-group", "sample-eice-ep-sg"),
    )["GroupId"]
    # Only TCP 22 to the VPC leaves the endpoint (a new group allows all egress by default).
    r.ec2.revoke_security_group_egress(
        GroupId=ep_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    r.ec2.authorize_security_group_egress(
        GroupId=ep_sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                       "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}]
    )
    web_sg = r.security_group(
        "sample-eice-web-sg", vpc, "SSH from the EICE",
        {"UserIdGroupPairs": [{"GroupId": ep_sg}]},
    )
    r.run("sample-eice-web", subnet_a, [web_sg], private_ip="10.1.1.10")
    endpoints: dict[str, dict[str, str]] = {}
    for name, subnet in (("sample-eice-a", subnet_a), ("sample-eice-b", subnet_b)):
        e = r.ec2.create_instance_connect_endpoint(
            SubnetId=subnet, SecurityGroupIds=[ep_sg], PreserveClientIp=False,
            TagSpecifications=_tag_spec("instance-connect-endpoint", name),
        )["InstanceConnectEndpoint"]
        endpoints[name] = {"id": e["InstanceConnectEndpointId"], "dns_name": e["DnsName"],
                           "fips_dns_name": e["FipsDnsName"], "subnet_id": subnet, "sg": ep_sg}
    return endpoints


def seed(endpoint: str, random_seed: int = RANDOM_SEED) -> dict[str, Any]:
    """Resets the server at `endpoint` and builds the topology.

    Returns {"instances": {key: {id, region, private_ip, public_ip, state}},
    "vpcs": {Name: vpc id},
    "fleet": {"region", "count", "name_prefix"},
    "eice": {"endpoints": {Name: {id, dns_name, fips_dns_name, subnet_id, sg}}}}, where key is the Name tag,
    or "Name#k" (k = 1, 2, ... in launch order) when several instances share
    a Name. The fleet-NNN instances are summarised by "fleet", not listed.
    """
    _check_loopback(endpoint)
    endpoint = endpoint.rstrip("/")
    _moto_api(endpoint, "/moto-api/reset")
    _moto_api(endpoint, f"/moto-api/seed?a={int(random_seed)}")

    regions = [
        (_Region(endpoint, "us-east-1"), _seed_us_east_1),
        (_Region(endpoint, FLEET_REGION), _seed_us_west_2),
        (_Region(endpoint, "eu-west-1"), _seed_eu_west_1),
    ]
    # Region order matters: it is also the order public addresses are handed out.
    for r, build in regions:
        r.warm_up()
        r.key_pairs()
        build(r)
    # Last, so every id above stays what it was: what Session Manager needs in sample-ssm,
    # then the EC2 Instance Connect VPC.
    _ssm_ready(endpoint, regions[0][0])
    eice_endpoints = _seed_eice(regions[0][0])

    launched: list[tuple[str, dict[str, Any]]] = []
    fleet_count = 0
    for r, _ in regions:
        described = r.describe()
        for name, instance_id in r.launched:
            if name == "fleet":
                fleet_count += 1
            else:
                launched.append((name, described[instance_id]))

    totals: dict[str, int] = {}
    for name, _ in launched:
        totals[name] = totals.get(name, 0) + 1
    instances: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for name, info in launched:
        seen[name] = seen.get(name, 0) + 1
        key = name if totals[name] == 1 else f"{name}#{seen[name]}"
        instances[key] = info

    vpcs = {name: vpc for r, _ in regions for name, vpc in r.vpcs.items()}
    return {
        "instances": instances,
        "vpcs": vpcs,
        "fleet": {"region": FLEET_REGION, "count": fleet_count, "name_prefix": "fleet-"},
        "eice": {"endpoints": eice_endpoints},
    }
