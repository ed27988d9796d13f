"""Recordings keep the accessible element under each pointer step, and replay finds it there first.

Real GTK applications on Xvfb with the accessibility bus: a task run, a model run and a person's
recording each store the element (role, name, box, path); replaying onto the application moved
elsewhere finds every target by its element (method `a11y`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from agent.recording.writer import Recording
from agent.replay.replayer import replay
from agent.session import RunOptions
from tests.portable_display import Where
from tests.test_accessibility import GTK_FORM, run, wait_for_element
from tests.test_record import LiveRecorder

pytest.importorskip("gi", reason="accessibility needs PyGObject (the a11y extra)")

FILL = """
steps:
  - click: {role: textbox, name: Name}
  - type: Ada
  - click: {role: checkbox, name: Subscribe}
  - click: {role: button, name: Save, exact: true}
  - expect: {role: label, name: Saved}
"""


def test_replay_finds_a_moved_gtk_button_by_its_element(desktop_factory, tmp_path: Path) -> None:
    first, second = desktop_factory(), desktop_factory()
    first.launch([sys.executable, str(GTK_FORM), str(tmp_path / "first.json"), "--at", "40,40"])
    wait_for_element(first, "button", "Save")
    code, recorded = run(first, tmp_path, FILL)
    assert code == 0, recorded.meta.get("error")

    second.launch([sys.executable, str(GTK_FORM), str(tmp_path / "second.json"), "--at", "610,330"])
    wait_for_element(second, "button", "Save")
    outcome = replay(recorded.path, RunOptions(out=tmp_path / "replays"), desktop=second)
    assert outcome.result.exit_code == 0, outcome.result.message
    assert json.loads((tmp_path / "second.json").read_text()) == {"name": "Ada", "email": "", "subscribe": True}
    replayed = Recording.load(outcome.recording)
    pointer = [s for s in replayed.steps if s["action"].get("action") == "left_click"]
    assert [s["target"]["method"] for s in pointer] == ["a11y", "a11y", "a11y"]
    assert replayed.meta["replay"]["methods"] == {"a11y": 3}
    for live, source in zip(pointer, [s for s in recorded.steps if s["action"].get("action") == "left_click"],
                            strict=True):
        assert live["target"]["shift"] == [570, 290]  # the window moved by (570, 290)
        assert live["element"]["name"] == source["element"]["name"]
    condition = next(s for s in replayed.steps if s.get("condition"))
    assert condition["condition"]["checked"] is True and condition["condition"]["method"] == "a11y"


def test_a_person_s_clicks_record_their_elements_and_replay_by_them(desktop_factory, tmp_path: Path) -> None:
    first, second = desktop_factory(), desktop_factory()
    first.launch([sys.executable, str(GTK_FORM), str(tmp_path / "first.json"), "--at", "40,40"])
    wait_for_element(first, "button", "Save")
    from vision.locate.accessibility import Snapshot
    from vision.locate.atspi import AtspiTree

    tree = AtspiTree(first.env())
    snapshot = Snapshot(tree)
    subscribe, save = snapshot.find("checkbox", "Subscribe")[0], snapshot.find("button", "Save", exact=True)[0]
    tree.close()
    rec = LiveRecorder(Where("x11", first), tmp_path / "recordings")
    rec.x("mousemove", *subscribe.center, "click", 1)
    rec.x("mousemove", *save.center, "click", 1)
    time.sleep(0.3)
    recording = Recording.load(rec.finish().recording)
    clicks = [s for s in recording.steps if s["action"]["action"] == "left_click"]
    assert [(s["element"]["role"], s["element"]["name"]) for s in clicks] == [("checkbox", "Subscribe"),
                                                                              ("button", "Save")]
    assert json.loads((tmp_path / "first.json").read_text())["subscribe"] is True

    second.launch([sys.executable, str(GTK_FORM), str(tmp_path / "second.json"), "--at", "500,100"])
    wait_for_element(second, "button", "Save")
    outcome = replay(recording.path, RunOptions(out=tmp_path / "replays"), desktop=second)
    assert outcome.result.exit_code == 0, outcome.result.message
    assert json.loads((tmp_path / "second.json").read_text())["subscribe"] is True
    assert Recording.load(outcome.recording).meta["replay"]["methods"] == {"a11y": 2}


def test_without_a_tree_replay_falls_back_to_the_anchor(desktop_factory, tmp_path: Path) -> None:
    first, second = desktop_factory(), desktop_factory(accessibility=False)
    first.launch([sys.executable, str(GTK_FORM), str(tmp_path / "first.json"), "--at", "40,40"])
    wait_for_element(first, "button", "Save")
    code, recorded = run(first, tmp_path, FILL)
    assert code == 0, recorded.meta.get("error")
    second.launch([sys.executable, str(GTK_FORM), str(tmp_path / "second.json"), "--at", "40,40"])
    time.sleep(3)  # its tree cannot be read: wait for it to be drawn
    outcome = replay(recorded.path, RunOptions(out=tmp_path / "replays"), desktop=second, end=3)  # the three clicks
    assert outcome.result.exit_code == 0, outcome.result.message
    assert json.loads((tmp_path / "second.json").read_text()) == {"name": "Ada", "email": "", "subscribe": True}
    methods = Recording.load(outcome.recording).meta["replay"]["methods"]
    assert "a11y" not in methods and sum(methods.values()) == 3


def test_a_model_s_click_records_the_element_under_it(desktop, tmp_path: Path) -> None:
    from agent.models.scripted import ScriptedModel, computer
    from agent.session import run_goal
    from vision.locate.accessibility import Snapshot
    from vision.locate.atspi import AtspiTree

    desktop.launch(["galculator"])
    wait_for_element(desktop, "button", "7")
    tree = AtspiTree(desktop.env())
    seven = Snapshot(tree).find("button", "7")[0]
    tree.close()
    model = ScriptedModel([[computer("left_click", coordinate=list(seven.center))], [computer("key", text="Escape")]],
                          image_size=lambda screen: screen)
    outcome = run_goal("press 7", RunOptions(out=tmp_path), desktop=desktop, model=model, kill_switch=False)
    assert outcome.result.exit_code == 0, outcome.result.message
    click, key = Recording.load(outcome.recording).steps
    assert (click["element"]["role"], click["element"]["name"]) == ("button", "7")
    assert "element" not in key  # only pointer steps
