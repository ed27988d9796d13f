"""`deskpilot app`'s features end to end, on real Xvfb displays, driven by real clicks and keys on its widgets:
a sandbox run whose final screen stays after the sandbox is gone, the run history (filter, report, replay on
this desktop, run again), the theme, the model picker against a local OpenAI-compatible server (its check
failing with a clear message, then a run), remembered choices, record-to-task, a suite with 2 attempts, and
closing the window mid-run. Each state is saved as a screenshot in tests/artifacts/app/ (see its README).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from actions.platform import open_executor
from tests.conftest import x_servers
from tests.fake_anthropic import FakeAnthropic, message, text, tool_use
from tests.fake_openai import FakeOpenAI, chat, function_call
from tests.test_app import ROOT, AppDriver, meta_of

ARTIFACTS = Path(__file__).parent / "artifacts" / "app"
DEMO_APP = ROOT / "examples" / "demo_app.py"


def demo_task(folder: Path, name: str = "fill-name") -> Path:
    """A small task on the demo form: type a name, submit, check the saved file."""
    out = folder / f"{name}.json"
    path = folder / f"{name}.yaml"
    path.write_text(f"""name: {name}
display: {{width: 1280, height: 800}}
setup:
  - launch: [python3, {DEMO_APP}, {out}]
  - wait_for: {{text: "Demo form", timeout: 30}}
steps:
  - click: {{text: "Name:", offset: [180, 0]}}
  - type: Ada
  - click: Submit
  - wait_for: {{text: "Hello Ada", timeout: 10}}
checks:
  - file: {{path: {out}, contains: Ada}}
""")
    return path


def shot(app: AppDriver, name: str) -> Path:
    """Save the app's window (as the screen shows it) as tests/artifacts/app/<name>-<W>x<H>.png."""
    screen = app.executor.screen.grab()
    h, w = screen.pixels.shape[:2]
    box = app.wait(lambda s: s["window_box"][2] > s["window_box"][0] + 100 and not s["hidden"], "the window")
    x0, y0, x1, y1 = box["window_box"]
    x0, y0 = max(0, x0), max(0, y0 - 40)  # the menu bar sits above the window's box on X
    crop = screen.pixels[y0:min(h, y1), x0:min(w, x1)]
    assert crop.size, f"the window is off the screen: {box['window_box']}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{w}x{h}.png"
    cv2.imwrite(str(path), crop)
    return path


def replace_text(app: AppDriver, widget: str, value: str) -> None:
    """Click a field, select what it holds and type `value` over it (again if keys went astray while the
    window was still taking the focus)."""
    for _ in range(3):
        app.click(widget)
        time.sleep(0.15)
        app.act(action="key", text="End")
        app.act(action="key", text="shift+Home")
        app.act(action="key", text="BackSpace")
        if value:
            app.act(action="type", text=value)
        try:
            app.wait(lambda s: s["fields"].get(widget) == value, f"{widget} to hold {value!r}", timeout=3)
            return
        except AssertionError:
            continue
    raise AssertionError(f"could not type {value!r} into {widget}")


def pick(app: AppDriver, combo: str, value: str) -> None:
    """Open a combobox's list with a click and click `value` in it."""
    app.click(combo)
    app.click(f"{combo}:{value}")
    app.wait(lambda s: f"{combo}:{value}" not in s["widgets"], f"the {combo} list to close")


def view_pixels(app: AppDriver) -> np.ndarray:
    """The image the live view shows, as on the screen."""
    x0, y0, x1, y1 = app.state()["view_image_box"]
    return app.executor.screen.grab().pixels[y0:y1, x0:x1]


def close_to(shown: np.ndarray, png: Path) -> float:
    """Mean absolute difference between what the view shows and a saved frame scaled to it."""
    frame = cv2.imread(str(png))
    frame = cv2.resize(frame, (shown.shape[1], shown.shape[0]), interpolation=cv2.INTER_AREA)
    return float(np.abs(frame.astype(np.int16) - shown.astype(np.int16)).mean())


def shown_difference(app: AppDriver, png: Path, timeout: float = 10.0) -> float:
    """`close_to` of the view and a saved frame once Tk has painted it: the state says "still" as soon as the
    image is set, and on a busy machine the large canvas of a HiDPI screen is drawn a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        difference = close_to(view_pixels(app), png)
        if difference < 12 or time.monotonic() > deadline:
            return difference
        time.sleep(0.1)


def test_sandbox_run_keeps_its_final_screen_and_the_history_reopens_replays_and_reruns(
        desktop_factory, fake: FakeAnthropic, tmp_path: Path) -> None:
    desktop = desktop_factory(window_manager=True)
    task = demo_task(tmp_path)
    app = AppDriver(desktop.display, fake, tmp_path)
    try:
        assert app.state()["theme"] == "light" and app.state()["scale"] == 1.0
        replace_text(app, "goal", str(task))
        app.click("start")
        state = app.wait(lambda s: not s["running"] and s["view_mode"] == "still", "the task to end", timeout=90)
        assert state["status"].startswith("succeeded"), state["status"]
        recording = Path(state["recording"])
        final = recording / "frames" / "final.png"
        assert meta_of(str(recording))["final_frame"] == "frames/final.png" and final.is_file()
        assert "final screen" in state["view_caption"] and recording.name in state["view_caption"]
        assert shown_difference(app, final) < 12  # the final screen, not the (now empty) sandbox
        assert view_pixels(app).std() > 20, "the view shows a blank screen"
        mx, my = state["mark_center"]  # the last click (Submit) is marked in red
        b, g, r = (int(v) for v in app.executor.screen.grab().pixels[my, mx])
        assert r > 180 and g < 110 and b < 110, (r, g, b)
        shot(app, "final-screen")

        sandbox = state["sandbox"]
        assert sandbox and os.path.exists(f"/tmp/.X11-unix/X{sandbox[1:]}")
        (pid,) = x_servers(sandbox)
        server = psutil.Process(pid)  # the sandbox's Xvfb
        assert server.name() == "Xvfb"
        app.click("stop_sandbox")
        state = app.wait(lambda s: s["sandbox"] is None and "sandbox stopped" in s["status"], "the sandbox to stop")
        # its server ends (the display's number may then serve another test's Xvfb: the suite runs in two workers)
        deadline = time.monotonic() + 10
        while server.is_running() and server.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the sandbox's X server is still there"
            time.sleep(0.1)
        time.sleep(0.5)  # a live frame would have replaced the still by now
        assert state["view_mode"] == "still" and close_to(view_pixels(app), final) < 12
        shot(app, "final-screen-sandbox-gone")

        # the history lists the run; the filter narrows it by words and by status
        state = app.wait(lambda s: len(s["runs"]) == 1 and "run:0" in s["widgets"], "the run in the history")
        run = state["runs"][0]
        assert run["path"] == str(recording) and run["status"] == "succeeded" and run["kind"] == "task"
        assert run["what"] == task.name and run["task"] == str(task) and run["steps"] == 4 and run["date"]
        replace_text(app, "history_filter", "no-such-run")
        app.wait(lambda s: s["runs"] == [], "the text filter")
        replace_text(app, "history_filter", "FILL-name")
        app.wait(lambda s: len(s["runs"]) == 1, "the words found")
        replace_text(app, "history_filter", "")
        pick(app, "history_status", "failed")
        app.wait(lambda s: s["runs"] == [], "the status filter")
        pick(app, "history_status", "all")
        app.wait(lambda s: len(s["runs"]) == 1, "all runs again")

        # open the run: its report; show its folder
        app.click("run:0")
        app.wait(lambda s: s["selected_run"] == str(recording), "the run chosen")
        app.click("history_report")
        state = app.wait(lambda s: any(u.endswith("report.html") for u in s["opened"]), "the report to open")
        assert (recording / "report.html").is_file()
        app.click("history_folder")
        app.wait(lambda s: any(u == f"xdg-open {recording}" for u in s["opened"]), "the folder to be shown")

        # replay it on this desktop, where the form is open (the window steps aside meanwhile)
        out = tmp_path / "host-form.json"
        desktop.launch([sys.executable, str(DEMO_APP), str(out)])
        time.sleep(2)
        app.click("history_replay")
        app.click("replay:host")
        state = app.wait(lambda s: s["job"] == "replay", "the replay to start")
        state = app.wait(lambda s: not s["running"] and s["view_mode"] == "still" and not s["hidden"],
                         "the replay to end", timeout=90)
        assert state["status"].startswith("succeeded"), state["status"]
        assert meta_of(state["recording"])["kind"] == "replay" and "Ada" in out.read_text()
        assert state["still"]["path"] == state["recording"]  # the replay's own final screen

        # run it again: the task, in the sandbox, with its setup
        app.wait(lambda s: len(s["runs"]) == 2, "the replay in the history")
        index = [r["path"] for r in app.state()["runs"]].index(str(recording))
        app.click(f"run:{index}")
        app.wait(lambda s: s["selected_run"] == str(recording), "the task run chosen")
        app.click("history_again")
        app.wait(lambda s: s["job"] == "task", "the task to run again")
        state = app.wait(lambda s: not s["running"] and len(s["runs"]) == 3, "the second task run", timeout=90)
        assert state["status"].startswith("succeeded"), state["status"]
        assert [r["kind"] for r in state["runs"]].count("task") == 2
        shot(app, "history")

        # dark mode, from the keyboard (View > Toggle dark mode)
        app.click("history_filter")
        app.act(action="key", text="ctrl+d")
        state = app.wait(lambda s: s["theme"] == "dark", "the dark theme")
        assert state["settings"]["theme"] == "dark"
        time.sleep(0.3)
        shot(app, "dark")
    finally:
        app.close()


def test_model_picker_checks_the_server_then_runs_and_is_remembered(desktop, fake: FakeAnthropic,
                                                                    tmp_path: Path) -> None:
    server = FakeOpenAI(models=("fake-model",)).start()
    moves = itertools.count()
    server.responder = lambda _request: chat(None, function_call(
        "computer", {"action": "mouse_move", "coordinate": [100 + next(moves) * 10, 200]})) if next(moves) < 6 \
        else chat("Done.")
    with socket.socket() as sock:  # a port with no server behind it
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    app = AppDriver(desktop.display, fake, tmp_path)
    try:
        pick(app, "family", "chat")
        state = app.wait(lambda s: s["model"].startswith("chat/"), "the chat family")
        replace_text(app, "model_name", "fake-model")
        replace_text(app, "base_url", dead)
        replace_text(app, "goal", "Move the mouse about")
        app.click("start")
        state = app.wait(lambda s: s["last_error"] and not s["running"], "the server check to fail", timeout=30)
        assert dead in state["last_error"] and "does not answer" in state["last_error"], state["last_error"]
        assert "What to do: start the server" in state["last_error"]
        assert not list((tmp_path / "recordings").glob("*")) and server.api_requests() == []
        shot(app, "model-server-down")

        replace_text(app, "base_url", server.base_url)
        app.click("check")
        state = app.wait(lambda s: "serves 'fake-model'" in s["status"], "the check to pass")
        assert not state["status_is_error"]
        app.click("start")
        state = app.wait(lambda s: not s["running"] and s["recording"], "the run with the chat model", timeout=60)
        assert state["status"].startswith("succeeded"), state["status"]
        assert len(server.api_requests()) >= 2 and meta_of(state["recording"])["model"] == "chat/fake-model"
        assert len(state["steps"]) >= 2
        shot(app, "model-chat-run")
        settings = json.loads((tmp_path / "config" / "deskpilot" / "app.json").read_text())
        assert settings["model"] == "chat/fake-model" and settings["base_url"] == server.base_url
    finally:
        app.close()
    # the next start remembers the choices
    app = AppDriver(desktop.display, fake, tmp_path)
    try:
        state = app.wait(lambda s: s["runs"], "the history")
        assert state["model"] == "chat/fake-model" and state["base_url"] == server.base_url
        assert state["runs"][0]["model"] == "chat/fake-model"
    finally:
        app.close()
        server.stop()
    # a corrupt settings file is ignored, with a note in the window
    (tmp_path / "config" / "deskpilot" / "app.json").write_text("{not json")
    app = AppDriver(desktop.display, fake, tmp_path)
    try:
        state = app.state()
        assert "could not be read" in state["status"], state["status"]
        assert state["model"] == "claude-sonnet-4-6", (state["model"], state["settings"],
                                                       (tmp_path / "config" / "deskpilot" / "app.json").read_text())
        assert "app.json" in state["notes"][0]
    finally:
        app.close()


def test_record_a_demonstration_and_save_it_as_a_task_that_runs(desktop, desktop_factory, fake: FakeAnthropic,
                                                               tmp_path: Path) -> None:
    stage = desktop_factory()  # the desktop the person demonstrates on
    form = tmp_path / "recorded-form.json"
    stage.launch([sys.executable, str(DEMO_APP), str(form)])
    person = open_executor(stage.display)
    from vision.locate.ocr import TextFinder

    finder = TextFinder()
    deadline = time.monotonic() + 30
    app = AppDriver(desktop.display, fake, tmp_path, target=stage.display)
    try:
        assert app.state()["target"] == f"Display {stage.display}"
        while True:
            try:
                name = finder.find_text(person.screen.grab(), "Name:")[0]
                break
            except Exception:
                assert time.monotonic() < deadline, "the demo form did not open"
                time.sleep(0.5)
        app.click("record")
        app.wait(lambda s: s["job"] == "record" and s["view_display"] == stage.display, "the recording")
        time.sleep(1.5)  # the recorder listens once it has said how to stop it
        from actions.vocabulary import parse_action

        def do(**action: object) -> None:
            assert person.perform(parse_action(action)).ok
            time.sleep(0.4)

        do(action="left_click", coordinate=[name.center[0] + 180, name.center[1]])
        do(action="type", text="Ada")
        submit = finder.find_text(person.screen.grab(), "Submit")[0]
        do(action="left_click", coordinate=list(submit.center))
        time.sleep(1.5)
        shot(app, "recording")
        app.click("stop")
        state = app.wait(lambda s: s["task_dialog"] and "task_save" in s["widgets"], "the offer to save a task file")
        meta = meta_of(state["recording"])
        assert meta["kind"] == "human" and meta["status"] in ("succeeded", "stopped") and meta["summary"]["steps"] >= 3
        shot(app, "record-save-task")
        out = tmp_path / "tasks" / "demo-recorded.yaml"
        out.parent.mkdir()
        replace_text(app, "task_path", str(out))
        app.click("task_save")
        state = app.wait(lambda s: s["task_file"] == str(out), "the task file", timeout=60)
        assert "demo-recorded.yaml" in state["status"] and "steps" in state["status"]
        app.wait(lambda s: f"xdg-open {out}" in s["opened"], "the editor to open it")
    finally:
        app.close()
        person.close()
    text_ = out.read_text()
    assert "Ada" in text_ and "click" in text_, text_
    # the task runs: on a fresh desktop with the form open, `deskpilot run` passes
    fresh = desktop_factory()
    fresh_form = tmp_path / "fresh-form.json"
    fresh.launch([sys.executable, str(DEMO_APP), str(fresh_form)])
    time.sleep(2.5)
    proc = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", str(out), "--display", fresh.display,
                           "--out", str(tmp_path / "runs")], env=os.environ | {"PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads(fresh_form.read_text())["name"] == "Ada"


def test_a_suite_with_two_attempts_shows_progress_and_its_report(desktop, fake: FakeAnthropic,
                                                                tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "always.yaml").write_text("name: always\nsteps:\n  - wait: 0.2\nchecks:\n  - command: 'true'\n")
    (suite / "first-only.yaml").write_text(
        "name: first-only\nsteps:\n  - wait: 0.2\nchecks:\n  - command: test \"$DESKPILOT_ATTEMPT\" = 0\n")
    app = AppDriver(desktop.display, fake, tmp_path)
    try:
        app.click("tab_suite")
        replace_text(app, "suite_folder", str(suite))
        replace_text(app, "suite_attempts", "2")
        app.click("suite_run")
        seen = set()
        deadline = time.monotonic() + 120
        while True:
            state = app.state()
            seen.add(state["suite"]["done"])
            if not state["running"] and state["suite"]["report"]:
                break
            assert time.monotonic() < deadline, state["suite"]
            time.sleep(0.05)
        suite_state = state["suite"]
        assert suite_state["total"] == 4 and suite_state["done"] == 4 and suite_state["passed"] == 3
        assert len(seen - {0}) >= 2, seen  # attempts were seen completing one after another
        assert sorted((r["task"], r["verdict"]) for r in suite_state["rows"]) == [
            ("always", "passed"), ("always", "passed"), ("first-only", "failed"), ("first-only", "passed")]
        assert "3/4 passed" in suite_state["summary"]
        summary = json.loads((Path(suite_state["run_folder"]) / "suite.json").read_text())
        assert summary["totals"]["attempts"] == 4 and summary["engine"]["name"] == "local"
        shot(app, "suite")
        app.click("suite_report")
        app.wait(lambda s: any(u.endswith(f"{Path(suite_state['run_folder']).name}/report.html")
                               for u in s["opened"]), "the suite report to open")
        state = app.wait(lambda s: any(r["kind"] == "suite" for r in s["runs"]), "the suite in the history")
        assert next(r for r in state["runs"] if r["kind"] == "suite")["what"].endswith("3/4 passed")
    finally:
        app.close()


def test_closing_the_window_mid_run_stops_it_cleanly(desktop_factory, fake: FakeAnthropic, tmp_path: Path) -> None:
    from Xlib import X
    from Xlib import display as xdisplay

    desktop = desktop_factory(window_manager=True)
    stage = desktop_factory()
    form = tmp_path / "held-form.json"
    task = tmp_path / "hold.yaml"
    task.write_text(f"""name: hold
setup:
  - launch: [python3, {DEMO_APP}, {form}]
  - wait_for: {{text: "Demo form", timeout: 30}}
steps:
  - agent: Keep dragging the mouse about
""")
    moves = itertools.count()

    def respond(_request: object) -> object:
        n = next(moves)
        if n == 0:
            return message(tool_use("computer", {"action": "mouse_move", "coordinate": [600, 500]}))
        if n == 1:
            return message(tool_use("computer", {"action": "left_mouse_down"}))
        return message(text("dragging"), tool_use("computer", {"action": "mouse_move",
                                                                "coordinate": [600 + n % 50, 500]}))

    fake.responder = respond
    app = AppDriver(desktop.display, fake, tmp_path, target=stage.display)
    try:
        replace_text(app, "goal", str(task))
        app.click("start")
        state = app.wait(lambda s: len(s["steps"]) >= 4, "the run to hold the button and drag", timeout=60)
        conn = xdisplay.Display(stage.display)
        assert conn.screen().root.query_pointer().mask & X.Button1Mask  # held by the run
        launched = [p for p in psutil.process_iter(["cmdline"]) if str(form) in " ".join(p.info["cmdline"] or [])]
        assert launched, "the task's program is not running"
        shot(app, "running")
        app.act(action="left_click", coordinate=state["widgets"]["steps"])  # focus the window, then close it
        app.act(action="key", text="alt+F4")
        app.proc.wait(timeout=40)
        assert app.proc.returncode == 0, app.log.read_text()[-2000:]
        recordings = list((tmp_path / "recordings").iterdir())
        assert len(recordings) == 1
        meta = meta_of(str(recordings[0]))
        assert meta["status"] == "stopped" and meta["summary"]["steps"] >= 4
        assert "closed" in (meta.get("error") or ""), meta.get("error")
        assert not conn.screen().root.query_pointer().mask & (X.Button1Mask | X.Button2Mask | X.Button3Mask)
        keys = conn.query_keymap()
        assert not any(keys), "a key is still held"
        conn.close()
        gone = psutil.wait_procs(launched, timeout=10)[1] == []
        assert gone, "the task's program outlived the app"
    finally:
        app.close()


def test_the_window_on_a_2560x1440_hidpi_screen(desktop_factory, fake: FakeAnthropic, tmp_path: Path) -> None:
    from Xlib import X, Xatom
    from Xlib import display as xdisplay

    from vision.geometry import Size

    desktop = desktop_factory(Size(2560, 1440))
    conn = xdisplay.Display(desktop.display)  # as a HiDPI desktop session does (xrdb): Xft.dpi 192
    conn.screen().root.change_property(Xatom.RESOURCE_MANAGER, Xatom.STRING, 8, b"Xft.dpi:\t192\n",
                                       X.PropModeReplace)
    conn.sync()
    conn.close()
    task = demo_task(tmp_path)
    app = AppDriver(desktop.display, fake, tmp_path)
    try:
        state = app.state()
        assert state["scale"] == 2.0
        x0, _, x1, _ = state["window_box"]
        assert x1 - x0 >= 2400
        replace_text(app, "goal", str(task))
        app.click("start")
        state = app.wait(lambda s: not s["running"] and s["view_mode"] == "still" and s["runs"], "the task",
                         timeout=90)
        assert state["status"].startswith("succeeded"), state["status"]
        assert shown_difference(app, Path(state["recording"]) / "frames" / "final.png") < 12
        app.click("run:0")
        app.wait(lambda s: s["selected_run"], "the run chosen")
        time.sleep(0.5)
        shot(app, "final-screen")
    finally:
        app.close()


pytestmark = pytest.mark.timeout(240)
