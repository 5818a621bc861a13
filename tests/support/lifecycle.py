"""What the test-bed launchers (moto_lab.py, netns_lab.py) share: atomic state files and the
stdin-EOF lifetime (a harness that holds the pipe stops the launcher just by exiting)."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def atomic_write(path: Path, text: str) -> None:
    # Write-then-rename so a reader never sees half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def remove_state(path: Path, line: str) -> None:
    """Remove the ready-JSON state file, only if it is still ours: another lab may have
    reused the path since."""
    try:
        if path.read_text() == line + "\n":
            path.unlink()
    except FileNotFoundError:
        pass


def watch_stdin(stop: threading.Event) -> None:
    """Set `stop` when stdin reaches EOF (run in a daemon thread)."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    stop.set()
