#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and answers its prompts, like a person would.

    pty_answer.py PROMPT_REGEX ANSWER[,ANSWER...] COMMAND...

Each time PROMPT_REGEX appears once more in the output, types the next ANSWER and Enter (the
last answer repeats); the answer `^C` types Ctrl-C alone instead. Reads until the command
exits; bounded to 20 s in all. Prints one JSON object: {"transcript": "...", "exit": N,
"prompts": K, "after_last_answer_s": seconds from the last answer to the exit,
"echo_after": whether the terminal echoes again once the command is gone}.
"""

import json
import os
import pty
import re
import select
import sys
import termios
import time

prompt = re.compile(sys.argv[1])
answers = sys.argv[2].split(",")
command = sys.argv[3:]
deadline = time.monotonic() + 20

pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)
buf = b""
answered = 0
answered_at = None
while time.monotonic() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        seen = len(prompt.findall(buf.decode("utf-8", "replace")))
        while answered < seen:
            answer = answers[min(answered, len(answers) - 1)]
            os.write(fd, b"\x03" if answer == "^C" else (answer + "\n").encode())
            answered += 1
            answered_at = time.monotonic()
status = None
try:
    _, raw = os.waitpid(pid, os.WNOHANG if time.monotonic() >= deadline else 0)
    status = os.waitstatus_to_exitcode(raw) if raw else 0
except ChildProcessError:
    pass
ended = time.monotonic()
try:  # the terminal's modes as the command left them (the master reads the slave's termios)
    echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
except termios.error:
    echo_after = None
print(json.dumps({"transcript": buf.decode("utf-8", "replace"), "exit": status, "prompts": answered,
                  "after_last_answer_s": None if answered_at is None else ended - answered_at,
                  "echo_after": echo_after}))
