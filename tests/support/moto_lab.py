#!/usr/bin/env python3
"""Runs moto's EC2 emulator for hop's tests, optionally seeded with the fixed topology.

    python moto_lab.py [--port 0] [--seed] [--state-file PATH] [--foreground] [--verbose]

Prints exactly one line of JSON to stdout once the server is ready:

    {"port": N, "endpoint": "http://127.0.0.1:N", "ssm": {"ws_port": W}, "instances": {...}, ...}

(everything after "ssm" only with --seed: see seed_topology.seed), and writes the
same JSON to --state-file (atomically; the file is removed again on exit so
it never points at a dead server).

Lifetime: runs until stdin reaches EOF, so a harness holding the pipe stops it
just by exiting, or until SIGTERM/SIGINT. --foreground ignores stdin (for
running in the background from a shell, where stdin may be /dev/null).

Addresses: moto hands out instance public IPs from 54.214.0.0/16 (real AWS
space) and Elastic IPs from 127.0.0.0/8. This launcher makes them come,
sequentially, from documentation ranges instead, so the addresses hop
discovers are the ones the test namespaces are given:
instance public IPs 203.0.113.10, .11, ... and Elastic IPs 198.51.100.10, ...
Both sequences restart on every POST /moto-api/reset.

SSM Session Manager: fake_ssm.py sits in front of moto and answers StartSession,
ResumeSession, TerminateSession and DescribeInstanceInformation on the same endpoint, plus
its admin endpoints under /__fake_ssm/; its websocket data channel listens on
127.0.0.1:W ("ssm.ws_port"). See fake_ssm.py's docstring.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifecycle import Stop, atomic_write, remove_state, stop_events  # noqa: E402

INSTANCE_PUBLIC_IPS = ("203.0.113.0/24", 10)
ELASTIC_IPS = ("198.51.100.0/24", 10)

# What the seeded topology must have got; checked after seeding so a moto
# upgrade that bypasses the patches fails here rather than in hop's tests.
EXPECTED_SEEDED = {
    "sample-bastion": {"public_ip": "203.0.113.10"},
    "sample-web": {"private_ip": "10.0.1.10", "public_ip": None},
    "edge-jump": {"public_ip": "203.0.113.11"},
    "sample-old": {"state": "stopped"},
}

log = logging.getLogger("moto_lab")


class AddressSequence:
    """Hands out host addresses of `network` in order, starting at host `first`.

    Called from moto's request threads, hence the lock. Running out raises
    (moto turns it into an HTTP 500) rather than wrapping into addresses a
    test may already have routed elsewhere.
    """

    def __init__(self, network: str, first: int):
        self._network = ipaddress.ip_network(network)
        self._first = first
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._next = self._first

    def __call__(self) -> str:
        with self._lock:
            if self._next >= self._network.num_addresses - 1:
                raise RuntimeError(f"moto_lab: address pool {self._network} exhausted")
            address = self._network[self._next]
            self._next += 1
        return str(address)


public_ips = AddressSequence(*INSTANCE_PUBLIC_IPS)
elastic_ips = AddressSequence(*ELASTIC_IPS)


def install_address_plan() -> None:
    """Points moto's public/elastic IP generators at the sequences above.

    moto's EC2 models import the generators by name
    (`from ..utils import random_public_ip`), so patching moto.ec2.utils alone
    is not enough: every module holding a reference must be patched. As of
    5.2.5 those are elastic_network_interfaces (random_public_ip: auto-assigned
    instance addresses, set when the ENI starts) and elastic_ip_addresses
    (random_ip: AllocateAddress). Rather than trust that list, sweep every
    loaded moto module for the original functions, then assert the two known
    holders were among them.
    """
    import moto.ec2.models  # noqa: F401  (loads every EC2 model module)
    import moto.ec2.models.elastic_ip_addresses as eip_mod
    import moto.ec2.models.elastic_network_interfaces as eni_mod
    import moto.ec2.utils as ec2_utils
    from moto.moto_api._internal.models import MotoAPIBackend

    replacements: list[tuple[Callable[[], str], Callable[[], str]]] = [
        (ec2_utils.random_public_ip, public_ips),
        (ec2_utils.random_ip, elastic_ips),
    ]
    patched = []
    for name, module in list(sys.modules.items()):
        if not (name == "moto" or name.startswith("moto.")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            for original, replacement in replacements:
                if value is original:
                    setattr(module, attr, replacement)
                    patched.append(f"{name}.{attr}")
    log.debug("patched address generators: %s", ", ".join(sorted(patched)))
    if eni_mod.random_public_ip is not public_ips or eip_mod.random_ip is not elastic_ips:
        raise RuntimeError("moto_lab: moto's address generators moved; update install_address_plan")

    # Rewind the sequences with moto's own reset so a reseed reproduces the
    # same addresses, whoever sends the reset.
    original_reset = MotoAPIBackend.reset

    def reset(self: Any) -> None:
        original_reset(self)
        public_ips.reset()
        elastic_ips.reset()

    MotoAPIBackend.reset = reset  # type: ignore[method-assign]


def _check_seeded(state: dict[str, Any]) -> None:
    for name, expected in EXPECTED_SEEDED.items():
        actual = state["instances"].get(name)
        if actual is None:
            raise RuntimeError(f"moto_lab: seeded topology lacks {name}")
        for field, value in expected.items():
            if actual.get(field) != value:
                raise RuntimeError(
                    f"moto_lab: {name}.{field} is {actual.get(field)!r}, expected {value!r}"
                )


def one_at_a_time(app: Any) -> Any:
    """moto's app, one request at a time. moto 5.2.5's response serializer is not thread-safe:
    concurrent requests (the test suite runs four at once; `hop doctor` sends ten) sometimes
    fail with "RuntimeError: dictionary changed size during iteration" and a 500. The Python
    work is serial under the GIL anyway, so this costs next to nothing. The body is read inside
    the lock: a WSGI app may build it lazily."""
    lock = threading.Lock()

    def serial(environ: dict[str, Any], start_response: Any) -> Any:
        with lock:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return serial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="loopback port; 0 picks a free one")
    parser.add_argument("--seed", action="store_true", help="reset and build the test topology")
    parser.add_argument("--state-file", type=Path, help="also write the ready JSON here")
    parser.add_argument(
        "--foreground", action="store_true", help="ignore stdin; run until signalled"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    # stdout carries only the ready line; anything moto or its libraries
    # print goes to stderr instead.
    ready_out = sys.stdout
    sys.stdout = sys.stderr
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="moto_lab: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("botocore").setLevel(logging.WARNING)

    stop, ready = stop_events(args.foreground)

    started = time.monotonic()
    server: Any = None
    server_started = False
    state_written = False
    line = ""
    try:
        # Importing moto's EC2 models is most of the first request's cost
        # (~5 s), so doing it here also warms the server up before it is
        # announced.
        install_address_plan()
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
        server.start()
        server_started = True
        # moto has no Session Manager (spec ssm-data-channel.md §9): fake_ssm answers the SSM
        # session calls in front of moto's WSGI app (werkzeug reads server.app per request)
        # and serves the data channel on its own loopback port.
        from fake_ssm import FakeSSM

        fake_ssm = FakeSSM()
        ws_port = fake_ssm.start()
        server._server.app = fake_ssm.wsgi(one_at_a_time(server._server.app))
        # With port 0 the OS picked a free port; the bound socket knows which.
        port = server.get_host_and_port()[1]
        endpoint = f"http://127.0.0.1:{port}"
        state: dict[str, Any] = {"port": port, "endpoint": endpoint, "ssm": {"ws_port": ws_port}}
        log.info("listening on %s (%.1fs)", endpoint, time.monotonic() - started)

        if args.seed:
            from seed_topology import seed

            seed_started = time.monotonic()
            state.update(seed(endpoint))
            _check_seeded(state)
            log.info(
                "seeded %d named + %d fleet instances in %.1fs",
                len(state["instances"]), state["fleet"]["count"],
                time.monotonic() - seed_started,
            )

        if stop.is_set():
            log.info("stdin closed before ready")
            return 1
        line = json.dumps(state)
        if args.state_file:
            atomic_write(args.state_file, line + "\n")
            state_written = True
        try:
            ready_out.write(line + "\n")
            ready_out.flush()
        except BrokenPipeError:
            log.info("nobody is reading stdout any more")
            return 1
        ready.set()
        log.info("ready after %.1fs", time.monotonic() - started)

        # Short waits keep the main thread returning to Python, where signal
        # handlers run.
        while not stop.wait(0.2):
            pass
        log.info("stopping")
        return 0
    except Stop as e:
        log.info("interrupted by %s before ready", e)
        return 1
    finally:
        if server_started:
            server.stop()
        if state_written:
            remove_state(args.state_file, line)


if __name__ == "__main__":
    code = main()
    # Skip interpreter teardown: freeing moto's object graph takes over a
    # second, and there is nothing left to clean up (no children, files
    # already handled), so harnesses get the port back sooner.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
