"""`deskpilot replay` end to end: real recordings of the demo form replayed onto fresh windows on Xvfb.

One task recording is made per module (by `deskpilot run TASK.yaml`); each test launches a new
demo app (moved, resized, with its Submit button removed, renamed or doubled) on its own display
and replays onto it, then looks at what the app saved.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import agent.replay.replayer as replay_module
from actions.platform.x11.desktop import VirtualDesktop
from agent.errors import BadInput
from agent.models.scripted import ScriptedModel, claude_image_size, computer, say
from agent.recording.writer import Recording, RecordingError
from agent.replay.locate import MATCH_MIN
from agent.replay.plan import InvalidRecording
from agent.replay.replayer import replay
from agent.session import RunOptions, run_goal
from agent.ui.cli import main as cli_main
from vision.capture import Frame, Screen
from vision.geometry import Size

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo_app.py"
SECRET_VAR, SECRET = "DESKPILOT_REPLAY_TEST_PW", "s3cret-Pässwörd"
SUBMIT_STEP = 13  # the index of "click Submit" in the recording below

TASK = """\
name: replay-fixture
setup:
  - run: rm -f {out}
  - launch: [python3, {demo}, {out}]
  - wait_for: {{text: "Demo form", timeout: 30}}
steps:
  - click: {{text: "Name:", offset: [180, 0]}}
  - type: Lovelace
  - key: ctrl+a
  - type: "Zoë Ångström "
  - click: {{text: "Email:", offset: [180, 0]}}
  - type: zoe@example.com
  - click: {{text: "Password:", offset: [180, 0]}}
  - type: {{secret: {secret}}}
  - click: Green
  - click: Subscribe
  - drag: {{from: {{text: "Volume:", offset: [72, 14]}}, to: {{text: "Volume:", offset: [260, 14]}}}}
  - scroll: {{direction: down, amount: 5, target: {{text: "line 3"}}}}
  - wait: 0.2
  - click: Submit
  - wait_for: {{text: "Hello", timeout: 10}}
  - click: OK
checks:
  - file: {{path: {out}, contains: Lovelace}}
"""


class Recorded:
    """The module's task recording and the state the app saved when it was made."""

    def __init__(self, path: Path, state: dict) -> None:
        self.path, self.state = path, state

    def copy(self, dest: Path) -> Path:
        """A copy to damage."""
        shutil.copytree(self.path, dest)
        return dest


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    root = tmp_path_factory.mktemp("recorded")
    out = root / "form.json"
    task = root / "task.yaml"
    task.write_text(TASK.format(out=out, demo=DEMO, secret=SECRET_VAR), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_VAR, SECRET)
        desktop = VirtualDesktop(Size(1280, 800)).start()
        try:
            code = cli_main(["run", str(task), "--display", desktop.display, "--out", str(root / "recordings")])
        finally:
            desktop.stop()
        assert code == 0
        [path] = (root / "recordings").iterdir()
        state = json.loads(out.read_text(encoding="utf-8"))
        assert state["name"] == "Zoë Ångström Lovelace" and state["colour"] == "Green" and state["volume"] > 0
        assert Recording.load(path).steps[SUBMIT_STEP]["describe"] == "click 'Submit'"
        yield Recorded(path, state)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "TIMEOUT_S", 2.0)


def launch_app(desktop: VirtualDesktop, out: Path, *args: str) -> None:
    """Start a fresh demo form on `desktop` and wait until it is drawn and still."""
    desktop.launch([sys.executable, str(DEMO), str(out), *args])
    deadline = time.monotonic() + 30
    with Screen(desktop.display) as screen:
        last = None
        while time.monotonic() < deadline:
            frame = screen.grab()
            if frame.pixels.std() > 10 and last is not None and frame.same_as(last):
                return
            last = frame
            time.sleep(0.25)
    raise AssertionError("the demo app did not show up")


def options(tmp_path: Path, desktop: VirtualDesktop) -> RunOptions:
    return RunOptions(display=desktop.display, out=tmp_path / "replays", workdir=tmp_path)


def steps_of(recording: Path) -> list[dict]:
    return Recording.load(recording).steps


def saved(out: Path) -> dict | None:
    return json.loads(out.read_text(encoding="utf-8")) if out.exists() else None


class Explodes:
    """A desktop that fails the test if the replay ever opens it."""

    @property
    def display(self) -> str:
        raise AssertionError("the replay touched the display before rejecting its input")


# ----------------------------------------------------------------------------- replays that succeed


@pytest.mark.parametrize("geometry", [None, "760x620+300+150", "900x700+40+40"], ids=["same", "moved", "resized"])
def test_replay_reproduces_the_saved_state(recorded, secret_env, desktop, tmp_path: Path, geometry) -> None:
    out = tmp_path / "form.json"
    launch_app(desktop, out, *(["--geometry", geometry] if geometry else []))
    speed = 2.0 if geometry == "900x700+40+40" else 1.0
    outcome = replay(recorded.path, options(tmp_path, desktop), speed=speed, desktop=desktop)
    assert outcome.result.exit_code == 0, outcome.result.message
    assert saved(out) == recorded.state  # name (Unicode, after ctrl+a), email, password hash, colour, volume...

    meta = Recording.load(outcome.recording).meta
    assert meta["kind"] == "replay" and meta["status"] == "succeeded"
    assert meta["replay_of"] == str(recorded.path.resolve())
    lines = steps_of(outcome.recording)
    assert [s["replayed_step"] for s in lines] == list(range(len(steps_of(recorded.path))))
    methods = {s["replayed_step"]: s["target"]["method"] for s in lines if s.get("target")}
    assert set(methods.values()) <= {"anchor_near", "anchor_global", "ocr"}
    assert methods[SUBMIT_STEP] == ("anchor_near" if geometry != "760x620+300+150" else "anchor_global")
    submit = lines[SUBMIT_STEP]
    assert submit["target"]["confidence"] >= MATCH_MIN and submit["anchor"] is not None
    if geometry == "760x620+300+150":  # every click moved with the window
        assert submit["target"]["shift"] == [260, 110]
    typed = next(s for s in lines if s["action"].get("secret") == SECRET_VAR)
    assert typed["action"]["text"] == "•••"  # the secret was typed, and never written in clear
    assert SECRET not in "".join(p.read_text(encoding="utf-8") for p in outcome.recording.glob("*.json*"))
    assert not any(s.get("skipped") for s in lines)
    assert lines[SUBMIT_STEP - 1]["action"] == {"action": "wait", "duration": round(0.2 / speed, 3)}
    assert lines[SUBMIT_STEP + 1]["condition"]["checked"] is True  # wait_for "Hello" was waited for again


def test_truncated_recording_replays_up_to_its_last_complete_step(recorded, secret_env, desktop,
                                                                   tmp_path: Path) -> None:
    source = recorded.copy(tmp_path / "cut")
    lines = (source / "steps.jsonl").read_bytes().splitlines(keepends=True)
    (source / "steps.jsonl").write_bytes(b"".join(lines[:6]) + lines[6][: len(lines[6]) // 2])
    meta = json.loads((source / "meta.json").read_text(encoding="utf-8"))
    meta.update(status="running", ended=None)
    (source / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    assert Recording.load(source).truncated

    launch_app(desktop, tmp_path / "form.json")
    outcome = replay(source, options(tmp_path, desktop), desktop=desktop)
    assert outcome.result.exit_code == 0, outcome.result.message
    assert [s["replayed_step"] for s in steps_of(outcome.recording)] == [0, 1, 2, 3, 4, 5]
    assert Recording.load(outcome.recording).meta["source_status"] == "running"


# ----------------------------------------------------------------------------- replays that stop


@pytest.mark.parametrize("label", ["", "Send"], ids=["removed", "renamed"])
def test_missing_target_stops_without_clicking(recorded, secret_env, short_timeout, desktop, tmp_path: Path,
                                               label: str) -> None:
    out = tmp_path / "form.json"
    launch_app(desktop, out, "--submit-label", label)
    outcome = replay(recorded.path, options(tmp_path, desktop), start=10, desktop=desktop)
    result = outcome.result
    assert (result.status, result.exit_code) == ("failed", 1)
    assert f"step {SUBMIT_STEP} (click 'Submit'): not found" in result.message
    assert "recorded screenshot:" in result.message and "live screenshot:" in result.message
    assert not out.exists()  # nothing was clicked where Submit used to be

    lines = steps_of(outcome.recording)
    assert [s["replayed_step"] for s in lines] == [10, 11, 12, 13]
    lost = lines[-1]
    assert lost["ok"] is False and lost["lost"] == "not found" and lost["candidates"]
    assert (outcome.recording / lost["live_frame"]).is_file()
    assert Path(lost["recorded_frame"]) == recorded.path / "frames" / f"{SUBMIT_STEP:06d}.png"
    meta = Recording.load(outcome.recording).meta
    assert meta["status"] == "failed" and meta["diverged"]["step"] == SUBMIT_STEP
    if label == "":  # Clear moved into Submit's place: a stale click would have cleared the form
        from vision.locate.ocr import find_text

        final = Recording.load(outcome.recording).load_image("frames/final.png")
        assert find_text(final, "Ready")


def test_duplicate_target_stops_as_ambiguous(recorded, secret_env, desktop, tmp_path: Path) -> None:
    out = tmp_path / "form.json"
    launch_app(desktop, out, "--duplicate-submit")
    outcome = replay(recorded.path, options(tmp_path, desktop), start=10, desktop=desktop)
    assert outcome.result.exit_code == 1
    assert f"step {SUBMIT_STEP} (click 'Submit'): ambiguous" in outcome.result.message
    assert "candidates:" in outcome.result.message
    lost = steps_of(outcome.recording)[-1]
    assert lost["lost"] == "ambiguous"
    submit_y = steps_of(recorded.path)[SUBMIT_STEP]["target"]["point"][1]
    texts = [c["box"] for c in lost["candidates"] if c["method"] in ("ocr", "text_image")]
    assert len({b[0] // 20 for b in texts if b[1] <= submit_y < b[3]}) == 2, lost["candidates"]  # both Submits
    assert not out.exists()


def test_no_verify_replays_raw_coordinates(recorded, secret_env, desktop, tmp_path: Path) -> None:
    out = tmp_path / "form.json"
    launch_app(desktop, out, "--geometry", "760x620+300+150")
    outcome = replay(recorded.path, options(tmp_path, desktop), verify=False, desktop=desktop)
    assert outcome.result.exit_code == 0  # it does not look, so it does not notice
    assert saved(out) != recorded.state
    lines = steps_of(outcome.recording)
    assert {s["target"]["method"] for s in lines if s.get("target")} == {"raw"}
    click = lines[0]
    assert click["action"]["coordinate"] == steps_of(recorded.path)[0]["action"]["coordinate"]


def test_stop_ends_the_replay_before_its_next_step(recorded, desktop, tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    seen: list[int] = []

    def on_step(line: dict, usage: object) -> None:
        seen.append(line["replayed_step"])
        stop.set()

    outcome = replay(recorded.path, options(tmp_path, desktop), start=1, end=3, desktop=desktop, on_step=on_step,
                     stop=stop)  # type, key, type: no target to find, no app needed
    assert (outcome.result.status, outcome.result.exit_code, outcome.result.steps) == ("stopped", 3, 1)
    assert seen == [1] and Recording.load(outcome.recording).meta["status"] == "stopped"


# ----------------------------------------------------------------------------- healing


def test_lost_target_is_healed_by_the_model(recorded, secret_env, short_timeout, desktop, tmp_path: Path) -> None:
    out = tmp_path / "form.json"
    launch_app(desktop, out, "--submit-label", "Send")
    x, y = steps_of(recorded.path)[SUBMIT_STEP]["target"]["point"]  # Send is where Submit was
    model = ScriptedModel([[say("There it is."), computer("left_click", coordinate=[x, y])]])
    outcome = replay(recorded.path, options(tmp_path, desktop), start=10, model=model, desktop=desktop)
    assert outcome.result.exit_code == 0, outcome.result.message
    assert saved(out) is not None and saved(out)["volume"] > 0
    healed = steps_of(outcome.recording)[3]
    assert healed["replayed_step"] == SUBMIT_STEP and healed["target"]["method"] == "healed"
    assert healed["action"]["coordinate"] == [x, y]
    [request] = model.requests
    [turn] = request["history"]
    assert isinstance(turn.parts[0], Frame) and turn.parts[1] == 'click on "Submit"'
    assert Recording.load(outcome.recording).model_calls[0]["purpose"] == "heal"


# ----------------------------------------------------------------------------- a model's recording


def test_model_recording_replays_and_skips_other_tools(desktop_factory, tmp_path: Path) -> None:
    first = desktop_factory()
    launch_app(first, tmp_path / "first.json")
    model = ScriptedModel([
        [say("I click the Name field."), computer("left_click", coordinate=[300, 117])],
        [computer("type", text="Grace Hopper")],
        [{"type": "tool_use", "id": "toolu_bash_1", "name": "bash", "input": {"command": "echo hello"}}],
        [computer("left_click", coordinate=[5000, 10])],  # out of bounds: never executed (ok false)
        [say("Now Blue."), computer("left_click", coordinate=[196, 294])],
        [computer("screenshot")],
        [say("Submit."), computer("left_click", coordinate=[210, 584])],
    ])
    run = run_goal("fill the form", RunOptions(display=first.display, out=tmp_path / "runs", workdir=tmp_path),
                   desktop=first, model=model)
    assert run.result.exit_code == 0, run.result.message
    assert saved(tmp_path / "first.json")["colour"] == "Blue"

    second = desktop_factory()
    out = tmp_path / "second.json"
    launch_app(second, out, "--geometry", "760x620+200+100")
    outcome = replay(run.recording, options(tmp_path, second), desktop=second)
    assert outcome.result.exit_code == 0, outcome.result.message
    state = saved(out)
    assert state is not None and state["name"] == "Grace Hopper" and state["colour"] == "Blue"
    lines = steps_of(outcome.recording)
    skipped = {s["replayed_step"]: s["skipped"] for s in lines if s.get("skipped")}
    assert sorted(skipped) == [2, 3, 5]
    assert "bash tool step" in skipped[2] and "ok: false" in skipped[3] and "read-only" in skipped[5]
    assert all(s["ok"] is False and s["frame"] is None for s in lines if s.get("skipped"))
    shifts = [s["target"]["shift"] for s in lines if s.get("target")]
    assert len(shifts) == 3 and all(abs(dx - 160) <= 3 and abs(dy - 60) <= 3 for dx, dy in shifts), shifts


def test_act_recording_replays_onto_a_moved_window(desktop_factory, tmp_path: Path) -> None:
    first = desktop_factory()
    launch_app(first, tmp_path / "first.json")
    actions = [{"action": "left_click", "coordinate": [300, 117]}, {"action": "type", "text": "Ada"},
               {"action": "left_click", "coordinate": [210, 584]}]
    code = cli_main(["act", *map(json.dumps, actions), "--display", first.display, "--out", str(tmp_path / "act")])
    assert code == 0 and saved(tmp_path / "first.json")["name"] == "Ada"
    [recording] = (tmp_path / "act").iterdir()

    second = desktop_factory()
    out = tmp_path / "second.json"
    launch_app(second, out, "--geometry", "760x620+120+90")
    outcome = replay(recording, options(tmp_path, second), desktop=second)
    assert outcome.result.exit_code == 0, outcome.result.message
    assert saved(out)["name"] == "Ada"
    assert steps_of(outcome.recording)[2]["target"] == {**steps_of(outcome.recording)[2]["target"],
                                                        "method": "anchor_global", "shift": [80, 50]}


# ----------------------------------------------------------------------------- bad input: nothing runs


def test_corrupt_recordings_are_rejected_naming_the_problem(recorded, secret_env, tmp_path: Path) -> None:
    opts = RunOptions(display=":99", out=tmp_path / "replays")

    bad_json = recorded.copy(tmp_path / "bad-json")
    lines = (bad_json / "steps.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = '{"i": 2, "action": \n'
    (bad_json / "steps.jsonl").write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"steps.jsonl: line 3: not valid JSON") as caught:
        replay(bad_json, opts, desktop=Explodes())
    assert caught.value.exit_code == 2

    no_frame = recorded.copy(tmp_path / "no-frame")
    (no_frame / "frames" / "000004.png").unlink()
    with pytest.raises(InvalidRecording, match=r"line 5: frame: frames/000004.png is missing"):
        replay(no_frame, opts, desktop=Explodes())

    version = recorded.copy(tmp_path / "version")
    meta = json.loads((version / "meta.json").read_text(encoding="utf-8"))
    meta["format"] = "deskpilot.recording/9"
    (version / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(InvalidRecording, match=r"has format 'deskpilot.recording/9'"):
        replay(version, opts, desktop=Explodes())

    broken_anchor = recorded.copy(tmp_path / "broken-anchor")
    (broken_anchor / "anchors" / f"{SUBMIT_STEP:06d}.png").write_bytes(b"not a png")
    with pytest.raises(InvalidRecording, match=rf"step {SUBMIT_STEP}: .*anchors/{SUBMIT_STEP:06d}.png"):
        replay(broken_anchor, opts, desktop=Explodes())
    with pytest.raises(InvalidRecording, match="no such recording folder"):
        replay(tmp_path / "nowhere", opts, desktop=Explodes())


def test_bad_ranges_speed_and_unset_secrets_exit_2_before_anything_runs(recorded, secret_env,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    opts = RunOptions(display=":99", out=tmp_path / "replays")
    count = len(steps_of(recorded.path))
    for start, end, message in [(count, None, f"--from {count} is out of range"),
                                (None, count, f"--to {count} is out of range"),
                                (-1, None, "--from -1 is out of range"), (5, 2, "--from 5 is after --to 2")]:
        with pytest.raises(BadInput, match=message) as caught:
            replay(recorded.path, opts, start=start, end=end, desktop=Explodes())
        assert caught.value.exit_code == 2
    with pytest.raises(BadInput, match="--speed must be a positive number"):
        replay(recorded.path, opts, speed=0, desktop=Explodes())

    monkeypatch.delenv(SECRET_VAR)
    with pytest.raises(BadInput, match=rf"{SECRET_VAR} \(step 7\)"):
        replay(recorded.path, opts, desktop=Explodes())
    with pytest.raises(BadInput, match=r"--from 0 is after --to -1|out of range"):  # range errors come first
        replay(recorded.path, opts, end=-1, desktop=Explodes())
    assert not (tmp_path / "replays").exists()  # not even a recording was started


def test_cli_exit_codes(recorded, secret_env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run_cli(*argv: str) -> int:
        from agent.ui import cli

        return cli.main(["replay", *argv])

    assert run_cli(str(recorded.path), "--from", "99", "--out", str(tmp_path)) == 2
    assert "--from 99 is out of range" in capsys.readouterr().err
    assert run_cli(str(tmp_path / "missing"), "--out", str(tmp_path)) == 2
    assert "no such recording folder" in capsys.readouterr().err


def test_healing_keeps_the_offset_from_a_target_text(tmp_path: Path) -> None:
    """`click: {text: "Name:", offset: [180, 0]}`: the model finds the text; the click keeps its offset."""
    import numpy as np

    from agent.recording.writer import RecordingWriter
    from agent.replay.heal import Healer
    from agent.replay.locate import Anchor, Lost
    from agent.replay.plan import Planned
    from vision.capture import Frame
    from vision.geometry import ScreenMap

    class Session:
        mapping = ScreenMap(Size(1920, 1080), claude_image_size(Size(1920, 1080)))  # model image 1430x804
        computer = SimpleNamespace(spec=None)

    step = {"i": 4, "action": {"action": "left_click", "coordinate": [298, 117]}, "thought": None,
            "target": {"method": "ocr", "point": [298, 117], "box": [76, 98, 160, 136], "text": "Name:"}}
    item = Planned(step, "act", action=step["action"], primary="coordinate",
                   anchor=Anchor(np.zeros((80, 120, 3), np.uint8), (238, 77, 358, 157), (298, 117)),
                   hint=("Name:", (76, 98, 160, 136)))
    model = ScriptedModel([[computer("left_click", coordinate=[400, 300])]])
    healer = Healer(model, Session.mapping, Session.computer.spec, RecordingWriter(tmp_path, "replay"), ratio=1.0)
    frame = Frame(np.zeros((1080, 1920, 3), np.uint8))
    healed = healer.heal(item, frame, Lost("not found", "gone"))
    label = Session.mapping.to_screen(400, 300)
    assert healed is not None and healed.method == "healed"
    assert healed.point == (round(label[0] + 298 - 117.5), round(label[1] + 117 - 116.5))
    assert model.requests[0]["history"][0].parts[1] == 'click on "Name:"'
    healer.recorder.finish("succeeded")
