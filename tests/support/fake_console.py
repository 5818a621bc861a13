#!/usr/bin/env python3
"""Per-instance EC2 console output (GetConsoleOutput) for hop's tests, written from
docs/specs/ec2-instance-connect.md §C.1, §C.2 and §D.2 point 3.

    python fake_console.py --self-test     builds every style, no moto

moto 5.2.5's GetConsoleOutput returns the same Xen kernel text for every instance and ignores
`Latest` (spec §D.1). `install_patch(console)` replaces
`moto.ec2.responses.general.General.get_console_output`: per instance id the console is
  - a stored text (returned base64-encoded in `Output`, as EC2 does),
  - "absent" (`Output` omitted: a fresh instance with no output yet), or
  - moto's sample (the default: a console without any host-key block);
every call is counted per instance with whether `Latest` was sent (and its value).
Unknown instance ids still fail with moto's InvalidInstanceID.NotFound.

Admin endpoints (moto's HTTP endpoint; `FakeConsole.wsgi` must sit in front of fake_eic's
middleware, which answers every other /__fake_eic/ path):
  POST /__fake_eic/console   {"instance_id": ID, then one of
        "text": STR                         store this text verbatim
        "absent": true                      omit Output
        "sample": true                      back to moto's sample
        "from_host": "web"|"bastion"|"eice_web"  build a cloud-init console from that lab
                                            host's REAL sshd host public key, with
          "style": "cloud-init-21.2+" (default; '<14>Mon DD HH:MM:SS cloud-init: ' lines, CRLF)
                 | "legacy-ec2-tag" ('ec2: ' lines, LF, keys with an empty comment)
          "keys": "actual" (default) | "other" (a freshly generated key of the same type in
                  place of the real one: a tampered console, verdict mismatch)
          "twice": true  (a second FINGERPRINTS+KEYS pair with another key after the real
                  one: two conflicting blocks, verdict ambiguous)}
        → {"instance_id", "kind": "text"|"absent"|"sample", "fingerprints": [sha256 of the
           keys printed, in order]}
  GET  /__fake_eic/console_calls  → {ID: {"calls": N, "latest_sent": bool,
                                          "latest": [value of each call's Latest or null]}}
  POST /__fake_eic/console_calls  {"reset": true} → clears the counters
Fingerprints are what `ssh-keygen -l` prints (it is run on the key).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST_NAMES = ("bastion", "web", "eice_web")
STYLES = ("cloud-init-21.2+", "legacy-ec2-tag")
HASH_LINE = "#" * 61
MAX_CALL_LOG = 1000  # per instance, values of Latest kept


def fingerprint(pub_line: str) -> tuple[int, str, str, str]:
    """(bits, SHA256:…, comment, LABEL) as `ssh-keygen -l -f` prints them for a public key."""
    with tempfile.TemporaryDirectory(prefix="hop-console-") as d:
        p = Path(d) / "key.pub"
        p.write_text(pub_line.rstrip("\n") + "\n")
        out = subprocess.run(["ssh-keygen", "-l", "-f", str(p)], check=True,
                             capture_output=True, text=True, timeout=10).stdout.strip()
    bits, fp, rest = out.split(" ", 2)
    comment, _, label = rest.rpartition(" (")
    return int(bits), fp, comment, label.rstrip(")")


def other_key(key_type: str, comment: str) -> str:
    """A fresh public key of the same type ("type base64 comment"), never the host's."""
    kind = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ecdsa-sha2-nistp256": "ecdsa"}[key_type]
    with tempfile.TemporaryDirectory(prefix="hop-console-") as d:
        p = Path(d) / "k"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(p)],
                       check=True, capture_output=True, timeout=30)
        return p.with_name("k.pub").read_text().strip()


def build_console(pub_lines: list[str], style: str, extra: list[str] | None = None,
                  hostname: str = "ip-10-0-1-10") -> tuple[str, list[str]]:
    """A first-boot console in the §C.1 format of `style` printing `pub_lines` (each
    "type base64 [comment]"), and after it, when `extra` is given, a second pair of blocks
    printing those keys. Returns (text, SHA256 fingerprints of every key printed)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}")
    legacy = style == "legacy-ec2-tag"
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    prefix = "ec2: " if legacy else f"<14>{stamp} cloud-init: "
    nl = "\n" if legacy else "\r\n"
    fps: list[str] = []

    def blocks(keys: list[str]) -> list[str]:
        out = [prefix + HASH_LINE, prefix + "-----BEGIN SSH HOST KEY FINGERPRINTS-----"]
        shown = []
        for line in keys:
            key_type, b64 = line.split()[:2]
            comment = "" if legacy else " ".join(line.split()[2:])
            # AL2's sshd-keygen makes keys without a comment: "no comment" and a trailing space.
            bits, fp, fp_comment, label = fingerprint(f"{key_type} {b64} {comment}".rstrip())
            fps.append(fp)
            out.append(f"{prefix}{bits} {fp} {fp_comment} ({label})")
            line = f"{key_type} {b64} {comment}"
            shown.append(line if legacy else line.rstrip())
        out += [prefix + "-----END SSH HOST KEY FINGERPRINTS-----", prefix + HASH_LINE,
                "-----BEGIN SSH HOST KEY KEYS-----", *shown,
                "-----END SSH HOST KEY KEYS-----"]
        return out

    if legacy:
        lines = ["Cloud-init v. 19.3-46.amzn2.0.5 running 'modules:final' at "
                 f"{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}. Up 14.02 seconds.",
                 "ci-info: no authorized ssh keys fingerprints found for user ec2-user.",
                 "ec2: "]
    else:
        lines = ["[    0.000000] Linux version 6.1.158-180.294.amzn2023.x86_64 (mockbuild@"
                 f"{hostname}) #1 SMP PREEMPT_DYNAMIC",
                 "[  OK  ] Started \x1b[0;1;39mcloud-final.service\x1b[0m - Execute cloud "
                 "user/final scripts.",
                 "[    7.538191] cloud-init[1970]: Cloud-init v. 22.2.2 running 'modules:config'."]
    lines += blocks(pub_lines)
    if extra:
        lines += blocks(extra)
    version, up = ("19.3-46.amzn2.0.5", "14.21") if legacy else ("22.2.2", "8.08")
    lines.append(f"Cloud-init v. {version} finished. Datasource DataSourceEc2.  Up {up} seconds")
    if not legacy:
        lines += ["", "Amazon Linux 2023.9.20260101"]
    return nl.join(lines) + nl, fps


class FakeConsole:
    """The per-instance console store; `host_keys` maps a lab host (bastion/web/eice_web) to
    the path of its sshd's public host key file."""

    def __init__(self, host_keys: dict[str, Path] | None = None):
        self.host_keys = dict(host_keys or {})
        self._lock = threading.Lock()
        self._consoles: dict[str, tuple[str, str | None]] = {}  # id -> (kind, text)
        self._calls: dict[str, dict[str, Any]] = {}

    # --- what moto's patched handler calls -------------------------------------------------
    def lookup(self, instance_id: str, latest: Any) -> tuple[str, str | None]:
        with self._lock:
            c = self._calls.setdefault(instance_id, {"calls": 0, "latest_sent": False,
                                                     "latest": []})
            c["calls"] += 1
            if latest is not None:
                c["latest_sent"] = True
            if len(c["latest"]) < MAX_CALL_LOG:
                c["latest"].append(latest)
            return self._consoles.get(instance_id, ("sample", None))

    # --- admin -----------------------------------------------------------------------------
    def set_console(self, body: dict[str, Any]) -> dict[str, Any]:
        iid = body["instance_id"]
        if not isinstance(iid, str) or not iid.startswith("i-"):
            raise ValueError("instance_id must be an instance id")
        fps: list[str] = []
        if body.get("absent"):
            entry: tuple[str, str | None] = ("absent", None)
        elif body.get("sample"):
            entry = ("sample", None)
        elif "text" in body:
            if not isinstance(body["text"], str):
                raise ValueError("text must be a string")
            entry = ("text", body["text"])
        elif "from_host" in body:
            host = body["from_host"]
            if host not in self.host_keys:
                raise ValueError(f"from_host must be one of {sorted(self.host_keys)} "
                                 f"(host keys known to moto_lab), not {host!r}")
            actual = self.host_keys[host].read_text().strip()
            key_type = actual.split()[0]
            comment = " ".join(actual.split()[2:])
            keys_kind = body.get("keys", "actual")
            if keys_kind not in ("actual", "other"):
                raise ValueError('keys must be "actual" or "other"')
            shown = actual if keys_kind == "actual" else other_key(key_type, comment)
            extra = [other_key(key_type, comment)] if body.get("twice") else None
            text, fps = build_console([shown], body.get("style", STYLES[0]), extra,
                                      hostname=f"ip-{host}")
            entry = ("text", text)
        else:
            raise ValueError('one of "text", "absent", "sample", "from_host" is required')
        with self._lock:
            self._consoles[iid] = entry
        return {"instance_id": iid, "kind": entry[0], "fingerprints": fps}

    def calls(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._calls))

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def wsgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            if path not in ("/__fake_eic/console", "/__fake_eic/console_calls"):
                return app(environ, start_response)
            stream, n = environ["wsgi.input"], environ.get("CONTENT_LENGTH")
            raw = stream.read(int(n)) if n else b""
            try:
                body = json.loads(raw or b"{}")
                if path == "/__fake_eic/console" and method == "POST":
                    status, out = 200, self.set_console(body)
                elif path == "/__fake_eic/console_calls" and method == "GET":
                    status, out = 200, self.calls()
                elif path == "/__fake_eic/console_calls" and method == "POST":
                    if body.get("reset"):
                        self.reset_calls()
                    status, out = 200, self.calls()
                else:
                    status, out = 404, {"message": f"no admin endpoint {method} {path}"}
            except (ValueError, KeyError, TypeError, OSError,
                    subprocess.SubprocessError) as e:
                status, out = 400, {"message": f"{type(e).__name__}: {e}"}
            data = json.dumps(out).encode()
            start_response(f"{status} {'OK' if status == 200 else 'Bad Request'}",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
            return [data]
        return middleware


def install_patch(console: FakeConsole) -> None:
    """Replaces moto's GetConsoleOutput handler (spec §D.2 point 3, verified recipe)."""
    from moto.core.responses import ActionResult
    from moto.core.types import Base64EncodedString
    from moto.core.utils import utcnow
    from moto.ec2.responses import general

    def get_console_output(self: Any) -> Any:
        instance_id = self._get_param("InstanceId")
        instance = self.ec2_backend.get_instance(instance_id)  # NotFound as moto does
        kind, text = console.lookup(instance.id, self._get_param("Latest"))
        result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
        if kind == "sample":
            result["Output"] = Base64EncodedString.from_raw_string(general.SAMPLE_CONSOLE_OUTPUT)
        elif kind == "text":
            result["Output"] = Base64EncodedString.from_raw_string(text or "")
        return ActionResult(result)

    general.General.get_console_output = get_console_output  # type: ignore[method-assign]


def _self_test() -> int:
    with tempfile.TemporaryDirectory(prefix="hop-console-test-") as d:
        key = Path(d) / "k"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "web host key",
                        "-f", str(key)], check=True, capture_output=True)
        pub = key.with_name("k.pub")
        fc = FakeConsole({"web": pub})
        want = fingerprint(pub.read_text())[1]
        for style in STYLES:
            r = fc.set_console({"instance_id": "i-0abc", "from_host": "web", "style": style})
            kind, text = fc.lookup("i-0abc", None)
            assert kind == "text" and text and r["fingerprints"] == [want], r
            assert pub.read_text().split()[1] in text, text
            assert text.count("-----BEGIN SSH HOST KEY KEYS-----") == 1
            r = fc.set_console({"instance_id": "i-0abc", "from_host": "web", "style": style,
                                "keys": "other"})
            assert r["fingerprints"][0] != want
            r = fc.set_console({"instance_id": "i-0abc", "from_host": "web", "style": style,
                                "twice": True})
            assert r["fingerprints"][0] == want and len(set(r["fingerprints"])) == 2
        fc.lookup("i-0abc", "true")
        assert fc.calls()["i-0abc"] == {"calls": 3, "latest_sent": True,
                                        "latest": [None, None, "true"]}, fc.calls()
    print("fake_console self-test: ok")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(_self_test())
    print(__doc__)
    sys.exit(2)
