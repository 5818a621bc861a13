#!/usr/bin/env python3
"""End-to-end check of the EC2 Instance Connect part of the bed, without hop and without root.

    python eice_check.py [--verbose]

Starts moto_lab.py --seed (port 0, fake EICE on a free port, a temporary key store, and
--eice-dial sending sample-eice-web's 10.1.1.10:22 to an echo server on loopback), then with
boto3/botocore only:
  1. DescribeInstanceConnectEndpoints: both seeded endpoints with the seeded fields, the
     filters of spec §A.2 (vpc-id, subnet-id, state, tag:Name, ids), an unknown id, no endpoint
     in the other VPCs or regions, pagination with the describe_page_size knob, the per-region
     call count of GET /__fake_eice/calls; Modify → update-complete; Create + Delete.
  2. SendSSHPublicKey (the ec2-instance-connect client, retries off): a push lands in the store
     as a §B.2 block and in GET /__fake_eic/pushes; a stopped instance, an unknown instance, a
     bad user name and the fail knob answer their errors.
  3. openTunnel: a URL presigned by botocore's SigV4QueryAuth (the CLI's recipe: expires 60,
     signing name ec2-instance-connect, host = the DNS name) over TLS with SNI = the DNS name and
     the lab CA → 101 and bytes echoed; one flipped signature character → 403; port 80 → 400
     with the §D.3 body; every tunnel recorded in GET /__fake_eice/tunnels.
  4. POST /moto-api/reset empties the endpoint registry.
Prints one "ok" line per step; exits 1 on the first failure. Run by tests/bed_eice.rs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_eice import BAD_PORT_BODY, open_tunnel  # noqa: E402
from fake_ssm import BINARY  # noqa: E402

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbDDoVGFjujC3ZQFvstTDHc9nnnaoKxnJxbONlyAh6b"


def start_echo() -> int:
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    started = threading.Event()

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        w.close()

    def run() -> None:
        server = loop.run_until_complete(asyncio.start_server(echo, "127.0.0.1", 0))
        ready.append(server.sockets[0].getsockname()[1])
        started.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    if not started.wait(10):
        raise RuntimeError("echo server did not start")
    return ready[0]


def admin(endpoint: str, path: str, body: dict[str, Any] | None = None) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoint + path, data=data,
                                 method="GET" if body is None else "POST")
    with opener.open(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def presign_with_botocore(dns: str, endpoint_id: str, ip: str, port: int) -> str:
    """As the AWS CLI's InstanceConnectEndpointRequestSigner: the operation parameters
    url-encoded in order, botocore's SigV4QueryAuth appends the auth part."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    query = urlencode({"instanceConnectEndpointId": endpoint_id, "remotePort": port,
                       "privateIpAddress": ip, "maxTunnelDuration": 3600})
    req = AWSRequest(method="GET", url=f"wss://{dns}/openTunnel?{query}")
    SigV4QueryAuth(Credentials("testing", "testing"), "ec2-instance-connect", "us-east-1",
                   expires=60).add_auth(req)
    u = urlsplit(req.url)
    assert u.netloc == dns and "X-Amz-Expires=60" in u.query, req.url
    return f"{u.path}?{u.query}"


def check(state: dict[str, Any], store: Path) -> list[str]:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    out: list[str] = []
    endpoint = state["endpoint"]
    kw: dict[str, Any] = dict(endpoint_url=endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing",
                              config=Config(retries={"total_max_attempts": 1}))
    ec2 = boto3.client("ec2", region_name="us-east-1", **kw)
    eps = state["eice"]["endpoints"]
    a, b = eps["sample-eice-a"], eps["sample-eice-b"]
    vpc = state["vpcs"]["sample-eice-vpc"]

    # 1. describe
    got = ec2.describe_instance_connect_endpoints()["InstanceConnectEndpoints"]
    assert [e["InstanceConnectEndpointId"] for e in got] == [a["id"], b["id"]], got
    e = got[0]
    assert (e["State"], e["VpcId"], e["SubnetId"], e["DnsName"], e["FipsDnsName"],
            e["SecurityGroupIds"], e["PreserveClientIp"], e["IpAddressType"],
            e["AvailabilityZone"]) == ("create-complete", vpc, a["subnet_id"], a["dns_name"],
                                       a["fips_dns_name"], [a["sg"]], False, "ipv4",
                                       "us-east-1a"), e
    assert {"Key": "Name", "Value": "sample-eice-a"} in e["Tags"] and e["CreatedAt"]
    assert e["DnsName"].startswith(a["id"] + ".") and \
        e["DnsName"].endswith(".ec2-instance-connect-endpoint.us-east-1.amazonaws.com")

    def ids(**kwargs: Any) -> list[str]:
        return [x["InstanceConnectEndpointId"] for x in
                ec2.describe_instance_connect_endpoints(**kwargs)["InstanceConnectEndpoints"]]
    usable = ["create-complete", "update-in-progress", "update-complete", "update-failed"]
    assert ids(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                        {"Name": "state", "Values": usable}]) == [a["id"], b["id"]]
    assert ids(Filters=[{"Name": "subnet-id", "Values": [b["subnet_id"]]}]) == [b["id"]]
    assert ids(Filters=[{"Name": "tag:Name", "Values": ["sample-eice-a"]}]) == [a["id"]]
    assert ids(InstanceConnectEndpointIds=[b["id"]]) == [b["id"]]
    assert ids(Filters=[{"Name": "vpc-id", "Values": [state["vpcs"]["sample-dev"]]}]) == []
    assert ids(Filters=[{"Name": "state", "Values": ["delete-complete"]}]) == []
    try:
        ids(InstanceConnectEndpointIds=["eice-00000000000000000"])
        raise AssertionError("unknown endpoint id accepted")
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidInstanceConnectEndpointId.NotFound"
    eu = boto3.client("ec2", region_name="eu-west-1", **kw)
    assert eu.describe_instance_connect_endpoints()["InstanceConnectEndpoints"] == []
    admin(endpoint, "/__fake_eice/knobs", {"reset": True, "describe_page_size": 1})
    pages = list(ec2.get_paginator("describe_instance_connect_endpoints").paginate())
    assert [len(p["InstanceConnectEndpoints"]) for p in pages] == [1, 1], pages
    calls = admin(endpoint, "/__fake_eice/calls")
    assert calls["describe"] == {"us-east-1": 2}, calls
    assert calls["requests"][1]["next_token"], calls
    admin(endpoint, "/__fake_eice/knobs", {"reset": True})
    ec2.modify_instance_connect_endpoint(InstanceConnectEndpointId=b["id"],
                                         PreserveClientIp=True)
    assert ec2.describe_instance_connect_endpoints(InstanceConnectEndpointIds=[b["id"]])[
        "InstanceConnectEndpoints"][0]["State"] == "update-complete"
    made = ec2.create_instance_connect_endpoint(SubnetId=b["subnet_id"])[
        "InstanceConnectEndpoint"]
    assert made["SecurityGroupIds"] and made["State"] == "create-complete"
    ec2.delete_instance_connect_endpoint(InstanceConnectEndpointId=made["InstanceConnectEndpointId"])
    assert len(ids()) == 2
    out.append("DescribeInstanceConnectEndpoints: seeded fields, filters vpc-id/state/"
               "subnet-id/tag:Name/ids, unknown id, no endpoint elsewhere, 2 pages of 1 with "
               "describe_page_size=1 counted as 2 us-east-1 calls; Modify, Create, Delete")

    # 2. key push
    eic = boto3.client("ec2-instance-connect", region_name="us-east-1", **kw)
    web = state["instances"]["sample-eice-web"]["id"]
    r = eic.send_ssh_public_key(InstanceId=web, InstanceOSUser="ec2-user", SSHPublicKey=ED25519)
    assert r["Success"] is True and r["RequestId"]
    text = (store / web / "ec2-user").read_text()
    assert text.endswith(f"#Instance={web}\n#Caller=arn:aws:iam::123456789012:user/testing\n"
                         f"#Request={r['RequestId']}\n{ED25519}\n\n"), text
    pushes = admin(endpoint, "/__fake_eic/pushes")
    assert [(p["instance_id"], p["os_user"], p["public_key"]) for p in pushes] == [
        (web, "ec2-user", ED25519)] and 59 <= pushes[0]["expires"] - pushes[0]["at"] <= 60
    errors = []
    admin(endpoint, "/__fake_eic/knobs", {"fail": {"error": "ThrottlingException", "count": 1}})
    for kwargs, want in (
            ({"InstanceId": web}, "ThrottlingException"),
            ({"InstanceId": state["instances"]["sample-old"]["id"]},
             "EC2InstanceStateInvalidException"),
            ({"InstanceId": "i-0000000000000beef"}, "EC2InstanceNotFoundException"),
            ({"InstanceId": web, "InstanceOSUser": "no user"}, "InvalidArgsException")):
        try:
            eic.send_ssh_public_key(**{"InstanceOSUser": "ec2-user", "SSHPublicKey": ED25519,
                                       **kwargs})
            raise AssertionError(f"{kwargs} accepted")
        except ClientError as err:
            assert err.response["Error"]["Code"] == want, (kwargs, err.response)
            errors.append(want)
    assert len(admin(endpoint, "/__fake_eic/pushes")) == 1
    out.append(f"SendSSHPublicKey: block in {store}/{web}/ec2-user, recorded; errors " +
               ", ".join(errors))

    # 3. the tunnel
    ca, port = Path(state["eice"]["ca"]), state["eice"]["port"]
    admin(endpoint, "/__fake_eice/knobs", {"reset": True})

    async def tunnels() -> None:
        target = presign_with_botocore(a["dns_name"], a["id"], "10.1.1.10", 22)
        status, _, ws = await open_tunnel(port, a["dns_name"], target, ca)
        assert status == 101 and ws is not None, status
        payload = os.urandom(100_000)
        for i in range(0, len(payload), 65_000):
            ws.send(BINARY, payload[i:i + 65_000])
        got = bytearray()
        while len(got) < len(payload):
            m = await asyncio.wait_for(ws.recv(), 10)
            assert m is not None and m[0] == BINARY
            got += m[1]
        assert bytes(got) == payload
        ws.close(1000, "")
        sig = target.rsplit("=", 1)[1]
        bad = target[:-len(sig)] + ("0" if sig[0] != "0" else "1") + sig[1:]
        status, body, _ = await open_tunnel(port, a["dns_name"], bad, ca)
        assert status == 403 and b'"ErrorCode":"AccessDenied"' in body, (status, body)
        status, body, _ = await open_tunnel(
            port, a["dns_name"], presign_with_botocore(a["dns_name"], a["id"], "10.1.1.10", 80),
            ca)
        assert status == 400 and body.decode() == BAD_PORT_BODY, (status, body)
    asyncio.run(tunnels())
    time.sleep(0.3)
    recs = admin(endpoint, "/__fake_eice/tunnels")
    assert [(t["status"], t["signature_ok"]) for t in recs] == [
        (101, True), (403, False), (400, True)], recs
    assert recs[0]["bytes_to_target"] == 100_000 == recs[0]["bytes_from_target"], recs[0]
    assert recs[0]["sni"] == recs[0]["host"] == a["dns_name"] and recs[0]["violations"] == []
    assert recs[1]["why"] == "signature does not match", recs[1]
    out.append("openTunnel with a botocore SigV4QueryAuth URL: 101 + 100000 B echoed; flipped "
               "signature → 403 AccessDenied; port 80 → 400 (exact body); 3 tunnels recorded")

    # 4. reset
    admin(endpoint, "/moto-api/reset", {})
    assert ec2.describe_instance_connect_endpoints()["InstanceConnectEndpoints"] == []
    out.append("POST /moto-api/reset empties the endpoint registry")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(filter(None, [os.environ.get(var, ""), "127.0.0.1",
                                                 "localhost"]))
    echo_port = start_echo()
    with tempfile.TemporaryDirectory(prefix="hop-eice-check-") as tmp:
        store = Path(tmp) / "eic"
        cmd = [sys.executable, str(HERE / "moto_lab.py"), "--port", "0", "--seed",
               "--eic-store", str(store), "--eice-dir", str(Path(tmp) / "eice"),
               "--eice-dial", f"10.1.1.10=127.0.0.1:{echo_port}"]
        moto = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=None if args.verbose else subprocess.DEVNULL)
        try:
            assert moto.stdout is not None
            line = moto.stdout.readline()
            if not line:
                print(f"FAIL moto_lab.py exited before ready ({moto.wait(10)})")
                return 1
            state = json.loads(line)
            assert state["eice"]["port"], "the fake EICE did not start"
            for text in check(state, store):
                print(f"ok   {text}")
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            print(f"FAIL {e!r}")
            return 1
        finally:
            if moto.stdin is not None:
                moto.stdin.close()
            try:
                moto.wait(15)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait()
    print("eice check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
