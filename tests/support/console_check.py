#!/usr/bin/env python3
"""Fetches one instance's console through the EC2 API (boto3, which decodes the base64 Output
as the CLI does) and prints what a reader of spec §C.3 would see, as one JSON line:

    console_check.py --endpoint URL INSTANCE_ID [--latest]

    {"present": bool (Output in the answer), "text": STR | null,
     "keys_blocks": [{"complete": bool, "keys": [{"type", "base64", "comment", "sha256"}]}],
     "fingerprint_blocks": [{"complete": bool, "entries": [{"bits", "fingerprint",
                                                              "comment", "label"}]}]}

A deliberately small block reader for the test bed's own consoles (control sequences
stripped, CRLF → LF, lines inside the BEGIN/END markers), not hop's parser: hop's is checked
against the vectors file; this one checks that the bed prints what it claims. sha256 is
"SHA256:" + unpadded base64 of SHA-256(blob), the form ssh-keygen -l prints.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed_topology import ec2_client  # noqa: E402

CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\n\x07]*(\x07|\x1b\\)|\x1b.|"
                     r"[\x00-\x08\x0b-\x1f\x7f]")
FP_LINE = re.compile(r"(\d+)\s+(SHA256:[A-Za-z0-9+/]{43})\s+(.*?)\s*\(([A-Z0-9-]+)\)\s*$")
KEY_TYPES = {"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "ssh-rsa", "ssh-dss"}


def sha256(b64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(b64, validate=True)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def read_blocks(text: str) -> dict[str, Any]:
    keys_blocks: list[dict[str, Any]] = []
    fp_blocks: list[dict[str, Any]] = []
    current: tuple[str, dict[str, Any]] | None = None
    for line in CONTROL.sub("", text).split("\n"):
        for kind, blocks in (("KEYS", keys_blocks), ("FINGERPRINTS", fp_blocks)):
            if f"-----BEGIN SSH HOST KEY {kind}-----" in line:
                block = {"complete": False, "keys" if kind == "KEYS" else "entries": []}
                blocks.append(block)
                current = (kind, block)
                break
            if f"-----END SSH HOST KEY {kind}-----" in line and current and current[0] == kind:
                current[1]["complete"] = True
                current = None
                break
        else:
            if current is None:
                continue
            kind, block = current
            if kind == "KEYS":
                tokens = line.split()
                for i, t in enumerate(tokens[:-1]):
                    if t in KEY_TYPES:
                        block["keys"].append({"type": t, "base64": tokens[i + 1],
                                              "comment": " ".join(tokens[i + 2:]),
                                              "sha256": sha256(tokens[i + 1])})
                        break
            else:
                m = FP_LINE.search(line)
                if m:
                    block["entries"].append({"bits": int(m[1]), "fingerprint": m[2],
                                             "comment": m[3], "label": m[4]})
    return {"keys_blocks": keys_blocks, "fingerprint_blocks": fp_blocks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--latest", action="store_true", help="send Latest=true")
    parser.add_argument("instance_id")
    args = parser.parse_args()
    ec2 = ec2_client(args.endpoint, "us-east-1")
    kwargs: dict[str, Any] = {"InstanceId": args.instance_id}
    if args.latest:
        kwargs["Latest"] = True
    answer = ec2.get_console_output(**kwargs)
    text = answer.get("Output")
    out: dict[str, Any] = {"present": text is not None, "text": text}
    out.update(read_blocks(text or ""))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
