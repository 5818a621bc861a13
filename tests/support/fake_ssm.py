#!/usr/bin/env python3
"""Protocol-faithful fake of AWS SSM Session Manager for hop's tests: control plane, data
channel and agent, written from docs/specs/ssm-data-channel.md ("§" below).

    python fake_ssm.py --self-test        codec vectors + end-to-end runs against a Python client

Installed by moto_lab.py in front of moto's WSGI app (`fake.wsgi(app)`); the websocket data
channel listens on 127.0.0.1:<ws_port> (its own asyncio loop in a daemon thread). Everything that
touches session state runs on that loop; WSGI threads hand work to it with `FakeSSM.api`.

Control plane (POST / with X-Amz-Target AmazonSSM.<Op>, JSON 1.1, SigV4 ignored; other calls go
to moto untouched): StartSession, ResumeSession, TerminateSession, DescribeInstanceInformation.
Errors: HTTP 400 {"__type": T, "message": ...} plus header x-amzn-ErrorType: T.

Admin endpoints (not AWS):
    POST /__fake_ssm/target  {"instance_id": "i-..", "knobs": {...}}  merge knobs, registers target;
                             answers {"instance_id", "knobs": <merged>}
    GET  /__fake_ssm/state   {"ws_port", "targets": {id: knobs}, "calls": [{"op", "body"}],
                              "sessions": {SessionId: Session.snapshot()}}
    POST /__fake_ssm/reset   ends every session, forgets targets, sessions and calls

Knobs (per target, read live, so they apply to every session of the target; 0/absent = off):
  registered (true)        false: hidden from DescribeInstanceInformation, StartSession fails
  ping_status ("Online")   DescribeInstanceInformation PingStatus; anything but Online makes
                           StartSession fail with TargetNotConnected
  agent_version ("3.3.1142.0")  AgentVersion in DescribeInstanceInformation and the handshake
  start_error              StartSession fails with this error type (e.g. AccessDeniedException)
  resume_no_token          ResumeSession answers without TokenValue (session timed out, §5.8)
  reject_token             every OpenDataChannel is refused (websocket close 1008)
  no_handshake             never send the HandshakeRequest
  session_type ("Port")    SessionType announced in the HandshakeRequest (§4.1)
  kms                      add a KMSEncryption action to the HandshakeRequest
  unknown_action           add an action of type "FakeUnknownAction"
  handshake_timeout_ms (15000)  how long to wait for the HandshakeResponse (§4.2)
  dial {"host","port","netns"}  destination: host default = the document's host parameter or
                           127.0.0.1, port default = portNumber; netns = name under /var/run/netns
                           to create the socket in (setns on a dedicated thread)
  dial_delay_ms            delay before each destination dial (exercises "not ready", §8.3.17)
  max_rto_ms (1000)        cap of the fake's RTO (§5.4)
  seed (1)                 seed of the fault RNG (per session: seed, target, n-th session of it)
  drop_percent / dup_percent / reorder_percent   faults on transmissions of the fake's sequenced
                           messages: not written / written twice / held and written after the next
                           one (reorder: first transmissions only). Recovery is the fake's own
                           retransmission (§5.3)
  drop_ack_percent         drop this share of the fake's acks
  withhold_acks_ms         no acks at all during the first N ms after HandshakeComplete is sent
  corrupt_digest_every N   first transmission of every Nth sequenced message has a wrong digest
  drop_first_handshake_complete  first transmission of HandshakeComplete is not written
  close_ws_after_messages N  after the Nth Output message, close the websocket with 1000 once per
                           session (session survives; client must ResumeSession, §5.8)
  channel_closed_after_bytes N  once N bytes came from the destination, send channel_closed with
                           Output = channel_closed_output and close 1000
  channel_closed_hl112     every channel_closed has HeaderLength 112 and a NUL-padded type (§2.2)
  publications             start/pause_publication now and then (one with CreatedDate 0, one with
                           a wrong digest, §8.3.11)
  oversize_payloads        some Output payloads up to 64 KiB (§8.3.8)
  malformed_frames         after the handshake, send four malformed frames once (§8.3.8)
  mux_connect_error        true: every smux SYN fails; integer k: only the k-th SYN fails
                           (ConnectToPortError flag + FIN, §6.4)
  mux_nop_ms               send smux NOPs at this interval regardless of keep-alive
  mux_bad_version          after the first SYN, send one smux frame with version 2
  ignore_handshake_request_ack  ignore the client's first ack of the HandshakeRequest, so it is
                           retransmitted (§8.3.9a)

Per-session state: target, document, parameters, properties, reason, mode (sshd|basic|mux),
handshake (none|requested|responded|complete|failed), handshake_response, client_version (from
the HandshakeResponse), odc_client_version, client_id, open_data_channel, rejected_connections,
resumes, ws_closes_injected, terminated_by_api, terminate_flag_received, flags_received,
disconnect_to_port, violations (§8.1.8 checks on the client), max_client_payload,
bytes_to_target, bytes_from_target, mux_stream_ids, ended, end_reason, channel_closed_output,
unacked_at_end, next_out_seq, expected_in_seq, and counters sent, output_sent, retransmissions,
dropped, duplicated, reordered, corrupted, acks_dropped, acks_withheld, duplicates_received,
not_ready, publications.

Deliberate deviations from the real agent/service: every expired unacked message is resent on
the 100 ms tick (≤ 64 per tick), not only the oldest (§5.3); at 1024 unacked messages the relay
stops reading the destination instead of sending without retaining (§5.5); client digests are
verified (violation, dropped without ack; §2.5); the destination defaults to 127.0.0.1, not
"localhost", with no deny list (§6.3); mux also requires agent_version > 3.0.196.0 (§6.1); client
data arriving during the ≤ 2 s end wait is acked and discarded; a session with no websocket for
60 s ends. Service behaviour the spec marks unknown (§10) is guessed: bad token -> close 1008,
TerminateSession API -> channel_closed, StartSession on a non-Online target -> TargetNotConnected.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ctypes
import hashlib
import json
import logging
import os
import random
import secrets
import socket
import struct
import sys
import threading
import time
import uuid
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("fake_ssm")

# ---------------------------------------------------------------- AgentMessage codec (§2)
HDR = struct.Struct(">I32sIQqQ")  # HeaderLength, MessageType, Schema, CreatedDate, Seq, Flags
U32 = struct.Struct(">I")
OUT, IN, ACK, CLOSED = "output_stream_data", "input_stream_data", "acknowledge", "channel_closed"
PT_OUTPUT, PT_SIZE, PT_HS_REQ, PT_HS_RESP, PT_HS_DONE, PT_FLAG = 1, 3, 5, 6, 7, 10
DISCONNECT_TO_PORT, TERMINATE_SESSION, CONNECT_TO_PORT_ERROR = 1, 2, 3  # §3.3
MAX_PAYLOAD = 1024  # §5.5


def now_ms() -> int:
    return int(time.time() * 1000)


def encode(mtype: str, seq: int, flags: int, ptype: int, payload: bytes, *,
           mid: uuid.UUID | None = None, created: int | None = None, schema: int = 1,
           digest: bytes | None = None, hl: int = 116, pad: bytes = b" ") -> bytes:
    """§2.1/§2.2; hl=112 leaves out PayloadType (the reported channel_closed variant)."""
    t = mtype.encode("ascii")
    if len(t) > 32:
        raise ValueError("MessageType longer than 32 bytes")
    u = (mid or uuid.uuid4()).bytes
    parts = [HDR.pack(hl, t.ljust(32, pad), schema, now_ms() if created is None else created,
                      seq, flags),
             u[8:], u[:8],  # §2.3: least-significant half first
             hashlib.sha256(payload).digest() if digest is None else digest]
    if hl >= 116:
        parts.append(U32.pack(ptype))
    parts += [U32.pack(len(payload)), payload]
    return b"".join(parts)


class Msg:
    __slots__ = ("type", "schema", "created", "seq", "flags", "mid", "digest", "ptype",
                 "payload", "hl")


def decode(b: bytes) -> Msg:
    """Strict decoding per §2.2 [hop] rules."""
    if len(b) < 120:
        raise ValueError(f"message of {len(b)} bytes is shorter than 120")
    hl = U32.unpack_from(b, 0)[0]
    if hl < 112 or hl + 4 > len(b):
        raise ValueError(f"bad HeaderLength {hl}")
    if hl + 4 + U32.unpack_from(b, hl)[0] != len(b):
        raise ValueError("PayloadLength inconsistent with the frame size")
    m = Msg()
    m.hl, t, m.schema, m.created, m.seq, m.flags = HDR.unpack_from(b, 0)
    m.type = t.strip(b"\0").strip().decode("ascii", "replace")
    m.mid = uuid.UUID(bytes=b[72:80] + b[64:72])
    m.digest = b[80:112]
    m.ptype = U32.unpack_from(b, 112)[0] if hl >= 116 else 0
    m.payload = b[hl + 4:]
    return m


def digest_ok(m: Msg) -> bool:
    return hashlib.sha256(m.payload).digest() == m.digest  # §2.5


def ack_payload(m: Msg) -> bytes:
    """§5.2, key order and spacing as Go's encoder writes them (vector B)."""
    return (f'{{"AcknowledgedMessageType":"{m.type}","AcknowledgedMessageId":"{m.mid}",'
            f'"AcknowledgedMessageSequenceNumber":{m.seq},"IsSequentialMessage":true}}').encode()


def jdump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------- version comparisons (§6.2)
def plugin_gt(version: str, threshold: str) -> bool:
    """Plugin rule: same component count, all decimal, numerically strictly greater."""
    a, b = version.split("."), threshold.split(".")
    if len(a) != len(b) or not all(x.isdigit() for x in a + b):
        return False
    return [int(x) for x in a] > [int(x) for x in b]


def agent_cmp(a: str, b: str) -> int:
    """Agent rule: common prefix, numeric or string per component, then the longer wins."""
    pa, pb = a.split("."), b.split(".")
    for x, y in zip(pa, pb):
        xx: Any = int(x) if x.isdigit() and y.isdigit() else x
        yy: Any = int(y) if x.isdigit() and y.isdigit() else y
        if xx != yy:
            return -1 if xx < yy else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


# ---------------------------------------------------------------- smux v1 (§6.4)
SMUX = struct.Struct("<BBHI")
SYN, FIN, PSH, NOP = 0, 1, 2, 3


def smux_frame(cmd: int, sid: int, data: bytes = b"", version: int = 1) -> bytes:
    return SMUX.pack(version, cmd, len(data), sid) + data


def smux_frames(buf: bytearray) -> Iterator[tuple[int, int, int, bytes]]:
    """Consume complete frames from buf: (version, cmd, sid, data). Frames may span messages."""
    while len(buf) >= 8:
        ver, cmd, n, sid = SMUX.unpack_from(buf)
        if ver != 1 or cmd > NOP:  # header is enough to reject: version/cmd are protocol errors
            yield ver, cmd, sid, b""
            return
        if len(buf) < 8 + n:
            return
        data = bytes(buf[8:8 + n])
        del buf[:8 + n]
        yield ver, cmd, sid, data


# ---------------------------------------------------------------- RFC 6455 websocket
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_MAX_MESSAGE = 2 << 20
TEXT, BINARY = 1, 2


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


class WebSocket:
    """One RFC 6455 connection; `client` masks outgoing frames and accepts unmasked ones."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: bool):
        self.r, self.w, self.client = reader, writer, client
        self.closing = False
        self.close_code: int | None = None

    def send(self, op: int, data: bytes) -> None:
        if not self.closing and not self.w.is_closing():
            self._frame(op, data)

    def _frame(self, op: int, data: bytes) -> None:
        n, m = len(data), 0x80 if self.client else 0
        if n < 126:
            hdr = bytes((0x80 | op, m | n))
        elif n < 65536:
            hdr = bytes((0x80 | op, m | 126)) + struct.pack("!H", n)
        else:
            hdr = bytes((0x80 | op, m | 127)) + struct.pack("!Q", n)
        if self.client:
            key = os.urandom(4)
            hdr, data = hdr + key, ws_mask(data, key)
        self.w.write(hdr + data)

    def buffered(self) -> int:
        return self.w.transport.get_write_buffer_size() if not self.w.is_closing() else 0

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame; the transport goes when the peer answers, or after 2 s."""
        if self.closing:
            return
        self.closing = True
        if not self.w.is_closing():
            self._frame(8, struct.pack("!H", code) + reason.encode()[:120])
        asyncio.get_running_loop().call_later(2.0, self.w.close)

    async def recv(self) -> tuple[int, bytes] | None:
        """Next complete text/binary message; pings are answered here; None once closed."""
        frags: list[bytes] = []
        first_op = size = 0
        try:
            while True:
                b0, b1 = await self.r.readexactly(2)
                op, n = b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.r.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.r.readexactly(8))[0]
                if b0 & 0x70 or (not self.client and not b1 & 0x80):
                    return self._fail(1002, "reserved bits set or unmasked client frame")
                if n > WS_MAX_MESSAGE or size + n > WS_MAX_MESSAGE:
                    return self._fail(1009, "message too big")
                key = await self.r.readexactly(4) if b1 & 0x80 else b""
                data = await self.r.readexactly(n)
                if key and n:
                    data = ws_mask(data, key)
                if op >= 8:  # control frames may interleave with fragments
                    if not b0 & 0x80 or n > 125:
                        return self._fail(1002, "bad control frame")
                    if op == 9:
                        self.send(10, data)  # ping -> pong
                    elif op == 8:
                        self.close_code = struct.unpack("!H", data[:2])[0] if n >= 2 else 1005
                        if not self.closing:
                            self.closing = True
                            self._frame(8, data[:2])
                        self.w.close()
                        return None
                    continue
                if op == 0 and not frags or op in (TEXT, BINARY) and frags or op not in (0, 1, 2):
                    return self._fail(1002, "bad fragmentation or opcode")
                if op:
                    first_op = op
                frags.append(data)
                size += n
                if b0 & 0x80:
                    return first_op, b"".join(frags)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.w.close()
            return None

    def _fail(self, code: int, why: str) -> None:
        log.info("websocket protocol error: %s", why)
        self.close(code, why)
        return None


# ---------------------------------------------------------------- agent session
OUT_CAP = 1024         # unacked outgoing messages before the relay stops reading (backpressure)
OOO_CAP = 10_000       # out-of-order receive buffer (§5.5)
RESEND_BURST = 64      # retransmissions per 100 ms tick
DEST_BUF_LIMIT = 1 << 20  # destination write buffer above which client Output is "not ready"
WS_BUF_LIMIT = 8 << 20  # websocket write buffer above which writes are skipped (client not reading)
IDLE_END_S = 60.0      # a session without websocket for this long ends
MAX_VIOLATIONS = 200


class Out:
    __slots__ = ("raw", "mid", "last")

    def __init__(self, raw: bytes, mid: uuid.UUID, last: float):
        self.raw, self.mid, self.last = raw, mid, last


class Session:
    """One SSM session: the agent's data-channel engine (§5) plus port plugin (§6)."""

    def __init__(self, fake: FakeSSM, sid: str, target: str, document: str,
                 params: dict[str, str], props: dict[str, str], reason: str | None):
        self.fake, self.sid, self.target, self.document = fake, sid, target, document
        self.params, self.props, self.reason = params, props, reason
        self.token = ""
        nth = sum(1 for o in fake.sessions.values() if o.target == target)
        self.rng = random.Random(f"{self.knobs.get('seed', 1)}:{target}:{nth}")  # reproducible
        self.ws: WebSocket | None = None
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.idle: asyncio.TimerHandle | None = self.loop.call_later(IDLE_END_S, self._idle_end)
        # §5.1/§5.3/§5.4 state
        self.out_seq = self.in_expected = 0
        self.max_in_seq = -1
        self.out_buf: dict[int, Out] = {}
        self.ooo: dict[int, Msg] = {}
        self.srtt, self.rttvar, self.rto = 0.1, 0.0, 0.2
        self.room, self.all_acked = asyncio.Event(), asyncio.Event()
        self.room.set()
        self.all_acked.set()
        self.tx_lock = asyncio.Lock()
        self.held: bytes | None = None
        # handshake (§4) and relay (§6)
        self.hs_state = "none"
        self.hs_event = asyncio.Event()
        self.hs_response: Any = None
        self.hc_seq: int | None = None
        self.hc_sent_at: float | None = None
        self.hc_dropped = self.ack_ignored = False
        self.mode: str | None = None
        self.dest: asyncio.StreamWriter | None = None
        self.dialing = False
        self.mux: Mux | None = None
        # recorded for tests: exported as is by snapshot()
        self.rec: dict[str, Any] = dict(
            index=len(fake.sessions), target=target, document=document, parameters=params, properties=props, reason=reason,
            client_version=None, odc_client_version=None, client_id=None, open_data_channel=0,
            rejected_connections=0, resumes=0, ws_closes_injected=0, terminated_by_api=False,
            terminate_flag_received=False, flags_received=[], disconnect_to_port=0, violations=[],
            max_client_payload=0, bytes_to_target=0, bytes_from_target=0, mux_stream_ids=[],
            end_reason=None, channel_closed_output=None, unacked_at_end=0, sent=0, output_sent=0,
            retransmissions=0, dropped=0, duplicated=0, reordered=0, corrupted=0, acks_dropped=0,
            acks_withheld=0, duplicates_received=0, not_ready=0, publications=0)
        self.ended = False
        self.first_input_seen = False

    @property
    def knobs(self) -> dict[str, Any]:
        return self.fake.targets.get(self.target, {})

    def snapshot(self) -> dict[str, Any]:
        return {**self.rec, "mode": self.mode, "handshake": self.hs_state,
                "handshake_response": self.hs_response, "ended": self.ended,
                "next_out_seq": self.out_seq, "expected_in_seq": self.in_expected,
                "token": self.token}

    def violation(self, text: str) -> None:
        if text not in self.rec["violations"] and len(self.rec["violations"]) < MAX_VIOLATIONS:
            log.warning("session %s: client violation: %s", self.sid, text)
            self.rec["violations"].append(text)

    def spawn(self, coro: Any) -> None:
        t = self.loop.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    def _pct(self, knob: str) -> bool:
        p = self.knobs.get(knob) or 0
        return p > 0 and self.rng.random() * 100 < p

    # -- websocket attachment (§1.3, §5.8)
    def attach(self, ws: WebSocket, odc: dict[str, Any]) -> None:
        if self.ws is not None and self.ws is not ws:
            self.ws.close(1000, "replaced")
        self.ws = ws
        self.rec["open_data_channel"] += 1
        if self.idle:
            self.idle.cancel()
            self.idle = None
        cid = odc.get("ClientId")
        if self.rec["client_id"] is not None and cid != self.rec["client_id"]:
            self.violation("ClientId changed on reconnect (§5.8)")
        self.rec["client_id"] = cid
        self.rec["odc_client_version"] = odc.get("ClientVersion")
        if self.rec["open_data_channel"] == 1:
            self.spawn(self._retransmit_loop())
            self.spawn(self._run())
        if self.knobs.get("publications"):
            self._publication("start_publication")

    def detach(self, ws: WebSocket) -> None:
        if self.ws is ws:
            self.ws = None
        if self.ws is None and not self.ended and self.idle is None:
            self.idle = self.loop.call_later(IDLE_END_S, self._idle_end)

    def _idle_end(self) -> None:
        self.idle = None
        self.end("no client connected for 60 s", "", wait=False)

    # -- sending (§5.1, §5.3) with fault injection (§8.2)
    def _write(self, raw: bytes) -> None:
        if self.ws is not None and self.ws.buffered() < WS_BUF_LIMIT:  # else lost, like a drop
            self.ws.send(BINARY, raw)

    def _transmit(self, raw: bytes, first: bool) -> None:
        if self._pct("drop_percent"):
            self.rec["dropped"] += 1
            return
        if first and self.held is None and self._pct("reorder_percent"):
            self.rec["reordered"] += 1
            self.held = raw  # written after the next message, or on the next timer tick
            return
        self._write(raw)
        if self._pct("dup_percent"):
            self.rec["duplicated"] += 1
            self._write(raw)
        if self.held is not None and self.held is not raw:
            held, self.held = self.held, None
            self._write(held)

    def send_stream(self, ptype: int, payload: bytes) -> int:
        """Sequenced output_stream_data (flags 1 on seq 0, §2.4); kept until acked."""
        seq, mid = self.out_seq, uuid.uuid4()
        self.out_seq += 1
        raw = encode(OUT, seq, 1 if seq == 0 else 0, ptype, payload, mid=mid)
        self.out_buf[seq] = Out(raw, mid, time.monotonic())
        self.all_acked.clear()
        if len(self.out_buf) >= OUT_CAP:
            self.room.clear()
        k = self.knobs
        self.rec["sent"] += 1
        first = raw
        n = k.get("corrupt_digest_every") or 0
        if n > 0 and self.rec["sent"] % n == 0:
            self.rec["corrupted"] += 1
            first = raw[:80] + bytes(b ^ 0xFF for b in raw[80:112]) + raw[112:]
        if ptype == PT_HS_DONE and k.get("drop_first_handshake_complete") and not self.hc_dropped:
            self.hc_dropped = True
        else:
            self._transmit(first, True)
        if ptype == PT_OUTPUT:
            self.rec["output_sent"] += 1
            sent = self.rec["output_sent"]
            if k.get("publications") and sent % 97 == 1:
                self._publication("pause_publication", created=0 if sent == 1 else None)
                self._publication("start_publication", bad_digest=sent > 1)
            if sent == k.get("close_ws_after_messages") and not self.rec["ws_closes_injected"]:
                self.rec["ws_closes_injected"] += 1
                ws, self.ws = self.ws, None
                if ws is not None:
                    ws.close(1000, "Bye")  # §5.8: the service's periodic close
        return seq

    def _publication(self, kind: str, created: int | None = None, bad_digest: bool = False) -> None:
        self.rec["publications"] += 1
        self._write(encode(kind, 0, 0, 0, b"{}", created=created,
                           digest=bytes(32) if bad_digest else None))

    async def _wait_room(self) -> None:
        while len(self.out_buf) >= OUT_CAP and not self.ended:
            self.room.clear()
            await self.room.wait()
        if self.ws is not None and self.ws.buffered() > DEST_BUF_LIMIT:
            try:
                await self.ws.w.drain()
            except (ConnectionError, OSError):
                pass

    async def send_data(self, data: bytes) -> None:
        """Output messages of ≤ 1024 bytes (§5.5), or up to 64 KiB with oversize_payloads."""
        i = 0
        while i < len(data) and not self.ended:
            await self._wait_room()
            if self.ended:
                return
            big = self.knobs.get("oversize_payloads") and self.out_seq % 3 == 0
            chunk = data[i:i + (65536 if big else MAX_PAYLOAD)]
            i += len(chunk)
            self.send_stream(PT_OUTPUT, chunk)

    def from_target(self, n: int) -> None:
        self.rec["bytes_from_target"] += n
        limit = self.knobs.get("channel_closed_after_bytes")
        if limit and self.rec["bytes_from_target"] >= limit:
            out = self.knobs.get("channel_closed_output", "fake: channel_closed_after_bytes")
            self.end("channel_closed_after_bytes", out, wait=False)

    async def _retransmit_loop(self) -> None:
        """§5.3 on a 100 ms tick. Deviation: the agent resends only the oldest message per tick;
        the fake resends every expired one (up to RESEND_BURST) so random drops do not
        serialise to one message per RTO. Runs on during the ≤ 2 s ack wait of _end."""
        while True:
            await asyncio.sleep(0.1)
            if self.held is not None:
                held, self.held = self.held, None
                self._write(held)
            if self.ws is None:
                continue
            now, n = time.monotonic(), 0
            for o in self.out_buf.values():
                if now - o.last > self.rto:
                    o.last = now
                    self.rec["retransmissions"] += 1
                    self._transmit(o.raw, False)
                    n += 1
                    if n >= RESEND_BURST:
                        break

    # -- receiving (§5.2, agent column)
    def on_frame(self, raw: bytes) -> None:
        try:
            m = decode(raw)
        except ValueError as e:
            self.violation(f"malformed message from client: {e}")
            return
        if m.created == 0 or m.schema != 1:
            self.violation("client message with CreatedDate 0 or SchemaVersion != 1")
        if not digest_ok(m):  # a real agent does not check (§2.5); hop must never get it wrong
            self.violation(f"bad payload digest in client {m.type}")
            return
        if len(m.payload) > MAX_PAYLOAD:
            self.violation(f"client payload larger than {MAX_PAYLOAD} bytes")
        self.rec["max_client_payload"] = max(self.rec["max_client_payload"], len(m.payload))
        if m.type == ACK:
            self._on_ack(m)
        elif m.type == IN:
            self._on_input(m)
        else:
            self.violation(f"unexpected message type from client: {m.type!r}")

    def _on_ack(self, m: Msg) -> None:
        try:
            j = json.loads(m.payload)
            seq = j["AcknowledgedMessageSequenceNumber"]
            ok = (set(j) == {"AcknowledgedMessageType", "AcknowledgedMessageId",
                             "AcknowledgedMessageSequenceNumber", "IsSequentialMessage"}
                  and j["AcknowledgedMessageType"] == OUT and j["IsSequentialMessage"] is True
                  and type(seq) is int)
        except (ValueError, KeyError, TypeError):
            ok, seq = False, None
        if not ok or m.flags != 3 or m.seq != 0 or m.ptype != 0:
            self.violation("malformed acknowledge (need flags 3, seq 0, PT 0, §5.2 JSON)")
        if type(seq) is not int:
            return
        if seq == 0 and self.knobs.get("ignore_handshake_request_ack") and not self.ack_ignored:
            self.ack_ignored = True  # §8.3.9a: the HandshakeRequest gets retransmitted
            return
        o = self.out_buf.pop(seq, None)
        if o is None:
            if seq >= self.out_seq or seq < 0:
                self.violation(f"ack for never-sent sequence number {seq}")
            return
        if j.get("AcknowledgedMessageId") != str(o.mid):
            self.violation("ack carries the wrong AcknowledgedMessageId")
        r = time.monotonic() - o.last  # §5.4, in this order
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
        self.srtt = 0.875 * self.srtt + 0.125 * r
        self.rto = min(self.srtt + max(0.01, 4 * self.rttvar),
                       (self.knobs.get("max_rto_ms") or 1000) / 1000)
        if len(self.out_buf) < OUT_CAP:
            self.room.set()
        if not self.out_buf:
            self.all_acked.set()

    def _ack(self, m: Msg) -> None:
        hc, w = self.hc_sent_at, self.knobs.get("withhold_acks_ms")
        if w and hc is not None and time.monotonic() - hc < w / 1000:
            self.rec["acks_withheld"] += 1
        elif self._pct("drop_ack_percent"):
            self.rec["acks_dropped"] += 1
        else:
            self._write(encode(ACK, 0, 3, 0, ack_payload(m)))

    def _on_input(self, m: Msg) -> None:
        if not self.first_input_seen:
            self.first_input_seen = True
            if m.seq != 0 or m.ptype != PT_HS_RESP:
                self.violation("first client stream message is not seq 0 HandshakeResponse")
        if m.seq > self.max_in_seq + 1 and self.rec["open_data_channel"] == 1:
            self.violation(f"client sequence numbers not contiguous ({m.seq} after "
                           f"{self.max_in_seq})")
        self.max_in_seq = max(self.max_in_seq, m.seq)
        if m.seq == self.in_expected:
            if not self._process(m):
                self.rec["not_ready"] += 1  # not ready: no ack, the client retransmits
                return
            self._ack(m)
            self.in_expected += 1
            self.drain()
        elif m.seq > self.in_expected:
            if m.seq not in self.ooo:
                if len(self.ooo) >= OOO_CAP:
                    return
                self.ooo[m.seq] = m
            self._ack(m)
        else:
            self.rec["duplicates_received"] += 1
            self._ack(m)  # the agent re-acks duplicates

    def drain(self) -> None:
        while self.in_expected in self.ooo and not self.ended:
            if not self._process(self.ooo[self.in_expected]):
                return  # retried when the destination connects
            del self.ooo[self.in_expected]
            self.in_expected += 1

    def _process(self, m: Msg) -> bool:
        """Hand one in-order message to the plugin; False = not ready (no ack, no advance)."""
        if self.ended:
            return True
        if m.ptype == PT_HS_RESP:
            if self.hs_state != "requested":
                self.violation("HandshakeResponse not expected now (second or late, §4.3.8)")
            else:
                self.hs_state = "responded"
                try:
                    self.hs_response = json.loads(m.payload)
                except ValueError:
                    self.hs_response = None
                self.hs_event.set()
            return True
        if self.hc_sent_at is None:  # §8.1.4: ack and discard
            self.violation("data before HandshakeComplete")
            return True
        if (m.ptype in (PT_OUTPUT, PT_FLAG) and self.hc_seq in self.out_buf
                and self.rec["open_data_channel"] == 1):
            self.violation("data sent before HandshakeComplete was acked")
        if m.ptype == PT_OUTPUT:
            return self._on_output(m.payload)
        if m.ptype == PT_FLAG:
            return self._on_flag(m.payload)
        if m.ptype != PT_SIZE:  # Size: ignored by port sessions (§7.3)
            self.violation(f"unexpected client PayloadType {m.ptype}")
        return True

    def _on_output(self, payload: bytes) -> bool:
        if self.mode == "mux":
            assert self.mux is not None
            if self.mux.congested():
                return False
            self.mux.feed(payload)
            return True
        d = self.dest
        if d is None or d.is_closing():
            if self.mode == "basic" and not self.dialing:
                self.spawn(self._dial_basic())  # §6.3: re-dial on the next Output
            return False
        if d.transport.get_write_buffer_size() > DEST_BUF_LIMIT:
            return False
        d.write(payload)
        self.rec["bytes_to_target"] += len(payload)
        return True

    def _on_flag(self, payload: bytes) -> bool:
        if len(payload) != 4:
            self.violation("Flag payload is not 4 bytes")
            return True
        flag = U32.unpack(payload)[0]
        self.rec["flags_received"].append(flag)
        if flag == DISCONNECT_TO_PORT:  # §8.1.6
            self.rec["disconnect_to_port"] += 1
            if self.mode == "sshd":
                self.violation("DisconnectToPort in an SSH session (§3.3)")
                self.end("DisconnectToPort in sshd mode",
                         "read error: connection closed after DisconnectToPort")
            elif self.mode == "basic" and self.dest is not None:
                self.dest.close()
                self.dest = None
        elif flag == TERMINATE_SESSION:
            self.rec["terminate_flag_received"] = True
            self.end("TerminateSession flag", "")
        else:
            self.violation(f"unknown client flag {flag}")
        return True

    # -- handshake (§4) and relay (§6)
    async def _run(self) -> None:
        k = self.knobs
        if k.get("no_handshake"):
            return
        actions: list[dict[str, Any]] = [{"ActionType": "SessionType", "ActionParameters": {
            "SessionType": k.get("session_type", "Port"), "Properties": self.props}}]
        if k.get("kms"):
            actions.append({"ActionType": "KMSEncryption", "ActionParameters": {
                "KMSKeyId": "arn:aws:kms:us-east-1:111122223333:key/fake-ssm",
                "Challenge": base64.b64encode(os.urandom(16)).decode()}})
        if k.get("unknown_action"):
            actions.append({"ActionType": "FakeUnknownAction", "ActionParameters": {}})
        agent_version = k.get("agent_version", "3.3.1142.0")
        t0 = time.monotonic_ns()
        self.hs_state = "requested"
        self.send_stream(PT_HS_REQ, jdump({"AgentVersion": agent_version,
                                           "RequestedClientActions": actions}))
        try:
            await asyncio.wait_for(self.hs_event.wait(),
                                   k.get("handshake_timeout_ms", 15000) / 1000)
        except asyncio.TimeoutError:
            self.hs_state = "failed"
            self.end("handshake timed out", "Handshake timed out", wait=False)
            return
        resp, errors = self.hs_response, []
        if not isinstance(resp, dict) or not isinstance(resp.get("ClientVersion"), str):
            self.violation("HandshakeResponse is not JSON with a ClientVersion string")
            resp = resp if isinstance(resp, dict) else {}
        done = resp.get("ProcessedClientActions")
        if not isinstance(done, list) or len(done) != len(actions):
            self.violation("ProcessedClientActions does not answer every requested action")
            errors.append("malformed HandshakeResponse")
        for want, got in zip(actions, done if isinstance(done, list) else []):
            got = got if isinstance(got, dict) else {}
            if got.get("ActionType") != want["ActionType"]:
                self.violation("ProcessedClientActions out of order or ActionType not copied")
            if got.get("ActionStatus") != 1:
                errors.append(f"{want['ActionType']} failed (status {got.get('ActionStatus')}): "
                              f"{got.get('Error')}")
        self.rec["client_version"] = cv = str(resp.get("ClientVersion") or "")
        if errors:
            self.hs_state = "failed"
            self.end("handshake failed", "Handshake failed: " + "; ".join(errors))
            return
        # §6.1: agent rule (client ≥ 1.1.70) plus the plugin rule so a correct client agrees
        if self.props.get("type") != "LocalPortForwarding":
            self.mode = "sshd"
        elif agent_cmp(cv, "1.1.70") >= 0 and plugin_gt(agent_version, "3.0.196.0"):
            self.mode = "mux"
            self.mux = Mux(self, keepalive=agent_cmp(cv, "1.2.331.0") <= 0)
        else:
            self.mode = "basic"
        self.hc_sent_at = time.monotonic()
        self.hs_state = "complete"
        self.hc_seq = self.send_stream(PT_HS_DONE, jdump({
            "HandshakeTimeToComplete": time.monotonic_ns() - t0, "CustomerMessage": ""}))
        if k.get("malformed_frames"):  # §8.3.8: short, HL 0, HL beyond frame, bad PayloadLength
            good = encode(OUT, 999999, 0, PT_OUTPUT, b"x" * 8)
            for bad in (good[:100], b"\0\0\0\0" + good[4:], b"\0\0\1\0" + good[4:],
                        good[:116] + U32.pack(9) + good[120:]):
                self._write(bad)
        if self.mode == "mux":
            assert self.mux is not None
            self.spawn(self.mux.keepalive_loop())
        else:
            await self._dial_basic()

    async def dial(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        d = self.knobs.get("dial") or {}
        host = d.get("host") or self.params.get("host") or "127.0.0.1"
        port = int(d.get("port") or self.props.get("portNumber") or 22)
        if self.knobs.get("dial_delay_ms"):
            await asyncio.sleep(self.knobs["dial_delay_ms"] / 1000)
        if not d.get("netns"):
            return await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        return await asyncio.open_connection(sock=await connect_in_netns(d["netns"], host, port))

    async def _dial_basic(self) -> None:
        """§6.3: dial right after the handshake (and, in basic mode, on Output after a close)."""
        self.dialing = True
        try:
            r, w = await self.dial()
        except (OSError, asyncio.TimeoutError) as e:
            self.end("destination dial failed", f"Unable to start port forwarding: {e}")
            return
        finally:
            self.dialing = False
        if self.ended:
            w.close()
            return
        self.dest = w
        self.spawn(self._pump_basic(r, w))
        self.drain()

    async def _pump_basic(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        err: Exception | None = None
        try:
            while not self.ended:
                await self._wait_room()
                data = await r.read(65536 if self.knobs.get("oversize_payloads") else MAX_PAYLOAD)
                if not data:
                    break
                self.from_target(len(data))
                await self.send_data(data)
        except (ConnectionError, OSError) as e:
            err = e
        w.close()
        if self.ended or self.dest is not w:
            return
        self.dest = None
        if self.mode == "sshd":  # §6.3: EOF ends the session successfully, errors as failed
            self.end("destination closed" if err is None else f"destination error: {err}",
                     "" if err is None else f"read error: {err}")

    # -- end of session (§8.1.7, §7.2)
    def end(self, reason: str, output: str = "", wait: bool = True) -> None:
        """Takes effect at once (relays stop); channel_closed follows after the ack wait."""
        if self.ended:
            return
        self.ended = True
        self.rec["end_reason"] = reason
        log.info("session %s ends: %s", self.sid, reason)
        self.room.set()
        self.spawn(self._end(output, wait))

    async def _end(self, output: str, wait: bool) -> None:
        if wait and self.out_buf:
            try:
                await asyncio.wait_for(self.all_acked.wait(), 2.0)
            except asyncio.TimeoutError:
                pass
        self.rec["unacked_at_end"] = len(self.out_buf)
        self.rec["channel_closed_output"] = output
        mid = uuid.uuid4()
        hl112 = bool(self.knobs.get("channel_closed_hl112"))
        payload = jdump({"MessageType": CLOSED, "MessageId": str(mid),
                         "CreatedDate": str(now_ms()), "DestinationId": self.target,
                         "SessionId": self.sid, "SchemaVersion": 1, "Output": output})
        self._write(encode(CLOSED, 0, 0, 0, payload, mid=mid, hl=112 if hl112 else 116,
                           pad=b"\0" if hl112 else b" "))
        if self.ws is not None:
            self.ws.close(1000, "session ended")
        if self.dest is not None:
            self.dest.close()
        if self.mux is not None:
            self.mux.close_all()
        if self.idle:
            self.idle.cancel()
        self.out_buf.clear()
        self.room.set()
        self.all_acked.set()
        me = asyncio.current_task()
        for t in list(self.tasks):
            if t is not me:
                t.cancel()


async def connect_in_netns(netns: str, host: str, port: int) -> socket.socket:
    """Connect a socket inside /var/run/netns/<netns> on a fresh thread: setns(CLONE_NEWNET)
    affects only the calling thread, and that thread is never reused."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[socket.socket] = loop.create_future()

    def deliver(s: socket.socket | None, e: BaseException | None) -> None:
        if fut.cancelled():
            if s is not None:
                s.close()
        elif e is not None:
            fut.set_exception(e)
        else:
            fut.set_result(s)  # type: ignore[arg-type]

    def work() -> None:
        s: socket.socket | None = None
        try:
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            s = socket.create_connection((host, port), timeout=10)
            loop.call_soon_threadsafe(deliver, s, None)
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            if s is not None:
                s.close()
            loop.call_soon_threadsafe(deliver, None, e)

    threading.Thread(target=work, name=f"dial-{netns}", daemon=True).start()
    s = await asyncio.wait_for(fut, 15)
    s.setblocking(False)
    return s


class Mux:
    """smux v1 server over the reassembled Output byte stream (§6.4)."""

    def __init__(self, sess: Session, keepalive: bool):
        self.s, self.keepalive = sess, keepalive
        self.buf = bytearray()
        self.streams: dict[int, dict[str, Any]] = {}  # sid -> {"w": writer|None, "pending", "fin"}
        self.frames_in = self.syns = 0
        self.dead = False

    def congested(self) -> bool:
        return any(st["w"] is not None and st["w"].transport.get_write_buffer_size()
                   > DEST_BUF_LIMIT or len(st["pending"]) > DEST_BUF_LIMIT
                   for st in self.streams.values())

    def feed(self, data: bytes) -> None:
        if self.dead:
            return
        self.buf += data
        for ver, cmd, sid, body in smux_frames(self.buf):
            if ver != 1 or cmd > NOP:  # kills the whole smux session
                self.dead = True
                self.s.violation(f"smux frame with version {ver} / cmd {cmd}")
                self.s.end("smux protocol error", "smux: invalid protocol")
                return
            self.frames_in += 1
            st = self.streams.get(sid)
            if cmd == SYN and st is None:
                self.syns += 1
                self.s.rec["mux_stream_ids"].append(sid)
                st = self.streams[sid] = {"w": None, "pending": bytearray(), "fin": False}
                self.s.spawn(self._open(sid, st, self.syns))
                if self.syns == 1 and self.s.knobs.get("mux_bad_version"):
                    self.s.spawn(self.send(smux_frame(NOP, 0, version=2)))
            elif cmd == PSH and st is not None:  # unknown ids: dropped silently
                if st["w"] is not None:
                    st["w"].write(body)
                else:
                    st["pending"] += body
                self.s.rec["bytes_to_target"] += len(body)
            elif cmd == FIN and st is not None:  # full close: forget the stream, answer FIN
                del self.streams[sid]
                st["fin"] = True
                if st["w"] is not None:
                    st["w"].close()
                self.s.spawn(self.send(smux_frame(FIN, sid)))

    async def send(self, data: bytes, flag: int | None = None) -> None:
        async with self.s.tx_lock:  # frames must not interleave across Output messages
            if flag is not None:
                await self.s._wait_room()
                self.s.send_stream(PT_FLAG, U32.pack(flag))
            await self.s.send_data(data)

    async def _open(self, sid: int, st: dict[str, Any], nth: int) -> None:
        fail = self.s.knobs.get("mux_connect_error")
        try:
            if fail is True or (type(fail) is int and fail == nth):
                raise ConnectionRefusedError("mux_connect_error knob")
            r, w = await self.s.dial()
        except (OSError, asyncio.TimeoutError):
            if self.streams.get(sid) is st:
                del self.streams[sid]
                await self.send(smux_frame(FIN, sid), flag=CONNECT_TO_PORT_ERROR)
            return
        w.write(bytes(st["pending"]))
        st["pending"].clear()
        if st["fin"] or self.s.ended:
            w.close()
            return
        st["w"] = w
        try:
            while True:
                data = await r.read(32768)  # smux max frame data
                if not data:
                    break
                self.s.from_target(len(data))
                await self.send(smux_frame(PSH, sid, data))
        except (ConnectionError, OSError):
            pass
        w.close()
        if self.streams.get(sid) is st:
            del self.streams[sid]
            await self.send(smux_frame(FIN, sid))

    async def keepalive_loop(self) -> None:
        """§6.4: NOP every 10 s and idle check every 30 s, only when the agent would keep alive
        (client version ≤ 1.2.331.0); mux_nop_ms forces NOPs."""
        forced = self.s.knobs.get("mux_nop_ms")
        if not self.keepalive and not forced:
            return
        interval = forced / 1000 if forced else 10.0
        last_check, seen = time.monotonic(), self.frames_in
        while not self.s.ended:
            await asyncio.sleep(interval)
            await self.send(smux_frame(NOP, 0))
            if self.keepalive and time.monotonic() - last_check >= 30:
                if self.frames_in == seen:
                    self.s.end("smux keep-alive timeout", "smux: keep-alive timeout")
                    return
                last_check, seen = time.monotonic(), self.frames_in

    def close_all(self) -> None:
        for st in self.streams.values():
            if st["w"] is not None:
                st["w"].close()
        self.streams.clear()


# ---------------------------------------------------------------- service: control plane
DOCUMENTS = ("AWS-StartSSHSession", "AWS-StartPortForwardingSession",
             "AWS-StartPortForwardingSessionToRemoteHost")


class ApiError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class FakeSSM:
    def __init__(self) -> None:
        self.targets: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, Session] = {}
        self.calls: list[dict[str, Any]] = []
        self.ws_port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> int:
        ready = threading.Event()

        def run() -> None:
            self.loop = loop = asyncio.new_event_loop()
            server = loop.run_until_complete(
                asyncio.start_server(self._ws_conn, "127.0.0.1", 0, backlog=64))
            self.ws_port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-ssm", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake_ssm: event loop did not start")
        return self.ws_port

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn(*args) on the fake's loop (all state lives there) and return its result."""
        assert self.loop is not None

        async def call() -> Any:
            r = fn(*args)
            return await r if asyncio.iscoroutine(r) else r
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(30)

    # -- public entry points (any thread)
    def api(self, op: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One AmazonSSM.<op> call: (HTTP status, JSON body)."""
        try:
            return 200, self._on_loop(self._api, op, body)
        except ApiError as e:
            return 400, {"__type": e.kind, "message": str(e)}

    def set_target(self, instance_id: str, knobs: dict[str, Any]) -> dict[str, Any]:
        def merge() -> dict[str, Any]:
            self.targets.setdefault(instance_id, {}).update(knobs)
            return dict(self.targets[instance_id])
        return self._on_loop(merge)

    def state(self) -> dict[str, Any]:
        return self._on_loop(lambda: json.loads(json.dumps({
            "ws_port": self.ws_port, "targets": self.targets, "calls": self.calls,
            "sessions": {sid: s.snapshot() for sid, s in self.sessions.items()}})))

    def reset(self) -> None:
        async def do() -> None:
            for s in list(self.sessions.values()):
                s.end("fake reset", "", wait=False)
            self.sessions.clear()
            self.targets.clear()
            self.calls.clear()
        self._on_loop(do)

    # -- operations (on the loop)
    def _api(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        if len(self.calls) < 10_000:
            self.calls.append({"op": op, "body": body})
        sid = body.get("SessionId", "")
        if op == "StartSession":
            return self._start_session(body)
        if op == "ResumeSession":
            s = self.sessions.get(sid)
            if s is None:
                raise ApiError("DoesNotExistException", f"Session {sid} does not exist")
            s.rec["resumes"] += 1
            if s.ended or s.knobs.get("resume_no_token"):
                return {"SessionId": sid, "StreamUrl": self._stream_url(sid)}  # §5.8 timed out
            s.token = secrets.token_urlsafe(32)
            return {"SessionId": sid, "StreamUrl": self._stream_url(sid), "TokenValue": s.token}
        if op == "TerminateSession":
            s = self.sessions.get(sid)
            if s is not None:
                s.rec["terminated_by_api"] = True
                s.end("TerminateSession API", "")
            return {"SessionId": sid}
        if op == "DescribeInstanceInformation":
            wanted: set[str] | None = None
            for f in body.get("Filters") or []:
                if f.get("Key") == "InstanceIds":
                    wanted = set(f.get("Values") or [])
            for f in body.get("InstanceInformationFilterList") or []:
                if f.get("key") == "InstanceIds":
                    wanted = set(f.get("valueSet") or [])
            return {"InstanceInformationList": [{
                "InstanceId": iid, "PingStatus": k.get("ping_status", "Online"),
                "LastPingDateTime": time.time(),
                "AgentVersion": k.get("agent_version", "3.3.1142.0"), "IsLatestVersion": True,
                "PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023",
                "ResourceType": "EC2Instance", "ComputerName": f"{iid}.ec2.internal",
            } for iid, k in self.targets.items()
                if k.get("registered", True) is not False and (wanted is None or iid in wanted)]}
        raise ApiError("InvalidAction", f"fake_ssm does not implement {op}")

    def _stream_url(self, sid: str) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/v1/data-channel/{sid}?role=publish_subscribe"

    def _start_session(self, body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("Target")
        if not isinstance(target, str):
            raise ApiError("ValidationException", "Target is required")
        k = self.targets.get(target)
        if (k is None or k.get("registered", True) is False
                or k.get("ping_status", "Online") != "Online"):
            raise ApiError("TargetNotConnected", f"{target} is not connected.")
        if k.get("start_error"):
            raise ApiError(k["start_error"], f"fake_ssm: start_error knob for {target}")
        doc = body.get("DocumentName") or "SSM-SessionManagerRunShell"
        if doc not in DOCUMENTS:
            raise ApiError("InvalidDocument", f"Document {doc} is not supported by fake_ssm")
        params: dict[str, str] = {}
        for name, values in (body.get("Parameters") or {}).items():
            if not isinstance(values, list) or not values or not isinstance(values[0], str):
                raise ApiError("InvalidParameters", f"parameter {name} must be a list of strings")
            params[name] = values[0]
        # §1.1 Properties after template substitution
        if doc == "AWS-StartSSHSession":
            props = {"portNumber": params.get("portNumber", "22")}
        else:
            props = {"portNumber": params.get("portNumber", "80"),
                     "localPortNumber": params.get("localPortNumber", "0"),
                     "type": "LocalPortForwarding"}
            if doc.endswith("ToRemoteHost"):
                if "host" not in params:
                    raise ApiError("InvalidParameters", "parameter host is required")
                props["host"] = params["host"]
        sid = f"hop-{uuid.uuid4().hex[:17]}"
        s = Session(self, sid, target, doc, params, props, body.get("Reason"))
        s.token = secrets.token_urlsafe(32)
        self.sessions[sid] = s
        return {"SessionId": sid, "StreamUrl": self._stream_url(sid), "TokenValue": s.token}

    # -- data channel endpoint (§1.2, §8.1.1)
    async def _ws_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            hdrs = {k.strip().lower(): v.strip() for k, _, v in
                    (ln.partition(":") for ln in lines[1:] if ":" in ln)}
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, ConnectionError):
            writer.close()
            return
        path = urlsplit(target).path
        key = hdrs.get("sec-websocket-key", "")
        if (method != "GET" or "websocket" not in hdrs.get("upgrade", "").lower() or not key
                or hdrs.get("sec-websocket-version") != "13"
                or not path.startswith("/v1/data-channel/")):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {ws_accept(key)}\r\n\r\n"
                      ).encode())
        ws = WebSocket(reader, writer, client=False)
        s = self.sessions.get(path.rsplit("/", 1)[1])
        try:
            first = await asyncio.wait_for(ws.recv(), 30)
        except asyncio.TimeoutError:
            first = None
        if first is None or s is None:
            ws.close(1008, "unknown session" if s is None else "no OpenDataChannel")
            return
        odc = self._check_odc(s, *first)
        if (odc is None or odc.get("TokenValue") != s.token or s.ended
                or s.knobs.get("reject_token")):
            s.rec["rejected_connections"] += 1
            ws.close(1008, "invalid token")
            return
        s.attach(ws, odc)
        try:
            while (m := await ws.recv()) is not None:
                if m[0] == BINARY:
                    s.on_frame(m[1])
                else:  # §5.7: text frames are logged and ignored
                    log.info("session %s: ignoring text frame %r", s.sid, m[1][:100])
        finally:
            s.detach(ws)

    @staticmethod
    def _check_odc(s: Session, op: int, data: bytes) -> dict[str, Any] | None:
        """§1.3 OpenDataChannel, checked as hop must send it (§8.1.8)."""
        try:
            odc = json.loads(data) if op == TEXT else None
        except ValueError:
            odc = None
        if not isinstance(odc, dict):
            s.violation("first websocket message is not a text OpenDataChannel JSON")
            return None
        try:
            rid_ok = uuid.UUID(odc.get("RequestId", "")).version == 4
        except (ValueError, TypeError, AttributeError):
            rid_ok = False
        if odc.get("MessageSchemaVersion") != "1.0" or not rid_ok or "TokenValue" not in odc:
            s.violation("OpenDataChannel lacks MessageSchemaVersion 1.0 / UUIDv4 RequestId / "
                        "TokenValue")
        if not all(isinstance(odc.get(key), str) for key in ("ClientId", "ClientVersion")):
            s.violation("OpenDataChannel lacks ClientId or ClientVersion (§1.3 [hop])")
        return odc

    # -- WSGI middleware in front of moto
    def wsgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        ops = ("StartSession", "ResumeSession", "TerminateSession", "DescribeInstanceInformation")

        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            op = environ.get("HTTP_X_AMZ_TARGET", "").partition("AmazonSSM.")[2]
            if not path.startswith("/__fake_ssm/") and not (method == "POST" and op in ops):
                return app(environ, start_response)
            stream, n = environ["wsgi.input"], environ.get("CONTENT_LENGTH")
            raw = stream.read(int(n)) if n else (
                stream.read() if environ.get("wsgi.input_terminated") else b"")
            try:
                body = json.loads(raw or b"{}")
                if path == "/__fake_ssm/target" and method == "POST":
                    status, out = 200, {"instance_id": body["instance_id"], "knobs":
                                        self.set_target(body["instance_id"], body.get("knobs", {}))}
                elif path == "/__fake_ssm/state":
                    status, out = 200, self.state()
                elif path == "/__fake_ssm/reset" and method == "POST":
                    self.reset()
                    status, out = 200, {}
                elif path.startswith("/__fake_ssm/"):
                    status, out = 404, {"message": f"no admin endpoint {method} {path}"}
                else:
                    status, out = self.api(op, body)
            except (ValueError, KeyError, TypeError) as e:
                status, out = 400, {"__type": "SerializationException", "message": str(e)}
            data = json.dumps(out).encode()
            headers = [("Content-Type", "application/x-amz-json-1.1"),
                       ("Content-Length", str(len(data))), ("x-amzn-RequestId", str(uuid.uuid4()))]
            if status == 400 and "__type" in out:
                headers.append(("x-amzn-ErrorType", out["__type"]))
            start_response(f"{status} {'OK' if status == 200 else 'Error'}", headers)
            return [data]
        return middleware


# ================================================================ self-test
class TestClient:
    """Minimal independent client (§5.9) for --self-test: OpenDataChannel, handshake, acks,
    reordering, digest checks, retransmission and resume."""

    def __init__(self, fake: FakeSSM, start: dict[str, Any], version: str = "1.2.650.0"):
        self.fake, self.sid, self.url, self.token = fake, start["SessionId"], start["StreamUrl"], \
            start["TokenValue"]
        self.version, self.client_id = version, str(uuid.uuid4())
        self.next_seq = self.expected = self.bad_digests = 0
        self.out: dict[int, list[Any]] = {}
        self.ooo: dict[int, Msg] = {}
        self.ws: WebSocket | None = None
        self.established, self.closed, self.room = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.room.set()
        self.closed_output: str | None = None
        self.on_data: Callable[[bytes], None] = lambda b: None
        self.flags: list[int] = []
        self.tasks: list[asyncio.Task[Any]] = []

    async def connect(self) -> None:
        u = urlsplit(self.url)
        r, w = await asyncio.open_connection(u.hostname, u.port)
        key = base64.b64encode(os.urandom(16)).decode()
        w.write(f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101") and ws_accept(key).encode() in head, head
        self.ws = ws = WebSocket(r, w, client=True)
        ws.send(TEXT, jdump({"MessageSchemaVersion": "1.0", "RequestId": str(uuid.uuid4()),
                             "TokenValue": self.token, "ClientId": self.client_id,
                             "ClientVersion": self.version}))
        ws.send(9, b"keepalive")  # §1.2
        self.tasks.append(asyncio.create_task(self._read(ws)))
        if len(self.tasks) == 1:
            self.tasks.append(asyncio.create_task(self._retransmit()))

    async def _read(self, ws: WebSocket) -> None:
        while (m := await ws.recv()) is not None:
            if m[0] == BINARY:
                self._on_msg(decode(m[1]))
        if ws.close_code == 1000 and not self.closed.is_set():  # §5.8 resume
            status, body = await asyncio.to_thread(self.fake.api, "ResumeSession",
                                                   {"SessionId": self.sid})
            if status == 200 and body.get("TokenValue"):
                self.token = body["TokenValue"]
                await self.connect()
                return
        self.closed.set()

    async def _retransmit(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for e in list(self.out.values()):
                if now - e[1] > 0.3 and self.ws is not None:
                    e[1] = now
                    self.ws.send(BINARY, e[0])

    def send(self, ptype: int, payload: bytes) -> None:
        seq = self.next_seq
        self.next_seq += 1
        raw = encode(IN, seq, 0, ptype, payload)
        self.out[seq] = [raw, time.monotonic()]
        if len(self.out) >= 256:
            self.room.clear()
        if self.ws is not None:
            self.ws.send(BINARY, raw)

    async def send_data(self, data: bytes) -> None:
        for i in range(0, len(data), MAX_PAYLOAD):
            await self.room.wait()
            self.send(PT_OUTPUT, data[i:i + MAX_PAYLOAD])

    def _on_msg(self, m: Msg) -> None:
        if m.type == ACK:
            self.out.pop(json.loads(m.payload)["AcknowledgedMessageSequenceNumber"], None)
            if len(self.out) < 256:
                self.room.set()
        elif m.type == CLOSED:
            self.closed_output = json.loads(m.payload).get("Output")
            self.closed.set()
        elif m.type == OUT:  # publications and unknown types are ignored (§3.1)
            if not digest_ok(m):
                self.bad_digests += 1
                return
            assert self.ws is not None
            self.ws.send(BINARY, encode(ACK, 0, 3, 0, ack_payload(m)))
            if m.seq > self.expected:
                self.ooo.setdefault(m.seq, m)
            elif m.seq == self.expected:
                self._deliver(m)
                self.expected += 1
                while (n := self.ooo.pop(self.expected, None)) is not None:
                    self._deliver(n)
                    self.expected += 1

    def _deliver(self, m: Msg) -> None:
        if m.ptype == PT_HS_REQ:
            req = json.loads(m.payload)
            done = []
            for a in req["RequestedClientActions"]:
                status, err = (1, "") if a["ActionType"] == "SessionType" else \
                    (2, "KMS not supported") if a["ActionType"] == "KMSEncryption" else (3, "?")
                done.append({"ActionType": a["ActionType"], "ActionStatus": status,
                             "ActionResult": None, "Error": err})
            self.send(PT_HS_RESP, jdump({"ClientVersion": self.version,
                                         "ProcessedClientActions": done, "Errors": None}))
        elif m.ptype == PT_HS_DONE:
            self.established.set()
        elif m.ptype == PT_OUTPUT:
            self.on_data(m.payload)
        elif m.ptype == PT_FLAG:
            self.flags.append(U32.unpack(m.payload)[0])

    async def finish(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.ws is not None:
            self.ws.w.close()


def check_vectors() -> int:
    # The repository's copy of the spec's vectors (tests/data/ssm-data-channel-vectors.json, see tests/data/README.md).
    default = Path(__file__).resolve().parents[1] / "data/ssm-data-channel-vectors.json"
    path = os.environ.get("SSM_VECTORS", str(default))
    with open(path) as f:
        spec = json.load(f)
    for v in spec["vectors"]:
        wire, payload = bytes.fromhex(v["wire_hex"]), bytes.fromhex(v["payload_hex"])
        got = encode(v["message_type"], v["sequence_number"], v["flags"], v["payload_type"],
                     payload, mid=uuid.UUID(v["message_id"]), created=v["created_date_ms"],
                     schema=v["schema_version"])
        assert got == wire and len(got) == v["total_length"], f"vector {v['name']}: encode"
        m = decode(wire)
        assert (m.type, m.seq, m.flags, m.ptype, m.payload, str(m.mid), m.created, m.schema) == (
            v["message_type"], v["sequence_number"], v["flags"], v["payload_type"], payload,
            v["message_id"], v["created_date_ms"], v["schema_version"]), f"vector {v['name']}"
        assert digest_ok(m) and m.digest.hex() == v["payload_sha256_hex"]
        if v["message_type"] == "acknowledge":
            assert ack_payload(decode(bytes.fromhex(spec["vectors"][0]["wire_hex"]))) == payload
        flipped = decode(wire[:-1] + bytes([wire[-1] ^ 1]))
        assert not digest_ok(flipped), "flipped payload byte must fail the digest"
        for bad in (wire[:119], b"\0\0\0\0" + wire[4:], wire + b"x"):
            try:
                decode(bad)
                raise AssertionError("malformed frame decoded")
            except ValueError:
                pass
    closed = decode(encode(CLOSED, 0, 0, 0, b'{"Output":"x"}', hl=112, pad=b"\0"))
    assert closed.type == CLOSED and closed.ptype == 0 and closed.payload == b'{"Output":"x"}'
    buf = bytearray(bytes.fromhex(spec["smux_v1_client_frames"]["wire_hex"]))
    frames = list(smux_frames(buf))
    assert frames == [(1, SYN, 3, b""), (1, PSH, 3, b"hello"), (1, FIN, 3, b""), (1, SYN, 5, b"")]
    assert b"".join(smux_frame(c, s, d) for _, c, s, d in frames).hex() == \
        spec["smux_v1_client_frames"]["wire_hex"]
    assert not plugin_gt("3.0.196.0", "3.0.196.0") and plugin_gt("3.0.196.1", "3.0.196.0")
    assert plugin_gt("3.0.197.0", "3.0.196.0") and not plugin_gt("3.0", "3.0.196.0")
    assert agent_cmp("1.2.650.0", "1.1.70") > 0 and agent_cmp("1.1.70", "1.1.70") == 0
    assert agent_cmp("", "1.1.70") < 0 and agent_cmp("1.2.331.0", "1.2.331.0") == 0
    return len(spec["vectors"])


async def echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        w.close()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def run_self_test(echo_mb: float) -> list[str]:
    fake = FakeSSM()
    fake.start()
    server, port = await echo_server()
    results: list[str] = []

    def start(target: str, knobs: dict[str, Any], doc: str = "AWS-StartSSHSession") -> Any:
        fake.set_target(target, {"dial": {"port": port}, **knobs})
        status, body = fake.api("StartSession", {"Target": target, "DocumentName": doc,
                                                 "Parameters": {"portNumber": ["22"]}})
        assert status == 200, body
        return body

    async def echo_session(target: str, knobs: dict[str, Any], size: int) -> dict[str, Any]:
        c = TestClient(fake, start(target, knobs))
        got, done = bytearray(), asyncio.Event()

        def on_data(b: bytes) -> None:
            got.extend(b)
            if len(got) >= size:
                done.set()
        c.on_data = on_data
        data = random.Random(7).randbytes(size)
        t0 = time.monotonic()
        await c.connect()
        await asyncio.wait_for(c.established.wait(), 10)
        await asyncio.gather(c.send_data(data), asyncio.wait_for(done.wait(), 120))
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), "echo mismatch"
        elapsed = time.monotonic() - t0
        c.send(PT_FLAG, U32.pack(TERMINATE_SESSION))
        await asyncio.wait_for(c.closed.wait(), 10)
        await c.finish()
        st = fake.state()["sessions"][c.sid]
        assert st["violations"] == [], st["violations"]
        assert st["ended"] and st["terminate_flag_received"], st
        assert st["mode"] == "sshd" and st["bytes_to_target"] == size, st
        st["elapsed"], st["client_bad_digests"] = elapsed, c.bad_digests
        return st

    # 1. sshd echo with random faults (§8.2)
    size = int(echo_mb * (1 << 20))
    st = await echo_session("i-0000000000000001", {
        "drop_percent": 5, "dup_percent": 5, "reorder_percent": 5, "drop_ack_percent": 5,
        "corrupt_digest_every": 50, "publications": True, "seed": 3}, size)
    assert st["dropped"] and st["duplicated"] and st["reordered"] and st["retransmissions"]
    assert st["acks_dropped"] > 0 and st["corrupted"] > 0 and st["client_bad_digests"] > 0
    results.append(f"sshd echo {size} B, 5% drop/dup/reorder/ack-drop: sha256 ok in "
                   f"{st['elapsed']:.1f}s (dropped {st['dropped']}, duplicated "
                   f"{st['duplicated']}, reordered {st['reordered']}, retransmitted "
                   f"{st['retransmissions']}, acks dropped {st['acks_dropped']}, "
                   f"corrupted {st['corrupted']})")

    # 2. resume after the service closes the websocket (§5.8)
    st = await echo_session("i-0000000000000002", {
        "close_ws_after_messages": 40, "drop_first_handshake_complete": True,
        "dial_delay_ms": 300, "withhold_acks_ms": 300}, 200_000)
    assert st["resumes"] == 1 and st["open_data_channel"] == 2 and st["ws_closes_injected"] == 1
    assert st["not_ready"] > 0 and st["acks_withheld"] > 0, st
    results.append("resume after close 1000: 1 ResumeSession, 2 OpenDataChannel, sha256 ok "
                   f"(also: HandshakeComplete dropped once, {st['not_ready']} not-ready "
                   f"rejections, {st['acks_withheld']} acks withheld)")

    # 3. KMS requested: the client's failed response ends the session with channel_closed (§4.6)
    c = TestClient(fake, start("i-0000000000000003", {"kms": True}))
    await c.connect()
    await asyncio.wait_for(c.closed.wait(), 10)
    await c.finish()
    st = fake.state()["sessions"][c.sid]
    assert st["end_reason"] == "handshake failed" and "KMSEncryption" in (c.closed_output or "")
    assert st["violations"] == [] and not c.established.is_set(), st
    results.append(f"KMS: channel_closed Output {c.closed_output!r}")

    # 4. mux: five streams echo, a sixth fails to connect, TerminateSession API ends it (§6.4)
    c = TestClient(fake, start("i-0000000000000004", {"mux_connect_error": 6, "drop_percent": 3,
                                                      "reorder_percent": 3},
                               "AWS-StartPortForwardingSession"))
    buf, got, fins = bytearray(), {}, set()

    def on_mux(b: bytes) -> None:
        buf.extend(b)
        for ver, cmd, sid, data in smux_frames(buf):
            assert ver == 1
            if cmd == PSH:
                got.setdefault(sid, bytearray()).extend(data)
            elif cmd == FIN:
                fins.add(sid)
    c.on_data = on_mux
    await c.connect()
    await asyncio.wait_for(c.established.wait(), 10)
    payloads = {sid: random.Random(sid).randbytes(50_000 + sid) for sid in (3, 5, 7, 9, 11)}
    for sid in (*payloads, 13):
        await c.send_data(smux_frame(SYN, sid))
    for sid, data in payloads.items():  # interleave PSH frames of all streams
        for i in range(0, len(data), 7000):
            await c.send_data(smux_frame(PSH, sid, data[i:i + 7000]))
    deadline = time.monotonic() + 30
    while any(len(got.get(s, b"")) < len(d) for s, d in payloads.items()) or 13 not in fins:
        assert time.monotonic() < deadline, "mux echo timed out"
        await asyncio.sleep(0.05)
    assert all(bytes(got[s]) == d for s, d in payloads.items()) and c.flags == [3], c.flags
    for sid in payloads:
        await c.send_data(smux_frame(FIN, sid))
    while fins != {3, 5, 7, 9, 11, 13}:  # the agent answers FIN with FIN
        assert time.monotonic() < deadline, "mux FIN timed out"
        await asyncio.sleep(0.05)
    fake.api("TerminateSession", {"SessionId": c.sid})
    await asyncio.wait_for(c.closed.wait(), 10)
    await c.finish()
    st = fake.state()["sessions"][c.sid]
    assert st["mode"] == "mux" and st["mux_stream_ids"] == [3, 5, 7, 9, 11, 13], st
    assert st["terminated_by_api"] and st["violations"] == [], st
    results.append("mux: 5 streams echoed, stream 13 got ConnectToPortError + FIN, "
                   "TerminateSession API -> channel_closed")

    # 6. sshd destination closes after 300 kB (oversize payloads): channel_closed, Output ""
    blob = random.Random(9).randbytes(300_000)

    async def chatty(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(blob)
        await w.drain()
        w.close()
    chat = await asyncio.start_server(chatty, "127.0.0.1", 0)
    chat_port = chat.sockets[0].getsockname()[1]
    for target, knobs in (("i-0000000000000006", {"oversize_payloads": True}),
                          ("i-0000000000000007", {"channel_closed_after_bytes": 100_000,
                                                  "channel_closed_hl112": True,
                                                  "channel_closed_output": "bye now"})):
        c = TestClient(fake, start(target, {**knobs, "dial": {"port": chat_port}}))
        got6 = bytearray()
        sizes: list[int] = []
        c.on_data = lambda b: (got6.extend(b), sizes.append(len(b)))
        await c.connect()
        await asyncio.wait_for(c.closed.wait(), 10)
        await c.finish()
        st = fake.state()["sessions"][c.sid]
        assert st["violations"] == [], st
        if "oversize_payloads" in knobs:
            assert bytes(got6) == blob and max(sizes) > MAX_PAYLOAD and c.closed_output == ""
            assert st["end_reason"] == "destination closed" and st["unacked_at_end"] == 0, st
            results.append(f"sshd destination EOF after 300 kB (largest payload {max(sizes)} B)"
                           " -> all data acked, channel_closed")
        else:
            assert c.closed_output == "bye now" and blob.startswith(bytes(got6)), c.closed_output
            results.append(f"channel_closed_after_bytes (HL 112, NUL padded) after "
                           f"{len(got6)} B: Output {c.closed_output!r}")
    chat.close()

    # 5. token rejection and control-plane errors through the WSGI middleware
    s6 = start("i-0000000000000005", {"reject_token": True})
    c = TestClient(fake, s6)
    await c.connect()
    await asyncio.wait_for(c.closed.wait(), 5)
    await c.finish()
    assert c.ws is not None and c.ws.close_code == 1008
    passed: list[bool] = []

    def moto(environ: Any, start_response: Any) -> list[bytes]:
        passed.append(True)
        start_response("200 OK", [])
        return [b""]
    app = fake.wsgi(moto)

    def call(target: str, body: dict[str, Any]) -> tuple[str, Any]:
        import io
        raw = json.dumps(body).encode()
        seen: list[str] = []
        out = app({"PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": target,
                   "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw)},
                  lambda status, headers: seen.append(status))
        return seen[0] if seen else "", json.loads(b"".join(out) or b"null")
    st400, body = call("AmazonSSM.StartSession", {"Target": "i-nope"})
    assert st400.startswith("400") and body["__type"] == "TargetNotConnected", body
    _, body = call("AmazonSSM.DescribeInstanceInformation",
                   {"Filters": [{"Key": "InstanceIds", "Values": ["i-0000000000000001"]}]})
    assert [i["InstanceId"] for i in body["InstanceInformationList"]] == ["i-0000000000000001"]
    call("AmazonSSM.DescribeDocument", {"Name": "x"})
    assert passed == [True]
    results.append("reject_token -> close 1008; WSGI: TargetNotConnected, "
                   "DescribeInstanceInformation, pass-through")
    server.close()
    fake.stop()
    return results


def self_test(echo_mb: float) -> int:
    failures = 0
    try:
        print(f"ok   codec: {check_vectors()} AgentMessage vectors + smux vector + versions")
    except Exception as e:  # noqa: BLE001
        failures += 1
        print(f"FAIL codec: {e!r}")
    try:
        for line in asyncio.run(run_self_test(echo_mb)):
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
    ap.add_argument("--echo-mb", type=float, default=1.0, help="size of the self-test echo")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO if a.verbose else logging.ERROR,
                        format="fake_ssm: %(message)s", stream=sys.stderr)
    sys.exit(self_test(a.echo_mb) if a.self_test else ap.print_help() or 2)
