"""A task's commands: `launch` (in the background), `run` and `command` checks (to completion).

Every command is started through the desktop (so the desktop's reaper kills its process group
if deskpilot itself dies, even by SIGKILL), in its own process group, in the task file's folder,
with the session's scrubbed environment (no secret variables).

- `run_command` waits for a `run` step or `command` check, at most its timeout (DEFAULT_TIMEOUT_S
  unless the long form `{run: CMD, timeout: S}` says otherwise). On timeout, on a stop (kill
  switch, app) and on Ctrl-C or SIGTERM, the command's whole process group gets SIGTERM, then
  SIGKILL after KILL_GRACE_S; once the command exits, whatever it left running in its process
  group is killed too: nothing is left behind (use `launch` for a program that must keep running).
  Its output (stdout and stderr merged) is kept up to the last OUTPUT_TAIL characters.
- `Programs.launch` starts a program and watches it for LAUNCH_GRACE_S: one that cannot be
  started (no such program), or that exits at once with a non-zero code (a shell-form command
  whose program does not exist exits 127), raises `CommandFailed` with its exit code and the
  end of its stderr. `Programs.check` raises the same for a launched program that has exited
  non-zero since (the runner calls it during setup). A launched program's stderr still reaches
  deskpilot's stderr, as it always did.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 120.0
KILL_GRACE_S = 1.0
LAUNCH_GRACE_S = 0.3
OUTPUT_TAIL = 4000
OUTPUT_KEPT = 1 << 20  # standard output kept whole (up to 1 MiB) when a check compares it
POLL_S = 0.05


class CommandFailed(Exception):
    """A command could not be started, or a launched program exited at once with a non-zero code."""


def kill_group(proc: subprocess.Popen) -> None:
    """End `proc`'s process group: SIGTERM, then SIGKILL after KILL_GRACE_S; waits for `proc`."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone; make sure the rest of its group is too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return


class _Tail:
    """Reads a stream to its end in a thread, keeping its last OUTPUT_TAIL characters (optionally echoing)."""

    def __init__(self, stream: Any, echo: Any = None, limit: int = OUTPUT_TAIL) -> None:
        self.limit = limit
        self._chunks: deque[str] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream, echo), daemon=True, name="command-output")
        self._thread.start()

    def _read(self, stream: Any, echo: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
                text = chunk.decode("utf-8", errors="replace")
                if echo is not None:
                    with contextlib.suppress(OSError, ValueError):
                        echo.write(text)
                        echo.flush()
                with self._lock:
                    self._chunks.append(text)
                    self._size += len(text)
                    while self._size - len(self._chunks[0]) >= self.limit:
                        self._size -= len(self._chunks.popleft())
        with contextlib.suppress(OSError):
            stream.close()

    def text(self, wait: float = 1.0, strip: bool = True) -> str:
        """What was read (its last `limit` characters), after waiting up to `wait` s for the end."""
        self._thread.join(wait)
        with self._lock:
            text = "".join(self._chunks)[-self.limit:]
        return text.strip() if strip else text


def _start(desktop: Any, command: str | list[str], cwd: Path, environ: dict[str, str], **streams: Any
           ) -> subprocess.Popen:
    """Start `command` on the desktop; CommandFailed naming the program when it cannot be started."""
    try:
        return desktop.launch(command, cwd=cwd, environ=environ, **streams)
    except FileNotFoundError as exc:
        what = command[0] if isinstance(command, list) else "/bin/sh"
        missing = exc.filename if exc.filename not in (None, what) else what
        if not Path(cwd).is_dir():
            raise CommandFailed(f"cannot start {what}: the folder {cwd} does not exist") from None
        raise CommandFailed(f"cannot start {missing}: no such program (exit code 127)") from None
    except PermissionError:
        raise CommandFailed(f"cannot start {command[0] if isinstance(command, list) else command}: "
                            "permission denied (exit code 126)") from None
    except OSError as exc:
        raise CommandFailed(f"cannot start the command: {exc.strerror or exc}") from None


def run_command(desktop: Any, command: str | list[str], *, cwd: Path, environ: dict[str, str], timeout: float,
                stop: threading.Event | None = None, split: bool = False) -> tuple:
    """Run `command` to completion, at most `timeout` seconds: (exit code, the end of its output), or
    with `split` (exit code, its standard output as it is (up to OUTPUT_KEPT), the end of its stderr).

    124 with "timed out after S s" when the timeout passed (the process group was killed); 127 or
    126 when it could not be started. A stop (`stop` set), Ctrl-C or SIGTERM kills the process
    group and raises: KeyboardInterrupt goes on, a stop returns (130, "stopped").
    """
    def result(code: int, text: str, output: str = "") -> tuple:
        return (code, output, text) if split else (code, text)

    try:
        proc = _start(desktop, command, cwd, environ, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE if split else subprocess.STDOUT)
    except CommandFailed as exc:
        return result(126 if "126" in str(exc) else 127, str(exc))
    assert proc.stdout is not None
    output = _Tail(proc.stdout, limit=OUTPUT_KEPT if split else OUTPUT_TAIL)
    errors = _Tail(proc.stderr) if split else output
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if stop is not None and stop.is_set():
                kill_group(proc)
                return result(130, f"stopped while running; {errors.text()}".strip("; "))
            if time.monotonic() >= deadline:
                kill_group(proc)
                tail = errors.text()
                return result(124, f"timed out after {timeout:g} s (its process group was killed)"
                              + (f": {tail}" if tail else ""))
            time.sleep(POLL_S)
    except BaseException:  # Ctrl-C, SIGTERM: nothing may outlive us
        kill_group(proc)
        raise
    with contextlib.suppress(ProcessLookupError, PermissionError):  # what it left in its group goes too
        os.killpg(proc.pid, signal.SIGKILL)
    if split:
        return proc.returncode, output.text(strip=False), errors.text()
    return proc.returncode, output.text()


class Programs:
    """The programs a task launched: started, watched for an early failure, stopped at the end."""

    def __init__(self, desktop: Any, cwd: Path, environ: dict[str, str]) -> None:
        self.desktop, self.cwd, self.environ = desktop, cwd, environ
        self.procs: list[tuple[subprocess.Popen, str, _Tail]] = []

    def launch(self, command: str | list[str], where: str) -> subprocess.Popen:
        """Start `command` in the background; CommandFailed when it cannot start or exits non-zero at once."""
        try:
            proc = _start(self.desktop, command, self.cwd, self.environ, stderr=subprocess.PIPE)
        except CommandFailed as exc:
            raise CommandFailed(f"{where}: {exc}") from None
        self.procs.append((proc, where, _Tail(proc.stderr, echo=sys.stderr)))
        deadline = time.monotonic() + LAUNCH_GRACE_S
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(POLL_S / 2)
        self.check()
        return proc

    def check(self) -> None:
        """CommandFailed for the first launched program that has exited with a non-zero code."""
        for proc, where, stderr in self.procs:
            code = proc.poll()
            if code not in (None, 0):
                detail = stderr.text(wait=0.5)
                raise CommandFailed(f"{where}: exited with code {code}" + (f": {detail}" if detail else ""))

    def stop(self) -> None:
        """Stop every launched program's process group (SIGTERM, then SIGKILL)."""
        for proc, _, _ in self.procs:
            if proc.poll() is None:
                kill_group(proc)
