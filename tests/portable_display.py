"""The one X display the portable backend drives in a test process, and programs started on it for one test.

pyautogui keeps one X connection per process (see actions/platform/portable/libs.py), so every
test that acts through the portable backend shares this display; each test ends the windows it
opened (`Launched`), so the next one finds the screen empty. The display ends with the process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from actions.platform.x11.desktop import VirtualDesktop
from tests.conftest import TESTS, Probe
from vision.geometry import Size

BACKENDS = ["x11", "portable"]
_shared: VirtualDesktop | None = None


def shared_desktop() -> VirtualDesktop:
    """The portable backend's display in this process, started on first use (1280x800, no window manager)."""
    global _shared
    if _shared is None:
        _shared = VirtualDesktop(Size(1280, 800)).start()  # stopped at exit by the desktop module
    return _shared


class Launched:
    """Programs started on a desktop for one test; `end()` ends their process groups."""

    def __init__(self, desktop: VirtualDesktop) -> None:
        self.desktop, self.procs = desktop, []

    def launch(self, argv: list[str]) -> subprocess.Popen:
        """Start a program on the desktop."""
        self.procs.append(self.desktop.launch(argv))
        return self.procs[-1]

    def probe(self, path: Path) -> Probe:
        """The probe window, ready."""
        self.launch([sys.executable, str(TESTS / "probe_window.py"), str(path)])
        probe = Probe(path)
        probe.wait_for(lambda events: any(e["type"] == "ready" for e in events), timeout=15)
        probe.mark()
        return probe

    def end(self) -> None:
        """End every program started (TERM, then KILL), and wait for them."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
