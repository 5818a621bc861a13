#!/usr/bin/env python3
"""An OpenSSH ProxyCommand through the lab's fake EC2 Instance Connect Endpoint, doing what
`aws ec2-instance-connect open-tunnel` (and a `send-ssh-public-key` pre-connect hook) do, so the
bed can be checked end to end with OpenSSH alone, without hop:

    eice_proxy.py --endpoint-id eice-… --dns DNSNAME [--push INSTANCE_ID USER PUBKEY_FILE] IP PORT

    ssh -o ProxyCommand='PY eice_proxy.py --endpoint-id ID --dns NAME \
        --push ID ec2-user K.pub %h %p' …

1. with --push: SendSSHPublicKey (boto3, AWS_ENDPOINT_URL = moto) of the public key file;
2. a URL presigned as the AWS CLI does (eice_check.presign_with_botocore: SigV4QueryAuth,
   X-Amz-Expires 60, signing name ec2-instance-connect, the lab's testing/testing);
3. TLS to DNSNAME:443, the name resolved by the system resolver (in the client namespace: the
   lab's /etc/netns hosts file), the certificate checked against SSL_CERT_FILE (the lab's CA);
4. the websocket upgrade, then stdin → binary frames (≤ 65000 bytes, as the CLI), binary frames
   → stdout, until either side ends (stdin EOF → Close 1000).
Errors go to stderr; exit status 255 when the tunnel cannot be opened, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import ssl
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eice_check import presign_with_botocore  # noqa: E402
from fake_ssm import BINARY, WebSocket  # noqa: E402

FRAME = 65_000


def push(instance_id: str, user: str, pubkey: Path) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "ec2-instance-connect", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(retries={"max_attempts": 1}),
    )
    key = " ".join(pubkey.read_text().split()[:2])
    client.send_ssh_public_key(InstanceId=instance_id, InstanceOSUser=user, SSHPublicKey=key)


async def tunnel(dns: str, target: str) -> int:
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    r, w = await asyncio.wait_for(
        asyncio.open_connection(dns, 443, ssl=ctx, server_hostname=dns), 10)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write((f"GET {target} HTTP/1.1\r\nHost: {dns}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             f"User-Agent: hop-lab-eice-proxy\r\n\r\n").encode())
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
    status = head.split(b" ", 2)[1].decode()
    if status != "101":
        body = await asyncio.wait_for(r.read(4096), 5)
        print(f"eice_proxy: handshake answered {status}: {body.decode(errors='replace')}",
              file=sys.stderr)
        return 255
    ws = WebSocket(r, w, client=True)
    loop = asyncio.get_running_loop()

    def read_stdin() -> None:  # a thread: blocking reads, frames sent from the loop
        fd = sys.stdin.fileno()
        while data := os.read(fd, FRAME):
            loop.call_soon_threadsafe(ws.send, BINARY, data)
        loop.call_soon_threadsafe(ws.close, 1000, "")

    threading.Thread(target=read_stdin, daemon=True).start()
    out = sys.stdout.fileno()
    while (msg := await ws.recv()) is not None:
        if msg[0] == BINARY:
            view = memoryview(msg[1])
            while view:
                view = view[os.write(out, view):]
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint-id", required=True)
    p.add_argument("--dns", required=True, help="the endpoint's DnsName")
    p.add_argument("--push", nargs=3, metavar=("INSTANCE_ID", "USER", "PUBKEY_FILE"))
    p.add_argument("ip")
    p.add_argument("port", type=int)
    a = p.parse_args()
    try:
        if a.push:
            push(a.push[0], a.push[1], Path(a.push[2]))
        target = presign_with_botocore(a.dns, a.endpoint_id, a.ip, a.port)
        return asyncio.run(tunnel(a.dns, target))
    except Exception as e:  # one line for ssh's stderr
        print(f"eice_proxy: {type(e).__name__}: {e}", file=sys.stderr)
        return 255


if __name__ == "__main__":
    sys.exit(main())
