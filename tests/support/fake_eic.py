#!/usr/bin/env python3
"""EC2 Instance Connect key push (SendSSHPublicKey) for hop's tests, written from
docs/specs/ec2-instance-connect.md §B.1, §B.2 and §D.2.2/§D.4. moto 5.2.5's own
SendSSHPublicKey is a stub that accepts anything; this replaces it.

    python fake_eic.py --self-test     validation, errors, knobs and the key store, no moto

Installed by moto_lab.py as WSGI middleware in front of moto (`FakeEIC(store).wsgi(app)`):
POST / with X-Amz-Target AWSEC2InstanceConnectService.SendSSHPublicKey (JSON 1.1) is answered
here; everything else goes to moto. SigV4 is not checked (as moto does not); the region comes
from the Authorization header's credential scope, the account from moto's rule for the access
key (the lab's `testing` → 123456789012).

SendSSHPublicKey, checks in this order (errors: HTTP 400, {"__type": T, "message": …} and header
x-amzn-ErrorType: T, like fake_ssm):
  1. knob fail {"error": T, "count": N}: the next N calls fail with T (any name, e.g.
     AuthException, ThrottlingException, EC2InstanceStateInvalidException,
     AccessDeniedException), counting down; delay_ms sleeps before answering
  2. InstanceId 10–32 chars ^i-[a-f0-9]+$, InstanceOSUser 1–32 chars of the model's pattern,
     SSHPublicKey 80–4096 chars and "<type> <base64>[ comment]", AvailabilityZone (optional)
     6–32 chars ^(\\w+-){2,3}\\d+\\w+$ → InvalidArgsException
  3. the instance exists in moto for this account and region → else
     EC2InstanceNotFoundException; it is running → else EC2InstanceStateInvalidException; an
     AvailabilityZone that is not the instance's → InvalidArgsException
  4. record {index (0, 1, … never reset), instance_id, os_user, public_key, request_id, at, expires, az, region}; expires = at
     + validity (the first of next_validities if any, else validity_seconds, default 60); with a
     store, append the §B.2 block to <store>/<instance-id>/<os-user>:
         #Timestamp=<expires, epoch s>
         #Instance=<instance-id>
         #Caller=arn:aws:iam::<account>:user/<access key id>
         #Request=<request id>
         <the key line as sent>
         <blank line>
     by writing a temp file and renaming it; directories 0755, files 0644 (sshd's
     AuthorizedKeysCommandUser nobody reads them). Blocks that expired over an hour ago are
     dropped on the next write to the same file.
  5. answer {"RequestId": <uuid>, "Success": true}
Admin endpoints (moto's HTTP endpoint):
  GET  /__fake_eic/pushes[?since=N]   [record, ...] in call order (successful pushes only,
                            index ≥ N)
  GET  /__fake_eic/state    {"store", "knobs", "pushes", "calls": [{"at", "body", "error"}]}
  POST /__fake_eic/knobs    {"validity_seconds": S, "next_validities": [S, ...],
                             "fail": {"error": T, "count": N} | null, "delay_ms": M,
                             "reset": true}  (reset first: knobs to defaults, records cleared;
                             store files are kept) → {"knobs": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

TARGET = "AWSEC2InstanceConnectService.SendSSHPublicKey"
INSTANCE_ID = re.compile(r"^i-[a-f0-9]+$")
OS_USER = re.compile(r"(^[A-Za-z_][A-Za-z0-9\@\._-]{0,30}[A-Za-z0-9\$_-]?$)|"
                     r"(^(?=.{2,32}$)[0-9]{1,32}[A-Za-z\@\._-][A-Za-z0-9\@\._-]*[A-Za-z0-9\$_-]?$)")
AZ = re.compile(r"^(\w+-){2,3}\d+\w+$")
KEY_LINE = re.compile(r"^[A-Za-z0-9@.-]+ [A-Za-z0-9+/]+=*( [^\r\n]*)?$")
DEFAULT_KNOBS: dict[str, Any] = {"validity_seconds": 60, "next_validities": [], "fail": None,
                                 "delay_ms": 0}
KEEP_EXPIRED_S = 3600
MAX_RECORDS = 10_000


class ApiError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _account_of(access_key: str) -> str:
    try:
        from moto.iam.models import get_account_id_from
        return get_account_id_from(access_key)
    except ImportError:  # self-test without moto
        return "123456789012"


def _scope(authorization: str) -> tuple[str, str]:
    """(access key id, region) from a SigV4 Authorization header."""
    m = re.search(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/", authorization)
    return (m.group(1), m.group(2)) if m else ("testing", "us-east-1")


def moto_instance(account: str, region: str, instance_id: str) -> dict[str, Any] | None:
    """The instance as {state, az} from moto's backend, or None."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ec2.models import ec2_backends
    try:
        inst = ec2_backends[account][region].get_instance(instance_id)
    except InvalidInstanceIdError:
        return None
    return {"state": inst.state, "az": inst.availability_zone}


class FakeEIC:
    def __init__(self, store: Path | None,
                 lookup: Callable[[str, str, str], dict[str, Any] | None] = moto_instance,
                 lock: Any = None):
        self.store = store
        self.lookup = lookup
        self.moto_lock = lock  # held while reading moto's backend (moto_lab's request lock)
        self.lock = threading.Lock()
        self.knobs: dict[str, Any] = json.loads(json.dumps(DEFAULT_KNOBS))
        self.pushes: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.next_push = 0  # push index, never reset

    # -- the API
    def send_ssh_public_key(self, body: dict[str, Any], access_key: str,
                            region: str) -> dict[str, Any]:
        with self.lock:
            call = {"at": time.time(), "body": body, "error": None, "region": region}
            if len(self.calls) < MAX_RECORDS:
                self.calls.append(call)
            fail = self.knobs.get("fail")
            forced = None
            if fail and int(fail.get("count", 0)) > 0:
                fail["count"] = int(fail["count"]) - 1
                forced = str(fail.get("error") or "ServiceException")
            delay = float(self.knobs.get("delay_ms") or 0)
        if delay:
            time.sleep(min(delay, 30_000) / 1000)
        try:
            if forced:
                raise ApiError(forced, f"fake_eic: forced {forced}")
            return self._push(body, access_key, region)
        except ApiError as e:
            call["error"] = e.kind
            raise

    def _push(self, body: dict[str, Any], access_key: str, region: str) -> dict[str, Any]:
        iid, user = body.get("InstanceId"), body.get("InstanceOSUser")
        key, az = body.get("SSHPublicKey"), body.get("AvailabilityZone")
        for name, value, lo, hi, pattern in (("InstanceId", iid, 10, 32, INSTANCE_ID),
                                             ("InstanceOSUser", user, 1, 32, OS_USER),
                                             ("SSHPublicKey", key, 80, 4096, KEY_LINE)):
            if not isinstance(value, str):
                raise ApiError("InvalidArgsException", f"{name} is required")
            if not lo <= len(value) <= hi:
                raise ApiError("InvalidArgsException",
                               f"{name} must be {lo} to {hi} characters long")
            if not pattern.search(value):
                raise ApiError("InvalidArgsException", f"{name} is not valid")
        if az is not None and (not isinstance(az, str) or not 6 <= len(az) <= 32
                               or not AZ.match(az)):
            raise ApiError("InvalidArgsException", "AvailabilityZone is not valid")
        account = _account_of(access_key)
        if self.moto_lock is not None:
            with self.moto_lock:
                inst = self.lookup(account, region, iid)
        else:
            inst = self.lookup(account, region, iid)
        if inst is None:
            raise ApiError("EC2InstanceNotFoundException",
                           f"Instance {iid} not found in {region}")
        if inst["state"] != "running":
            raise ApiError("EC2InstanceStateInvalidException",
                           f"Instance {iid} is {inst['state']}, not running")
        if az is not None and az != inst["az"]:
            raise ApiError("InvalidArgsException",
                           f"Instance {iid} is not in availability zone {az}")
        request_id = str(uuid.uuid4())
        with self.lock:
            nxt = self.knobs["next_validities"]
            validity = float(nxt.pop(0) if nxt else self.knobs["validity_seconds"])
            now = time.time()
            rec = {"index": self.next_push, "instance_id": iid, "os_user": user, "public_key": key,
                   "request_id": request_id, "at": now, "expires": int(now + validity),
                   "az": az, "region": region}
            if self.store is not None:
                self._write_block(rec, f"arn:aws:iam::{account}:user/{access_key}")
            self.next_push += 1
            if len(self.pushes) < MAX_RECORDS:
                self.pushes.append(rec)
        return {"RequestId": request_id, "Success": True}

    def _write_block(self, rec: dict[str, Any], caller: str) -> None:
        assert self.store is not None
        d = self.store / rec["instance_id"]
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        path = d / rec["os_user"]
        kept = []
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        for block in text.split("\n\n"):
            m = re.search(r"^#Timestamp=(\d+)$", block, re.M)
            if block.strip() and (m is None or int(m.group(1)) > time.time() - KEEP_EXPIRED_S):
                kept.append(block.strip("\n") + "\n\n")
        kept.append(f"#Timestamp={rec['expires']}\n#Instance={rec['instance_id']}\n"
                    f"#Caller={caller}\n#Request={rec['request_id']}\n{rec['public_key']}\n\n")
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{rec['os_user']}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write("".join(kept))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # -- admin
    def set_knobs(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if body.get("reset"):
                self.knobs = json.loads(json.dumps(DEFAULT_KNOBS))
                self.pushes.clear()
                self.calls.clear()
            changes = {k: v for k, v in body.items() if k != "reset"}
            unknown = set(changes) - set(DEFAULT_KNOBS)
            if unknown:
                raise ValueError(f"unknown knobs {sorted(unknown)}")
            if "next_validities" in changes and not isinstance(changes["next_validities"], list):
                raise ValueError("next_validities must be a list")
            self.knobs.update(json.loads(json.dumps(changes)))
            return json.loads(json.dumps(self.knobs))

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps({
                "store": str(self.store) if self.store else None, "knobs": self.knobs,
                "pushes": self.pushes, "calls": self.calls}))

    def wsgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            is_api = method == "POST" and environ.get("HTTP_X_AMZ_TARGET", "") == TARGET
            if not is_api and not path.startswith("/__fake_eic/"):
                return app(environ, start_response)
            stream, n = environ["wsgi.input"], environ.get("CONTENT_LENGTH")
            raw = stream.read(int(n)) if n else (
                stream.read() if environ.get("wsgi.input_terminated") else b"")
            headers = [("x-amzn-RequestId", str(uuid.uuid4()))]
            try:
                body = json.loads(raw or b"{}")
                if is_api:
                    if not isinstance(body, dict):
                        raise ApiError("SerializationException", "body is not a JSON object")
                    akid, region = _scope(environ.get("HTTP_AUTHORIZATION", ""))
                    status, out = 200, self.send_ssh_public_key(body, akid, region)
                elif path == "/__fake_eic/pushes" and method == "GET":
                    since = int(parse_qs(environ.get("QUERY_STRING", "")).get("since", ["0"])[0])
                    status, out = 200, [p for p in self.snapshot()["pushes"]
                                        if p["index"] >= since]
                elif path == "/__fake_eic/state" and method == "GET":
                    status, out = 200, self.snapshot()
                elif path == "/__fake_eic/knobs" and method == "POST":
                    status, out = 200, {"knobs": self.set_knobs(body)}
                else:
                    status, out = 404, {"message": f"no admin endpoint {method} {path}"}
            except ApiError as e:
                status, out = 400, {"__type": e.kind, "message": str(e)}
                headers.append(("x-amzn-ErrorType", e.kind))
            except (ValueError, KeyError, TypeError) as e:
                status, out = 400, {"__type": "SerializationException", "message": str(e)}
                headers.append(("x-amzn-ErrorType", "SerializationException"))
            data = json.dumps(out).encode()
            headers += [("Content-Type", "application/x-amz-json-1.1"),
                        ("Content-Length", str(len(data)))]
            start_response(f"{status} {'OK' if status == 200 else 'Bad Request'}", headers)
            return [data]
        return middleware


# ================================================================ self-test
def self_test() -> int:
    import io
    ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbDDoVGFjujC3ZQFvstTDHc9nnnaoKxnJxbONlyAh6b"
    assert len(ed) == 80
    instances = {"i-0123456789abcdef0": {"state": "running", "az": "us-east-1a"},
                 "i-0000000000000dead": {"state": "stopped", "az": "us-east-1a"}}
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeEIC(Path(tmp), lambda acct, region, iid: instances.get(iid))

        def call(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            raw = json.dumps(body).encode()
            seen: list[str] = []
            out = fake.wsgi(lambda e, s: [b"moto"])(
                {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": TARGET,
                 "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20260102/us-east-1/"
                                       "ec2-instance-connect/aws4_request, SignedHeaders=host, "
                                       "Signature=00",
                 "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw)},
                lambda status, headers: seen.append(status))
            return int(seen[0].split()[0]), json.loads(b"".join(out))

        good = {"InstanceId": "i-0123456789abcdef0", "InstanceOSUser": "ec2-user",
                "SSHPublicKey": ed}
        checks = [
            ("good", good, 200, None),
            ("with the right AZ", {**good, "AvailabilityZone": "us-east-1a"}, 200, None),
            ("wrong AZ", {**good, "AvailabilityZone": "us-east-1b"}, 400, "InvalidArgsException"),
            ("short key", {**good, "SSHPublicKey": ed[:79]}, 400, "InvalidArgsException"),
            ("bad user", {**good, "InstanceOSUser": "ec2 user"}, 400, "InvalidArgsException"),
            ("bad id", {**good, "InstanceId": "i-XYZ0000000"}, 400, "InvalidArgsException"),
            ("unknown", {**good, "InstanceId": "i-0000000000000beef"}, 400,
             "EC2InstanceNotFoundException"),
            ("stopped", {**good, "InstanceId": "i-0000000000000dead"}, 400,
             "EC2InstanceStateInvalidException"),
        ]
        try:
            for what, body, status, kind in checks:
                got_status, out = call(body)
                assert got_status == status and out.get("__type") == kind, (what, out)
            pushes = fake.snapshot()["pushes"]
            assert len(pushes) == 2 and pushes[0]["expires"] - pushes[0]["at"] <= 60.01
            path = Path(tmp) / "i-0123456789abcdef0" / "ec2-user"
            text = path.read_text()
            assert text.count(ed + "\n\n") == 2 and text.startswith("#Timestamp="), text
            assert "#Caller=arn:aws:iam::123456789012:user/testing\n" in text
            assert oct(path.stat().st_mode & 0o777) == "0o644"
            fake.set_knobs({"fail": {"error": "ThrottlingException", "count": 2},
                            "next_validities": [0]})
            assert call(good)[1]["__type"] == "ThrottlingException"
            assert call(good)[1]["__type"] == "ThrottlingException"
            assert call(good)[0] == 200 and call(good)[0] == 200
            p = fake.snapshot()["pushes"]
            assert int(p[-2]["expires"]) <= int(p[-2]["at"]) + 0 and \
                p[-1]["expires"] >= p[-1]["at"] + 59, p[-2:]
            fake.set_knobs({"reset": True})
            assert fake.snapshot()["pushes"] == []
            print("ok   SendSSHPublicKey: validation, AZ, not found, stopped, store blocks "
                  "(0644, §B.2 format), fail knob for 2 calls, next_validities")
        except AssertionError as e:
            failures += 1
            print(f"FAIL {e!r}")
    print("self-test", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    sys.exit(self_test() if a.self_test else ap.print_help() or 2)
