#!/usr/bin/env python3
"""Load for `hop forward` tests, run inside the client namespace. Bounded in count and time.

    load.py parallel PORT N CONCURRENCY      N short HTTP GETs of /small; prints failures
    load.py stall PORT BIG_PATH STALL_PATH   one client requests STALL_PATH and never reads;
                                             another downloads BIG_PATH; prints bytes, seconds
    load.py pause PORT HUGE BIG PAUSE        at once: a client that requests HUGE, reads nothing
                                             for PAUSE seconds, then reads to the end, and one
                                             that downloads BIG; prints what each received and
                                             how its stream ended (eof or reset)
    load.py dead PORT PATH                   a client that requests PATH and never reads, until
                                             hop resets it (bounded: 120 s); prints how it ended
                                             and what `ss` shows of its connection then
"""

import concurrent.futures
import json
import socket
import subprocess
import sys
import threading
import time

mode, port = sys.argv[1], int(sys.argv[2])


def get(path, timeout=30):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        total, head = 0, b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            if not head:
                head = chunk[:16]
            total += len(chunk)
        return head, total


if mode == "parallel":
    n, conc = int(sys.argv[3]), int(sys.argv[4])
    failures, errors = 0, []
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(conc) as pool:
        for fut in concurrent.futures.as_completed([pool.submit(get, "/small") for _ in range(n)]):
            try:
                head, _ = fut.result()
                if b" 200 " not in head:
                    failures += 1
                    errors.append(head.decode("latin1"))
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures += 1
                errors.append(repr(e))
    print(json.dumps({"n": n, "failures": failures, "seconds": time.monotonic() - t, "errors": errors[:5]}))
elif mode == "stall":
    big, stall = sys.argv[3], sys.argv[4]
    staller = socket.create_connection(("127.0.0.1", port), timeout=30)
    staller.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    staller.sendall(f"GET {stall} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    time.sleep(1.0)  # let the stalled download fill every buffer on the way
    t = time.monotonic()
    _, total = get(big, timeout=60)
    print(json.dumps({"bytes": total, "seconds": time.monotonic() - t}))
    staller.close()
elif mode in ("pause", "dead"):
    out = {}

    def body_and_end(s, started):
        """Read to the end: the header's Content-Length, body bytes, how it ended, seconds."""
        head, total, end = b"", 0, "eof"
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                if len(head) < 65536:
                    head += chunk[:65536]
                total += len(chunk)
        except ConnectionResetError:
            end = "reset"
        except socket.timeout:
            end = "timeout"
        header, sep, _ = head.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), -1)
        return {"content_length": length, "body": total - len(header) - len(sep),
                "end": end, "seconds": round(time.monotonic() - started, 2)}

    def open_get(path, small_buffer=False):
        s = socket.create_connection(("127.0.0.1", port), timeout=90)
        if small_buffer:
            # Full sooner; not for a client that resumes: a receive buffer far below the
            # loopback MSS leaves the sender to zero-window probes with backoff (seconds).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        return s

    def paused(huge, pause):
        t0 = time.monotonic()
        s = open_get(huge)
        time.sleep(pause)
        out["paused"] = body_and_end(s, t0)
        s.close()

    def never(dead):
        t0 = time.monotonic()
        s = open_get(dead, small_buffer=True)
        local = s.getsockname()[1]
        # Never read: wait (bounded) until hop resets the connection, seen as an error on a
        # 1-byte peek once the reset has arrived.
        s.setblocking(False)
        end = "open"
        while time.monotonic() - t0 < 120:
            time.sleep(0.25)
            try:
                s.send(b"")
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    end = "reset"
                    break
            except (ConnectionResetError, BrokenPipeError):
                end = "reset"
                break
        seconds = round(time.monotonic() - t0, 2)
        time.sleep(0.5)
        # Both ends of this connection as the kernel sees them (this socket is still open): by
        # both ports, so an older connection that used the same ephemeral port and lingers in
        # TIME-WAIT with another peer is not taken for it.
        ss = subprocess.run(["ss", "-tanH", f"( ( sport = :{local} and dport = :{port} ) or "
                                            f"( sport = :{port} and dport = :{local} ) )"],
                            capture_output=True, text=True).stdout
        out["dead"] = {"end": end, "seconds": seconds, "ss": ss.strip()}
        s.close()

    def download(big):
        t0 = time.monotonic()
        _, total = get(big, timeout=90)
        out["big"] = {"bytes": total, "seconds": round(time.monotonic() - t0, 2)}

    if mode == "pause":
        huge, big, pause = sys.argv[3], sys.argv[4], float(sys.argv[5])
        threads = [threading.Thread(target=paused, args=(huge, pause)),
                   threading.Thread(target=download, args=(big,))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(180)
    else:
        never(sys.argv[3])
    print(json.dumps(out))
