#!/usr/bin/env python3
"""A TCP relay in front of an sshd that reports the sizes of the SSH packets passing through.

    packet_relay.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT

It reads only what the protocol leaves in the clear: the version lines, the key exchange up to
NEWKEYS (the KEXINITs say which cipher each direction uses) and, once encrypted, the 4-byte
packet length that AES-GCM (RFC 5647, aes*-gcm@openssh.com) sends unencrypted. With any other
cipher the lengths are hidden: the report then says so ("opaque") instead of guessing. So the
sshd behind it must allow GCM ciphers only for a report to mean anything.

Prints "ready", then one JSON line per closed connection on stdout:
    {"cipher": {"c2s": NAME, "s2c": NAME},
     "c2s": {"packets": N, "bytes": B, "max": LEN, "sizes": {"8K": B, "16K": B, ...}}, "s2c": …}
where N and B count encrypted packets and their packet_length fields, and "sizes" sums the
bytes of packets by packet_length: "32K" holds packets of more than 16 and up to 32 KiB of
channel data (plus 64 bytes of framing), and so on. Serves until killed; each connection ends when either side
closes.
"""

import asyncio
import json
import sys

listen_host, listen_port, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
# By the data a packet can hold: up to 8, 16, 32 or 64 KiB of channel data plus framing.
BUCKETS = [(8 << 10 | 64, "8K"), (16 << 10 | 64, "16K"), (32 << 10 | 64, "32K"), (64 << 10 | 64, "64K"), (1 << 32, "more")]
GCM = {"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}


def name_lists(payload):
    """The name-lists of a KEXINIT payload (after its type byte and 16-byte cookie)."""
    out, at = [], 17
    for _ in range(10):
        n = int.from_bytes(payload[at:at + 4], "big")
        out.append(payload[at + 4:at + 4 + n].decode().split(","))
        at += 4 + n
    return out


class Direction:
    """One direction's byte stream: version line, clear packets, then encrypted ones."""

    def __init__(self, conn, me):
        self.conn, self.me = conn, me
        self.phase, self.buf, self.skip = "version", bytearray(), 0
        self.packets, self.bytes, self.max = 0, 0, 0
        self.sizes = {label: 0 for _, label in BUCKETS}

    def feed(self, data):
        if self.phase == "opaque":
            return
        if self.skip:
            take = min(self.skip, len(data))
            self.skip -= take
            data = data[take:]
        self.buf += data
        while True:
            if self.phase == "version":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                if line.startswith(b"SSH-"):
                    self.phase = "clear"
            elif self.phase == "clear":
                if len(self.buf) < 4:
                    return
                length = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) < 4 + length:
                    return
                payload = bytes(self.buf[5:4 + length])  # after padding_length; padding at the end
                del self.buf[:4 + length]
                if payload[:1] == b"\x14":  # KEXINIT
                    self.conn.kexinit[self.me] = name_lists(payload)
                elif payload[:1] == b"\x15":  # NEWKEYS: what follows is encrypted
                    cipher = self.conn.cipher(self.me)
                    self.phase = "gcm" if cipher in GCM else "opaque"
                    if self.phase == "opaque":
                        return
            else:  # gcm: packet_length (clear), then that many bytes and a 16-byte tag
                if len(self.buf) < 4:
                    return
                length = int.from_bytes(self.buf[:4], "big")
                self.packets += 1
                self.bytes += length
                self.max = max(self.max, length)
                self.sizes[next(label for limit, label in BUCKETS if length <= limit)] += length
                whole = 4 + length + 16
                if len(self.buf) >= whole:
                    del self.buf[:whole]
                else:
                    self.skip = whole - len(self.buf)
                    self.buf.clear()
                    return

    def report(self):
        return {"packets": self.packets, "bytes": self.bytes, "max": self.max, "sizes": self.sizes}


class Connection:
    def __init__(self):
        self.kexinit = {}

    def cipher(self, me):
        """The cipher direction `me` uses: the client's first choice the server also offers."""
        if "c2s" not in self.kexinit or "s2c" not in self.kexinit:
            return None
        index = 2 if me == "c2s" else 3
        server = set(self.kexinit["s2c"][index])
        return next((c for c in self.kexinit["c2s"][index] if c in server), None)


async def pipe(reader, writer, direction):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        direction.feed(data)
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def handle(client_r, client_w):
    try:
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    conn = Connection()
    c2s, s2c = Direction(conn, "c2s"), Direction(conn, "s2c")
    await asyncio.gather(pipe(client_r, server_w, c2s), pipe(server_r, client_w, s2c), return_exceptions=True)
    client_w.close()
    server_w.close()
    report = {"cipher": {d: conn.cipher(d) for d in ("c2s", "s2c")}, "c2s": c2s.report(), "s2c": s2c.report()}
    print(json.dumps(report), flush=True)


async def main():
    server = await asyncio.start_server(handle, listen_host, listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
