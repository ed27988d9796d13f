"""`deskpilot app` end to end: the app runs in a subprocess (its own Tk main loop) on a virtual desktop and
is driven like a person would, with deskpilot's own executor (clicks, typing) and OCR; the model is the
scripted Messages API server. The app's target is its sandbox, a second private Xvfb it starts itself.

The driver script writes the app's state (and its widgets' screen positions) to a JSON file every 100 ms
and runs the method calls the test appends to a command file.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actions.platform import open_executor
from actions.vocabulary import parse_action
from tests.fake_anthropic import FakeAnthropic, message, text, tool_use

ROOT = Path(__file__).resolve().parent.parent

DRIVER = r"""
import json, os, sys, tkinter as tk, webbrowser
from pathlib import Path
from agent.ui.app import DeskpilotApp
from agent.models.base import ModelConfig
from agent.budget import Limits
from agent.loop import LoopConfig
from agent.session import RunOptions

out, state_file, commands, target = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
root = tk.Tk()
options = RunOptions(model=ModelConfig(max_retries=0, timeout_s=20),
                     loop=LoopConfig(limits=Limits(max_steps=200, max_seconds=120, max_cost_usd=5.0)),
                     display=target, out=out / "recordings", workdir=out)
app = DeskpilotApp(root, options=options)
opened = []
webbrowser.open = lambda url, *args, **kwargs: opened.append(url) or True
from agent.ui import app_open
app_open.launch = lambda argv: (app_open.LAUNCHED.append(list(argv)), opened.append(" ".join(argv)))
done = 0

def tick():
    global done
    if commands.exists():
        lines = commands.read_text().splitlines()
        for line in lines[done:]:
            name, *args = json.loads(line)
            getattr(app, name)(*args)
        done = len(lines)
    if not app.closing:
        tree = app.step_list.tree
        box = [tree.winfo_rootx(), tree.winfo_rooty(), tree.winfo_rootx() + tree.winfo_width(),
               tree.winfo_rooty() + tree.winfo_height()]
        state = app.state() | {"widgets": app.widget_centers(), "opened": opened, "steps_box": box}
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_file)
        root.after(100, tick)

root.after(100, tick)
root.mainloop()
"""


class AppDriver:
    """The app in a subprocess on `display`, read through its state file and driven with the executor."""

    def __init__(self, display: str, fake: FakeAnthropic, folder: Path, target: str = "virtual",
                 env: dict[str, str] | None = None) -> None:
        self.folder, self.fake = folder, fake
        self.state_file, self.commands = folder / "state.json", folder / "commands.jsonl"
        for stale in (self.state_file, self.commands):  # an earlier app's, in the same folder
            stale.unlink(missing_ok=True)
        env = os.environ | {"DISPLAY": display, "PYTHONPATH": str(ROOT), "ANTHROPIC_BASE_URL": fake.base_url,
                            "ANTHROPIC_API_KEY": "sk-test-not-a-real-key", "XDG_CONFIG_HOME": str(folder / "config"),
                            **(env or {})}
        self.log = folder / "app.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(folder), str(self.state_file),
                                          str(self.commands), target], env=env, cwd=folder, stdout=log, stderr=log)
        self.executor = open_executor(display)
        self.wait(lambda s: {"goal", "start"} <= set(s["widgets"]), "the app's window", timeout=30)

    def state(self) -> dict:
        if self.proc.poll() is not None:
            raise AssertionError(f"the app exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {"widgets": {}, "steps": [], "pending_confirmation": None, "running": False, "answers": []}

    def wait(self, predicate: Callable[[dict], bool], what: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; state: {json.dumps(state)[:3000]}\n"
                                     f"app output: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def act(self, **action: object) -> None:
        result = self.executor.perform(parse_action(action))
        assert result.ok, result.error

    def click(self, name: str) -> None:
        """Click a widget (a main button, the goal field, or a button of the open dialog) by its position."""
        size = self.executor.screen.size
        seen: list = []

        def placed(s: dict) -> bool:  # shown on the screen, and where it was at the previous look (placed, not moving)
            where = s["widgets"].get(name)
            seen.append(where)
            return where is not None and 0 <= where[0] < size.width and 0 <= where[1] < size.height and \
                len(seen) > 1 and seen[-2] == where

        state = self.wait(placed, f"the {name!r} widget")
        self.act(action="left_click", coordinate=state["widgets"][name])

    def call(self, method: str, *args: object) -> None:
        """Have the app run `method(*args)` on its Tk thread."""
        with self.commands.open("a") as f:
            f.write(json.dumps([method, *args]) + "\n")

    def answer(self, button: str, rule: str = "recursive-delete") -> dict:
        pending = self.wait(lambda s: s["pending_confirmation"] is not None and button in s["widgets"],
                            "the confirmation dialog")
        assert pending["pending_confirmation"]["rule"] == rule
        time.sleep(0.2)  # let it settle where it is placed
        self.click(button)
        self.wait(lambda s: len(s["answers"]) > len(pending["answers"]), "the answer")
        return pending["pending_confirmation"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.call("quit")
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.executor.close()


@pytest.fixture
def app(desktop, fake: FakeAnthropic, tmp_path: Path) -> Iterator[AppDriver]:
    driver = AppDriver(desktop.display, fake, tmp_path)
    yield driver
    driver.close()


def tool_results(request) -> dict[str, dict]:
    last = request.body["messages"][-1]
    return {b["tool_use_id"]: b for b in last["content"] if b.get("type") == "tool_result"}


def meta_of(recording: str) -> dict:
    return json.loads((Path(recording) / "meta.json").read_text())


def test_goal_run_with_confirmation_dialogs_live_view_and_report(app: AppDriver, fake: FakeAnthropic,
                                                                 tmp_path: Path) -> None:
    victims = [tmp_path / f"x-deskpilot-test-{n}" for n in range(3)]
    for victim in victims:
        victim.mkdir()
        (victim / "file.txt").write_text("x")
    fake.add(
        message(text("Let me look at the screen first."),
                tool_use("computer", {"action": "left_click", "coordinate": [200, 150]})),
        message(tool_use("bash", {"command": f"rm -rf {victims[0]}"}, id="toolu_denied")),
        message(tool_use("bash", {"command": f"rm -rf {victims[0]}"}, id="toolu_allowed")),
        message(tool_use("bash", {"command": f"rm -rf {victims[1]}"}, id="toolu_always")),
        message(tool_use("bash", {"command": f"rm -rf {victims[2]}"}, id="toolu_unasked")),
        message(text("All done.")),
    )
    # type the goal and press Start, found on the screen by OCR, as a person would
    app.click("goal")
    app.act(action="type", text="Tidy up the test folders")
    from vision.locate.ocr import TextFinder

    band = app.executor.screen.grab().crop((0, 0, 1280, 200))  # the goal and button rows
    start = TextFinder().find_text(band, "Start")  # the play icon before it reads as "▶"
    assert start and abs(start[0].center[0] - app.state()["widgets"]["start"][0]) < 40
    app.act(action="left_click", coordinate=list(start[0].center))

    denied = app.answer("deny")
    assert "rm -rf" in denied["action"] and denied["reason"] == "deletes files recursively"
    app.answer("allow")
    results = tool_results(fake.messages_requests()[2])
    assert results["toolu_denied"].get("is_error") is True
    assert "refused by the user" in json.dumps(results["toolu_denied"]["content"])
    app.answer("always")
    state = app.wait(lambda s: not s["running"] and s["recording"], "the run to end")

    assert state["answers"] == ["deny", "allow", "always"]
    assert state["status"].startswith("succeeded"), state["status"]
    assert not any(v.exists() for v in victims)  # allowed, always-allowed, and then not asked again
    results = tool_results(fake.messages_requests()[-1])
    assert not results["toolu_unasked"].get("is_error")
    assert [s["i"] for s in state["steps"]] == [0, 1, 2, 3, 4]
    assert state["steps"][0]["point"] == [200.0, 150.0] and "Let me look" in state["steps"][0]["thought"]
    assert [s["ok"] for s in state["steps"]] == [True, False, True, True, True]
    cost = state["cost_text"]
    assert cost.endswith(" of $5.00") and float(cost.split()[0][1:]) > 0, cost
    assert meta_of(state["recording"])["status"] == "succeeded"
    assert state["view_frames"] > 0 and state["view_display"] not in (None, app.executor.screen.display)
    assert state["last_error"] is None and not state["status_is_error"]

    x0, y0, x1, _ = state["steps_box"]
    first_rows = app.executor.screen.grab().crop((x0, y0, x1, y0 + 96))  # the heading and two rows
    words = " ".join(w.text for w in TextFinder().read(first_rows))
    assert "Let me look" in words and "rm -rf" in words, words

    app.call("open_report", state["recording"])
    state = app.wait(lambda s: s["opened"] and s["report"], "the report to open")
    assert state["opened"][0].endswith("report.html") and Path(state["report"]).is_file()


def test_pause_holds_the_run_resume_goes_on_stop_ends_it(app: AppDriver, fake: FakeAnthropic) -> None:
    moves = itertools.count()
    fake.responder = lambda _request: message(
        tool_use("computer", {"action": "mouse_move", "coordinate": [10 + next(moves) % 600, 20]}))
    app.call("start", "keep moving the mouse")
    app.wait(lambda s: len(s["steps"]) >= 3, "a few steps")
    app.click("pause")
    app.wait(lambda s: s["paused"], "the pause")
    time.sleep(0.6)  # a model call already under way may still finish
    before, steps = len(fake.messages_requests()), len(app.state()["steps"])
    time.sleep(1.5)
    assert len(fake.messages_requests()) == before and len(app.state()["steps"]) <= steps + 1
    assert app.state()["running"]

    app.click("resume")
    app.wait(lambda s: not s["paused"], "the resume")
    deadline = time.monotonic() + 10
    while len(fake.messages_requests()) < before + 3:
        assert time.monotonic() < deadline, "the run did not go on after Resume"
        time.sleep(0.05)

    app.click("stop")
    state = app.wait(lambda s: not s["running"] and s["recording"], "the run to stop")
    assert state["status"].startswith("stopped"), state["status"]
    assert meta_of(state["recording"])["status"] == "stopped"
    assert not state["status_is_error"]


def test_on_its_own_desktop_the_app_steps_aside_for_a_bar(desktop_factory, fake: FakeAnthropic,
                                                          tmp_path: Path) -> None:
    if shutil.which("openbox") is None:
        pytest.skip("openbox is needed to iconify windows")
    desktop = desktop_factory(window_manager=True)
    moves = itertools.count()
    fake.responder = lambda _request: message(
        tool_use("computer", {"action": "mouse_move", "coordinate": [200 + next(moves) % 400, 500]}))
    app = AppDriver(desktop.display, fake, tmp_path, target="host")
    try:
        app.call("start", "keep moving the mouse")
        state = app.wait(lambda s: len(s["steps"]) >= 2 and "bar_stop" in s["widgets"], "steps with the bar shown")
        assert state["hidden"] and "start" not in state["widgets"]  # the main window is iconified
        x, y = state["widgets"]["bar_stop"]
        assert x > 1280 - 360 and y < 36  # a small bar at the top-right corner
        app.click("bar_pause")
        app.wait(lambda s: s["paused"], "the pause from the bar")
        app.click("bar_stop")
        state = app.wait(lambda s: not s["running"] and s["recording"], "the run to stop")
        assert state["status"].startswith("stopped") and meta_of(state["recording"])["status"] == "stopped"
        state = app.wait(lambda s: "start" in s["widgets"] and not s["hidden"], "the window to come back")
        assert "bar_stop" not in state["widgets"]
    finally:
        app.close()


def test_errors_are_shown_in_the_window(app: AppDriver, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - clik: Submit\n")
    app.call("start", str(bad))
    state = app.wait(lambda s: s["last_error"] and not s["running"], "the task file error")
    assert "bad.yaml:3" in state["last_error"] and "clik" in state["last_error"], state["last_error"]
    assert state["status_is_error"] and state["status"].startswith("error")
    assert not list((tmp_path / "recordings").glob("*"))  # nothing ran

    app.call("replay_recording", str(tmp_path / "no-such-recording"))
    state = app.wait(lambda s: s["last_error"] and "no-such-recording" in s["last_error"] and not s["running"],
                     "the replay error")
    assert state["status_is_error"]

    app.call("start", "   ")
    state = app.wait(lambda s: s["last_error"] and "Type a goal" in s["last_error"], "the empty goal error")

    app.call("start", str(tmp_path / "missing.yaml"))
    state = app.wait(lambda s: s["last_error"] and "missing.yaml" in s["last_error"], "the missing file error")
    assert "no such file" in state["last_error"]


class HeadlessView:
    """The controller's view without Tk: records what it is told to show, and allows every action asked about."""

    def __init__(self) -> None:
        self.shown: list[tuple] = []

    def refresh(self) -> None:
        pass

    def step_added(self, row: dict) -> None:
        self.shown.append(("step", row["i"]))

    def job_started(self, job: str, step_aside: bool) -> None:
        self.shown.append(("started", job, step_aside))

    def job_ended(self) -> None:
        self.shown.append(("ended",))

    def ask(self, request: dict, answer: Callable[[str], None]) -> None:
        self.shown.append(("ask", request["rule"]))
        answer("allow")

    def close_question(self) -> None:
        pass

    def placeholder(self, text: str) -> None:
        self.shown.append(("placeholder", text))

    def show_still(self, view: dict, rows: list[dict] | None) -> None:
        self.shown.append(("still", view["path"], view["point"], view["image"] is not None))

    def history_changed(self) -> None:
        self.shown.append(("history",))

    def suite_changed(self) -> None:
        self.shown.append(("suite",))

    def offer_task(self, recording: Path, suggested: Path) -> None:
        self.shown.append(("offer", str(recording)))


def test_the_controller_runs_a_goal_without_tk(fake: FakeAnthropic, tmp_path: Path) -> None:
    from agent.budget import Limits
    from agent.loop import LoopConfig
    from agent.models.base import ModelConfig
    from agent.session import RunOptions
    from agent.ui.app_controller import AppController

    victim = tmp_path / "x-deskpilot-test"
    victim.mkdir()
    fake.add(message(tool_use("computer", {"action": "left_click", "coordinate": [20, 30]})),
             message(tool_use("bash", {"command": f"rm -rf {victim}"})), message(text("Done.")))
    view = HeadlessView()
    options = RunOptions(model=ModelConfig(max_retries=0, timeout_s=20), display="virtual", out=tmp_path / "rec",
                         loop=LoopConfig(limits=Limits(max_steps=20, max_seconds=60)), workdir=tmp_path)
    controller = AppController(view, options, settings_file=tmp_path / "config" / "app.json")
    try:
        assert view.shown == [] and controller.state.cost_text == "$0.0000 of $5.00"
        assert controller.start("click, then tidy up")
        deadline = time.monotonic() + 60
        while controller.state.running or controller.state.view_mode != "still" or not controller.state.runs:
            assert time.monotonic() < deadline, controller.as_dict()
            controller.drain()
            time.sleep(0.05)
        state = controller.as_dict()
    finally:
        controller.quit()
    assert state["status"].startswith("succeeded"), state
    assert [s["i"] for s in state["steps"]] == [0, 1] and state["answers"] == ["allow"] and not victim.exists()
    assert view.shown[0] == ("started", "run", False) and ("ended",) in view.shown
    assert ("ask", "recursive-delete") in view.shown and ("step", 1) in view.shown
    assert meta_of(state["recording"])["status"] == "succeeded"
    # the final screen stays in the view with the last click marked, and the run is in the history
    assert ("still", state["recording"], [20.0, 30.0], True) in view.shown
    assert [r["path"] for r in state["runs"]] == [state["recording"]] and state["runs"][0]["status"] == "succeeded"
    assert json.loads((tmp_path / "config" / "app.json").read_text())["model"] == "claude-sonnet-4-6"


def test_main_without_a_display_exits_4() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", "import sys; from agent.ui.app import main; sys.exit(main([]))"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 4, proc.stderr
    assert "no display" in proc.stderr
