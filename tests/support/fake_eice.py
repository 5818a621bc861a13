#!/usr/bin/env python3
"""Fake EC2 Instance Connect Endpoint (EICE) for hop's tests, written from
docs/specs/ec2-instance-connect.md ("§" below): the moto patches for the endpoint API
(§D.2.1) and the `openTunnel` websocket server (§D.3).

    python fake_eice.py --self-test     the SigV4 verifier against every signing vector of
                                        tests/data/ec2-instance-connect-vectors.json, then an
                                        end-to-end tunnel to a loopback echo server (no root)

Installed by moto_lab.py: `install_ec2_patches(STORE)` before moto serves, `FakeEICE(...)`
started next to moto (its own asyncio loop in a daemon thread, like fake_ssm), `fake.wsgi(app)`
in front of moto's WSGI app for the admin endpoints.

Endpoint API (moto.ec2.responses.EC2Response gains the four actions; records in STORE, a
module-level registry shared by moto's threads and the fake's loop, emptied on every
POST /moto-api/reset):
  CreateInstanceConnectEndpoint     SubnetId (moto looks it up: VpcId, AZ), SecurityGroupIds
                                    (default: the VPC's default group; each must exist in the
                                    VPC), PreserveClientIp (false), IpAddressType (ipv4),
                                    TagSpecifications (ResourceType instance-connect-endpoint),
                                    DryRun. Id `eice-` + 17 hex from moto's seeded RNG, so seeded
                                    ids are stable; DnsName
                                    `<id>.<8 hex of sha256(id)>.ec2-instance-connect-endpoint.<region>.amazonaws.com`,
                                    FipsDnsName with `.fips.` before `ec2-instance-…`; state
                                    create-complete; NetworkInterfaceIds one made-up `eni-…` (no
                                    moto ENI is created, so nothing else in the VPC shifts)
  DescribeInstanceConnectEndpoints  InstanceConnectEndpointIds (unknown → InvalidInstanceConnect
                                    EndpointId.NotFound), Filters instance-connect-endpoint-id,
                                    state, vpc-id, subnet-id, availability-zone, tag:<k>, tag-key,
                                    tag-value (values may use * and ?; other names →
                                    InvalidParameterValue), MaxResults 1..50, NextToken. Page size
                                    = min(MaxResults, knob describe_page_size) — set the knob to 1
                                    to make any caller page. Every request (page) is counted per
                                    region: GET /__fake_eice/calls.
  DeleteInstanceConnectEndpoint     removes it at once; answers it with state delete-in-progress
  ModifyInstanceConnectEndpoint     SecurityGroupIds / PreserveClientIp / IpAddressType; state
                                    becomes update-complete
Endpoints live only in this registry: other EC2 calls (DescribeTags, DeleteVpc, ...) do not see
them.

openTunnel server: TLS on <host>:<port> (moto_lab: 127.0.0.1:443 in the client namespace).
Certificates come from a test CA in --eice-dir (ca.pem, ca.key): the leaf served by default
names every endpoint known when the fake started or refreshed (refresh_default_cert) plus
localhost and 127.0.0.1; a ClientHello whose SNI is an endpoint's DnsName or FipsDnsName gets a
leaf made for that endpoint (on demand, cached), so endpoints created later work too.

Handshake, checks in this order (spec §D.3; the first failure answers, before any upgrade):
  1. method GET, Upgrade: websocket, Connection: upgrade, Sec-WebSocket-Key,
     Sec-WebSocket-Version 13 → else 400 {"ErrorCode":"BadRequest",…}; path /openTunnel → else
     404 {"ErrorCode":"NotFound",…}.
  2. raw query split on '&', keys and values percent-decoded ('+' stays '+'); a duplicate key
     or a missing X-Amz-Algorithm/-Credential/-Date/-SignedHeaders/-Signature → 403.
  3. X-Amz-Algorithm AWS4-HMAC-SHA256; Credential AKID/yyyymmdd/region/ec2-instance-connect/
     aws4_request; AKID known (the lab's testing/testing, plus POST /__fake_eice/credentials);
     date = X-Amz-Date[:8]; region = the endpoint's (when the endpoint is known); |now − X-Amz-
     Date| ≤ 300 s; with X-Amz-Expires (1..604800; absent is accepted), now ≤ X-Amz-Date +
     expires; a pair with a session token needs X-Amz-Security-Token equal to it, a pair
     without one refuses any token → 403.
  4. SigV4 exactly as §D.3 step 4: SignedHeaders (sorted, lower case) contains host and names
     only received headers; canonical headers from the received values (trimmed, inner spaces
     collapsed); canonical query = every received parameter but X-Amz-Signature, re-encoded
     (RFC 3986, upper-case hex) and sorted by key then value; method GET, path /openTunnel,
     payload hash of the empty string; HMAC chain; constant-time compare → else 403.
     Every 403 body is {"ErrorCode":"AccessDenied","Message":<why>}.
  (knob handshake_status: answered here, with handshake_body, instead of going on)
  5. instanceConnectEndpointId known and in a usable state (create-complete, update-in-progress,
     update-complete, update-failed) → else 400 InvalidParameter; remotePort ∉ {22, 3389} →
     400 with exactly the body of §D.3; maxTunnelDuration not an integer 1..3600 → 400
     InvalidParameter; privateIpAddress not an IP inside the endpoint VPC's CIDRs → 400
     InvalidParameter. (A missing instanceConnectEndpointId/remotePort/privateIpAddress is a
     400 InvalidParameter too.)
  6. open tunnels of the endpoint ≥ max_tunnels (20) → 429 {"ErrorCode":"TooManyRequests",…}.
  7. accept_delay_ms, then 101 with x-amzn-RequestId: <uuid>.
Every error response also carries x-amzn-RequestId and Connection: close.

After the upgrade: dial privateIpAddress:remotePort (5 s) inside the namespace the --eice-netns
map names for that IP (fake_ssm.connect_in_netns: setns on a fresh thread), or in the fake's
own namespace when the IP is not in the map; dial_override (Python API, self-test) may redirect
an IP to (netns|None, host, port). Dial failure or dial_refuse → Close 1011 "Unable to connect
to target". Binary frames → TCP; TCP → binary frames of ≤ 64 KiB (rechunk: random 1 B … 64 KiB
pieces, with coalescing of consecutive reads). Text frames, empty frames and frames over 65 000
bytes are violations (text frames are dropped, the rest relayed). Target EOF → Close 1000; a
client Close closes the target socket. maxTunnelDuration (default 3600) or close_after_seconds,
whichever is smaller, after the upgrade → Close 1000 "Tunnel duration exceeded".
close_after_bytes (bytes relayed, both ways together) → Close close_code (1011) close_reason
("Connection closed by fake"), or with drop_tcp_without_close a TCP abort with no Close frame.
ping_every_ms → a Ping every N ms; Pongs are counted.

Knobs (POST /__fake_eice/knobs {"endpoint": id | null, ...}; null sets the defaults every
endpoint inherits, an id overrides for that endpoint; {"reset": true} first restores every knob,
endpoint state, extra credential and record):
  handshake_status, handshake_body   answer every upgrade with this status/body (after step 4)
  close_after_bytes, close_code (1011), close_reason, drop_tcp_without_close
  close_after_seconds                the duration limit (see above)
  dial_refuse                        Close 1011 "Unable to connect to target" without dialling
  rechunk                            see above
  ping_every_ms
  max_tunnels (20)
  accept_delay_ms                    wait before answering 101
  state                              set the endpoint's State (moto's Describe shows it too) —
                                     with "endpoint": null, every endpoint's
  describe_page_size                 (global only) page size cap of DescribeInstanceConnectEndpoints
Admin endpoints (moto's HTTP endpoint; JSON; 404 for unknown paths):
  GET  /__fake_eice/tunnels[?since=N]   [tunnel record, ...] in opening order (index ≥ N)
  GET  /__fake_eice/calls[?since=N]     {"describe": {region: n}, "create": {...}, "delete":
                                  {...}, "modify": {...}, "requests": [{"index", "op",
                                  "region", "ids", "filters", "max_results", "next_token"}, ...],
                                  "next_index"}: endpoint API requests (a Describe page is one
                                  request), counting only those with index ≥ N
  Indexes (tunnel "index", request "index") keep counting across resets, so a test sharing the
  bed with others reads `next_index` / the last index first and then asks `since=` that,
  instead of resetting records other tests are using.
  GET  /__fake_eice/state        {"port", "ca", "dir", "knobs": {"defaults": {...},
                                  "endpoints": {id: {...}}}, "endpoints": [record, ...],
                                  "credentials": [akid, ...]}
  POST /__fake_eice/knobs        answers {"knobs": <as in state>}
  POST /__fake_eice/credentials  {"access_key_id", "secret_access_key", "session_token"?}
                                 → {"accepted": [akid, ...]}
Tunnel record: index (0, 1, … for the fake's lifetime), endpoint (id from the query or null), sni, host (Host header as
received), user_agent, extensions / protocols (offered Sec-WebSocket-Extensions/-Protocol or
null), raw_query, query (decoded dict), signature_ok, why (null when the signature is fine),
status (101 or the error status sent), error_body, request_id, dialed ("ip:port" or null),
netns, bytes_to_target, bytes_from_target, frames_from_client, frames_to_client,
max_client_frame, pings_sent, pongs_received, violations [text], close_sent {"code",
"reason"} | null, close_received {"code", "reason"} | null, duration_limit (s), opened_at,
closed_at (epoch seconds; closed_at null while open).

Deliberate choices where the service is unknown (spec §E): the statuses above (403/400/404/
429), close 1011 for an unreachable target and a tunnel cut by close_after_bytes, Close 1000
"Tunnel duration exceeded", no service-side pings unless asked, text frames dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import random
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_ssm import BINARY, TEXT, WebSocket, connect_in_netns, ws_accept, ws_mask  # noqa: E402

log = logging.getLogger("fake_eice")

USABLE_STATES = ("create-complete", "update-in-progress", "update-complete", "update-failed")
SIGNING_NAME = "ec2-instance-connect"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
LAB_CREDENTIALS = {"testing": ("testing", None)}
MAX_SKEW_S = 300
DEFAULT_DURATION_S = 3600
DIAL_TIMEOUT_S = 5.0
FRAME_LIMIT = 65_000
READ_CHUNK = 64 * 1024
MAX_RECORDS = 10_000
BAD_PORT_BODY = ('{"ErrorCode":"InvalidParameter","Message":"The specified RemotePort is not '
                 'valid. Specify either 22 or 3389 as the RemotePort and retry your request."}')
DEFAULT_KNOBS: dict[str, Any] = {
    "handshake_status": None, "handshake_body": None, "close_after_bytes": None,
    "close_code": 1011, "close_reason": "Connection closed by fake",
    "drop_tcp_without_close": False, "close_after_seconds": None, "dial_refuse": False,
    "rechunk": False, "ping_every_ms": None, "max_tunnels": 20, "accept_delay_ms": None,
    # The endpoint's clock ahead of (or behind) the client's, seconds: past 60 s a fresh URL is
    # expired there, past 300 s any date is skewed.
    "clock_offset_s": 0,
}


# ================================================================ endpoint registry
class Store:
    """Every endpoint, by id, in creation order. moto's request threads and the fake's loop both
    use it, hence the lock; records are plain dicts, copied on the way out."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, int]] = {}
        self.requests: list[dict[str, Any]] = []
        self.next_request = 0  # request index, never reset: `since` filters survive resets
        self.page_size: int | None = None
        self.on_change: list[Callable[[], None]] = []

    def reset(self) -> None:
        with self.lock:
            self.endpoints.clear()
            self.calls.clear()
            self.requests.clear()
            self.page_size = None

    def count(self, op: str, region: str, **details: Any) -> None:
        with self.lock:
            per = self.calls.setdefault(op, {})
            per[region] = per.get(region, 0) + 1
            if len(self.requests) < MAX_RECORDS:
                self.requests.append({"index": self.next_request, "op": op, "region": region,
                                      **details})
            self.next_request += 1

    def get(self, endpoint_id: str) -> dict[str, Any] | None:
        with self.lock:
            e = self.endpoints.get(endpoint_id)
            return dict(e) if e is not None else None

    def all(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.endpoints.values()]

    def set_state(self, endpoint_id: str, state: str) -> None:
        with self.lock:
            if endpoint_id in self.endpoints:
                self.endpoints[endpoint_id]["state"] = state

    def calls_snapshot(self, since: int = 0) -> dict[str, Any]:
        """Per op, requests per region, and the requests, counting only index >= since."""
        with self.lock:
            requests = [r for r in self.requests if r["index"] >= since]
            out: dict[str, Any] = {op: {} for op in ("describe", "create", "delete", "modify")}
            for r in requests:
                out[r["op"]][r["region"]] = out[r["op"]].get(r["region"], 0) + 1
            out["requests"] = requests
            out["next_index"] = self.next_request
            return json.loads(json.dumps(out, default=str))


STORE = Store()


def dns_names(endpoint_id: str, region: str) -> tuple[str, str]:
    tag = hashlib.sha256(endpoint_id.encode()).hexdigest()[:8]
    return (f"{endpoint_id}.{tag}.ec2-instance-connect-endpoint.{region}.amazonaws.com",
            f"{endpoint_id}.{tag}.fips.ec2-instance-connect-endpoint.{region}.amazonaws.com")


def _api_shape(e: dict[str, Any], state: str | None = None) -> dict[str, Any]:
    """A registry record as the botocore shape Ec2InstanceConnectEndpoint."""
    names = {"DnsName": e["dns_name"], "FipsDnsName": e["fips_dns_name"]}
    out = {
        "OwnerId": e["account"], "InstanceConnectEndpointId": e["id"],
        "InstanceConnectEndpointArn":
            f"arn:aws:ec2:{e['region']}:{e['account']}:instance-connect-endpoint/{e['id']}",
        "State": state or e["state"], "StateMessage": e.get("state_message", ""),
        "DnsName": e["dns_name"], "FipsDnsName": e["fips_dns_name"],
        "NetworkInterfaceIds": list(e["eni_ids"]), "VpcId": e["vpc_id"],
        "AvailabilityZone": e["az"], "AvailabilityZoneId": e["az_id"],
        "CreatedAt": e["created_at"], "SubnetId": e["subnet_id"],
        "PreserveClientIp": e["preserve_client_ip"],
        "SecurityGroupIds": list(e["security_group_ids"]),
        "Tags": [{"Key": k, "Value": v} for k, v in e["tags"].items()],
        "IpAddressType": e["ip_address_type"],
        "PublicDnsNames": {"Ipv4": names},
    }
    if e["ip_address_type"] != "ipv4":
        out["PublicDnsNames"]["Dualstack"] = names
    return out


def _matches(e: dict[str, Any], name: str, values: list[str]) -> bool:
    def any_of(value: str | None) -> bool:
        return value is not None and any(fnmatch.fnmatchcase(value, v) for v in values)
    if name == "instance-connect-endpoint-id":
        return any_of(e["id"])
    if name == "state":
        return any_of(e["state"])
    if name == "vpc-id":
        return any_of(e["vpc_id"])
    if name == "subnet-id":
        return any_of(e["subnet_id"])
    if name == "availability-zone":
        return any_of(e["az"])
    if name == "tag-key":
        return any(any_of(k) for k in e["tags"])
    if name == "tag-value":
        return any(any_of(v) for v in e["tags"].values())
    if name.startswith("tag:"):
        return any_of(e["tags"].get(name[4:]))
    raise ValueError(name)


def install_ec2_patches(store: Store = STORE) -> None:
    """Adds the four endpoint actions to moto's EC2Response (moto dispatches any member named
    after the action, spec §D.2) and empties the registry on every /moto-api/reset."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses import EC2Response
    from moto.ec2.utils import random_id, random_resource_id
    from moto.moto_api._internal.models import MotoAPIBackend

    def not_found(endpoint_id: str) -> Exception:
        return EC2ClientError("InvalidInstanceConnectEndpointId.NotFound",
                              f"The instance connect endpoint ID '{endpoint_id}' does not exist")

    def invalid(message: str) -> Exception:
        return EC2ClientError("InvalidParameterValue", message)

    def groups_of(self: Any, vpc_id: str, ids: list[str]) -> list[str]:
        for g in ids:
            sg = self.ec2_backend.get_security_group_from_id(g)
            if sg is None or sg.vpc_id != vpc_id:
                raise EC2ClientError("InvalidGroup.NotFound",
                                     f"The security group '{g}' does not exist in VPC '{vpc_id}'")
        return list(ids)

    def create_instance_connect_endpoint(self: Any) -> Any:
        self.error_on_dryrun()
        subnet = self.ec2_backend.get_subnet(self._get_param("SubnetId"))
        vpc = self.ec2_backend.get_vpc(subnet.vpc_id)
        groups = self._get_param("SecurityGroupIds", []) or []
        if not groups:
            default = self.ec2_backend.get_default_security_group(vpc.id)
            groups = [default.id] if default is not None else []
        groups = groups_of(self, vpc.id, groups)
        ip_type = self._get_param("IpAddressType") or "ipv4"
        if ip_type not in ("ipv4", "dualstack", "ipv6"):
            raise invalid(f"Invalid IpAddressType {ip_type!r}")
        preserve = bool(self._get_bool_param("PreserveClientIp", False))
        if preserve and ip_type != "ipv4":
            raise invalid("PreserveClientIp is only supported on ipv4 endpoints")
        tags = self._parse_tag_specification().get("instance-connect-endpoint", {})
        endpoint_id = random_id("eice")
        dns, fips = dns_names(endpoint_id, self.region)
        cidrs = [c["cidr_block"] for c in vpc.get_cidr_block_association_set()]
        record = {
            "id": endpoint_id, "region": self.region, "account": self.current_account,
            "vpc_id": vpc.id, "vpc_cidrs": cidrs, "subnet_id": subnet.id,
            "az": subnet.availability_zone, "az_id": subnet.availability_zone_id,
            "state": "create-complete", "state_message": "", "dns_name": dns,
            "fips_dns_name": fips, "eni_ids": [f"eni-{random_resource_id(17)}"],
            "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
            "preserve_client_ip": preserve, "security_group_ids": groups,
            "tags": dict(tags), "ip_address_type": ip_type,
        }
        with store.lock:
            store.endpoints[endpoint_id] = record
        store.count("create", self.region, ids=[endpoint_id])
        for hook in list(store.on_change):
            hook()
        return ActionResult({"InstanceConnectEndpoint": _api_shape(record),
                             "ClientToken": self._get_param("ClientToken") or str(uuid.uuid4())})

    def describe_instance_connect_endpoints(self: Any) -> Any:
        self.error_on_dryrun()
        ids = self._get_param("InstanceConnectEndpointIds", []) or []
        filters = self._filters_from_querystring()
        max_results = self._get_int_param("MaxResults")
        token = self._get_param("NextToken")
        store.count("describe", self.region, ids=ids, filters=filters, max_results=max_results,
                    next_token=token)
        if max_results is not None and not 1 <= max_results <= 50:
            raise invalid(f"MaxResults {max_results} is not in 1..50")
        with store.lock:
            mine = [e for e in store.endpoints.values()
                    if e["region"] == self.region and e["account"] == self.current_account]
            page_cap = store.page_size
        known = {e["id"] for e in mine}
        for i in ids:
            if i not in known:
                raise not_found(i)
        picked = []
        for e in mine:
            if ids and e["id"] not in ids:
                continue
            try:
                if all(_matches(e, name, values) for name, values in filters.items()):
                    picked.append(e)
            except ValueError as bad:
                raise invalid(f"The filter '{bad}' is invalid")
        start = 0
        if token:
            if not token.startswith("eice-page-") or not token[10:].isdigit():
                raise EC2ClientError("InvalidNextToken", "The token is not valid")
            start = int(token[10:])
        size = min(max_results or 1000, page_cap or 1000)
        page = picked[start:start + size]
        result: dict[str, Any] = {"InstanceConnectEndpoints": [_api_shape(e) for e in page]}
        if start + size < len(picked):
            result["NextToken"] = f"eice-page-{start + size}"
        return ActionResult(result)

    def delete_instance_connect_endpoint(self: Any) -> Any:
        self.error_on_dryrun()
        endpoint_id = self._get_param("InstanceConnectEndpointId")
        with store.lock:
            e = store.endpoints.get(endpoint_id)
            if e is None or e["region"] != self.region:
                raise not_found(endpoint_id)
            del store.endpoints[endpoint_id]
        store.count("delete", self.region, ids=[endpoint_id])
        return ActionResult({"InstanceConnectEndpoint": _api_shape(e, "delete-in-progress")})

    def modify_instance_connect_endpoint(self: Any) -> Any:
        self.error_on_dryrun()
        endpoint_id = self._get_param("InstanceConnectEndpointId")
        groups = self._get_param("SecurityGroupIds", []) or []
        preserve = self._get_bool_param("PreserveClientIp")
        ip_type = self._get_param("IpAddressType")
        with store.lock:
            e = store.endpoints.get(endpoint_id)
            if e is None or e["region"] != self.region:
                raise not_found(endpoint_id)
            if groups:
                e["security_group_ids"] = groups_of(self, e["vpc_id"], groups)
            if preserve is not None:
                e["preserve_client_ip"] = bool(preserve)
            if ip_type:
                if ip_type not in ("ipv4", "dualstack", "ipv6"):
                    raise invalid(f"Invalid IpAddressType {ip_type!r}")
                e["ip_address_type"] = ip_type
            e["state"] = "update-complete"
        store.count("modify", self.region, ids=[endpoint_id])
        return ActionResult({"Return": True})

    for fn in (create_instance_connect_endpoint, describe_instance_connect_endpoints,
               delete_instance_connect_endpoint, modify_instance_connect_endpoint):
        setattr(EC2Response, fn.__name__, fn)

    original_reset = MotoAPIBackend.reset

    def reset(self: Any) -> None:
        original_reset(self)
        store.reset()

    MotoAPIBackend.reset = reset  # type: ignore[method-assign]


# ================================================================ SigV4 presigned-URL check (§D.3)
def _enc(s: str) -> str:
    return quote(s, safe="-_.~")


def parse_query(raw: str) -> tuple[dict[str, str], str | None]:
    """Split on '&', percent-decode ('+' stays '+'); (params, problem)."""
    params: dict[str, str] = {}
    for part in raw.split("&") if raw else []:
        k, _, v = part.partition("=")
        k, v = unquote(k), unquote(v)
        if k in params:
            return params, f"duplicate query parameter {k}"
        params[k] = v
    return params, None


class Verdict:
    def __init__(self) -> None:
        self.ok = False
        self.why: str | None = None
        self.params: dict[str, str] = {}
        self.canonical_request = ""
        self.string_to_sign = ""

    def fail(self, why: str) -> Verdict:
        self.ok, self.why = False, why
        return self


def verify(method: str, path: str, raw_query: str, headers: dict[str, str], now: float,
           credentials: dict[str, tuple[str, str | None]], region: str | None) -> Verdict:
    """§D.3 steps 2–4. `headers`: lower-case names → values as received. `region`: the
    endpoint's, or None when the endpoint is unknown (checked later, step 5)."""
    v = Verdict()
    p, dup = parse_query(raw_query)
    v.params = p
    if dup:
        return v.fail(dup)
    for k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders",
              "X-Amz-Signature"):
        if k not in p:
            return v.fail(f"missing {k}")
    if p["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        return v.fail(f"unsupported X-Amz-Algorithm {p['X-Amz-Algorithm']!r}")
    scope = p["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[3] != SIGNING_NAME or scope[4] != "aws4_request":
        return v.fail("malformed X-Amz-Credential (want AKID/date/region/"
                      f"{SIGNING_NAME}/aws4_request)")
    akid, day, scope_region = scope[0], scope[1], scope[2]
    try:
        t = dt.datetime.strptime(p["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return v.fail("malformed X-Amz-Date")
    if day != p["X-Amz-Date"][:8]:
        return v.fail("credential scope date differs from X-Amz-Date")
    if akid not in credentials:
        return v.fail(f"unknown access key {akid}")
    if region is not None and scope_region != region:
        return v.fail(f"credential scope region {scope_region} is not the endpoint's {region}")
    if abs(now - t) > MAX_SKEW_S:
        return v.fail(f"X-Amz-Date is {now - t:+.0f} s from now (more than {MAX_SKEW_S} s)")
    if "X-Amz-Expires" in p:
        e = p["X-Amz-Expires"]
        if not e.isdigit() or not 1 <= int(e) <= 604800:
            return v.fail("malformed X-Amz-Expires")
        if now > t + int(e):
            return v.fail(f"URL expired {now - t - int(e):.0f} s ago")
    secret, token = credentials[akid]
    got_token = p.get("X-Amz-Security-Token")
    if token is not None and got_token is None:
        return v.fail("missing X-Amz-Security-Token for temporary credentials")
    if token is not None and not hmac.compare_digest(got_token or "", token):
        return v.fail("X-Amz-Security-Token does not match")
    if token is None and got_token is not None:
        return v.fail("X-Amz-Security-Token given for long-term credentials")
    signed = p["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed:
        return v.fail("X-Amz-SignedHeaders lacks host")
    if signed != sorted(signed) or any(h != h.lower() or not h for h in signed):
        return v.fail("X-Amz-SignedHeaders not sorted lower-case names")
    for h in signed:
        if h not in headers:
            return v.fail(f"signed header {h} was not sent")
    canon_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    query = "&".join(f"{_enc(k)}={_enc(val)}" for k, val in sorted(
        (k, val) for k, val in p.items() if k != "X-Amz-Signature"))
    v.canonical_request = "\n".join([method, path, query, canon_headers,
                                     p["X-Amz-SignedHeaders"], EMPTY_SHA256])
    v.string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", p["X-Amz-Date"], f"{day}/{scope_region}/{SIGNING_NAME}/aws4_request",
        hashlib.sha256(v.canonical_request.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, scope_region, SIGNING_NAME, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    want = hmac.new(key, v.string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want.encode(), p["X-Amz-Signature"].encode()):
        return v.fail("signature does not match")
    v.ok = True
    return v


# ================================================================ test CA and leaf certificates
class CertAuthority:
    """A throw-away CA (ECDSA P-256) in `directory`: ca.pem, ca.key; leaves leaf-N.pem/.key."""

    def __init__(self, directory: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self._eku, self._name = ExtendedKeyUsageOID, NameOID
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hop test EICE CA")])
        now = dt.datetime.now(dt.timezone.utc)
        self.name = name
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1))
                     .not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=False, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                         self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.ca_path = self.dir / "ca.pem"
        self._write(self.ca_path, self.cert.public_bytes(serialization.Encoding.PEM))
        self._write(self.dir / "ca.key", self._key_pem(self.key), 0o600)
        self._n = 0
        self._lock = threading.Lock()

    @staticmethod
    def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)

    def _key_pem(self, key: Any) -> bytes:
        s = self._ser
        return key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())

    def leaf(self, dns: list[str], ips: list[str] = ()) -> tuple[Path, Path]:
        """A server certificate for these names; (cert chain path, key path)."""
        x509 = self._x509
        with self._lock:
            self._n += 1
            n = self._n
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        sans: list[Any] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cn = (dns or list(ips) or ["fake-eice"])[0][:64]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(self._name.COMMON_NAME, cn)]))
                .issuer_name(self.name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([self._eku.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
                .sign(self.key, self._hashes.SHA256()))
        cert_path, key_path = self.dir / f"leaf-{n}.pem", self.dir / f"leaf-{n}.key"
        self._write(cert_path, cert.public_bytes(self._ser.Encoding.PEM))
        self._write(key_path, self._key_pem(key), 0o600)
        return cert_path, key_path

    def context(self, dns: list[str], ips: list[str] = ()) -> ssl.SSLContext:
        cert, key = self.leaf(dns, ips)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        return ctx


# ================================================================ the websocket, with counters
class TunnelSocket(WebSocket):
    """fake_ssm's RFC 6455 connection (server side) with what the tunnel records: frames and
    bytes each way, violations, pongs, the close received."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 rec: dict[str, Any]):
        super().__init__(reader, writer, client=False)
        self.rec = rec

    def violation(self, text: str) -> None:
        if len(self.rec["violations"]) < 100:
            self.rec["violations"].append(text)

    def send_binary(self, data: bytes) -> None:
        if not self.closing and not self.w.is_closing():
            self.rec["frames_to_client"] += 1
            self.send(BINARY, data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closing and self.rec["close_sent"] is None:
            self.rec["close_sent"] = {"code": code, "reason": reason}
        super().close(code, reason)

    async def recv(self) -> tuple[int, bytes] | None:  # type: ignore[override]
        """Next data frame (op, payload); pings answered, pongs counted; None once closed."""
        try:
            while True:
                b0, b1 = await self.r.readexactly(2)
                op, n = b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.r.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.r.readexactly(8))[0]
                if b0 & 0x70 or not b1 & 0x80:
                    self.violation("reserved bits set or unmasked client frame")
                    return self._fail(1002, "reserved bits set or unmasked client frame")
                if n > 4 << 20:
                    self.violation(f"frame of {n} bytes")
                    return self._fail(1009, "message too big")
                key = await self.r.readexactly(4)
                data = ws_mask(await self.r.readexactly(n), key) if n else b""
                if op >= 8:
                    if op == 9:
                        self.send(10, data)
                    elif op == 10:
                        self.rec["pongs_received"] += 1
                    elif op == 8:
                        code = struct.unpack("!H", data[:2])[0] if n >= 2 else 1005
                        self.close_code = code
                        self.rec["close_received"] = {
                            "code": code, "reason": data[2:].decode("utf-8", "replace")}
                        if not self.closing:
                            self.closing = True
                            self._frame(8, data[:2])
                        self.w.close()
                        return None
                    continue
                self.rec["frames_from_client"] += 1
                if not b0 & 0x80 or op == 0:
                    self.violation("fragmented message")
                if op == TEXT:
                    self.violation("text frame")
                elif op not in (0, BINARY):
                    self.violation(f"opcode {op}")
                if n == 0:
                    self.violation("empty frame")
                if n > FRAME_LIMIT:
                    self.violation(f"frame of {n} bytes (> {FRAME_LIMIT})")
                self.rec["max_client_frame"] = max(self.rec["max_client_frame"], n)
                return op, data
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.w.close()
            return None


# ================================================================ the server
class HandshakeRefused(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(body)
        self.status, self.body = status, body


def _error(status: int, code: str, message: str) -> HandshakeRefused:
    return HandshakeRefused(status, json.dumps({"ErrorCode": code, "Message": message},
                                               separators=(",", ":")))


REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}


class FakeEICE:
    def __init__(self, store: Store = STORE, directory: Path | None = None,
                 netns: dict[str, str] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.store, self.host, self.port = store, host, port
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hop-eice-")
            directory = Path(self._tmp.name)
            os.chmod(directory, 0o755)  # ca.pem is public: any user's hop may trust it
        self.dir = directory
        self.ca = CertAuthority(directory)
        self.netns = dict(netns or {})
        self.dial_override: dict[str, tuple[str | None, str, int]] = {}
        self.credentials: dict[str, tuple[str, str | None]] = dict(LAB_CREDENTIALS)
        self.defaults: dict[str, Any] = dict(DEFAULT_KNOBS)
        self.per_endpoint: dict[str, dict[str, Any]] = {}
        self.saved_states: dict[str, str] = {}
        self.tunnels: list[dict[str, Any]] = []
        self.next_tunnel = 0  # tunnel index, never reset
        self.open: dict[str, int] = {}
        self.rng = random.Random(12)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.AbstractServer | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._ctx_lock = threading.Lock()
        self._sni_seen: dict[int, str] = {}  # id(SSLObject) → SNI, until _conn takes it
        self.default_ctx = self._default_context()
        self._thread: threading.Thread | None = None

    # -- TLS
    def _default_leaf(self) -> tuple[Path, Path]:
        names = ["localhost"]
        for e in self.store.all():
            names += [e["dns_name"], e["fips_dns_name"]]
        return self.ca.leaf(names, ["127.0.0.1"])

    def _default_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(*self._default_leaf())
        ctx.sni_callback = self._sni
        return ctx

    def refresh_default_cert(self) -> None:
        """Re-issue the default leaf so it names every endpoint known now (the server keeps its
        context object; new handshakes get the new certificate)."""
        self.default_ctx.load_cert_chain(*self._default_leaf())

    def _sni(self, sslobj: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
        if not name:
            return None
        with self._ctx_lock:
            if len(self._sni_seen) > 1000:
                self._sni_seen.clear()
            self._sni_seen[id(sslobj)] = name
        for e in self.store.all():
            if name in (e["dns_name"], e["fips_dns_name"]):
                with self._ctx_lock:
                    ctx = self._contexts.get(e["id"])
                    if ctx is None:
                        ctx = self._contexts[e["id"]] = self.ca.context(
                            [e["dns_name"], e["fips_dns_name"]])
                sslobj.context = ctx
                return None
        return None

    # -- lifecycle
    def start(self) -> int:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self.loop = loop = asyncio.new_event_loop()
            try:
                self.server = loop.run_until_complete(asyncio.start_server(
                    self._conn, self.host, self.port, ssl=self.default_ctx, backlog=64,
                    ssl_handshake_timeout=10))
            except BaseException as e:  # noqa: BLE001 - reported by start()
                failure.append(e)
                ready.set()
                return
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-eice", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("fake_eice: event loop did not start")
        if failure:
            raise failure[0]
        return self.port

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._tmp is not None:
            self._tmp.cleanup()

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self.loop is not None

        async def call() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(30)

    # -- knobs and records (on the loop)
    def knobs_for(self, endpoint_id: str | None) -> dict[str, Any]:
        return {**self.defaults, **self.per_endpoint.get(endpoint_id or "", {})}

    def _set_knobs(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("reset"):
            self._reset()
        endpoint = body.get("endpoint")
        changes = {k: v for k, v in body.items() if k not in ("endpoint", "reset")}
        if "describe_page_size" in changes:
            with self.store.lock:
                self.store.page_size = changes.pop("describe_page_size")
        if "state" in changes:
            state = changes.pop("state")
            for e in self.store.all():
                if endpoint in (None, e["id"]):
                    self.saved_states.setdefault(e["id"], e["state"])
                    self.store.set_state(e["id"], state)
        unknown = set(changes) - set(DEFAULT_KNOBS)
        if unknown:
            raise ValueError(f"unknown knobs {sorted(unknown)}")
        if endpoint is None:
            self.defaults.update(changes)
        else:
            self.per_endpoint.setdefault(endpoint, {}).update(changes)
        return self._knobs_view()

    def _knobs_view(self) -> dict[str, Any]:
        return {"defaults": dict(self.defaults, describe_page_size=self.store.page_size),
                "endpoints": {k: dict(v) for k, v in self.per_endpoint.items()}}

    def _reset(self) -> None:
        self.defaults = dict(DEFAULT_KNOBS)
        self.per_endpoint.clear()
        for endpoint_id, state in self.saved_states.items():
            self.store.set_state(endpoint_id, state)
        self.saved_states.clear()
        with self.store.lock:
            self.store.page_size = None
            self.store.calls.clear()
            self.store.requests.clear()
        self.credentials = dict(LAB_CREDENTIALS)
        self.tunnels.clear()

    def set_knobs(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._on_loop(self._set_knobs, body)

    def add_credentials(self, akid: str, secret: str, token: str | None) -> list[str]:
        def add() -> list[str]:
            self.credentials[akid] = (secret, token or None)
            return sorted(self.credentials)
        return self._on_loop(add)

    def tunnel_records(self, since: int = 0) -> list[dict[str, Any]]:
        return self._on_loop(lambda: json.loads(json.dumps(
            [t for t in self.tunnels if t["index"] >= since])))

    def state(self) -> dict[str, Any]:
        def snap() -> dict[str, Any]:
            return json.loads(json.dumps({
                "port": self.port, "ca": str(self.ca.ca_path), "dir": str(self.dir),
                "knobs": self._knobs_view(), "endpoints": self.store.all(),
                "credentials": sorted(self.credentials)}, default=str))
        return self._on_loop(snap)

    # -- one connection
    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        rec: dict[str, Any] = {
            "index": self.next_tunnel, "endpoint": None,
            "sni": self._sni_seen.pop(id(sslobj), None), "host": None, "user_agent": None,
            "extensions": None, "protocols": None, "raw_query": None, "query": None,
            "signature_ok": False, "why": None, "status": None, "error_body": None,
            "request_id": str(uuid.uuid4()), "dialed": None, "netns": None,
            "bytes_to_target": 0, "bytes_from_target": 0, "frames_from_client": 0,
            "frames_to_client": 0, "max_client_frame": 0, "pings_sent": 0, "pongs_received": 0,
            "violations": [], "close_sent": None, "close_received": None,
            "duration_limit": None, "opened_at": time.time(), "closed_at": None}
        self.next_tunnel += 1
        if len(self.tunnels) < MAX_RECORDS:
            self.tunnels.append(rec)
        counted: str | None = None
        try:
            try:
                endpoint, knobs = await self._handshake(reader, writer, rec)
            except HandshakeRefused as r:
                rec["status"], rec["error_body"] = r.status, r.body
                body = r.body.encode()
                writer.write((f"HTTP/1.1 {r.status} {REASONS.get(r.status, 'Error')}\r\n"
                              "Content-Type: application/json\r\n"
                              f"Content-Length: {len(body)}\r\n"
                              f"x-amzn-RequestId: {rec['request_id']}\r\n"
                              "Connection: close\r\n\r\n").encode() + body)
                await writer.drain()
                return
            counted = endpoint["id"]
            self.open[counted] = self.open.get(counted, 0) + 1
            await self._tunnel(reader, writer, rec, endpoint, knobs)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                asyncio.LimitOverrunError, ValueError) as e:
            log.info("tunnel %d: %s", rec["index"], e)
        finally:
            if counted is not None:
                self.open[counted] -= 1
            rec["closed_at"] = time.time()
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         rec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise _error(400, "BadRequest", "malformed request line")
        method, target = parts[0], parts[1]
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, _, val = ln.partition(":")
                k = k.strip().lower()
                headers[k] = f"{headers[k]},{val.strip()}" if k in headers else val.strip()
        path, _, raw_query = target.partition("?")
        rec.update(host=headers.get("host"), user_agent=headers.get("user-agent"),
                   extensions=headers.get("sec-websocket-extensions"),
                   protocols=headers.get("sec-websocket-protocol"), raw_query=raw_query)
        key = headers.get("sec-websocket-key", "")
        # 1. the upgrade itself
        if (method != "GET" or "websocket" not in headers.get("upgrade", "").lower()
                or "upgrade" not in headers.get("connection", "").lower() or not key
                or headers.get("sec-websocket-version") != "13"):
            raise _error(400, "BadRequest", "not a websocket upgrade")
        if path != "/openTunnel":
            raise _error(404, "NotFound", f"no such path {path}")
        # 2–4. the signature
        query, _ = parse_query(raw_query)
        rec["query"] = query
        endpoint_id = query.get("instanceConnectEndpointId")
        rec["endpoint"] = endpoint_id
        endpoint = self.store.get(endpoint_id) if endpoint_id else None
        knobs = self.knobs_for(endpoint_id)
        now = time.time() + float(knobs["clock_offset_s"] or 0)
        verdict = verify(method, path, raw_query, headers, now, self.credentials,
                         endpoint["region"] if endpoint else None)
        rec["signature_ok"], rec["why"] = verdict.ok, verdict.why
        if not verdict.ok:
            raise _error(403, "AccessDenied", f"Signature verification failed: {verdict.why}")
        if knobs["handshake_status"]:
            body = knobs["handshake_body"]
            raise HandshakeRefused(int(knobs["handshake_status"]),
                                   body if isinstance(body, str) else json.dumps(body or {}))
        # 5. parameters
        if endpoint is None or endpoint["state"] not in USABLE_STATES:
            why = "does not exist" if endpoint is None else f"is in state {endpoint['state']}"
            raise _error(400, "InvalidParameter",
                         f"The instance connect endpoint {endpoint_id} {why}.")
        port = query.get("remotePort")
        if port not in ("22", "3389"):
            raise HandshakeRefused(400, BAD_PORT_BODY)
        duration = DEFAULT_DURATION_S
        if "maxTunnelDuration" in query:
            d = query["maxTunnelDuration"]
            if not d.isdigit() or not 1 <= int(d) <= 3600:
                raise _error(400, "InvalidParameter", "The specified MaxTunnelDuration is not "
                             "valid. Specify a value between 1 and 3600 and retry your request.")
            duration = int(d)
        ip = query.get("privateIpAddress", "")
        try:
            addr = ipaddress.ip_address(ip)
            inside = any(addr in ipaddress.ip_network(c) for c in endpoint["vpc_cidrs"])
        except ValueError:
            inside = False
        if not inside:
            raise _error(400, "InvalidParameter", f"The specified PrivateIpAddress {ip!r} is "
                         f"not in the VPC {endpoint['vpc_id']} of the endpoint.")
        # 6. the connection cap
        if self.open.get(endpoint["id"], 0) >= int(knobs["max_tunnels"]):
            raise _error(429, "TooManyRequests", "The maximum number of concurrent connections "
                         f"to {endpoint['id']} has been reached.")
        # 7. upgrade
        if knobs["accept_delay_ms"]:
            await asyncio.sleep(knobs["accept_delay_ms"] / 1000)
        if knobs["close_after_seconds"]:
            duration = min(duration, float(knobs["close_after_seconds"]))
        rec["duration_limit"] = duration
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {ws_accept(key)}\r\n"
                      f"x-amzn-RequestId: {rec['request_id']}\r\n\r\n").encode())
        rec["status"] = 101
        return endpoint, knobs

    async def _dial(self, ip: str, port: int, rec: dict[str, Any]
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        netns, host = self.netns.get(ip), ip
        if ip in self.dial_override:
            netns, host, port = self.dial_override[ip]
        rec["dialed"], rec["netns"] = f"{host}:{port}", netns
        if netns:
            sock = await asyncio.wait_for(connect_in_netns(netns, host, port), DIAL_TIMEOUT_S)
            return await asyncio.open_connection(sock=sock)
        return await asyncio.wait_for(asyncio.open_connection(host, port), DIAL_TIMEOUT_S)

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      rec: dict[str, Any], endpoint: dict[str, Any],
                      knobs: dict[str, Any]) -> None:
        ws = TunnelSocket(reader, writer, rec)
        q = rec["query"]
        if knobs["dial_refuse"]:
            ws.close(1011, "Unable to connect to target")
            await self._drain_close(ws)
            return
        try:
            tr, tw = await self._dial(q["privateIpAddress"], int(q["remotePort"]), rec)
        except (OSError, asyncio.TimeoutError) as e:
            log.info("tunnel %d: dial failed: %s", rec["index"], e)
            ws.close(1011, "Unable to connect to target")
            await self._drain_close(ws)
            return
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def cut(code: int, reason: str, drop: bool = False) -> None:
            if drop:
                writer.transport.abort()
            else:
                ws.close(code, reason)
            tw.close()
            done.set()

        def relayed(n: int) -> None:
            limit = knobs["close_after_bytes"]
            total = rec["bytes_to_target"] + rec["bytes_from_target"]
            if limit is not None and total >= int(limit) and not done.is_set():
                cut(int(knobs["close_code"]), str(knobs["close_reason"]),
                    bool(knobs["drop_tcp_without_close"]))

        timer = loop.call_later(rec["duration_limit"], cut, 1000, "Tunnel duration exceeded")

        async def to_client() -> None:
            try:
                while not done.is_set():
                    data = await tr.read(READ_CHUNK)
                    if not data:
                        break
                    if knobs["rechunk"]:
                        while len(data) < READ_CHUNK and self.rng.random() < 0.5:
                            try:
                                more = await asyncio.wait_for(tr.read(READ_CHUNK - len(data)),
                                                              0.005)
                            except asyncio.TimeoutError:
                                break
                            if not more:
                                break
                            data += more
                        i = 0
                        while i < len(data):
                            n = self.rng.choice((1, self.rng.randint(1, 512),
                                                 self.rng.randint(1, READ_CHUNK)))
                            ws.send_binary(data[i:i + n])
                            i += n
                    else:
                        ws.send_binary(data)
                    rec["bytes_from_target"] += len(data)
                    relayed(len(data))
                    if ws.buffered() > 1 << 20:
                        await writer.drain()
            except (ConnectionError, OSError):
                pass
            if not done.is_set():
                cut(1000, "")

        async def to_target() -> None:
            while (m := await ws.recv()) is not None:
                op, data = m
                if op != BINARY or done.is_set():
                    continue
                tw.write(data)
                rec["bytes_to_target"] += len(data)
                relayed(len(data))
                try:
                    await tw.drain()
                except (ConnectionError, OSError):
                    break
            tw.close()
            if not done.is_set():
                if not ws.closing:
                    ws.close(1000, "")
                done.set()

        async def pinger() -> None:
            every = knobs["ping_every_ms"]
            while every and not done.is_set():
                await asyncio.sleep(every / 1000)
                if not done.is_set():
                    rec["pings_sent"] += 1
                    ws.send(9, str(rec["pings_sent"]).encode())

        tasks = [asyncio.create_task(c) for c in (to_client(), to_target(), pinger())]
        try:
            await done.wait()
            # to_target reads on (discarding data) until the client's Close: ≤ 2 s.
            await asyncio.wait([tasks[1]], timeout=2)
        finally:
            timer.cancel()
            for t in tasks:
                t.cancel()
            tw.close()

    @staticmethod
    async def _drain_close(ws: TunnelSocket) -> None:
        """After our Close, read until the client's (≤ 2 s, then the transport goes)."""
        try:
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and not ws.w.is_closing():
                if await asyncio.wait_for(ws.recv(), deadline - time.monotonic()) is None:
                    break
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        ws.w.close()

    # -- admin endpoints in front of moto
    def wsgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            if not path.startswith("/__fake_eice/"):
                return app(environ, start_response)
            stream, n = environ["wsgi.input"], environ.get("CONTENT_LENGTH")
            raw = stream.read(int(n)) if n else (
                stream.read() if environ.get("wsgi.input_terminated") else b"")
            try:
                body = json.loads(raw or b"{}")
                since = int(parse_qs(environ.get("QUERY_STRING", "")).get("since", ["0"])[0])
                if path == "/__fake_eice/tunnels" and method == "GET":
                    status, out = 200, self.tunnel_records(since)
                elif path == "/__fake_eice/calls" and method == "GET":
                    status, out = 200, self.store.calls_snapshot(since)
                elif path == "/__fake_eice/state" and method == "GET":
                    status, out = 200, self.state()
                elif path == "/__fake_eice/knobs" and method == "POST":
                    status, out = 200, {"knobs": self.set_knobs(body)}
                elif path == "/__fake_eice/credentials" and method == "POST":
                    status, out = 200, {"accepted": self.add_credentials(
                        body["access_key_id"], body["secret_access_key"],
                        body.get("session_token"))}
                else:
                    status, out = 404, {"message": f"no admin endpoint {method} {path}"}
            except (ValueError, KeyError, TypeError) as e:
                status, out = 400, {"message": str(e)}
            data = json.dumps(out).encode()
            start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
            return [data]
        return middleware


def parse_netns_map(text: str) -> dict[str, str]:
    """'10.1.1.10=hope-1,10.0.1.10=hopw-1' → {ip: namespace}."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        ip, sep, ns = item.partition("=")
        if not sep or not ns:
            raise ValueError(f"--eice-netns wants IP=NS, got {item!r}")
        out[str(ipaddress.ip_address(ip))] = ns
    return out


# ================================================================ self-test
def presign(host: str, endpoint_id: str, ip: str, port: int, region: str, akid: str,
            secret: str, token: str | None, now: float, duration: int | None = 3600,
            expires: int = 60) -> str:
    """An independent presigner (the §A.3 rules) for the self-test: path and query."""
    t = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    ops = [("instanceConnectEndpointId", endpoint_id), ("remotePort", str(port)),
           ("privateIpAddress", ip)]
    if duration is not None:
        ops.append(("maxTunnelDuration", str(duration)))
    auth = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", f"{akid}/{t[:8]}/{region}/{SIGNING_NAME}/aws4_request"),
            ("X-Amz-Date", t), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")]
    if token:
        auth.append(("X-Amz-Security-Token", token))
    params = ops + auth
    cq = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params))
    creq = "\n".join(["GET", "/openTunnel", cq, f"host:{host}\n", "host", EMPTY_SHA256])
    sts = "\n".join(["AWS4-HMAC-SHA256", t, f"{t[:8]}/{region}/{SIGNING_NAME}/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (t[:8], region, SIGNING_NAME, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in params + [("X-Amz-Signature", sig)])
    return f"/openTunnel?{query}"


def check_vectors() -> int:
    default = Path(__file__).resolve().parents[1] / "data/ec2-instance-connect-vectors.json"
    with open(os.environ.get("EICE_VECTORS", str(default))) as f:
        vectors = json.load(f)["signing"]["vectors"]
    assert vectors, "no signing vectors"
    checked = 0
    for vec in vectors:
        i = vec["inputs"]
        now = dt.datetime.strptime(i["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.timezone.utc).timestamp()
        creds = {i["access_key_id"]: (i["secret_access_key"], i["session_token"])}
        for form in ("url", "url_aws_sigv4_1_6_4"):
            u = urlsplit(vec[form])
            hdrs = {"host": u.netloc}
            v = verify("GET", u.path, u.query, hdrs, now, creds, i["region"])
            assert v.ok, f"{vec['name']} ({form}) refused: {v.why}"
            assert v.canonical_request == vec["canonical_request"], f"{vec['name']}: creq"
            assert v.string_to_sign == vec["string_to_sign"], f"{vec['name']}: string to sign"
            sig = v.params["X-Amz-Signature"]
            assert sig == vec["signature"], vec["name"]
            # one flipped signature character
            flipped = sig[:7] + ("0" if sig[7] != "0" else "1") + sig[8:]
            bad = verify("GET", u.path, u.query.replace(sig, flipped), hdrs, now, creds,
                         i["region"])
            assert not bad.ok and bad.why == "signature does not match", (vec["name"], bad.why)
            checked += 1
        u = urlsplit(vec["url"])
        cases = {
            "expired": ("GET", u.path, u.query, {"host": u.netloc}, now + 61, creds, i["region"]),
            "other host": ("GET", u.path, u.query, {"host": u.netloc + ":443"}, now, creds,
                           i["region"]),
            "unknown key": ("GET", u.path, u.query, {"host": u.netloc}, now,
                            {"other": ("x", None)}, i["region"]),
            "other region": ("GET", u.path, u.query, {"host": u.netloc}, now, creds, "xx-1"),
            "future": ("GET", u.path, u.query, {"host": u.netloc}, now - 301, creds, i["region"]),
            "other path": ("GET", "/opentunnel", u.query, {"host": u.netloc}, now, creds,
                           i["region"]),
        }
        if i["session_token"]:
            cases["no token"] = ("GET", u.path, "&".join(
                p for p in u.query.split("&") if not p.startswith("X-Amz-Security-Token=")),
                {"host": u.netloc}, now, creds, i["region"])
            cases["token not expected"] = ("GET", u.path, u.query, {"host": u.netloc}, now,
                                           {i["access_key_id"]: (i["secret_access_key"], None)},
                                           i["region"])
        for what, args in cases.items():
            assert not verify(*args).ok, f"{vec['name']}: {what} accepted"
        # the independent presigner of the self-test agrees with the vector byte for byte
        mine = presign(u.netloc, i["instance_connect_endpoint_id"], i["private_ip_address"],
                       i["remote_port"], i["region"], i["access_key_id"],
                       i["secret_access_key"], i["session_token"], now,
                       i["max_tunnel_duration"], i["expires_seconds"])
        assert f"{u.path}?{u.query}" == mine, f"{vec['name']}: presigner differs"
    return checked


async def open_tunnel(port: int, host: str, target: str, ca: Path,
                      headers: str = "") -> tuple[int, bytes, WebSocket | None]:
    ctx = ssl.create_default_context(cafile=str(ca))
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host)
    key = base64_key()
    w.write((f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             f"User-Agent: fake-eice-self-test\r\n{headers}\r\n").encode())
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split(b" ")[1])
    if status != 101:
        n = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n")
                      if ln.lower().startswith(b"content-length:")), b"0"))
        body = await r.readexactly(n)
        w.close()
        return status, body, None
    assert ws_accept(key).encode() in head and b"x-amzn-RequestId: " in head, head
    return 101, head, WebSocket(r, w, client=True)


def base64_key() -> str:
    import base64
    return base64.b64encode(os.urandom(16)).decode()


async def run_self_test() -> list[str]:
    """End to end on loopback: a registry endpoint (no moto), the TLS server on port 0, an echo
    server standing in for the target."""
    store = Store()
    endpoint_id = "eice-0123456789abcdef0"
    dns, fips = dns_names(endpoint_id, "us-east-1")
    store.endpoints[endpoint_id] = {
        "id": endpoint_id, "region": "us-east-1", "account": "123456789012",
        "vpc_id": "vpc-1", "vpc_cidrs": ["10.1.0.0/16"], "subnet_id": "subnet-1",
        "az": "us-east-1a", "az_id": "use1-az1", "state": "create-complete",
        "state_message": "", "dns_name": dns, "fips_dns_name": fips, "eni_ids": ["eni-1"],
        "created_at": "", "preserve_client_ip": False, "security_group_ids": ["sg-1"],
        "tags": {}, "ip_address_type": "ipv4"}

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        w.close()
    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    fake = FakeEICE(store=store, port=0)
    fake.dial_override["10.1.1.10"] = (None, "127.0.0.1", echo_port)
    port = await asyncio.to_thread(fake.start)
    results: list[str] = []

    def url(**kw: Any) -> str:
        args: dict[str, Any] = dict(host=dns, endpoint_id=endpoint_id, ip="10.1.1.10", port=22,
                                    region="us-east-1", akid="testing", secret="testing",
                                    token=None, now=time.time())
        args.update(kw)
        return presign(**args)

    # good: 101, bytes relayed both ways through frames, close 1000 on client close
    status, _, ws = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 101 and ws is not None, status
    data = random.Random(5).randbytes(300_000)
    for i in range(0, len(data), 65_000):
        ws.send(BINARY, data[i:i + 65_000])
    got = bytearray()
    while len(got) < len(data):
        m = await asyncio.wait_for(ws.recv(), 10)
        assert m is not None and m[0] == BINARY, m
        got += m[1]
    assert bytes(got) == data, "echo mismatch"
    ws.close(1000, "")
    await asyncio.sleep(0.2)
    rec = fake.tunnel_records()[-1]
    assert rec["signature_ok"] and rec["status"] == 101 and rec["violations"] == [], rec
    assert rec["bytes_to_target"] == len(data) == rec["bytes_from_target"], rec
    assert rec["host"] == dns and rec["sni"] == dns and rec["dialed"].endswith(f":{echo_port}")
    assert rec["close_received"] == {"code": 1000, "reason": ""}, rec
    results.append(f"good URL: 101, {len(data)} B echoed through binary frames, close 1000")

    # the FIPS name is served too (SNI picks its leaf)
    status, _, ws = await open_tunnel(port, fips, url(host=fips), fake.ca.ca_path)
    assert status == 101 and ws is not None
    ws.close(1000, "")

    # refusals
    good = url()
    sig = good.rsplit("=", 1)[1]
    cases = [
        ("bad signature", good[:-1] + ("0" if sig[-1] != "0" else "1"), 403, "AccessDenied"),
        ("expired", url(now=time.time() - 120), 403, "URL expired"),
        ("unknown key", url(akid="AKIDOTHER"), 403, "unknown access key"),
        ("wrong port", url(port=80), 400, "RemotePort is not valid"),
        ("bad duration", url(duration=3601), 400, "MaxTunnelDuration"),
        ("IP outside the VPC", url(ip="10.9.0.1"), 400, "not in the VPC"),
        ("unknown endpoint", url(endpoint_id="eice-00000000000000000"), 400, "does not exist"),
    ]
    for what, target, want_status, want in cases:
        status, body, _ = await open_tunnel(port, dns, target, fake.ca.ca_path)
        assert status == want_status and want.encode() in body, (what, status, body)
    status, body, _ = await open_tunnel(port, dns, url(port=80), fake.ca.ca_path)
    assert body.decode() == BAD_PORT_BODY
    results.append("refused: " + ", ".join(f"{w} → {s}" for w, _, s, _ in cases))

    # temporary credentials: the token must be signed
    fake.add_credentials("ASIATEMP", "tempsecret", "tok+/=en")
    status, _, ws = await open_tunnel(port, dns, url(akid="ASIATEMP", secret="tempsecret",
                                                     token="tok+/=en"), fake.ca.ca_path)
    assert status == 101 and ws is not None
    ws.close(1000, "")
    status, _, _ = await open_tunnel(port, dns, url(akid="ASIATEMP", secret="tempsecret"),
                                     fake.ca.ca_path)
    assert status == 403
    results.append("temporary credentials: signed token → 101, no token → 403")

    # knobs: dial failure, duration limit, close after bytes, cap, state, handshake status
    fake.set_knobs({"endpoint": None, "dial_refuse": True})
    status, _, ws = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 101 and ws is not None
    assert await asyncio.wait_for(ws.recv(), 5) is None
    await asyncio.sleep(0.1)
    assert fake.tunnel_records()[-1]["close_sent"] == {
        "code": 1011, "reason": "Unable to connect to target"}
    fake.set_knobs({"reset": True, "endpoint": endpoint_id, "close_after_seconds": 0.3,
                    "ping_every_ms": 50})
    status, _, ws = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 101 and ws is not None
    assert await asyncio.wait_for(ws.recv(), 5) is None
    await asyncio.sleep(0.1)
    rec = fake.tunnel_records()[-1]
    assert rec["close_sent"] == {"code": 1000, "reason": "Tunnel duration exceeded"}, rec
    assert rec["pings_sent"] >= 1 and rec["pongs_received"] >= 1, rec
    fake.set_knobs({"reset": True, "close_after_bytes": 10, "close_code": 1011,
                    "close_reason": "boom", "max_tunnels": 1})
    status, _, ws = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 101 and ws is not None
    status2, body2, _ = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status2 == 429, (status2, body2)
    ws.send(BINARY, b"0123456789abcdef")
    while (m := await asyncio.wait_for(ws.recv(), 5)) is not None:
        pass
    assert ws.close_code in (None, 1011)
    await asyncio.sleep(0.1)
    rec = [t for t in fake.tunnel_records() if t["status"] == 101][-1]
    assert rec["close_sent"] == {"code": 1011, "reason": "boom"}, rec
    fake.set_knobs({"reset": True, "close_after_bytes": 5, "drop_tcp_without_close": True,
                    "accept_delay_ms": 50})
    status, _, ws = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 101 and ws is not None
    ws.send(BINARY, b"0123456789")
    while await asyncio.wait_for(ws.recv(), 5) is not None:
        pass
    assert ws.close_code is None  # no Close frame: the TCP connection just ended
    fake.set_knobs({"reset": True, "state": "delete-in-progress"})
    status, _, _ = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 400
    fake.set_knobs({"reset": True, "handshake_status": 503, "handshake_body": "busy"})
    status, body, _ = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 503 and body == b"busy"
    fake.set_knobs({"reset": True, "rechunk": True})
    status, _, ws = await open_tunnel(port, dns, url(), fake.ca.ca_path)
    assert status == 101 and ws is not None
    ws.send(BINARY, data[:200_000])
    got, frames = bytearray(), 0
    while len(got) < 200_000:
        m = await asyncio.wait_for(ws.recv(), 10)
        assert m is not None
        got += m[1]
        frames += 1
    assert bytes(got) == data[:200_000]
    ws.send(TEXT, b"hello")
    ws.close(1000, "")
    await asyncio.sleep(0.2)
    rec = fake.tunnel_records()[-1]
    assert rec["violations"] == ["frame of 200000 bytes (> 65000)", "text frame"], rec
    assert frames > 1 and rec["frames_to_client"] == frames, (frames, rec)
    assert store.endpoints[endpoint_id]["state"] == "create-complete"
    results.append("knobs: dial_refuse → 1011, duration 0.3 s → 1000 'Tunnel duration "
                   f"exceeded' (+ pings/pongs), close_after_bytes, max_tunnels → 429, drop "
                   f"without Close, state, "
                   f"handshake_status; rechunk: 200000 B in {frames} frames; violations recorded")
    echo_server.close()
    fake.stop()
    return results


def self_test() -> int:
    failures = 0
    try:
        print(f"ok   verifier: {check_vectors()} vector URLs accepted at their time with their "
              "Host, each refused with one flipped signature character; expired / other host / "
              "unknown key / other region / future date / other path / token cases refused")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        failures += 1
        print(f"FAIL verifier: {e!r}")
    try:
        for line in asyncio.run(run_self_test()):
            print(f"ok   {line}")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        failures += 1
        print(f"FAIL end-to-end: {e!r}")
    print("self-test", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO if a.verbose else logging.ERROR,
                        format="fake_eice: %(message)s", stream=sys.stderr)
    sys.exit(self_test() if a.self_test else ap.print_help() or 2)
