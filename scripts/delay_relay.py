"""A TCP relay that adds latency, for benchmarks (this kernel has no sch_netem).

    delay_relay.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS

Every chunk is forwarded DELAY_MS after it arrived, in order, in both directions, so a round
trip through the relay costs 2 x DELAY_MS more. The relay acknowledges what it reads at once
(TCP_QUICKACK): a network path adds no delayed ACKs of its own, whereas a relay host's kernel
would hold each ACK up to 40 ms, and sshd (Nagle on without a terminal) would then hold its next
small packet as long, stalls no real path between client and server has. Counts, per connection, how many times the
client started talking again after the server had answered ("client flights": the round trips
the client waited for), and prints one line per closed connection on stderr. Serves until
killed; every connection ends when either side closes.
"""

import asyncio
import os
import socket
import sys
import time

listen_host, listen_port, host, port, delay_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
delay = delay_ms / 1000
TRACE = os.environ.get("RELAY_TRACE") == "1"  # one line per chunk: direction and size


def quickack(sock):
    """Acknowledge what was read now (Linux forgets the setting, so after every read)."""
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


async def pipe(reader, writer, turn, me, source):
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                writer.write_eof() if writer.can_write_eof() else writer.close()
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(deliver())
    while True:
        data = await reader.read(65536)
        quickack(source)
        if data and turn["last"] != me:
            turn["last"] = me
            turn[me] += 1
        if TRACE and data:
            print(f"{me} {len(data)}", file=sys.stderr, flush=True)
        await queue.put((time.monotonic() + delay, data or None))
        if not data:
            break
    await task


async def handle(client_r, client_w):
    server_r, server_w = await asyncio.open_connection(host, port)
    turn = {"last": None, "c": 0, "s": 0}
    await asyncio.gather(pipe(client_r, server_w, turn, "c", client_w.get_extra_info("socket")),
                         pipe(server_r, client_w, turn, "s", server_w.get_extra_info("socket")), return_exceptions=True)
    client_w.close()
    server_w.close()
    print(f"relay {listen_port}: client flights {turn['c']}", file=sys.stderr, flush=True)


async def main():
    server = await asyncio.start_server(handle, listen_host, listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
