"""The bash tool: one persistent bash session per tool instance, with a scrubbed environment.

Every command runs in the same shell, so `cd`, variables and functions persist between calls. A
command runs through `eval` with stdin from /dev/null (it cannot swallow what follows it) and with
stderr merged into stdout; a line with a unique marker and the exit status, printed after it, tells
when it is done. A command that outlives the timeout kills the whole session (its process group,
background jobs included) and a fresh session is started.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from actions.result import ToolError, ToolResult
from agent.tools.base import Invocation
from agent.types import ToolSpec
from agent.vault import SECRET_ENV_PATTERNS, is_secret_env_name
from agent.vault import scrub as scrub_env

__all__ = ["SECRET_ENV_PATTERNS", "BashTool", "is_secret_env_name", "scrub_env", "truncate_middle"]

if TYPE_CHECKING:
    from agent.types import ToolCall

READ_CHUNK = 65536
TAIL_SLACK = 4096  # extra tail characters kept while reading, so the marker line never gets cut
TRIM_SLACK = 65536  # let the buffer grow this much past its bound before cutting its middle

# ANSI-C quoting ($'...') for the command text: backslash, quote and control characters escaped.
_ANSI_C_ESCAPES = {ord("\\"): "\\\\", ord("'"): "\\'", ord("\n"): "\\n", 127: "\\x7f"} | {
    code: f"\\x{code:02x}" for code in range(32) if code != ord("\n")
}


def truncate_middle(text: str, limit: int, cut: int = 0) -> str:
    """`text` cut to `limit` characters, keeping head and tail around a marker.

    `cut` counts characters already removed from the middle of `text` (right after its first
    `limit // 2` characters); the marker reports the total number cut.
    """
    total = len(text) + cut
    if total <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n[... {total - head - tail} characters cut ...]\n{text[len(text) - tail:]}"


class BashTool:
    """A persistent bash session for the model: input `command: str` or `restart: true`."""

    name = "bash"

    def __init__(
        self,
        cwd: Path | None = None,
        timeout_s: float = 120,
        max_output: int = 16000,
        env: dict[str, str] | None = None,
    ) -> None:
        if timeout_s <= 0 or max_output < 1:
            raise ValueError("timeout_s and max_output must be positive")
        self.cwd = cwd
        self.timeout_s = timeout_s
        self.max_output = max_output
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._carry = ""  # output that arrived after the last command's marker (background jobs)

    @property
    def spec(self) -> ToolSpec:
        """The bash tool: `command`, or `restart: true`."""
        return ToolSpec(self.name, "Run a command in a persistent bash shell, or restart the shell.",
                        {"type": "object", "properties": {"command": {"type": "string"},
                                                          "restart": {"type": "boolean"}}}, kind="bash")

    def validate(self, call: ToolCall) -> Invocation:
        """Bash input is checked when it runs; bad input comes back as an error result."""
        return Invocation(call)

    def __call__(self, invocation: Invocation) -> ToolResult:
        """Run a validated call."""
        return self.run(**invocation.call.input)

    def run(self, **tool_input: object) -> ToolResult:
        """Run `command` in the session, or restart it; every failure becomes an error result."""
        unknown = sorted(set(tool_input) - {"command", "restart"})
        if unknown:
            keys = ", ".join(unknown)
            return ToolResult(error=f"unknown input key(s): {keys}; expected `command` or `restart`")
        if tool_input.get("restart"):
            self._kill()
            try:
                self._start()
            except OSError as e:
                return ToolResult(error=f"could not start bash: {e}")
            return ToolResult(system="the bash session was restarted")
        command = tool_input.get("command")
        if not isinstance(command, str) or not command.strip():
            return ToolResult(error="`command` is required: a non-empty string (or `restart: true`)")
        if "\0" in command:
            return ToolResult(error="`command` must not contain NUL characters")
        try:
            return self._run(command)
        except ToolError as e:
            return ToolResult(error=str(e))

    def close(self) -> None:
        """Kill the session and everything in its process group."""
        self._kill()

    def __enter__(self) -> BashTool:
        """The tool itself; the session is closed on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the session."""
        self.close()

    @property
    def pid(self) -> int | None:
        """The session's bash process id (also its process group id), or None if not running."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> subprocess.Popen[bytes]:
        env = scrub_env(os.environ)
        env.update(self.env)
        bash = shutil.which("bash", path=env.get("PATH")) or "/bin/bash"
        self._proc = subprocess.Popen(
            [bash, "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=env,
            start_new_session=True,  # its own process group, killed as a whole
            bufsize=0,
        )
        self._carry = ""
        return self._proc

    def _kill(self) -> None:
        proc, self._proc, self._carry = self._proc, None, ""
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _run(self, command: str) -> ToolResult:
        try:
            proc = self._proc or self._start()
        except OSError as e:
            raise ToolError(f"could not start bash in {self.cwd or os.getcwd()}: {e}") from e
        assert proc.stdin is not None and proc.stdout is not None
        marker = f"__deskpilot_done_{uuid.uuid4().hex}__"
        done = re.compile(re.escape(marker) + r":(\d+)\n")
        script = (
            f"eval $'{command.translate(_ANSI_C_ESCAPES)}' < /dev/null\n"
            f"printf '\\n%s:%s\\n' {marker} \"$?\"\n"
        )
        try:
            proc.stdin.write(script.encode("utf-8", errors="replace"))
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._kill()
            raise ToolError("the bash session had exited; run the command again in a new session") from None

        head = self.max_output // 2
        tail_keep = self.max_output - head + TAIL_SLACK
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        buf, self._carry = self._carry, ""
        cut = 0
        search_from = 0
        deadline = time.monotonic() + self.timeout_s
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while not (match := done.search(buf, search_from)):
                if len(buf) > head + tail_keep + TRIM_SLACK:  # bound memory: cut the middle now
                    cut += len(buf) - head - tail_keep
                    buf = buf[:head] + buf[len(buf) - tail_keep:]
                search_from = max(0, len(buf) - len(marker) - 24)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._kill()
                    with contextlib.suppress(OSError):  # if it fails, the next command says why
                        self._start()
                    partial = truncate_middle(buf, self.max_output, cut)
                    message = f"command timed out after {self.timeout_s:g} s; the session was restarted"
                    raise ToolError(f"{partial}\n[{message}]" if partial else message)
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, READ_CHUNK)
                if not chunk:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=2)
                    status = proc.returncode
                    self._kill()
                    output = truncate_middle(buf + decoder.decode(b"", final=True), self.max_output, cut)
                    message = f"the bash session exited (status {status}); the next command starts a new one"
                    raise ToolError(f"{output}\n[{message}]" if output else message)
                buf += decoder.decode(chunk)

        self._carry = buf[match.end():]
        text = buf[: match.start()].removesuffix("\n").removesuffix("\n")  # the marker's newline, then one
        output = truncate_middle(text, self.max_output, cut)
        status = int(match.group(1))
        if status != 0:
            return ToolResult(error=f"{output}\n[exit code {status}]" if output else f"[exit code {status}]")
        return ToolResult(output=output)
