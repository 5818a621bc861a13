#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and answers its prompts, like a person would.

    pty_answer.py PROMPT_REGEX ANSWER[,ANSWER...] COMMAND...

Each time PROMPT_REGEX appears once more in the output, types the next ANSWER and Enter (the
last answer repeats). Reads until the command exits; bounded to 20 s in all. Prints one JSON
object: {"transcript": "...", "exit": N, "prompts": K}.
"""

import json
import os
import pty
import re
import select
import sys
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
            os.write(fd, (answers[min(answered, len(answers) - 1)] + "\n").encode())
            answered += 1
status = None
try:
    _, raw = os.waitpid(pid, os.WNOHANG if time.monotonic() >= deadline else 0)
    status = os.waitstatus_to_exitcode(raw) if raw else 0
except ChildProcessError:
    pass
print(json.dumps({"transcript": buf.decode("utf-8", "replace"), "exit": status, "prompts": answered}))
