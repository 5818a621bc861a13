"""What the test-bed launchers (moto_lab.py, netns_lab.py) share: atomic state files and the
stdin-EOF lifetime (a harness that holds the pipe stops the launcher just by exiting)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any


class Stop(BaseException):
    """Raised by the signal handler to abandon startup.

    A BaseException, like KeyboardInterrupt, so botocore's `except Exception` does not wrap
    it into an HTTPClientError when it lands mid-request.
    """


def stop_events(foreground: bool) -> tuple[threading.Event, threading.Event]:
    """(stop, ready): SIGTERM/SIGINT, or stdin EOF unless `foreground`, set `stop`; a signal
    before `ready` is set also raises `Stop`, abandoning startup. The stdin watch starts at
    once: a harness that dies during startup must not leave the launcher running."""
    stop = threading.Event()
    ready = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        if not ready.is_set():
            raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not foreground:
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    return stop, ready


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
