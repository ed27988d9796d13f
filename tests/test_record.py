"""`deskpilot record`: the merge rules on synthetic events, and real sessions on Xvfb driven by xdotool,
heard through each platform backend's listener (x11: RECORD; portable: pynput)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from actions.platform.base import RawEvent
from actions.platform.x11.keymap import Keymap
from actions.vocabulary import parse_action
from agent.recording.writer import Recording
from agent.replay.merger import MASK, Merger
from agent.replay.recorder import injecting, install_executor_hook, record, was_injected
from agent.session import RunOptions
from tests.portable_display import BACKENDS, Where, where_for
from vision.capture import Screen
from vision.geometry import Size

ROOT = Path(__file__).resolve().parent.parent
DEMO_APP = ROOT / "examples" / "demo_app.py"

# ---------------------------------------------------------------------------------------------
# a small keyboard: keycode -> keysyms, and the modifier map, as an X server reports them

SHIFT, LOCK, CTRL, MOD1, MOD2, MOD4, MOD5 = 1, 2, 4, 8, 16, 64, 128
KC = {"a": 10, "shift": 11, "ctrl": 12, "alt": 13, "Return": 14, "BackSpace": 15, "Tab": 16, "s": 17, "p": 18,
      "super": 19, "dead_acute": 20, "e": 21, "kp1": 22, "Down": 23, "caps": 24, "numlock": 25, "level3": 26,
      "b": 27, "c": 28, "t": 29, "1": 30, "spare": 31}
ROWS = {
    10: [0x61, 0x41], 11: [0xFFE1], 12: [0xFFE3], 13: [0xFFE9, 0xFFE7], 14: [0xFF0D], 15: [0xFF08],
    16: [0xFF09, 0xFE20], 17: [0x73, 0x53], 18: [0x70, 0x50], 19: [0xFFEB], 20: [0xFE51], 21: [0x65, 0x45, 0, 0,
    0x20AC, 0xA2], 22: [0xFF9C, 0xFFB1], 23: [0xFF54], 24: [0xFFE5], 25: [0xFF7F], 26: [0xFE03], 27: [0x62, 0x42],
    28: [0x63, 0x43], 29: [0x74, 0x54], 30: [0x31, 0x21], 31: [],
}
MODMAP = [[11], [24], [12], [13], [25], [], [19], [26]]


def keymap() -> Keymap:
    return Keymap(8, [ROWS.get(code, []) for code in range(8, 40)], MODMAP)


class Session:
    """Builds RawEvents with a clock, as the listener would, and feeds a Merger."""

    def __init__(self) -> None:
        self.keymap = keymap()
        self.notices: list[str] = []
        self.merger = Merger(notice=self.notices.append)
        self.t = 0.0
        self.state = 0

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def _send(self, event: RawEvent) -> None:
        self.merger.feed(event)
        self.merger.tick(self.t)

    def key(self, name: str, down: bool = True) -> None:
        code = KC[name]
        info = self.keymap.decode(code, self.state)
        mods = self.keymap.modifiers(self.state)
        self._send(RawEvent("key_down" if down else "key_up", self.t, 5, 5, key=info, mods=mods))
        bit = {"shift": SHIFT, "ctrl": CTRL, "alt": MOD1, "super": MOD4, "level3": MOD5}.get(name)
        if bit:
            self.state = self.state | bit if down else self.state & ~bit
        self.t += 0.02

    def tap(self, *names: str) -> None:
        """Press the names in order (modifiers first), release in reverse."""
        for name in names:
            self.key(name)
        for name in reversed(names):
            self.key(name, down=False)

    def button(self, x: int, y: int, number: int = 1, down: bool = True) -> None:
        mods = self.keymap.modifiers(self.state)
        self._send(RawEvent("button_down" if down else "button_up", self.t, x, y, button=number, mods=mods))
        self.t += 0.01

    def click(self, x: int, y: int, number: int = 1) -> None:
        self.button(x, y, number)
        self.button(x, y, number, down=False)

    def move(self, x: int, y: int) -> None:
        self._send(RawEvent("motion", self.t, x, y))
        self.t += 0.01

    def actions(self, interrupted: bool = False) -> list[dict]:
        steps = self.merger.take() + self.merger.close(interrupted=interrupted)
        for step in steps:
            parse_action(step.action, Size(1280, 800))  # every step is a valid canonical action
        return [step.action for step in steps]


def test_clicks_double_and_triple_clicks_and_modifiers() -> None:
    s = Session()
    s.click(100, 100)
    s.wait(0.15)
    s.click(102, 101)  # same place, within the interval: a double click
    s.wait(1)
    s.click(300, 300)
    s.wait(0.1)
    s.click(300, 300)
    s.wait(0.1)
    s.click(301, 300)
    s.wait(0.1)
    s.click(300, 300)  # a fourth click starts a new group
    s.wait(1)
    s.click(500, 500)
    s.wait(0.1)
    s.click(540, 500)  # too far apart: two clicks
    s.wait(1)
    s.click(10, 20, 3)
    s.click(10, 20, 3)  # right clicks never merge
    s.click(30, 40, 2)
    s.wait(1)
    s.key("ctrl")
    s.key("shift")
    s.click(60, 70)
    s.key("shift", down=False)
    s.key("ctrl", down=False)
    assert s.actions() == [
        {"action": "double_click", "coordinate": [100, 100]},
        {"action": "triple_click", "coordinate": [300, 300]},
        {"action": "left_click", "coordinate": [300, 300]},
        {"action": "left_click", "coordinate": [500, 500]},
        {"action": "left_click", "coordinate": [540, 500]},
        {"action": "right_click", "coordinate": [10, 20]},
        {"action": "right_click", "coordinate": [10, 20]},
        {"action": "middle_click", "coordinate": [30, 40]},
        {"action": "left_click", "coordinate": [60, 70], "text": "ctrl+shift"},
    ]


def test_drags_and_jitter() -> None:
    s = Session()
    s.button(10, 10)
    s.move(30, 10)
    s.move(200, 50)
    s.button(200, 50, down=False)
    s.wait(1)
    s.button(400, 400)
    s.move(402, 401)  # a hand's jitter is still a click
    s.button(402, 401, down=False)
    s.wait(1)
    s.key("shift")
    s.button(600, 100)
    s.move(700, 100)
    s.button(700, 100, down=False)
    s.key("shift", down=False)
    assert s.actions() == [
        {"action": "left_click_drag", "start_coordinate": [10, 10], "coordinate": [200, 50]},
        {"action": "left_click", "coordinate": [400, 400]},
        {"action": "left_click_drag", "start_coordinate": [600, 100], "coordinate": [700, 100], "text": "shift"},
    ]


def test_scroll_runs() -> None:
    s = Session()
    for _ in range(4):
        s.click(300, 300, 5)
        s.wait(0.1)
    s.click(300, 300, 4)  # another direction: a new step
    s.wait(0.8)
    s.click(300, 300, 4)  # after a pause: a new step
    s.click(305, 298, 4)
    s.wait(1)
    s.key("shift")
    s.click(100, 100, 6)
    s.click(100, 100, 7)
    s.key("shift", down=False)
    assert s.actions() == [
        {"action": "scroll", "scroll_direction": "down", "scroll_amount": 4, "coordinate": [300, 300]},
        {"action": "scroll", "scroll_direction": "up", "scroll_amount": 1, "coordinate": [300, 300]},
        {"action": "scroll", "scroll_direction": "up", "scroll_amount": 2, "coordinate": [300, 300]},
        {"action": "scroll", "scroll_direction": "left", "scroll_amount": 1, "coordinate": [100, 100],
         "text": "shift"},
        {"action": "scroll", "scroll_direction": "right", "scroll_amount": 1, "coordinate": [100, 100],
         "text": "shift"},
    ]


def test_typing_runs_key_combinations_and_special_keys() -> None:
    s = Session()
    s.tap("shift", "a")  # shift with a letter is typing
    s.tap("b")
    s.tap("c")
    s.tap("BackSpace")  # edits the run
    s.tap("1")
    s.tap("shift", "1")
    s.tap("dead_acute")
    s.tap("e")  # composed: é
    s.tap("level3", "e")  # AltGr: €
    s.tap("Return")  # never part of a run
    s.tap("BackSpace")  # nothing typed before it: a key step
    s.tap("ctrl", "a")
    s.tap("ctrl", "shift", "t")
    s.tap("alt", "Tab")
    s.tap("shift", "Tab")
    for _ in range(3):
        s.tap("Down")  # a repeated key: one step
    s.tap("super")  # alone: a key step
    s.tap("shift")  # alone: nothing
    s.tap("ctrl")
    s.tap("numlock")
    s.state |= MOD2
    s.tap("kp1")  # the keypad with Num Lock types
    s.state &= ~MOD2
    s.tap("kp1")
    s.wait(3)  # a pause ends a run
    s.tap("a")
    assert s.actions() == [
        {"action": "type", "text": "Ab1!é€"},
        {"action": "key", "text": "Return"},
        {"action": "key", "text": "BackSpace"},
        {"action": "key", "text": "ctrl+a"},
        {"action": "key", "text": "ctrl+shift+t"},
        {"action": "key", "text": "alt+Tab"},
        {"action": "key", "text": "shift+Tab"},
        {"action": "key", "text": "Down", "repeat": 3},
        {"action": "key", "text": "super"},
        {"action": "type", "text": "1"},
        {"action": "key", "text": "KP_End"},
        {"action": "type", "text": "a"},
    ]


def test_keymap_follows_remapped_keycodes_caps_lock_and_levels() -> None:
    k = keymap()
    k.change(31, 1, [0xD6])  # xdotool binds a spare keycode to one keysym: Ö
    assert k.decode(31, 0).char == "ö" and k.decode(31, SHIFT).char == "Ö"  # X's rule for a lone letter
    k.change(31, 2, [0x10003A9, 0x10003A9])  # the executor binds (keysym, keysym): Ω
    assert k.decode(31, 0).char == "Ω"
    k.change(31, 1, [0x20AC])
    assert k.decode(31, 0).char == "€"
    assert k.decode(KC["a"], LOCK).char == "A" and k.decode(KC["a"], LOCK | SHIFT).char == "a"
    assert k.decode(KC["e"], MOD5).char == "€" and k.decode(KC["e"], MOD5 | SHIFT).char == "¢"
    assert k.decode(KC["kp1"], MOD2).char == "1" and k.decode(KC["kp1"], 0).char is None
    assert k.decode(KC["ctrl"], 0).modifier == "ctrl" and k.decode(KC["dead_acute"], 0).dead == "\u0301"
    assert k.modifiers(SHIFT | CTRL | MOD1 | MOD4) == {"shift", "ctrl", "alt", "super"}
    k.set_modifiers([[11], [24], [12], [], [25], [], [13], [26]])  # alt moved to Mod4
    assert k.modifiers(MOD4) == {"alt"}


def test_secret_mode_and_hotkeys_are_not_recorded() -> None:
    s = Session()
    s.tap("a")
    s.tap("ctrl", "alt", "shift", "p")  # secret mode on
    for name in ("p", "a", "s", "s"):
        s.tap(name)
    s.tap("BackSpace")
    s.tap("Return")  # ends this secret text
    s.tap("b")  # still secret mode: a second secret
    s.tap("ctrl", "alt", "shift", "p")  # off
    s.tap("c")
    steps = s.merger.take()
    s.tap("ctrl", "alt", "shift", "s")  # stop
    assert s.merger.stop_requested
    s.tap("a")  # ignored after the stop hotkey
    steps += s.merger.close()
    assert [step.action for step in steps] == [
        {"action": "type", "text": "a"},
        {"action": "type", "text": MASK, "secret": "RECORDED_SECRET_1"},
        {"action": "key", "text": "Return"},
        {"action": "type", "text": MASK, "secret": "RECORDED_SECRET_2"},
        {"action": "type", "text": "c"},
    ]
    assert [step.secret for step in steps if step.secret] == [("RECORDED_SECRET_1", "pas"),
                                                              ("RECORDED_SECRET_2", "b")]
    assert s.merger.secret_names == ["RECORDED_SECRET_1", "RECORDED_SECRET_2"]
    assert any("secret mode on" in n for n in s.notices) and not any("pas" in n for n in s.notices)


def test_pending_steps_close_in_time_and_a_final_ctrl_c_is_dropped_on_interrupt() -> None:
    s = Session()
    s.click(10, 10)
    assert s.merger.take() == []  # might still become a double click
    s.merger.tick(s.t + 0.5)
    assert [step.action["action"] for step in s.merger.take()] == ["left_click"]
    s.tap("ctrl", "a")
    s.tap("ctrl", "c")
    assert s.actions(interrupted=True) == [{"action": "key", "text": "ctrl+a"}]


def test_injecting_spans() -> None:
    before = time.monotonic()
    with injecting():
        inside = time.monotonic()
        assert was_injected(inside)
    assert was_injected(time.monotonic())  # the grace period
    assert not was_injected(before - 1) and not was_injected(time.monotonic() + 5)
    import actions.executor

    install_executor_hook()
    assert actions.executor.inject_guard is injecting


# ---------------------------------------------------------------------------------------------
# real sessions: xdotool on Xvfb, seen through the X RECORD extension


@pytest.fixture(params=BACKENDS)
def where(request: pytest.FixtureRequest, desktop_factory) -> Iterator[Where]:
    yield from where_for(request.param, desktop_factory)


class LiveRecorder:
    """`record()` through `where`'s backend on a thread, ready once it has printed its hotkeys."""

    def __init__(self, where: Where, out: Path) -> None:
        self.desktop, self.backend = where.desktop, where.backend
        self.stop, self.lines, self.steps = threading.Event(), [], []
        self._ready = threading.Event()
        self._result: dict = {}
        self._thread = threading.Thread(target=self._run, args=(out,), daemon=True)
        self._thread.start()
        assert self._ready.wait(15), f"the recorder never started: {self.lines} {self._result}"

    def _print(self, *args: object, **_: object) -> None:
        self.lines.append(" ".join(map(str, args)))
        if self.lines[-1].startswith("stop:"):
            self._ready.set()

    def _run(self, out: Path) -> None:
        try:
            self._result["outcome"] = record(RunOptions(out=out, backend=self.backend), desktop=self.desktop,
                                             stop=self.stop,
                                             on_step=lambda step, usage: self.steps.append(step),
                                             print_fn=self._print)
        except BaseException as exc:  # surfaced by finish()
            self._result["error"] = exc
            self._ready.set()

    def x(self, *args: object, pause: float = 0.25) -> None:
        subprocess.run(["xdotool", *map(str, args)], env=self.desktop.env(), check=True, timeout=15)
        time.sleep(pause)

    def finish(self, set_stop: bool = True, timeout: float = 20):
        if set_stop:
            self.stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "record() did not return"
        if "error" in self._result:
            raise self._result["error"]
        return self._result["outcome"]


def launch_demo(where: Where, out: Path) -> None:
    where.launch([sys.executable, str(DEMO_APP), str(out)])
    screen = Screen(where.desktop.display)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the Name field is drawn (white)
        if screen.grab().pixels[118, 330].tolist() == [255, 255, 255]:
            time.sleep(0.3)
            return
        time.sleep(0.1)
    raise AssertionError("the demo app never appeared")


def fill_the_form(rec: LiveRecorder, name: str, email: str, double_click_at: tuple[int, int],
                  scroll_at: tuple[int, int]) -> None:
    """A person's 11 steps on the demo form, with xdotool: fields, Green, a double click, a scroll, a drag,
    Submit and the dialog's OK."""
    rec.x("mousemove", 330, 118, "click", 1)  # Name
    rec.x("type", name)
    rec.x("mousemove", 330, 160, "click", 1)  # Email
    rec.x("type", email)
    rec.x("key", "ctrl+a")
    rec.x("mousemove", 190, 268, "click", 1)  # Green
    rec.x("mousemove", *double_click_at, "click", "--repeat", 2, "--delay", 80, 1)
    rec.x("mousemove", *scroll_at, "click", "--repeat", 3, "--delay", 60, 5)  # scroll down by 3
    rec.x("mousemove", 187, 407, "mousedown", 1, pause=0.05)  # drag the Volume slider
    rec.x("mousemove", 260, 407, pause=0.05)
    rec.x("mousemove", 400, 407, "mouseup", 1)
    rec.x("mousemove", 211, 585, "click", 1)  # Submit
    subprocess.run(["xdotool", "search", "--sync", "--name", "^Saved$"], env=rec.desktop.env(), timeout=10,
                   capture_output=True, check=True)
    time.sleep(0.5)
    rec.x("mousemove", 383, 345, "click", 1)  # OK


def near(point: list[int], expected: tuple[int, int], tolerance: int = 3) -> bool:
    return abs(point[0] - expected[0]) <= tolerance and abs(point[1] - expected[1]) <= tolerance


# pynput reads the X keyboard map once: "ö", which xdotool types by re-mapping a keycode, is lost on portable
NAMES = {"x11": "Ada Lövelace", "portable": "Ada Lovelace"}


def test_records_a_demo_session(where: Where, tmp_path: Path) -> None:
    out_json = tmp_path / "form.json"
    launch_demo(where, out_json)
    rec = LiveRecorder(where, tmp_path / "recordings")
    name = NAMES[where.backend]
    fill_the_form(rec, name, "ada@example.com", double_click_at=(190, 463), scroll_at=(380, 500))
    outcome = rec.finish()

    assert outcome.result.status == "succeeded" and outcome.result.exit_code == 0
    recording = Recording.load(outcome.recording, partial_ok=False)
    meta = recording.meta
    assert meta["kind"] == "human" and meta["status"] == "succeeded" and meta["backend"] == where.backend
    assert meta["screen"] == {"width": 1280, "height": 800, "scale": 1.0}
    assert meta["summary"]["steps"] == len(recording.steps) == outcome.result.steps == 11
    assert recording.final_frame_path is not None and recording.final_frame_path.is_file()
    actions = [step["action"] for step in recording.steps]
    assert [a["action"] for a in actions] == [
        "left_click", "type", "left_click", "type", "key", "left_click", "double_click", "scroll",
        "left_click_drag", "left_click", "left_click",
    ]
    expected_points = {0: (330, 118), 2: (330, 160), 5: (190, 268), 6: (190, 463), 7: (380, 500), 9: (211, 585),
                       10: (383, 345)}
    for i, point in expected_points.items():
        assert near(actions[i]["coordinate"], point), actions[i]
    assert actions[1]["text"] == name and actions[3]["text"] == "ada@example.com"
    assert actions[4]["text"] == "ctrl+a"
    assert actions[7]["scroll_direction"] == "down" and actions[7]["scroll_amount"] == 3
    assert near(actions[8]["start_coordinate"], (187, 407)) and near(actions[8]["coordinate"], (400, 407))
    for step in recording.steps:
        parse_action(step["action"], Size(1280, 800))
        assert step["source"] == "human" and step["ok"] and step["frame"]
        assert recording.frame_path(step).is_file()
        pointer = "coordinate" in step["action"] or "start_coordinate" in step["action"]
        assert bool(step["anchor"]) == pointer
        if pointer:
            anchor = recording.load_image(step["anchor"]["image"])
            assert anchor.shape[:2] == (80, 120)
    assert [s["i"] for s in rec.steps] == list(range(11))  # on_step saw every step as written
    began = [step["at"] for step in recording.steps]
    assert began == sorted(began) and began[0] >= 0

    # each frame is the screen just before its step: Name empty before typing, filled before the next click
    name_box = (slice(110, 127), slice(168, 260))
    assert recording.load_image(recording.steps[1]["frame"])[name_box].min() > 200
    assert recording.load_image(recording.steps[2]["frame"])[name_box].min() < 100
    ok_box = (slice(335, 356), slice(350, 416))
    before_submit = recording.load_image(recording.steps[9]["frame"])[ok_box]
    before_ok = recording.load_image(recording.steps[10]["frame"])[ok_box]
    assert not np.array_equal(before_submit, before_ok)  # the dialog is open only before OK

    form = json.loads(out_json.read_text(encoding="utf-8"))  # the app really got all of it
    # (under load Tk may miss the "ö": xdotool re-maps its keycode back before Tk reads the key press)
    assert form["name"] in (name, "Ada Lvelace") and form["email"] == "ada@example.com"
    assert form["colour"] == "Green"
    assert form["volume"] > 50 and form["notes_top_line"] != "1.0"


def test_secret_mode_and_the_stop_hotkey(where: Where, tmp_path: Path) -> None:
    launch_demo(where, tmp_path / "form.json")
    rec = LiveRecorder(where, tmp_path / "recordings")
    password = "hunter2-Ωmega" if where.backend == "x11" else "hunter2-Omega"  # see NAMES
    rec.x("mousemove", 330, 202, "click", 1)  # Password
    rec.x("key", "ctrl+alt+shift+p")
    rec.x("type", password)
    rec.x("key", "ctrl+alt+shift+p")
    rec.x("key", "Return")
    rec.x("key", "ctrl+alt+shift+s", pause=0)
    outcome = rec.finish(set_stop=False)  # the hotkey alone ends it

    assert outcome.result.status == "succeeded" and outcome.result.exit_code == 0
    recording = Recording.load(outcome.recording, partial_ok=False)
    assert recording.meta["status"] == "succeeded" and recording.meta["secrets"] == ["RECORDED_SECRET_1"]
    assert [step["action"] for step in recording.steps] == [
        {"action": "left_click", "coordinate": [330, 202]},
        {"action": "type", "text": MASK, "secret": "RECORDED_SECRET_1"},
        {"action": "key", "text": "Return"},
    ]
    for path in outcome.recording.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert password.encode() not in data and b"hunter2" not in data, path
    printed = "\n".join(rec.lines)
    assert "RECORDED_SECRET_1" in printed and "hunter2" not in printed


def test_events_injected_by_deskpilot_are_not_recorded(where: Where, tmp_path: Path) -> None:
    from actions.platform import open_executor

    rec = LiveRecorder(where, tmp_path / "recordings")
    executor = open_executor(where.desktop.display, where.backend)
    try:
        with injecting():  # what actions/executor.py does around each action
            for action in ({"action": "left_click", "coordinate": [100, 100]}, {"action": "type", "text": "hé"},
                           {"action": "key", "text": "ctrl+s"}):
                assert executor.perform(parse_action(action)).error is None
    finally:
        executor.close()
    time.sleep(0.4)
    rec.x("mousemove", 200, 220, "click", 3)
    outcome = rec.finish()
    steps = Recording.load(outcome.recording).steps
    assert [step["action"] for step in steps] == [{"action": "right_click", "coordinate": [200, 220]}]


def test_ctrl_c_ends_the_recording_normally(where: Where, tmp_path: Path) -> None:
    desktop = where.desktop
    code = (
        "import sys; from pathlib import Path\n"
        "from agent.replay.recorder import record\n"
        "from agent.session import RunOptions\n"
        "outcome = record(RunOptions(display=sys.argv[1], out=Path(sys.argv[2])))\n"
        "print(f'recording: {outcome.recording}', flush=True)\n"
        "sys.exit(int(outcome.result.exit_code))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DESKPILOT_BACKEND": where.backend}
    proc = subprocess.Popen([sys.executable, "-c", code, desktop.display, str(tmp_path)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        while not lines.get(timeout=20).startswith("stop:"):
            pass
        subprocess.run(["xdotool", "mousemove", "50", "60", "click", "1"], env=desktop.env(), check=True)
        time.sleep(0.6)
        # the Ctrl-C typed in a terminal on the same display is an X event too: it must not be recorded
        subprocess.run(["xdotool", "key", "ctrl+c"], env=desktop.env(), check=True)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.1)
    output = []
    while not lines.empty():
        output.append(lines.get())
    assert output and output[-1].startswith("recording: "), output
    recording = Recording.load(output[-1].strip().removeprefix("recording: "), partial_ok=False)
    assert recording.meta["status"] == "succeeded" and recording.meta["kind"] == "human"
    assert [step["action"] for step in recording.steps] == [{"action": "left_click", "coordinate": [50, 60]}]


@pytest.mark.parametrize("spec", ["nonsense"])
def test_a_bad_display_is_bad_input(spec: str, tmp_path: Path) -> None:
    from agent.errors import BadInput

    with pytest.raises(BadInput):
        record(RunOptions(display=spec, out=tmp_path))
    assert not any(tmp_path.iterdir())


def test_a_recorded_session_replays_onto_a_fresh_app(where: Where, desktop_factory, tmp_path: Path) -> None:
    from agent.replay.replayer import replay

    name = "Zoë Ada" if where.backend == "x11" else "Zoe Ada"  # see NAMES
    launch_demo(where, tmp_path / "recorded.json")
    rec = LiveRecorder(where, tmp_path / "recordings")
    # the double click goes to the Email field: replay refuses anchors that repeat on screen (Notes' lines)
    fill_the_form(rec, name, "zoe@example.com", double_click_at=(250, 160), scroll_at=(200, 500))
    recording = rec.finish().recording
    steps = Recording.load(recording).steps
    assert len(steps) >= 10 and steps[1]["action"]["text"] == name

    if where.backend == "x11":
        fresh = Where("x11", desktop_factory())
    else:  # the portable backend's one display: the same screen, with a fresh app
        where.launched.end()
        fresh = where
    launch_demo(fresh, tmp_path / "fresh.json")
    outcome = replay(recording, RunOptions(out=tmp_path / "replays", backend=where.backend), desktop=fresh.desktop)
    assert outcome.result.exit_code == 0, outcome.result.message
    form = json.loads((tmp_path / "fresh.json").read_text(encoding="utf-8"))
    assert form["name"] == name and form["email"] == "zoe@example.com" and form["colour"] == "Green"
    assert form["volume"] > 50 and form["notes_top_line"] != "1.0"
    replayed = Recording.load(outcome.recording)
    assert replayed.meta["kind"] == "replay" and all(s["ok"] for s in replayed.steps)
    assert replayed.meta["backend"] == where.backend
    fresh.launched.end()
