"""The platform seam: a second backend, registered from here, serves every platform need of the agent.

The double records what it is asked to do. Screenshots still come from a real Xvfb (capture is
vision's, not the backend's), so its desktop names that display.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actions.keys import resolve_key
from actions.platform import (
    backend_name,
    focused_window,
    get_backend,
    open_desktop,
    open_executor,
    open_listener,
    register_backend,
    virtual_desktop,
)
from actions.platform.base import DesktopError, KeyInfo, RawEvent, Sink, WindowInfo
from actions.vocabulary import parse_action
from vision.geometry import Size


class FakeInput:
    """Records every input call."""

    spare_keycodes = 4

    def __init__(self, display: str | None) -> None:
        self.display, self.calls, self.closed = display, [], False
        self._pointer = (0, 0)

    def move(self, x: int, y: int) -> None:
        self.calls.append(("move", x, y))
        self._pointer = (x, y)

    def button(self, number: int, down: bool) -> None:
        self.calls.append(("button", number, down))

    def scroll(self, direction: str, clicks: int = 1) -> None:
        self.calls.append(("scroll", direction, clicks))

    def key(self, keysym: int, down: bool) -> None:
        self.calls.append(("key", keysym, down))

    def type_chunk(self, text: str, stop: threading.Event | None = None) -> None:
        self.calls.append(("type", text))

    def position(self) -> tuple[int, int]:
        return self._pointer

    def held(self) -> dict[str, list[int]]:
        return {"keys": [], "buttons": []}

    def release_all(self, keep_buttons: set[int] | frozenset[int] = frozenset()) -> None:
        pass

    def has_extension(self, name: str) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


class FakeDesktop:
    """A desktop on an existing display that starts nothing."""

    def __init__(self, display: str, kind: str) -> None:
        self.display, self.kind, self.stopped = display, kind, False

    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display}

    def launch(self, command: Any, cwd: Any = None, env: Any = None) -> Any:
        raise DesktopError("the fake desktop launches nothing")

    def size(self) -> Size:
        return Size(1280, 800)

    def start(self, timeout: float = 10.0) -> FakeDesktop:
        return self

    def stop(self) -> None:
        self.stopped = True

    def __enter__(self) -> FakeDesktop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeListener:
    """Delivers the events a test sends it (`send`) to its sink once started."""

    def __init__(self, display: str, sink: Sink, motion: bool) -> None:
        self.display, self.sink, self.motion = display, sink, motion
        self.size = Size(1280, 800)
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.stopped = False

    def start(self, timeout: float = 5.0) -> FakeListener:
        self.started.set()
        return self

    @property
    def alive(self) -> bool:
        return not self.stopped

    def stop(self) -> None:
        self.stopped = True

    def send(self, kind: str, **fields: Any) -> None:
        self.sink(RawEvent(kind, time.monotonic(), **fields))


class FakeBackend:
    """A platform backend double: desktops on one real display, input and listeners that record."""

    def __init__(self, display: str, kind: str = "host") -> None:
        self.display, self.kind = display, kind
        self.desktops: list[FakeDesktop] = []
        self.inputs: list[FakeInput] = []
        self.listeners: list[FakeListener] = []
        self.focus_asked: list[str] = []

    def open_desktop(self, spec: str, size: Size | None, window_manager: bool) -> FakeDesktop:
        self.desktops.append(FakeDesktop(self.display, self.kind))
        return self.desktops[-1]

    def virtual_desktop(self, size: Size | None, window_manager: bool) -> FakeDesktop:
        self.desktops.append(FakeDesktop(self.display, "virtual"))
        return self.desktops[-1]

    def open_input(self, display: str | None) -> FakeInput:
        self.inputs.append(FakeInput(display))
        return self.inputs[-1]

    def open_listener(self, display: str, sink: Sink, motion: bool = False) -> FakeListener:
        self.listeners.append(FakeListener(display, sink, motion))
        return self.listeners[-1]

    def focused_window(self, display: str) -> WindowInfo | None:
        self.focus_asked.append(display)
        return WindowInfo("fake", "Fake", "a fake window")


@pytest.fixture
def fake(desktop: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    """The double, registered as "fake" and chosen through $DESKPILOT_BACKEND."""
    backend = FakeBackend(desktop.display)
    register_backend("fake", backend)
    monkeypatch.setenv("DESKPILOT_BACKEND", "fake")
    monkeypatch.delenv("DISPLAY", raising=False)
    yield backend


def key_event(name: str, down: bool = True) -> dict[str, Any]:
    """The fields of a key event as a listener decodes it."""
    from actions.keys import MODIFIER_KEYSYMS, keysym_char

    keysym = resolve_key(name)[1]
    modifier = MODIFIER_KEYSYMS.get(keysym)
    return {"key": KeyInfo(0, keysym, keysym, None if modifier else keysym_char(keysym), modifier)}


def test_the_backend_is_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DESKPILOT_BACKEND", raising=False)
    assert backend_name() == "x11"
    assert get_backend().__name__ == "actions.platform.x11"
    monkeypatch.setenv("DESKPILOT_BACKEND", "no-such-backend")
    with pytest.raises(DesktopError, match="no-such-backend"):
        open_desktop()


def test_open_desktop_and_open_executor_go_through_the_registered_backend(fake: FakeBackend) -> None:
    desktop = open_desktop("auto")
    assert desktop is fake.desktops[0] and virtual_desktop().kind == "virtual"
    executor = open_executor(desktop.display)
    assert executor.backend is fake.inputs[0] and fake.inputs[0].display == desktop.display
    for action in ({"action": "left_click", "coordinate": [10, 20]},
                   {"action": "scroll", "coordinate": [30, 40], "scroll_direction": "down", "scroll_amount": 3},
                   {"action": "key", "text": "ctrl+s"}, {"action": "type", "text": "hi"}):
        assert executor.perform(parse_action(action)).error is None
    ctrl, s = resolve_key("ctrl")[1], resolve_key("s")[1]
    assert fake.inputs[0].calls == [
        ("move", 10, 20), ("button", 1, True), ("button", 1, False),
        ("move", 30, 40), ("scroll", "down", 3),
        ("key", ctrl, True), ("key", s, True), ("key", s, False), ("key", ctrl, False),
        ("type", "hi"),
    ]
    executor.close()
    assert fake.inputs[0].closed
    assert focused_window(desktop.display) == WindowInfo("fake", "Fake", "a fake window")
    listener = open_listener(desktop.display, lambda event: None, motion=True)
    assert listener is fake.listeners[0] and listener.motion


def test_a_run_uses_only_the_registered_backend(fake: FakeBackend, tmp_path: Path) -> None:
    from agent.models.scripted import ScriptedModel, computer
    from agent.session import RunOptions, run_goal

    model = ScriptedModel([[computer("left_click", coordinate=[100, 200])]])
    outcome = run_goal("click", RunOptions(out=tmp_path / "rec", workdir=tmp_path), model=model)
    assert outcome.result.status == "succeeded", outcome.result.message
    assert fake.desktops[0].stopped  # the session opened it, so it closed it
    calls = fake.inputs[0].calls
    assert calls[0][0] == "move" and calls[1:] == [("button", 1, True), ("button", 1, False)]
    # the kill switch listens on the (host) display, watching its corners too; the policy asked for the focus
    assert [(li.display, li.motion, li.stopped) for li in fake.listeners] == [(fake.display, True, True)]
    assert fake.focus_asked == [fake.display]


def test_the_kill_switch_hears_the_hotkey_and_the_corner_through_a_listener(fake: FakeBackend) -> None:
    from agent.safety.killswitch import KillSwitch

    reasons: list[str] = []
    with KillSwitch(reasons.append, hotkey_display="hotkey-display", failsafe_display="host-display"):
        hotkey, host = fake.listeners
        assert (hotkey.display, hotkey.motion, host.display, host.motion) == \
            ("hotkey-display", False, "host-display", True)
        hotkey.send("key_down", **key_event("k"))
        for name in ("ctrl", "alt", "shift"):
            hotkey.send("key_down", **key_event(name))
        hotkey.send("key_up", **key_event("alt"))
        hotkey.send("key_down", **key_event("k"))
        assert reasons == []  # alt was released
        hotkey.send("key_down", **key_event("Meta_L"))  # alt pressed with shift held
        hotkey.send("key_down", **key_event("k"))
        assert reasons == ["kill switch (Ctrl+Alt+Shift+K)"]
    assert hotkey.stopped and host.stopped

    reasons.clear()
    with KillSwitch(reasons.append, hotkey_display=None, failsafe_display="host-display"):
        corner = fake.listeners[-1]
        corner.send("motion", x=400, y=300)
        assert reasons == []
        corner.send("motion", x=1279, y=799)
        corner.send("motion", x=0, y=0)
        assert len(reasons) == 1 and "corner" in reasons[0]  # fired once


def test_record_listens_through_the_registered_backend(fake: FakeBackend, tmp_path: Path) -> None:
    from agent.recording.writer import Recording
    from agent.replay.recorder import record
    from agent.session import RunOptions

    stop, box, lines = threading.Event(), {}, []
    thread = threading.Thread(target=lambda: box.update(outcome=record(
        RunOptions(out=tmp_path), desktop=FakeDesktop(fake.display, "virtual"), stop=stop, print_fn=lines.append)))
    thread.start()
    deadline = time.monotonic() + 15
    while not (fake.listeners and fake.listeners[0].started.is_set()) and time.monotonic() < deadline:
        time.sleep(0.02)
    listener = fake.listeners[0]
    assert listener.display == fake.display and not listener.motion
    listener.send("button_down", x=50, y=60, button=1)
    listener.send("button_up", x=50, y=60, button=1)
    time.sleep(0.6)  # longer than a double click
    stop.set()
    thread.join(20)
    assert listener.stopped
    steps = Recording.load(box["outcome"].recording).steps
    assert [step["action"] for step in steps] == [{"action": "left_click", "coordinate": [50, 60]}]
    assert steps[0]["frame"]  # the frame ring still captures the real display
