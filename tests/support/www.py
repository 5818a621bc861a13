#!/usr/bin/env python3
"""Static files over HTTP on 127.0.0.1, for the forward tests and benchmarks.

    www.py PORT DIRECTORY

`python -m http.server` with a listen backlog that fits the load the tests put on it. Its own
backlog is 5: under 100 parallel connections the kernel then drops SYNs (hundreds of
ListenOverflows per 1000 connections, measured), and a connection can sit in SYN retransmission
for 1 + 2 + 4 + 8 + 16 s — longer than the load's 30 s timeout on a busy machine. That is the
server's limit, not the forward's, so the test server must not have it.
"""

import functools
import http.server
import sys


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


port, directory = int(sys.argv[1]), sys.argv[2]
with Server(("127.0.0.1", port), functools.partial(Quiet, directory=directory)) as server:
    server.serve_forever()
