#!/usr/bin/env python3
"""Load for `hop forward` tests, run inside the client namespace. Bounded in count and time.

    load.py parallel PORT N CONCURRENCY      N short HTTP GETs of /small; prints failures
    load.py stall PORT BIG_PATH STALL_PATH   one client requests STALL_PATH and never reads;
                                             another downloads BIG_PATH; prints bytes, seconds
"""

import concurrent.futures
import json
import socket
import sys
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
