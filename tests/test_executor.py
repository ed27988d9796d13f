"""Every action of the vocabulary lands on a real window on Xvfb: through the x11 backend at four
screen sizes, through the portable backend (pyautogui, pynput) at one (it drives one display per process).

Targets are chosen on the screen, converted to model space and mapped back, as a model's
coordinates are; the probe window's received events must sit within one model pixel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.executor import Executor
from actions.platform import open_executor
from actions.platform.x11.desktop import VirtualDesktop
from actions.result import ToolError
from actions.vocabulary import parse_action
from agent.models.anthropic import image_size as claude_image_size
from tests.conftest import Probe
from tests.portable_display import Launched, shared_desktop
from vision.geometry import ScreenMap, Size

SIZES = [Size(1024, 768), Size(1280, 800), Size(1920, 1080), Size(2560, 1440)]
RIGS = [("x11", size) for size in SIZES] + [("portable", Size(1280, 800))]


class Rig:
    """A desktop with the probe window, an executor through `backend` and the Claude mapping for its size."""

    def __init__(self, backend: str, size: Size, tmp: Path) -> None:
        self.backend = backend
        self.owned = backend == "x11"  # the portable backend's display is shared by the whole test process
        self.desktop = VirtualDesktop(size).start() if self.owned else shared_desktop()
        self.launched = Launched(self.desktop)
        self.probe: Probe = self.launched.probe(tmp / "events.jsonl")
        self.executor: Executor = open_executor(self.desktop.display, backend)
        self.map = ScreenMap(self.executor.screen.size, claude_image_size(self.executor.screen.size))

    def model_point(self, fx: float, fy: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """A screen target at a fraction of the screen, and its model-space coordinate."""
        target = (int(fx * self.map.screen.width), int(fy * self.map.screen.height))
        return target, self.map.to_model(*target)

    def act(self, data: dict, model_space: bool = True, mark: bool = True) -> object:
        """Validate like a model's tool call, map to the screen and perform."""
        if model_space:
            parse_action(data, self.map.model, "model image")  # valid as the model sent it
            data = dict(data)
            for key in ("coordinate", "start_coordinate"):
                if key in data:
                    data[key] = list(self.map.to_screen(*data[key]))
        if mark:
            self.probe.mark()
        result = self.executor.perform(parse_action(data, self.map.screen))
        assert result.ok, result.error
        return result

    def close(self) -> None:
        self.executor.close()
        self.launched.end()
        if self.owned:
            self.desktop.stop()


@pytest.fixture(scope="module", params=RIGS, ids=[f"{backend}-{size}" for backend, size in RIGS])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    backend, size = request.param
    rig = Rig(backend, size, tmp_path_factory.mktemp(f"{backend}-{size}"))
    yield rig
    rig.close()


def near(event: dict, target: tuple[int, int], mapping: ScreenMap) -> bool:
    return abs(event["x"] - target[0]) <= mapping.ratio_x and abs(event["y"] - target[1]) <= mapping.ratio_y


def presses(events: list[dict], button: int | None = None) -> list[dict]:
    return [e for e in events if e["type"] == "press" and (button is None or e["button"] == button)]


@pytest.mark.parametrize("action,button,count", [
    ("left_click", 1, 1), ("right_click", 3, 1), ("middle_click", 2, 1),
    ("double_click", 1, 2), ("triple_click", 1, 3),
])
def test_clicks_land_on_target(rig: Rig, action: str, button: int, count: int) -> None:
    target, model = rig.model_point(0.37, 0.61)
    rig.act({"action": action, "coordinate": list(model)})
    events = rig.probe.wait_for(lambda ev: len([e for e in ev if e["type"] == "release"]) >= count)
    pressed = presses(events)
    assert [e["button"] for e in pressed] == [button] * count
    assert all(near(e, target, rig.map) for e in pressed)


def test_modifier_click(rig: Rig) -> None:
    target, model = rig.model_point(0.5, 0.5)
    rig.act({"action": "left_click", "coordinate": list(model), "text": "shift+ctrl"})
    events = rig.probe.wait_for(lambda ev: any(e["type"] == "release" for e in ev))
    press = presses(events, 1)[0]
    assert press["state"] & 0x1 and press["state"] & 0x4  # ShiftMask and ControlMask held
    assert near(press, target, rig.map)


def test_mouse_move_and_cursor_position(rig: Rig) -> None:
    target, model = rig.model_point(0.8, 0.2)
    rig.act({"action": "mouse_move", "coordinate": list(model)})
    events = rig.probe.wait_for(lambda ev: any(e["type"] == "motion" for e in ev))
    assert near(events[-1], target, rig.map)
    result = rig.act({"action": "cursor_position"}, model_space=False)
    x, y = (int(part.split("=")[1]) for part in result.output.split(","))
    assert abs(x - target[0]) <= rig.map.ratio_x and abs(y - target[1]) <= rig.map.ratio_y


def test_drag_from_start_to_end(rig: Rig) -> None:
    start, model_start = rig.model_point(0.2, 0.3)
    end, model_end = rig.model_point(0.6, 0.7)
    rig.act({"action": "left_click_drag", "start_coordinate": list(model_start),
             "coordinate": list(model_end)})
    events = rig.probe.wait_for(lambda ev: any(e["type"] == "release" for e in ev))
    press = presses(events, 1)[0]
    release = [e for e in events if e["type"] == "release"][0]
    assert near(press, start, rig.map) and near(release, end, rig.map)
    dragged = [e for e in events if e["type"] == "motion" and e["state"] & 0x100]  # Button1Mask
    assert len(dragged) >= 5


def test_mouse_down_move_up(rig: Rig) -> None:
    start, model_start = rig.model_point(0.1, 0.1)
    end, model_end = rig.model_point(0.3, 0.4)
    rig.act({"action": "left_mouse_down", "coordinate": list(model_start)})
    assert rig.executor.backend.held()["buttons"] == [1]  # held across actions on purpose
    rig.act({"action": "mouse_move", "coordinate": list(model_end)}, mark=False)
    rig.act({"action": "left_mouse_up"}, mark=False)
    events = rig.probe.wait_for(lambda ev: any(e["type"] == "release" for e in ev))
    assert near(presses(events, 1)[0], start, rig.map)
    assert near([e for e in events if e["type"] == "release"][0], end, rig.map)
    assert rig.executor.backend.held() == {"keys": [], "buttons": []}


@pytest.mark.parametrize("direction", ["up", "down", "left", "right"])
def test_scroll_directions(rig: Rig, direction: str) -> None:
    target, model = rig.model_point(0.5, 0.4)
    rig.act({"action": "scroll", "coordinate": list(model), "scroll_direction": direction,
             "scroll_amount": 3})
    events = rig.probe.wait_for(lambda ev: len([e for e in ev if e.get("scroll")]) >= 3)
    scrolls = [e for e in events if e.get("scroll")]
    assert [e["scroll"] for e in scrolls] == [direction] * 3
    assert all(near(e, target, rig.map) for e in scrolls)


def test_scroll_with_modifier(rig: Rig) -> None:
    _, model = rig.model_point(0.5, 0.4)
    rig.act({"action": "scroll", "coordinate": list(model), "scroll_direction": "down",
             "scroll_amount": 1, "text": "ctrl"})
    events = rig.probe.wait_for(lambda ev: any(e.get("scroll") for e in ev))
    assert [e for e in events if e.get("scroll")][0]["state"] & 0x4


def test_screenshot_and_zoom_at_full_resolution(rig: Rig) -> None:
    shot = rig.act({"action": "screenshot"}, model_space=False)
    assert shot.image.size == rig.map.screen
    region = rig.map.region_to_screen((10, 20, 110, 70))
    zoom = rig.act({"action": "zoom", "region": list(region)}, model_space=False)
    assert zoom.image.size == Size(region[2] - region[0], region[3] - region[1])
    assert zoom.image.size.width >= 100  # cut from the full frame, not the downscaled image
    assert zoom.image.origin == (region[0], region[1])


def _typed(rig: Rig) -> str:
    texts = [e["value"] for e in rig.probe.events() if e["type"] == "text"]
    return texts[-1] if texts else ""


def _clear(rig: Rig) -> None:
    rig.act({"action": "key", "text": "ctrl+a BackSpace"}, model_space=False)
    # Tk's Text binds ctrl+a to line start; select all by its own binding instead
    rig.executor.perform(parse_action({"action": "key", "text": "ctrl+slash Delete"}))
    time.sleep(0.1)


def test_unicode_typing_arrives_intact(rig: Rig) -> None:
    _clear(rig)
    text = "héllo ß → 日本 Ωμέγα ✓ ñandú €5 — ok!\nsecond line\tTAB"
    rig.act({"action": "type", "text": text}, model_space=False)
    deadline = time.monotonic() + 5
    while _typed(rig) != text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _typed(rig) == text


def test_long_text_is_typed_in_chunks(rig: Rig) -> None:
    _clear(rig)
    # more distinct non-ASCII characters than the keyboard map has spare keycodes
    text = "".join(chr(c) for c in range(0x3b1, 0x3c9)) + " " + "abc" * 120
    rig.act({"action": "type", "text": text}, model_space=False)
    deadline = time.monotonic() + 10
    while _typed(rig) != text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _typed(rig) == text


@pytest.mark.parametrize("combo,keysyms,mask", [
    ("ctrl+s", ["Control_L", "s"], 0x4),
    ("shift+ctrl+t", ["Shift_L", "Control_L", "T"], 0x5),
    ("alt+Tab", ["Alt_L", "Tab"], 0x8),
    ("super", ["Super_L"], 0),
    ("KP_Enter", ["KP_Enter"], 0),
    ("F5", ["F5"], 0),
    ("Return", ["Return"], 0),
])
def test_key_combinations(rig: Rig, combo: str, keysyms: list[str], mask: int) -> None:
    rig.act({"action": "key", "text": combo}, model_space=False)
    events = rig.probe.wait_for(lambda ev: len([e for e in ev if e["type"] == "keyrelease"]) >= len(keysyms))
    pressed = [e for e in events if e["type"] == "keypress"]
    assert [e["keysym"] for e in pressed] == keysyms
    assert pressed[-1]["state"] & mask == mask
    assert rig.executor.backend.held() == {"keys": [], "buttons": []}


def test_key_repeat(rig: Rig) -> None:
    rig.act({"action": "key", "text": "Right", "repeat": 4}, model_space=False)
    events = rig.probe.wait_for(lambda ev: len([e for e in ev if e["type"] == "keyrelease"]) >= 4)
    assert [e["keysym"] for e in events if e["type"] == "keypress"] == ["Right"] * 4


def test_hold_key_and_wait(rig: Rig) -> None:
    started = time.monotonic()
    rig.act({"action": "hold_key", "text": "shift", "duration": 0.4}, model_space=False)
    assert time.monotonic() - started >= 0.4
    events = rig.probe.wait_for(lambda ev: any(e["type"] == "keyrelease" for e in ev))
    assert [e["keysym"] for e in events if e["type"] in ("keypress", "keyrelease")][-1] == "Shift_L"
    started = time.monotonic()
    rig.act({"action": "wait", "duration": 0.3}, model_space=False)
    assert 0.3 <= time.monotonic() - started < 2.0



def test_held_keys_and_buttons_are_released_when_an_action_fails(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_wheel(direction: str, clicks: int = 1) -> None:
        raise ToolError("the wheel broke")

    _, model = rig.model_point(0.5, 0.5)
    monkeypatch.setattr(rig.executor.backend, "scroll", broken_wheel)  # fails while ctrl and shift are held
    rig.probe.mark()
    result = rig.executor.perform(parse_action({"action": "scroll", "coordinate": list(rig.map.to_screen(*model)),
                                                "scroll_direction": "down", "scroll_amount": 1, "text": "ctrl+shift"}))
    assert result.error == "the wheel broke"
    events = rig.probe.wait_for(lambda ev: sum(e["type"] == "keyrelease" for e in ev) >= 2)
    keys = [(e["type"], e["keysym"]) for e in events if e["type"] in ("keypress", "keyrelease")]
    assert keys == [("keypress", "Control_L"), ("keypress", "Shift_L"), ("keyrelease", "Shift_L"),
                    ("keyrelease", "Control_L")]
    assert rig.executor.backend.held() == {"keys": [], "buttons": []}


def test_a_cancelled_hold_releases_its_keys(rig: Rig) -> None:
    import threading

    rig.probe.mark()
    threading.Timer(0.3, rig.executor.cancel).start()
    started = time.monotonic()
    result = rig.executor.perform(parse_action({"action": "hold_key", "text": "alt+shift", "duration": 10}))
    assert "interrupted" in (result.error or "") and time.monotonic() - started < 2
    events = rig.probe.wait_for(lambda ev: sum(e["type"] == "keyrelease" for e in ev) >= 2)
    assert [e["keysym"] for e in events if e["type"] == "keyrelease"] == ["Shift_L", "Alt_L"]
    assert rig.executor.backend.held() == {"keys": [], "buttons": []}


@pytest.mark.parametrize("data,problem", [
    ({"action": "left_click", "coordinate": [5000, 10]}, "(5000, 10) is outside the"),
    ({"action": "left_click_drag", "start_coordinate": [10, 10], "coordinate": [10, 9000]}, "(10, 9000) is outside"),
    ({"action": "scroll", "coordinate": [3000, 5], "scroll_direction": "up", "scroll_amount": 2}, "(3000, 5) is"),
])
def test_invalid_actions_execute_nothing(rig: Rig, data: dict, problem: str) -> None:
    rig.probe.mark()
    before = rig.executor.backend.position()
    result = rig.executor.perform(parse_action(data))  # valid in shape, outside this screen
    assert result.error is not None and problem in result.error
    time.sleep(0.3)
    assert [e for e in rig.probe.new_events() if e["type"] != "text"] == []
    assert rig.executor.backend.position() == before
