#!/usr/bin/env python3
"""Drives an interactive program on a pseudo-terminal, like a person at a terminal would.

    pty_drive.py COLS ROWS COMMAND...

Runs COMMAND under `sh -c 'stty -g; COMMAND; echo "exit=$?"; stty -g'` on a new pty of
COLS x ROWS, then: waits for the remote shell, types `stty size`, resizes the pty to
(COLS+20) x (ROWS+10) (the kernel sends SIGWINCH to the foreground process, as a terminal
emulator's resize does), types `stty size` again, then `exit 3`. Prints one JSON object:
{"transcript": "...", "sizes": ["R C", ...], "exit": N, "modes_before": "...", "modes_after": "..."}.
Everything is bounded in time (20 s in all).
"""

import fcntl
import json
import os
import pty
import re
import select
import struct
import sys
import termios
import time

cols, rows = int(sys.argv[1]), int(sys.argv[2])
command = " ".join(sys.argv[3:])
deadline = time.monotonic() + 20


def set_size(fd, c, r):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))


pid, fd = pty.fork()
if pid == 0:
    os.execvp("sh", ["sh", "-c", f'stty -g; {command}; echo "exit=$?"; stty -g'])
set_size(fd, cols, rows)
buf = b""


def read_until(pattern, timeout=8.0):
    global buf
    end = min(time.monotonic() + timeout, deadline)
    rx = re.compile(pattern)
    while time.monotonic() < end:
        m = rx.search(buf.decode("utf-8", "replace"))
        if m:
            return m
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return rx.search(buf.decode("utf-8", "replace"))


def send(text):
    os.write(fd, text.encode())


MODES = r"([0-9a-f]+(?::[0-9a-f]+){10,})"
before = read_until(MODES)
sizes = []
# A marker that only the remote shell can print proves the shell is up.
send("echo RE''ADY\n")
read_until(r"READY")
for c, r in [(cols, rows), (cols + 20, rows + 10)]:
    if (c, r) != (cols, rows):
        set_size(fd, c, r)
        time.sleep(0.5)
    mark = f"SZ{len(sizes)}"
    send(f"echo {mark}=$(stty size)\n")
    m = read_until(rf"{mark}=(\d+ \d+)")
    sizes.append(m.group(1) if m else None)
send("exit 3\n")
m = read_until(r"exit=(\d+)\r?\n" + MODES, timeout=8)
text = buf.decode("utf-8", "replace")
try:
    os.waitpid(pid, 0)
except ChildProcessError:
    pass
print(json.dumps({
    "transcript": text,
    "sizes": sizes,
    "exit": int(m.group(1)) if m else None,
    "modes_before": before.group(1) if before else None,
    "modes_after": m.group(2).strip() if m else None,
}))
