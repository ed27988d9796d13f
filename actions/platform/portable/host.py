"""The desktop of macOS and Windows: the screen itself (virtual desktops need Xvfb, on Linux).

On X the portable backend acts on X displays, which the x11 backend opens (see
actions.platform's `desktops_of`); this module serves the platforms without one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from actions.platform.base import DesktopError
from vision.geometry import Size


class HostScreen:
    """The user's own screen, plus the programs deskpilot started on it (ended by `stop()`)."""

    display = ""  # there is no display name outside X; capture and input use the main screen
    kind = "host"

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._stopped = False

    def __repr__(self) -> str:
        return f"HostScreen(platform={sys.platform!r})"

    def env(self) -> dict[str, str]:
        """A copy of the environment for programs on this screen."""
        return dict(os.environ)

    def launch(self, command: str | list[str], cwd: str | Path | None = None,
               env: dict | None = None) -> subprocess.Popen:
        """Start a program in the background (a string through the shell); `stop()` ends it."""
        with self._lock:
            if self._stopped:
                raise DesktopError("this desktop is stopped; open a new one")
            group: dict[str, Any] = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
                                     if sys.platform == "win32" else {"start_new_session": True})
            proc = subprocess.Popen(command, shell=isinstance(command, str), cwd=cwd, env={**self.env(), **(env or {})},
                                    stdin=subprocess.DEVNULL, **group)
            self._procs.append(proc)
            return proc

    def size(self) -> Size:
        """The screen size in pixels (physical: on a Retina Mac, twice its size in points)."""
        from vision.capture import Screen

        with Screen(None) as screen:
            return screen.size

    def stop(self) -> None:
        """End every program this desktop started (terminate, then kill after 1 s); idempotent."""
        with self._lock:
            self._stopped, procs, self._procs = True, self._procs, []
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()

    def __enter__(self) -> HostScreen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_host(spec: str, size: Size | None) -> HostScreen:
    """The desktop `--display SPEC` names outside X: only the screen itself (auto | host)."""
    if spec in ("auto", "host"):
        if size is not None:
            raise ValueError("--size applies only to virtual displays, which need Xvfb (Linux)")
        return HostScreen()
    if spec == "virtual":
        raise DesktopError(f"virtual desktops need Xvfb, which runs on Linux; on {sys.platform} deskpilot "
                           "acts on the screen itself (--display host)")
    if spec.startswith(":"):
        raise DesktopError(f"{spec} is an X display; on {sys.platform} deskpilot acts on the screen itself "
                           "(--display host)")
    raise ValueError(f"invalid display {spec!r}: use auto or host")
