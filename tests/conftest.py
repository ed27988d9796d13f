"""Shared fixtures: real Xvfb desktops and the probe window that records what it receives."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actions.platform.x11.desktop import VirtualDesktop
from tests.fake_anthropic import FakeAnthropic
from vision.geometry import Size

TESTS = Path(__file__).parent


class Probe:
    """The probe window on a desktop, read back through its event file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = 0

    def events(self) -> list[dict]:
        """Every event recorded so far."""
        if not self.path.exists():
            return []
        events = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:  # the window is still writing its last line
                break
        return events

    def new_events(self) -> list[dict]:
        """Events recorded since the last call to `mark` or `new_events`."""
        events = self.events()
        fresh, self._seen = events[self._seen:], len(events)
        return fresh

    def mark(self) -> None:
        """Forget the events seen so far."""
        self._seen = len(self.events())

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float = 5.0) -> list[dict]:
        """Wait until `predicate(events since mark)` holds; return those events."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()[self._seen:]
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"probe never saw the expected events; got {events}")
            time.sleep(0.02)


def pytest_configure(config: pytest.Config) -> None:
    """The tests press Ctrl-C on the programs they start, as a person at a terminal does. A suite started
    in the background (`cmd &`, nohup) has SIGINT ignored, and every child would inherit that and stay
    deaf to it: give this process (and so its children) the default handling back."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """The scripted Messages API server, with the SDK's variables pointing at it."""
    server = FakeAnthropic().start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    yield server
    server.stop()


@pytest.fixture
def desktop_factory() -> Iterator[Callable[..., VirtualDesktop]]:
    """Start virtual desktops on demand; all are stopped at the end of the test."""
    started: list[VirtualDesktop] = []

    def start(size: Size | None = None, **kwargs: object) -> VirtualDesktop:
        desktop = VirtualDesktop(size or Size(1280, 800), **kwargs).start()
        started.append(desktop)
        return desktop

    yield start
    for desktop in started:
        desktop.stop()


@pytest.fixture
def desktop(desktop_factory: Callable[..., VirtualDesktop]) -> VirtualDesktop:
    """A 1280x800 virtual desktop for one test."""
    return desktop_factory()


def x_servers(display: str) -> set[int]:
    """The processes listening on display `display`'s socket now. Xvfb started with -displayfd writes no lock
    file, and the two xdist workers' servers take freed display numbers again, so a display's number alone
    does not say whose server answers on it."""
    import psutil

    path = f"/tmp/.X11-unix/X{display.lstrip(':')}"
    return {c.pid for c in psutil.net_connections("unix") if c.laddr == path and c.pid is not None}


def start_probe(desktop: VirtualDesktop, path: Path) -> Probe:
    """Launch the probe window on `desktop` and wait until it is ready."""
    desktop.launch([sys.executable, str(TESTS / "probe_window.py"), str(path)])
    probe = Probe(path)
    probe.wait_for(lambda events: any(e["type"] == "ready" for e in events), timeout=15)
    probe.mark()
    return probe


@pytest.fixture
def probe(desktop: VirtualDesktop, tmp_path: Path) -> Probe:
    """The probe window on the test's desktop."""
    return start_probe(desktop, tmp_path / "events.jsonl")
