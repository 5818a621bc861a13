#!/usr/bin/env python3
"""Runs moto's EC2 emulator for hop's tests, optionally seeded with the fixed topology.

    python moto_lab.py [--port 0] [--seed] [--state-file PATH] [--foreground] [--verbose]
                       [--eic-store DIR] [--eice-netns IP=NS[,IP=NS...]] [--eice-dir DIR]
                       [--eice-port N] [--host-keys HOST=PUB[,HOST=PUB...]]

Prints exactly one line of JSON to stdout once the server is ready:

    {"port": N, "endpoint": "http://127.0.0.1:N", "ssm": {"ws_port": W},
     "eice": {"ca": PATH, "port": P, "dir": DIR, "endpoints": {...}},
     "eic": {"store": DIR | null}, "instances": {...}, ...}

("instances" and what follows, and eice.endpoints, only with --seed: see seed_topology.seed),
and writes the same JSON to --state-file (atomically; the file is removed again on exit so
it never points at a dead server).

EC2 Instance Connect (fake_eice.py, fake_eic.py; see their docstrings):
  --eice-dir DIR    where the fake EICE's test CA (DIR/ca.pem = eice.ca) and leaf certificates
                    go; default a temporary directory removed on exit
  --eice-port N     the fake EICE's TLS port on 127.0.0.1; default 443 when --eice-netns is
                    given (the namespace bed: moto_lab runs as root inside the client
                    namespace, where 443 is free), else 0 = any free port (the moto-only lab
                    shares the root namespace with everything else). If binding fails, the
                    fake is left out and "eice.port" is null (reason on stderr).
  --eice-netns MAP  which network namespace the fake dials a private IP in, e.g.
                    10.1.1.10=hope-PID,10.0.1.10=hopw-PID,10.0.0.4=hopb-PID; other IPs are
                    dialled in moto_lab's own namespace
  --eice-dial MAP   IP=HOST:PORT[,...]: dial HOST:PORT in moto_lab's namespace instead of IP:port
                    (eice_check.py: an echo server on loopback stands in for the target)
  --eic-store DIR   where SendSSHPublicKey writes the pushed-key blocks
                    (DIR/<instance-id>/<os-user>); without it pushes are only recorded
Admin: /__fake_eice/{tunnels,calls,state,knobs,credentials} and /__fake_eic/{pushes,state,
knobs,console,console_calls} on moto's endpoint.

Console output (fake_console.py; GetConsoleOutput per instance, see its docstring):
  --host-keys MAP   HOST=PATH[,...]: the public host key file of each lab host's sshd
                    (bastion, web, eice_web), what POST /__fake_eic/console {"from_host"}
                    builds consoles from. With --seed and every one of the three given, the
                    seeded consoles are (after seeding, before ready):
                      sample-bastion   legacy-ec2-tag form, bastion's real key (verified)
                      sample-web       cloud-init-21.2+ form, web's real key (verified)
                      sample-eice-web  cloud-init-21.2+ form, eice_web's real key (verified)
                      sample-app       web's form with another key: tampered (mismatch for
                                       any host key; no sshd behind it)
                      sample-worker    two conflicting blocks (ambiguous)
                      sample-old       Output absent (stopped, nothing yet)
                    every other instance keeps moto's sample (no block: unavailable).
                    "console": {name: {"id", "kind", "fingerprints"}} in the ready JSON.

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
    "sample-eice-web": {"private_ip": "10.1.1.10", "public_ip": None, "state": "running"},
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


# The seeded consoles (see the docstring): name -> the admin request's fields.
SEEDED_CONSOLES: dict[str, dict[str, Any]] = {
    "sample-bastion": {"from_host": "bastion", "style": "legacy-ec2-tag"},
    "sample-web": {"from_host": "web", "style": "cloud-init-21.2+"},
    "sample-eice-web": {"from_host": "eice_web", "style": "cloud-init-21.2+"},
    "sample-app": {"from_host": "web", "style": "cloud-init-21.2+", "keys": "other"},
    "sample-worker": {"from_host": "web", "style": "cloud-init-21.2+", "twice": True},
    "sample-old": {"absent": True},
}


def seed_consoles(console: Any, instances: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, request in SEEDED_CONSOLES.items():
        inst = instances.get(name)
        if inst is None:
            raise RuntimeError(f"moto_lab: no seeded instance {name} for its console")
        r = console.set_console({"instance_id": inst["id"], **request})
        out[name] = {"id": inst["id"], "kind": r["kind"], "fingerprints": r["fingerprints"]}
    return out


# Held around every moto request, and by fake_eic while it reads moto's instances.
MOTO_LOCK = threading.Lock()


def one_at_a_time(app: Any) -> Any:
    """moto's app, one request at a time. moto 5.2.5's response serializer is not thread-safe:
    concurrent requests (the test suite runs four at once; `hop doctor` sends ten) sometimes
    fail with "RuntimeError: dictionary changed size during iteration" and a 500. The Python
    work is serial under the GIL anyway, so this costs next to nothing. The body is read inside
    the lock: a WSGI app may build it lazily."""
    lock = MOTO_LOCK

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
    parser.add_argument("--eic-store", type=Path, help="where pushed keys are written")
    parser.add_argument("--eice-netns", default="", help="IP=NS[,IP=NS...]: where to dial")
    parser.add_argument("--eice-dir", type=Path, help="test CA and certificates (default: temp)")
    parser.add_argument("--eice-port", type=int, help="fake EICE TLS port (default: see above)")
    parser.add_argument("--eice-dial", default="",
                        help="IP=HOST:PORT[,...]: dial HOST:PORT here instead (tests without root)")
    parser.add_argument("--host-keys", default="",
                        help="HOST=PUB[,...]: lab hosts' public host key files (consoles)")
    args = parser.parse_args(argv)
    from fake_eice import parse_netns_map

    host_keys: dict[str, Path] = {}
    for item in filter(None, args.host_keys.split(",")):
        host, sep, pub = item.partition("=")
        if not sep or not pub:
            parser.error(f"--host-keys: {item!r} is not HOST=PATH")
        host_keys[host] = Path(pub)

    try:
        eice_netns = parse_netns_map(args.eice_netns)
    except ValueError as e:
        parser.error(str(e))
    eice_port = args.eice_port if args.eice_port is not None else (443 if eice_netns else 0)

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
    fake_eice: Any = None
    state_written = False
    line = ""
    try:
        # Importing moto's EC2 models is most of the first request's cost
        # (~5 s), so doing it here also warms the server up before it is
        # announced.
        install_address_plan()
        import fake_eice as eice_mod

        eice_mod.install_ec2_patches(eice_mod.STORE)
        from fake_console import FakeConsole, install_patch

        fake_console = FakeConsole(host_keys)
        install_patch(fake_console)
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
        # EC2 Instance Connect: the key push in front of moto, the endpoint server next to it.
        from fake_eic import FakeEIC

        if args.eic_store is not None:
            args.eic_store.mkdir(parents=True, exist_ok=True)
        fake_eic = FakeEIC(args.eic_store, lock=MOTO_LOCK)
        fake_eice = eice_mod.FakeEICE(eice_mod.STORE, args.eice_dir, eice_netns, port=eice_port)
        for item in filter(None, args.eice_dial.split(",")):
            ip, _, hostport = item.partition("=")
            host, _, dial_port = hostport.rpartition(":")
            fake_eice.dial_override[ip] = (None, host, int(dial_port))
        try:
            eice_port = fake_eice.start()
        except OSError as e:
            log.warning("fake EICE cannot listen on 127.0.0.1:%d (%s): left out", eice_port, e)
            eice_port = None
        app = fake_ssm.wsgi(one_at_a_time(server._server.app))
        # fake_console first: fake_eic answers every other /__fake_eic/ path.
        server._server.app = fake_console.wsgi(fake_eic.wsgi(fake_eice.wsgi(app)))
        # With port 0 the OS picked a free port; the bound socket knows which.
        port = server.get_host_and_port()[1]
        endpoint = f"http://127.0.0.1:{port}"
        state: dict[str, Any] = {
            "port": port, "endpoint": endpoint, "ssm": {"ws_port": ws_port},
            "eice": {"ca": str(fake_eice.ca.ca_path), "port": eice_port,
                     "dir": str(fake_eice.dir), "endpoints": {}},
            "eic": {"store": str(args.eic_store) if args.eic_store is not None else None},
        }
        log.info("listening on %s (%.1fs), fake EICE on 127.0.0.1:%s", endpoint,
                 time.monotonic() - started, eice_port)

        if args.seed:
            from seed_topology import seed

            seed_started = time.monotonic()
            seeded = seed(endpoint)
            state["eice"]["endpoints"] = seeded.pop("eice", {}).get("endpoints", {})
            state.update(seeded)
            _check_seeded(state)
            fake_eice.refresh_default_cert()
            if all(h in host_keys for h in ("bastion", "web", "eice_web")):
                state["console"] = seed_consoles(fake_console, state["instances"])
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
        if fake_eice is not None:
            fake_eice.stop()
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
