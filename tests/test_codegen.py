"""`deskpilot codegen` and `record --codegen`: recordings become task files that run on the application moved elsewhere.

Real sessions: a person's work on the Tk demo form and on a GTK form (xdotool on Xvfb, seen through
X RECORD), turned into task files, then run on the same application opened at another place. The
carry-over rules (typing merged, secrets, keys, waits, what a task file cannot say) are checked on
a recording written step by step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.recording.writer import RecordingWriter
from agent.tasks.loader import load_task
from tests.portable_display import Where
from tests.test_accessibility import GTK_FORM, wait_for_element
from tests.test_record import DEMO_APP, LiveRecorder, fill_the_form, launch_demo

ROOT = Path(__file__).resolve().parent.parent


def deskpilot(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def steps_of(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["steps"]


# ----------------------------------------------------------------------------- the rules, step by step


def test_typing_keys_secrets_waits_and_what_cannot_be_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flat = np.full((800, 1280, 3), 90, np.uint8)
    writer = RecordingWriter(tmp_path / "rec", "run", goal="Log in", screen={"width": 1280, "height": 800})
    frame = writer.save_frame(flat, 0)
    element = {"role": "textbox", "name": "User", "box": [100, 100, 300, 130], "states": [], "path": [],
               "atspi_role": "text", "app": "x"}
    twin = {**element, "role": "button", "name": "OK", "box": [400, 400, 480, 430], "twins": 2, "nth": 1}
    for action, extra in [
        ({"action": "left_click", "coordinate": [250, 115]}, {"element": element, "frame": frame}),
        ({"action": "type", "text": "ad"}, {}),
        ({"action": "key", "text": "a"}, {}),
        ({"action": "type", "text": "m {{secret:PASS}}!"}, {}),
        ({"action": "key", "text": "Return", "repeat": 2}, {}),
        ({"action": "type", "text": "•••", "secret": "RECORDED_SECRET_1"}, {}),
        ({"action": "screenshot"}, {}),
        ({"action": "wait", "duration": 1.5}, {}),
        ({"action": "wait", "duration": 0.4}, {"condition": {"kind": "expect", "method": "a11y", "role": "label",
                                                             "name": "Welcome"}}),
        ({"action": "wait", "duration": 0.4}, {"condition": {"kind": "wait_for", "method": "ocr", "text": "Ready"}}),
        ({"action": "middle_click", "coordinate": [5, 5]}, {"frame": frame}),
        ({"action": "left_click", "coordinate": [5, 5], "text": "ctrl"}, {"frame": frame}),
        ({"tool": "bash", "command": "ls /tmp"}, {"tool": "bash"}),
        ({"action": "left_click", "coordinate": [440, 415]}, {"element": twin, "frame": frame}),
        ({"action": "left_click_drag", "start_coordinate": [250, 115], "coordinate": [290, 140]},
         {"element": element, "frame": frame}),
        ({"action": "scroll", "scroll_direction": "down", "scroll_amount": 2, "coordinate": [600, 300]},
         {"frame": frame}),
        ({"action": "left_click", "coordinate": [9, 9]}, {"ok": False, "error": "refused", "frame": frame}),
    ]:
        writer.add_step(action=action, **extra)
    writer.finish("succeeded")
    out = tmp_path / "login.yaml"
    result = deskpilot("codegen", str(writer.path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"task: {out}"
    assert "left out: step 10: middle_click: a task file has no such step" in result.stderr
    assert "left out: step 12: bash call (ls /tmp)" in result.stderr
    assert steps_of(out) == [
        {"click": {"role": "textbox", "name": "User", "offset": [50, 0]}},
        {"type": "adam "},  # two type steps and a one-character key, merged
        {"type": {"secret": "PASS"}},
        {"type": "!"},
        {"key": "Return Return"},
        {"type": {"secret": "RECORDED_SECRET_1"}},
        {"wait": 1.5},
        {"expect": {"role": "label", "name": "Welcome"}},
        {"wait_for": {"text": "Ready"}},
        {"click": {"role": "button", "name": "OK", "index": 1}},
        {"drag": {"from": {"role": "textbox", "name": "User", "offset": [50, 0]},
                  "to": {"role": "textbox", "name": "User", "offset": [90, 25]}}},
        {"scroll": {"direction": "down", "amount": 2, "target": {"x": 600, "y": 300}}},  # a flat screen: no name
    ]
    text = out.read_text(encoding="utf-8")
    assert "goal: \"Log in\"" in text and "# step 11 left out: left_click with ctrl held" in text
    assert "Secrets come from the environment: PASS, RECORDED_SECRET_1" in text
    monkeypatch.setenv("PASS", "x")
    monkeypatch.setenv("RECORDED_SECRET_1", "y")
    assert len(load_task(out).steps) == 12  # a valid task file


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec", "run", screen={"width": 100, "height": 100})
    writer.add_step(action={"action": "key", "text": "ctrl+s"})
    writer.finish("succeeded")
    existing = tmp_path / "mine.yaml"
    existing.write_text("goal: keep me\n")
    result = deskpilot("codegen", str(writer.path), "--out", str(existing))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert existing.read_text() == "goal: keep me\n"
    assert deskpilot("codegen", str(writer.path), "--out", str(tmp_path / "task.txt")).returncode == 2
    missing = deskpilot("codegen", str(tmp_path / "nope"), "--out", str(tmp_path / "t.yaml"))
    assert missing.returncode == 2 and "nope" in missing.stderr and not (tmp_path / "t.yaml").exists()
    default = deskpilot("codegen", str(writer.path))
    assert default.returncode == 0 and (writer.path / "task.yaml").is_file()
    assert steps_of(writer.path / "task.yaml") == [{"key": "ctrl+s"}]


# ----------------------------------------------------------------------------- a person's session, moved


def test_a_tk_session_becomes_a_task_that_runs_on_the_form_moved_elsewhere(desktop_factory, tmp_path: Path) -> None:
    recorded_on, moved = Where("x11", desktop_factory()), desktop_factory()
    launch_demo(recorded_on, tmp_path / "recorded.json")
    rec = LiveRecorder(recorded_on, tmp_path / "recordings")
    fill_the_form(rec, "Ada", "ada@example.com", double_click_at=(250, 160), scroll_at=(200, 500))
    recording = rec.finish().recording
    out = tmp_path / "demo_task.yaml"
    result = deskpilot("codegen", str(recording), "--out", str(out))
    assert result.returncode == 0, result.stderr
    steps = steps_of(out)
    assert [next(iter(s)) for s in steps] == ["click", "type", "click", "type", "key", "click", "double_click",
                                              "scroll", "drag", "click", "click"]
    assert steps[1] == {"type": "Ada"} and steps[4] == {"key": "ctrl+a"}
    assert steps[2]["click"]["text"] == "Email:" and "offset" in steps[2]["click"]  # an empty field, by its label
    assert steps[9] == {"click": {"text": "Submit"}}
    assert not any("x" in (s.get("click") or {}) for s in steps)  # every target is named

    moved.launch([sys.executable, str(DEMO_APP), str(tmp_path / "moved.json"), "--geometry", "760x620+420+160"])
    time.sleep(2)
    run = deskpilot("run", str(out), "--display", moved.display, "--out", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    form = json.loads((tmp_path / "moved.json").read_text(encoding="utf-8"))
    assert form["name"] == "Ada" and form["email"] == "ada@example.com" and form["colour"] == "Green"
    assert form["volume"] > 50 and form["notes_top_line"] != "1.0"


def test_record_codegen_on_a_gtk_form_runs_on_the_form_moved_elsewhere(desktop_factory, tmp_path: Path) -> None:
    recorded_on, moved = desktop_factory(), desktop_factory()
    recorded_on.launch([sys.executable, str(GTK_FORM), str(tmp_path / "recorded.json"), "--at", "40,40"])
    wait_for_element(recorded_on, "button", "Save")
    from vision.locate.accessibility import Snapshot
    from vision.locate.atspi import AtspiTree

    tree = AtspiTree(recorded_on.env())
    snapshot = Snapshot(tree)
    name, subscribe, save = (snapshot.find(*q)[0] for q in (("textbox", "Name"), ("checkbox", "Subscribe"),
                                                              ("button", "Save")))
    email = snapshot.find("textbox", index=1)[0]
    tree.close()
    out = tmp_path / "gtk_task.yaml"
    recorder = subprocess.Popen([sys.executable, "-m", "agent.ui.cli", "record", "--display", recorded_on.display,
                                 "--out", str(tmp_path / "recordings"), "--codegen", str(out)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert recorder.stdout is not None
        while not recorder.stdout.readline().startswith("stop:"):
            assert recorder.poll() is None, recorder.stderr.read() if recorder.stderr else ""

        def x(*args: object) -> None:
            subprocess.run(["xdotool", *map(str, args)], env=recorded_on.env(), check=True, timeout=15)
            time.sleep(0.4)

        x("mousemove", *name.center, "click", 1)
        x("type", "Grace")
        x("mousemove", *email.center, "click", 1)
        x("type", "grace@example.org")
        x("mousemove", *subscribe.center, "click", 1)
        x("mousemove", *save.center, "click", 1)
        time.sleep(0.5)
        x("key", "ctrl+alt+shift+s")
        output, errors = recorder.communicate(timeout=120)
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert recorder.returncode == 0, output + errors
    assert output.splitlines()[-1].startswith("recording: ") and f"task: {out}" in output
    steps = steps_of(out)
    assert steps[0]["click"]["role"] == "textbox" and steps[0]["click"]["name"] == "Name:"
    assert steps[1] == {"type": "Grace"}
    assert steps[2]["click"]["text"] == "Email:" and "offset" in steps[2]["click"]  # unnamed: its label
    assert steps[4] == {"click": {"role": "checkbox", "name": "Subscribe"}}
    assert steps[5] == {"click": {"role": "button", "name": "Save"}}
    assert json.loads((tmp_path / "recorded.json").read_text())["name"] == "Grace"

    moved.launch([sys.executable, str(GTK_FORM), str(tmp_path / "moved.json"), "--at", "640,300"])
    wait_for_element(moved, "button", "Save")
    run = deskpilot("run", str(out), "--display", moved.display, "--out", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "moved.json").read_text()) == {"name": "Grace", "email": "grace@example.org",
                                                                 "subscribe": True}


def test_record_codegen_refuses_an_existing_file_before_recording(desktop, tmp_path: Path) -> None:
    existing = tmp_path / "t.yaml"
    existing.write_text("goal: mine\n")
    result = deskpilot("record", "--display", desktop.display, "--out", str(tmp_path / "rec"), "--codegen",
                       str(existing), timeout=60)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert not (tmp_path / "rec").exists() and existing.read_text() == "goal: mine\n"
