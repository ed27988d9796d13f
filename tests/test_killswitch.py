"""The kill switch: the global hotkey stops a run at once, releases keys, and the recording says stopped.

The runs and the corner go through both platform backends: x11 (RECORD listener, XTest input) and
portable (pynput listener, pyautogui and pynput input); the hotkey is pressed with xdotool (real X events).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.base import ModelConfig
from agent.models.scripted import ScriptedModel, computer
from agent.recording.writer import Recording
from agent.safety.killswitch import KillSwitch
from agent.session import Callbacks, RunOptions, run_goal
from tests.fake_anthropic import message, slow, text, tool_use
from tests.portable_display import BACKENDS, Where, where_for


def options(tmp_path: Path, backend: str | None = None) -> RunOptions:
    return RunOptions(model=ModelConfig(max_retries=0, timeout_s=60), out=tmp_path / "rec", workdir=tmp_path,
                      loop=LoopConfig(limits=Limits(max_steps=20, max_seconds=120)), backend=backend)


@pytest.fixture(params=BACKENDS)
def where(request: pytest.FixtureRequest, desktop_factory) -> Iterator[Where]:
    yield from where_for(request.param, desktop_factory)


HOTKEY_KEYSYMS = ("Control_L", "Alt_L", "Shift_L", "k", "K")  # what xdotool's ctrl+alt+shift+k sends


def hotkey_at(events: list[dict]) -> int:
    """Where the hotkey's K press is among the probe's events (in the order the X server delivered them)."""
    return next(n for n, e in enumerate(events) if e["type"] == "keypress" and e["keysym"] in ("k", "K"))


def press_hotkey(display: str) -> float:
    """Press Ctrl+Alt+Shift+K with xdotool (real X events); the wall-clock time just before."""
    started = time.time()
    subprocess.run(["xdotool", "key", "ctrl+alt+shift+k"], env={"DISPLAY": display}, check=True)
    return started


def run_in_thread(**kwargs) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        box["outcome"] = run_goal("work", **kwargs)
        box["ended"] = time.time()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_hotkey_stops_a_long_hold_key_within_200ms(where: Where, tmp_path: Path) -> None:
    desktop, probe = where.desktop, where.probe(tmp_path)
    # the right Shift: the hotkey's own Shift (xdotool's) is the left one, and its release must not count
    model = ScriptedModel([[computer("hold_key", text="shift_r", duration=30)]])
    thread, box = run_in_thread(options=options(tmp_path, where.backend), desktop=desktop, model=model)
    probe.wait_for(lambda ev: any(e["type"] == "keypress" and e["keysym"] == "Shift_R" for e in ev), timeout=15)
    time.sleep(0.3)
    press_hotkey(desktop.display)
    thread.join(timeout=10)
    outcome = box["outcome"]
    assert outcome.result.exit_code == 3 and outcome.result.status == "stopped"
    assert "kill switch" in outcome.result.message
    time.sleep(0.3)
    events = probe.events()
    shift = [e for e in events if e.get("keysym") == "Shift_R"]
    assert shift[-1]["type"] == "keyrelease"  # released, not left held down
    # on the X server's clock (both come through XTest)
    late_s = (shift[-1]["xtime"] - events[hotkey_at(events)]["xtime"]) / 1000
    assert 0 <= late_s < 0.2, f"released {late_s:.3f} s after the hotkey"
    recording = Recording.load(outcome.recording)
    assert recording.meta["status"] == "stopped" and "interrupted" in recording.steps[0]["error"]


def test_hotkey_stops_a_long_type_within_200ms(where: Where, tmp_path: Path) -> None:
    desktop, probe = where.desktop, where.probe(tmp_path)
    long_text = "".join(chr(0x3B1 + n % 24) + "x" for n in range(5000))  # Greek letters force keymap pauses
    model = ScriptedModel([[computer("type", text=long_text)]])
    thread, box = run_in_thread(options=options(tmp_path, where.backend), desktop=desktop, model=model)
    probe.wait_for(lambda ev: sum(e["type"] == "keypress" for e in ev) > 50, timeout=15)
    press_hotkey(desktop.display)
    thread.join(timeout=10)
    assert box["outcome"].result.exit_code == 3
    time.sleep(0.3)
    events = probe.events()
    hotkey = hotkey_at(events)
    typed = [n for n, e in enumerate(events) if e["type"] == "keypress" and e["keysym"] not in HOTKEY_KEYSYMS]
    assert len(typed) < len(long_text)  # it stopped part-way
    after = [events[n] for n in typed if n > hotkey]
    # the clocks of the X server, not of the probe (which can fall behind on a busy machine) nor of xdotool's start
    if where.backend == "x11":  # XTest's events carry the server's time; x11 sends a chunk at once
        late_s = (after[-1]["xtime"] - events[hotkey]["xtime"]) / 1000 if after else 0.0
        how = f"{len(after)} keys until {late_s:.3f} s after the hotkey, on the X server's clock"
    else:  # pynput's synthetic events carry no time: the keys after the hotkey at the pace typed before it
        before = [events[n]["t"] for n in typed if n < hotkey]
        per_key = (before[-1] - before[0]) / (len(before) - 1)
        late_s = len(after) * per_key
        how = f"{len(after)} keys after the hotkey at {per_key * 1000:.1f} ms a key"
    assert late_s < 0.2, f"typed {how}"


def test_hotkey_abandons_a_slow_model_call(fake, where: Where, tmp_path: Path) -> None:
    desktop = where.desktop
    fake.add(message(tool_use("computer", {"action": "mouse_move", "coordinate": [5, 5]})),
             slow(30, message(text("too late"))))
    thread, box = run_in_thread(options=options(tmp_path, where.backend), desktop=desktop)
    deadline = time.monotonic() + 20
    while len(fake.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    triggered = press_hotkey(desktop.display)
    thread.join(timeout=10)
    assert box["ended"] - triggered < 2  # the in-flight call (30 s) is abandoned, not awaited
    assert box["outcome"].result.exit_code == 3
    assert "while waiting for the model" in box["outcome"].result.message
    assert Recording.load(box["outcome"].recording).meta["status"] == "stopped"


def test_failsafe_corner_on_the_host_display(where: Where) -> None:
    desktop = where.desktop
    fired = threading.Event()
    reasons: list[str] = []

    def trigger(reason: str) -> None:
        reasons.append(reason)
        fired.set()

    with KillSwitch(trigger, hotkey_display=None, failsafe_display=desktop.display, backend=where.backend):
        subprocess.run(["xdotool", "mousemove", "400", "300"], env=desktop.env(), check=True)
        assert not fired.wait(0.3)
        subprocess.run(["xdotool", "mousemove", "0", "0"], env=desktop.env(), check=True)
        assert fired.wait(2)
    assert "corner" in reasons[0]


def test_callbacks_stop_event_ends_a_task_between_steps(desktop, tmp_path: Path) -> None:
    from agent.tasks.loader import parse_task
    from agent.tasks.runner import run_task

    task = parse_task("steps:\n" + "  - wait: 0.3\n" * 20, str(tmp_path / "t.yaml"))
    callbacks = Callbacks()
    threading.Timer(1.0, callbacks.stop.set).start()
    outcome = run_task(task, options(tmp_path), desktop=desktop, callbacks=callbacks)
    assert outcome.result.exit_code == 3 and 1 <= outcome.result.steps < 20
