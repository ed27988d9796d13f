"""Tests through both platform backends: where each acts, and the programs a test starts there.

pyautogui keeps one X connection per process (see actions/platform/portable/libs.py), so every
test that acts through the portable backend shares one display (`shared_desktop`); each test
ends the windows it opened (`Launched`), so the next one finds the screen empty. The display
ends with the process. An x11 test gets a desktop of its own, as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
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


class Where:
    """A desktop to act on through `backend`, with the programs a test starts on it."""

    def __init__(self, backend: str, desktop: VirtualDesktop) -> None:
        self.backend, self.desktop, self.launched = backend, desktop, Launched(desktop)

    def probe(self, tmp_path: Path) -> Probe:
        """The probe window on this desktop, ready."""
        return self.launched.probe(tmp_path / "events.jsonl")

    def launch(self, argv: list[str]) -> subprocess.Popen:
        """Start a program on this desktop for this test."""
        return self.launched.launch(argv)


def where_for(backend: str, desktop_factory: Callable[..., VirtualDesktop]) -> Iterator[Where]:
    """A test's place for `backend` (the body of a `where` fixture parametrised over BACKENDS):
    x11 on a desktop of its own, portable on the process's shared display; its programs end after."""
    place = Where(backend, desktop_factory() if backend == "x11" else shared_desktop())
    yield place
    place.launched.end()
