"""One display, one actor: an exclusive lock per X display, held while a command acts on it.

The lock is `flock` on a file named after the display (`:7` and `:7.0` are one display) in the
user's runtime folder ($DESKPILOT_LOCK_DIR, else $XDG_RUNTIME_DIR/deskpilot, else
/tmp/deskpilot-<uid>, created private). The kernel releases a flock when its holder dies, even
by SIGKILL, so a crash never leaves a display locked. The holder writes its pid and command line
into the file, so whoever is refused can say who holds it. The lock is re-entrant inside one
process (a task's session and the replay it starts share it); its descriptor is never inherited
by child processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from actions.platform.base import DesktopError

POLL_S = 0.2

_held: dict[str, tuple[int, int]] = {}  # key -> (descriptor, depth)
_lock = threading.Lock()


class DisplayBusy(DesktopError):
    """Another process is acting on the display; `pid` (None when unknown) and `holder` say who."""

    def __init__(self, message: str, pid: int | None, holder: str) -> None:
        super().__init__(message)
        self.pid, self.holder = pid, holder


def display_key(display: str) -> str:
    """The lock's name for an X display: `:7.0` -> `7`, `host:7` -> `host-7`."""
    host, _, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    key = f"{host}-{number}" if host else number
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key) or "default"


def lock_dir() -> Path:
    """The private folder the lock files live in (created when missing); DesktopError if it is not private."""
    explicit = os.environ.get("DESKPILOT_LOCK_DIR")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if explicit:
        folder = Path(explicit)
    elif runtime and Path(runtime).is_dir():
        folder = Path(runtime) / "deskpilot"
    else:
        folder = Path("/tmp") / f"deskpilot-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise DesktopError(f"cannot create the display lock folder {folder}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise DesktopError(f"the display lock folder {folder} is not a private folder of this user")
    return folder


def _holder(path: Path) -> tuple[int | None, str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None, ""
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    return pid, (lines[1] if len(lines) > 1 else "")


@contextlib.contextmanager
def hold(display: str, *, wait: bool = False, notice: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the display's lock for the `with` block.

    Taken at once when free. Held by another process: with `wait`, `notice` is told once and the
    lock is waited for (Ctrl-C still interrupts); without it DisplayBusy names the holder's pid.
    """
    key = display_key(display)
    with _lock:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            _release(key)
        return
    path = lock_dir() / f"display-{key}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise DesktopError(f"cannot open the lock of display {display} ({path}): {exc.strerror or exc}") from None
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid, command = _holder(path)
                who = f"pid {pid}" + (f": {command}" if command else "") if pid else "another process"
                if not wait:
                    raise DisplayBusy(f"display {display} is in use by another deskpilot ({who}); one display has "
                                      "one actor at a time: let it finish, or pass --wait-display to wait for it",
                                      pid, command) from None
                if not told and notice is not None:
                    notice(f"display {display} is in use by {who}; waiting for it (--wait-display)")
                    told = True
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{' '.join(sys.argv)[:500]}\n".encode("utf-8", errors="replace"), 0)
    except BaseException:
        os.close(fd)
        raise
    with _lock:
        _held[key] = (fd, 1)
    try:
        yield
    finally:
        _release(key)


def _release(key: str) -> None:
    with _lock:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the descriptor releases the flock
