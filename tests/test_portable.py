"""The portable backend's own parts: HiDPI mapping, key names, pynput's events, OS checks, selection, the CLI.

What cannot run here (a Retina Mac, Windows, their permission APIs) runs against doubles of
pyautogui, pynput and the OS libraries; the rest runs on a real Xvfb. The executor, record and
kill switch tests run through this backend too (test_executor, test_record, test_killswitch).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from actions.keys import resolve_key
from actions.platform import backend_name, default_backend, open_executor
from actions.platform.base import DesktopError, RawEvent
from actions.platform.portable import permissions
from actions.platform.portable.host import open_host
from actions.platform.portable.input import PortableInput, measure_scale
from actions.platform.portable.keynames import gui_name, pynput_name
from actions.platform.portable.listener import PynputListener, key_info
from actions.result import ToolError
from agent.recording.writer import Recording
from tests.portable_display import Launched, shared_desktop
from vision.geometry import Size

ROOT = Path(__file__).resolve().parent.parent
RETINA = Size(2880, 1800)  # pixels of a 1440x900-point screen at scale 2


# ---------------------------------------------------------------------------------------------
# doubles of pyautogui and pynput


class FakeGui:
    """pyautogui's functions the backend uses, on a screen of `points`; records every call."""

    def __init__(self, points: tuple[int, int] = (1440, 900), keys: frozenset[str] = frozenset()) -> None:
        self.points, self.keys, self.calls, self.at = points, keys, [], (0, 0)
        record = self.calls.append
        self.platformModule = SimpleNamespace(  # pyautogui's platform functions
            _dragTo=lambda x, y, button: record(("drag", x, y, button)),
            _moveTo=lambda x, y: (record(("move", x, y)), setattr(self, "at", (x, y))),
            _mouseDown=lambda x, y, button: record(("down", x, y, button)),
            _mouseUp=lambda x, y, button: record(("up", x, y, button)))

    def size(self) -> tuple[int, int]:
        return self.points

    def position(self) -> tuple[int, int]:
        return self.at

    def vscroll(self, clicks: int, x: Any = None, y: Any = None, _pause: bool = True) -> None:
        self.calls.append(("vscroll", clicks, x, y))

    def hscroll(self, clicks: int, x: Any = None, y: Any = None, _pause: bool = True) -> None:
        self.calls.append(("hscroll", clicks, x, y))

    def isValidKey(self, name: str) -> bool:  # noqa: N802 - pyautogui's names
        return name in self.keys or (len(name) == 1 and name.isascii())

    def keyDown(self, name: str, _pause: bool = True) -> None:  # noqa: N802
        self.calls.append(("keydown", name))

    def keyUp(self, name: str, _pause: bool = True) -> None:  # noqa: N802
        self.calls.append(("keyup", name))


class FakeController:
    """pynput's keyboard controller: records presses and text."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def press(self, key: Any) -> None:
        self.calls.append(("press", key))

    def release(self, key: Any) -> None:
        self.calls.append(("release", key))

    def type(self, text: str) -> None:
        self.calls.append(("type", text))


class FakeKeyCode:
    """pynput's KeyCode: a character or a virtual key code."""

    def __init__(self, char: str | None = None, vk: int | None = None, is_dead: bool = False,
                 combining: str | None = None) -> None:
        self.char, self.vk, self.is_dead, self.combining = char, vk, is_dead, combining

    @classmethod
    def from_char(cls, char: str) -> FakeKeyCode:
        return cls(char=char)

    @classmethod
    def from_vk(cls, vk: int) -> FakeKeyCode:
        return cls(vk=vk)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeKeyCode) and (self.char, self.vk) == (other.char, other.vk)


class FakeKey:
    """A member of pynput's Key enum (its value a KeyCode)."""

    def __init__(self, name: str, vk: int | None = None) -> None:
        self.name, self.value = name, FakeKeyCode(vk=vk)


KEYBOARD = SimpleNamespace(Key=SimpleNamespace(alt_gr=FakeKey("alt_gr"), enter=FakeKey("enter"),
                                               media_volume_mute=FakeKey("media_volume_mute")),
                           KeyCode=FakeKeyCode)


def portable_input(platform: str = "darwin", points: tuple[int, int] = (1440, 900), pixels: Size = RETINA,
                   keys: frozenset[str] = frozenset()) -> tuple[PortableInput, FakeGui, FakeController]:
    gui, controller = FakeGui(points, keys), FakeController()
    typist = SimpleNamespace(type=lambda text: controller.type(text), spare=10**6, close=lambda: None)
    backend = PortableInput(gui, KEYBOARD, typist, pixels, platform=platform)
    backend._controller = controller  # what `_pynput()` would make
    return backend, gui, controller


# ---------------------------------------------------------------------------------------------
# HiDPI: screen pixels (mss, the executor) and points (pyautogui, pynput) through ScreenMap


def test_the_scale_is_pixels_per_point_and_shapes_must_agree() -> None:
    assert measure_scale(RETINA, (1440, 900)) == 2.0
    assert measure_scale(Size(1280, 800), (1280, 800)) == 1.0
    assert measure_scale(Size(3024, 1964), (1512, 982)) == 2.0
    with pytest.raises(ToolError, match="shapes differ"):
        measure_scale(Size(3840, 1080), (1920, 1080))


def test_on_a_2x_screen_pixels_become_points_and_back() -> None:
    backend, gui, _ = portable_input()
    assert backend.scale == 2.0
    backend.move(1000, 600)
    backend.button(1, True)
    backend.button(1, False)
    assert gui.calls == [("move", 500, 300), ("down", 500, 300, "left"), ("up", 500, 300, "left")]
    gui.at = (720, 450)  # where pyautogui says the pointer is, in points
    assert backend.position() == (1440, 900)
    backend.move(2879, 1799)  # the last pixel is inside the last point
    assert gui.calls[-1] == ("move", 1439, 899)


def test_scrolls_turn_the_right_wheel_at_the_pointer_in_points() -> None:
    backend, gui, _ = portable_input()
    backend.move(200, 100)
    for direction in ("up", "down", "left", "right"):
        backend.scroll(direction, 3)
    assert gui.calls[1:] == [("vscroll", 3, 100, 50), ("vscroll", -3, 100, 50), ("hscroll", -3, 100, 50),
                             ("hscroll", 3, 100, 50)]
    backend.button(5, True)  # wheel buttons, as X numbers them, scroll a notch
    backend.button(5, False)
    assert gui.calls[-1] == ("vscroll", -1, 100, 50)
    with pytest.raises(ToolError, match="no mouse button 9"):
        backend.button(9, True)


def test_drags_on_macos_send_drag_events_while_a_button_is_held() -> None:
    backend, gui, _ = portable_input("darwin")
    backend.move(100, 100)
    backend.button(1, True)
    backend.move(300, 200)
    backend.button(1, False)
    assert gui.calls == [("move", 50, 50), ("down", 50, 50, "left"), ("drag", 150, 100, "left"),
                         ("up", 150, 100, "left")]
    backend, gui, _ = portable_input("win32", points=(1920, 1080), pixels=Size(1920, 1080))
    backend.button(1, True)
    backend.move(300, 200)  # elsewhere a move with the button held is a drag
    assert gui.calls[-1] == ("move", 300, 200)


def test_held_keys_and_buttons_are_released_in_reverse_and_the_pointer_is_asked_again() -> None:
    backend, gui, controller = portable_input("win32", points=(1920, 1080), pixels=Size(1920, 1080),
                                              keys=frozenset({"ctrlleft", "shiftleft"}))
    for name in ("ctrl", "shift", "a"):
        backend.key(resolve_key(name)[1], True)
    backend.move(10, 20)
    backend.button(3, True)
    assert backend.held() == {"keys": [0xFFE3, 0xFFE1, 0x61], "buttons": [3]}
    gui.calls.clear()
    gui.at = (30, 40)  # the person moved the mouse meanwhile
    backend.release_all()
    assert gui.calls == [("keyup", "a"), ("keyup", "shiftleft"), ("keyup", "ctrlleft"), ("up", 30, 40, "right")]
    assert backend.held() == {"keys": [], "buttons": []}
    gui.at = (50, 60)
    backend.button(1, True)  # after release_all the next press asks pyautogui where the pointer is
    assert gui.calls[-1] == ("down", 50, 60, "left")
    backend.release_all(keep_buttons={1})
    assert backend.held()["buttons"] == [1]


def test_keys_pyautogui_lacks_go_through_pynput_or_are_refused_by_name() -> None:
    backend, gui, controller = portable_input("win32", points=(1920, 1080), pixels=Size(1920, 1080),
                                              keys=frozenset({"enter", "f5", "winleft"}))
    for name in ("Return", "F5", "super", "altgr", "XF86AudioMute", "é"):
        backend.key(resolve_key(name)[1], True)
    assert [c for c in gui.calls] == [("keydown", "enter"), ("keydown", "f5"), ("keydown", "winleft")]
    pressed = [c[1] for c in controller.calls]
    assert [getattr(k, "name", None) or k.char for k in pressed] == ["alt_gr", "media_volume_mute", "é"]
    with pytest.raises(ToolError, match="cannot press 'Hyper_L'"):
        backend.key(resolve_key("Hyper_L")[1], True)
    backend.release_all()
    assert [c[0] for c in controller.calls[-3:]] == ["release"] * 3


def test_key_names_per_platform() -> None:
    super_l, alt_l, kp_enter = (resolve_key(n)[1] for n in ("Super_L", "Alt_L", "KP_Enter"))
    assert (gui_name(super_l, "darwin"), gui_name(super_l, "linux"), gui_name(super_l, "win32")) == \
        ("command", "winleft", "winleft")
    assert (gui_name(alt_l, "darwin"), gui_name(alt_l, "win32")) == ("optionleft", "altleft")
    assert [gui_name(resolve_key(n)[1], "linux") for n in ("F12", "Page_Up", "KP_7", "a", "T", "+", "Escape")] == \
        ["f12", "pageup", "num7", "a", "T", "+", "esc"]
    assert gui_name(kp_enter, "linux") is None and pynput_name(kp_enter) == "enter"


# ---------------------------------------------------------------------------------------------
# pynput's events as RawEvents


def test_pynput_keys_become_keysyms_characters_and_modifiers() -> None:
    info = key_info(FakeKey("cmd"), x_keysyms=False, held=frozenset())
    assert (info.keysym, info.modifier, info.char) == (0xFFEB, "super", None)
    info = key_info(FakeKeyCode(char="\x01"), x_keysyms=False, held=frozenset({"ctrl"}))  # Windows' ctrl+a
    assert (info.keysym, info.char, info.base) == (0x61, "a", 0x61)
    info = key_info(FakeKeyCode(char="É"), x_keysyms=False, held=frozenset({"shift"}))
    assert (info.char, info.base) == ("É", 0xE9)  # named by its lower case, as X does
    info = key_info(FakeKeyCode(char="Ω", vk=0x7D9), x_keysyms=True, held=frozenset())  # X: vk is the keysym
    assert (info.keysym, info.char) == (0x7D9, "Ω")
    info = key_info(FakeKeyCode(vk=0xFE51, is_dead=True), x_keysyms=True, held=frozenset())
    assert info.dead == "\u0301" and info.char is None
    assert key_info(None, x_keysyms=True, held=frozenset()) is None


class FakeListener:
    """pynput's Listener: keeps its callbacks; a thread that is never started."""

    made: list[FakeListener] = []

    def __init__(self, **callbacks: Any) -> None:
        self.callbacks = callbacks
        FakeListener.made.append(self)


def test_the_listener_reports_pixels_held_modifiers_and_wheel_notches_on_a_2x_screen() -> None:
    events: list[RawEvent] = []
    FakeListener.made.clear()
    fake = SimpleNamespace(Listener=FakeListener)
    listener = PynputListener(None, events.append, False, keyboard=fake, mouse=fake, size=RETINA, scale=2.0)
    keyboard, mouse = FakeListener.made
    keyboard.callbacks["on_press"](FakeKey("ctrl_l"))
    mouse.callbacks["on_click"](500, 300, SimpleNamespace(name="left"), True)
    mouse.callbacks["on_move"](510, 305)  # a drag: sent while a button is held
    mouse.callbacks["on_click"](510, 305, SimpleNamespace(name="left"), False)
    mouse.callbacks["on_move"](600, 400)  # no button held: not sent
    keyboard.callbacks["on_release"](FakeKey("ctrl_l"))
    mouse.callbacks["on_scroll"](100, 100, 0, -2)
    mouse.callbacks["on_click"](1439.5, 899.5, SimpleNamespace(name="x2"), True)  # back/forward: not a number
    kinds = [(e.kind, e.x, e.y, e.button, sorted(e.mods)) for e in events]
    assert kinds == [
        ("key_down", 0, 0, 0, []),
        ("button_down", 1000, 600, 1, ["ctrl"]),
        ("motion", 1020, 610, 0, []),
        ("button_up", 1020, 610, 1, ["ctrl"]),
        ("key_up", 1200, 800, 0, ["ctrl"]),
        ("button_down", 200, 200, 5, []), ("button_up", 200, 200, 5, []),
        ("button_down", 200, 200, 5, []), ("button_up", 200, 200, 5, []),
    ]
    assert listener.error is None


# ---------------------------------------------------------------------------------------------
# what doctor checks outside Linux, with doubles of the OS libraries


class FakeLibrary:
    """A ctypes library whose functions return fixed results (absent ones raise AttributeError)."""

    def __init__(self, **results: Any) -> None:
        self._results = results

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._results:
            raise AttributeError(name)
        result = self._results[name]

        def function(*args: Any) -> Any:
            return result(*args) if callable(result) else result

        return function


def test_macos_permissions_name_the_setting_that_fixes_them() -> None:
    libraries = {permissions._APP_SERVICES: FakeLibrary(AXIsProcessTrusted=False),
                 permissions._IOKIT: FakeLibrary(IOHIDCheckAccess=1),
                 permissions._CORE_GRAPHICS: FakeLibrary(CGPreflightScreenCaptureAccess=True)}
    found = permissions.macos_checks(SimpleNamespace(LoadLibrary=libraries.__getitem__))
    assert [(f.name, f.ok, f.required) for f in found] == [("accessibility", False, True),
                                                          ("input monitoring", False, False),
                                                          ("screen recording", True, True)]
    assert "Privacy & Security > Accessibility" in found[0].fix and "Input Monitoring" in found[1].fix

    old_macos = {permissions._APP_SERVICES: FakeLibrary(AXIsProcessTrusted=True),
                 permissions._IOKIT: FakeLibrary(), permissions._CORE_GRAPHICS: FakeLibrary()}
    found = permissions.macos_checks(SimpleNamespace(LoadLibrary=old_macos.__getitem__))
    assert [(f.name, f.ok) for f in found] == [("accessibility", True)]  # the others do not exist there


def test_windows_dpi_awareness() -> None:
    def awareness(value: int) -> Any:
        def get(_process: Any, out: Any) -> int:
            ctypes.cast(out, ctypes.POINTER(ctypes.c_int)).contents.value = value
            return 0

        return SimpleNamespace(shcore=FakeLibrary(GetProcessDpiAwareness=get))

    unaware = permissions.windows_checks(awareness(0))[0]
    assert not unaware.ok and "DPI-unaware" in unaware.detail and "Override high DPI" in unaware.fix
    assert permissions.windows_checks(awareness(2))[0].detail == "per-monitor DPI-aware"
    before_8_1 = SimpleNamespace(shcore=FakeLibrary(), user32=FakeLibrary(IsProcessDPIAware=1))
    assert permissions.windows_checks(before_8_1)[0].ok


def test_the_xlib_that_pyautogui_may_install_over_python_xlib_is_caught() -> None:
    assert permissions.xlib_checks((0, 33))[0].ok
    bad = permissions.xlib_checks((0, 15))[0]
    assert not bad.ok and "force-reinstall" in bad.fix


def test_outside_x_the_desktop_is_the_screen_itself() -> None:
    assert open_host("auto", None).kind == "host" and open_host("host", None).display == ""
    with pytest.raises(DesktopError, match="need Xvfb"):
        open_host("virtual", None)
    with pytest.raises(DesktopError, match=":3 is an X display"):
        open_host(":3", None)
    with pytest.raises(ValueError, match="--size"):
        open_host("host", Size(800, 600))


# ---------------------------------------------------------------------------------------------
# choosing the backend


def test_the_default_is_x11_where_an_x_server_can_be_had_else_portable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DESKPILOT_BACKEND", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_backend() == "portable"
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr("shutil.which", lambda name: None)  # no Xvfb, no $DISPLAY
    assert default_backend() == "portable"
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/Xvfb")
    assert default_backend() == "x11"
    monkeypatch.setenv("DESKPILOT_BACKEND", "portable")
    assert backend_name() == "portable" and backend_name("x11") == "x11"


# ---------------------------------------------------------------------------------------------
# on a real display


def test_one_process_drives_one_x_display_with_the_portable_backend(desktop) -> None:
    open_executor(shared_desktop().display, "portable").close()  # pyautogui is now connected to that display
    with pytest.raises(ToolError, match="one X display per process"):
        open_executor(desktop.display, "portable")
    open_executor(desktop.display, "x11").close()  # the x11 backend has no such limit


def test_pyautogui_fail_safe_and_pause_are_off(tmp_path: Path) -> None:
    from actions.vocabulary import parse_action

    desktop = shared_desktop()
    launched = Launched(desktop)
    probe = launched.probe(tmp_path / "events.jsonl")
    executor = open_executor(desktop.display, "portable")
    try:
        import pyautogui  # loaded by the backend, for its display

        assert pyautogui.FAILSAFE is False and pyautogui.PAUSE == 0
        for data in ({"action": "mouse_move", "coordinate": [0, 0]}, {"action": "key", "text": "a"},
                     {"action": "left_click", "coordinate": [1279, 799]}, {"action": "key", "text": "b"}):
            result = executor.perform(parse_action(data))  # in a corner pyautogui's fail-safe would raise
            assert result.error is None, result.error
        probe.wait_for(lambda ev: any(e["type"] == "keypress" and e["keysym"] == "b" for e in ev))
    finally:
        executor.close()
        launched.end()


def test_typing_gives_the_borrowed_keycodes_back(tmp_path: Path) -> None:
    from Xlib import display as xdisplay

    desktop = shared_desktop()
    launched = Launched(desktop)
    probe = launched.probe(tmp_path / "events.jsonl")
    conn = xdisplay.Display(desktop.display)
    info = conn.display.info

    def keymap() -> list[list[int]]:
        return [list(r) for r in conn.get_keyboard_mapping(info.min_keycode, info.max_keycode - info.min_keycode + 1)]

    try:
        before = keymap()
        executor = open_executor(desktop.display, "portable")
        from actions.vocabulary import parse_action

        assert executor.perform(parse_action({"action": "type", "text": "Ωμέγα ✓ 日本"})).ok
        probe.wait_for(lambda ev: any(e["type"] == "text" and e["value"] == "Ωμέγα ✓ 日本" for e in ev))
        assert keymap() != before  # lent while typing
        executor.close()
        assert keymap() == before
    finally:
        conn.close()
        launched.end()


def test_typing_shares_the_spare_keycodes_with_the_x11_backend(tmp_path: Path) -> None:
    from actions.vocabulary import parse_action

    desktop = shared_desktop()
    launched = Launched(desktop)
    probe = launched.probe(tmp_path / "events.jsonl")
    x11, portable = open_executor(desktop.display, "x11"), open_executor(desktop.display, "portable")
    try:  # the x11 backend re-maps spare keycodes the portable one lent: the portable one types in parts
        typed = ""
        for n in range(4):
            for executor in (x11, portable) if n % 2 else (portable, x11):
                text = "αβγδεζηθικλμ-" if executor is x11 else "νξοπρστυφχψω+"
                assert executor.perform(parse_action({"action": "type", "text": text})).ok
                typed += text
        probe.wait_for(lambda ev: any(e["type"] == "text" and e["value"] == typed for e in ev), timeout=10)
    finally:
        portable.close()
        x11.close()
        launched.end()


ALPHABET = "abcdefghijklmnopqrstuvwxyz"


class StopAfter(threading.Event):
    """An event that becomes set on the `calls`-th look at it: a kill switch that fires mid-chunk, on cue."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def is_set(self) -> bool:
        self.calls -= 1
        return self.calls < 0 or super().is_set()


def test_typing_stops_between_keys_once_stopped(tmp_path: Path) -> None:
    desktop = shared_desktop()
    launched = Launched(desktop)
    probe = launched.probe(tmp_path / "events.jsonl")
    executor = open_executor(desktop.display, "portable")
    try:  # pynput types key by key: a stop set mid-chunk ends the chunk there, not at its end
        executor.backend.type_chunk(ALPHABET, StopAfter(5))
        executor.backend.type_chunk("ABC")
        probe.wait_for(lambda ev: any(e["type"] == "text" and e["value"].endswith("C") for e in ev), timeout=10)
        first = [e for e in probe.events() if e["type"] == "text"][-1]["value"].removesuffix("ABC")
        assert 1 <= len(first) <= 5 and ALPHABET.startswith(first)  # stopped at the fifth look, or before
    finally:
        executor.close()
        launched.end()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_act_with_backend_portable_acts_and_says_so_in_the_recording(desktop, tmp_path: Path) -> None:
    launched = Launched(desktop)
    probe = launched.probe(tmp_path / "events.jsonl")
    result = run_cli("act", '{"action":"left_click","coordinate":[200,150]}', '{"action":"type","text":"héllo"}',
                     "--display", desktop.display, "--backend", "portable", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    recording = Recording.load(result.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    assert recording.meta["status"] == "succeeded"
    events = probe.wait_for(lambda ev: any(e["type"] == "text" and e["value"].endswith("héllo") for e in ev))
    press = next(e for e in events if e["type"] == "press")
    assert (press["x"], press["y"], press["button"]) == (200, 150, 1)
    launched.end()


def test_a_bad_backend_is_refused_before_anything_runs(tmp_path: Path) -> None:
    result = run_cli("act", '{"action":"left_click","coordinate":[1,1]}', "--backend", "xorg", "--out", str(tmp_path))
    assert result.returncode == 2 and "invalid backend 'xorg': use portable or x11" in result.stderr
    assert not any(tmp_path.iterdir())
    result = run_cli("act", '{"action":"left_click","coordinate":[1,1]}', "--display", "virtual", "--out",
                     str(tmp_path), env={"DESKPILOT_BACKEND": "xorg"})
    assert result.returncode == 4 and "unknown platform backend 'xorg'" in result.stderr
    assert not any(tmp_path.iterdir())


def test_doctor_reports_the_backend_pixels_and_points(tmp_path: Path) -> None:
    result = run_cli("doctor", "--display", "virtual", "--backend", "portable")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "portable (--backend)" in lines["backend"]
    assert "1280x800 points = 1280x800 pixels (scale 1)" in result.stdout
    assert "input injection  ok" in result.stdout and "portable pointer move verified" in result.stdout
    assert "kill switch      ok" in result.stdout
