"""Rollouts: parallel attempts on private displays, verification by checks, the judge, apply, cleanup."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.anthropic import Claude
from agent.models.base import ModelConfig
from agent.models.scripted import ScriptedModel, computer, say
from agent.recording.writer import Recording, RecordingWriter
from agent.rollouts.attempts import ATTEMPT_HEADER, Attempt, temperature_supported, temperatures
from agent.rollouts.judge import parse_judge_reply
from agent.rollouts.narrative import narrate
from agent.rollouts.run import run_rollouts
from agent.rollouts.select import fallback_choice
from agent.session import Callbacks, RunOptions
from agent.tasks.loader import parse_task
from agent.types import ToolCall, Usage
from tests.eval_helpers import xvfb_children
from tests.fake_anthropic import message, text, tool_use
from vision.diff import changed_boxes, screens_differ

ROOT = Path(__file__).resolve().parent.parent
DEMO_APP = ROOT / "examples" / "demo_app.py"

# Each attempt writes the form to its own folder; the check reads it back from there. The form is
# awaited by its title's picture (template matching), which costs far less than OCR on this 2-core machine.
TASK = f"""
name: rollout-demo
goal: Type Ada in the Name field and press Submit.
display: {{width: 1280, height: 800}}
setup:
  - launch: python3 {DEMO_APP} "$DESKPILOT_ATTEMPT_DIR/out.json"
  - wait_for: {{image: TITLE, timeout: 30}}
checks:
  - command: >-
      python3 -c "import json, os; d = json.load(open(os.environ['DESKPILOT_ATTEMPT_DIR'] + '/out.json'));
      assert d['name'] == 'Ada', d"
"""


def options(tmp_path: Path, **limits: object) -> RunOptions:
    return RunOptions(model=ModelConfig(model="claude-sonnet-4-6", max_retries=0, timeout_s=10.0),
                      loop=LoopConfig(limits=Limits(**{"max_steps": 12, "max_seconds": 90, **limits})),
                      out=tmp_path / "recordings", workdir=tmp_path)


def task_in(tmp_path: Path, form: dict):
    body = TASK.replace("TITLE", str(form["title"]))
    path = tmp_path / "task.yaml"
    path.write_text(body, encoding="utf-8")
    return parse_task(body, path)


_EARLIER_XVFB: set[int] = set()  # servers of other tests' longer-lived fixtures, alive before this test


@pytest.fixture(autouse=True)
def _earlier_xvfb() -> None:
    _EARLIER_XVFB.clear()
    _EARLIER_XVFB.update(xvfb_children())


def leftovers(attempt_dirs: list[str]) -> list[str]:
    """Xvfb servers started by this process (during this test) and demo apps of these attempts still alive."""
    alive = [f"Xvfb {pid}" for pid in sorted(xvfb_children() - _EARLIER_XVFB)]
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "demo_app.py" in line and any(d in line for d in attempt_dirs):
            alive.append(line)
    return alive


@pytest.fixture(scope="module")
def form(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Where the demo form's Name field and Submit button are on a 1280x800 display (found by OCR),
    and a picture of its title to wait for."""
    from actions.platform.x11.desktop import VirtualDesktop
    from vision.capture import Screen
    from vision.locate.ocr import TextFinder

    with VirtualDesktop() as desktop:
        desktop.launch([sys.executable, str(DEMO_APP), os.devnull])
        screen = Screen(desktop.display)
        finder = TextFinder()
        deadline = time.monotonic() + 30
        while True:
            frame = screen.grab()
            try:
                name, submit = finder.find_text(frame, "Name:")[0], finder.find_text(frame, "Submit")[0]
                title = finder.find_text(frame, "Demo form")[0].box
                break
            except LookupError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        screen.close()
    from vision.encode import encode

    picture = tmp_path_factory.mktemp("form") / "title.png"
    picture.write_bytes(encode(frame.pixels[title[1] - 4:title[3] + 4, title[0] - 8:title[2] + 8]).data)
    # model space is screen space at 1280x800 (it fits Claude's limits unscaled)
    return {"name": (name.center[0] + 180, name.center[1]), "submit": submit.center, "title": picture}


# ----------------------------------------------------------------------------- the scripted server


def click(point: tuple[int, int]):
    return message(tool_use("computer", {"action": "left_click", "coordinate": list(point)}))


def typed(value: str):
    return message(tool_use("computer", {"action": "type", "text": value}))


def move(point: tuple[int, int]):
    return message(tool_use("computer", {"action": "mouse_move", "coordinate": list(point)}))


def test_six_attempts_the_cheapest_passing_one_wins_and_nothing_survives(fake, form, tmp_path: Path) -> None:
    name, submit = form["name"], form["submit"]
    plays = {
        0: [move((700, 700)), click(name), typed("Ada"), click(submit), message(text("Done."))],  # passes, 4 steps
        1: [click(name), typed("Ada"), click(submit), message(text("Done."))],  # passes, 3 steps: the cheapest
        2: [click(name), typed("Bob"), click(submit), message(text("Done."))],  # the check fails
        4: [move((900, 700))] * 8,  # the same action on an unchanged screen: stuck
    }
    served: dict[int, int] = {}
    lock = threading.Lock()

    def responder(request):
        if ATTEMPT_HEADER not in request.headers:  # the judge: it must not be needed here
            return message(text("no opinion"))
        i = int(request.headers[ATTEMPT_HEADER])
        if i == 5:
            raise ValueError("garbage for attempt 5")  # a 500 the SDK does not retry: the model is unavailable
        with lock:
            k = served[i] = served.get(i, -1) + 1
        script = plays[i]
        return script[k] if k < len(script) else message(text("Done."))

    fake.responder = responder

    def factory(i: int, config: ModelConfig):
        if i == 3:
            raise RuntimeError("model factory exploded for attempt 3")
        return Claude(config.model, config)

    steps: list[dict] = []
    outcome = run_rollouts(task_in(tmp_path, form), options(tmp_path), n=6, parallel=3, model_factory=factory,
                           callbacks=Callbacks(on_step=lambda line, usage: steps.append(line)))
    attempts = outcome.attempts
    assert [a.status for a in attempts] == ["succeeded", "succeeded", "failed", "error", "failed", "error"], \
        [a.message for a in attempts]
    assert [a.passed for a in attempts] == [True, True, False, False, False, False]
    assert outcome.chosen == 1 and outcome.selection == "checks", outcome.reason
    assert outcome.pass_at_n == 1 and outcome.mean_success == pytest.approx(2 / 6)
    assert outcome.result.status == "succeeded" and outcome.result.exit_code == 0 and outcome.result.steps == 3
    assert attempts[0].steps == 4 and attempts[1].steps == 3
    assert "Bob" in attempts[2].checks[0]["detail"] and not attempts[2].checks[0]["ok"]
    assert attempts[3].crashed and "exploded" in attempts[3].message
    assert "stuck" in attempts[4].message
    assert "model API" in attempts[5].message and attempts[5].crashed is None
    assert {line["attempt"] for line in steps} == {0, 1, 2, 4}

    # each attempt samples on its own: a temperature from 0 to 1 where the API still takes one
    temps = temperatures(6) if temperature_supported() else [None] * 6
    assert [a.temperature for a in attempts] == temps
    for request in fake.messages_requests():
        i = int(request.headers[ATTEMPT_HEADER])
        assert request.body.get("temperature") == temps[i]

    # the parent recording links every attempt, the chosen one and why
    parent = Recording.load(outcome.recording, partial_ok=False)
    meta = parent.meta
    assert meta["kind"] == "rollouts" and meta["status"] == "succeeded" and meta["chosen"] == 1
    assert meta["selection"] == "checks" and "cheapest of 2 passing" in meta["chosen_reason"]
    assert meta["judge"] is None and meta["pass_at_n"] == 1
    assert len(meta["attempts"]) == 6
    for n, entry in enumerate(meta["attempts"]):
        assert {"path", "status", "passed", "steps", "cost_usd"} <= set(entry)
        folder = outcome.recording / entry["path"]
        assert folder.is_dir() and folder.parent == outcome.recording / "attempts" / str(n)
        attempt_meta = Recording.load(folder).meta
        assert attempt_meta["status"] == entry["status"]  # the crashed one too: "error", not "running"
    assert parent.final_frame_path is not None and parent.final_frame_path.is_file()
    assert meta["summary"]["cost_usd"] == pytest.approx(sum(a.usage.cost_usd for a in attempts), abs=1e-5)
    assert outcome.sequential_s >= max(a.duration_s for a in attempts)

    summary = outcome.summary()
    assert "pass@6: 1" in summary and "mean success 0.33" in summary and "chosen: attempt 1" in summary
    assert "sequential time" in summary and "total cost $" in summary

    # the narrative of the winner says what appeared on screen
    story = narrate(attempts[1].recording)
    assert len(story) == 3 and "appeared" in story[1] and "Ada" in story[1], story
    assert "Hello Ada" in story[2] or "Saved" in story[2], story

    from agent.ui.report import write_report

    assert "★ chosen" in write_report(outcome.recording).read_text(encoding="utf-8")
    assert leftovers(["deskpilot-attempt-"]) == []


# ----------------------------------------------------------------------------- the judge


def scripted(plays: dict[int, list[list[dict]]]):
    def factory(i: int, config: ModelConfig) -> ScriptedModel:
        assert config.extra_headers[ATTEMPT_HEADER] == str(i)
        return ScriptedModel(plays[i])
    return factory


GOAL_PLAYS = {
    0: [[computer("left_click", coordinate=[100, 100])], [computer("left_click", coordinate=[200, 200])],
        [say("Done: clicked both.")]],
    1: [[computer("left_click", coordinate=[100, 100])], [say("Done.")]],
    2: [[say("IMPOSSIBLE: there is no such window on this desktop.")]],
}


def test_a_plain_goal_is_judged_and_the_judge_names_the_winner(tmp_path: Path) -> None:
    judge = ScriptedModel([[say('Having compared them: {"reasoning": "Attempt 2 told the truth.", "choice": 2}')]])
    outcome = run_rollouts("Open the flux capacitor settings.", options(tmp_path), n=3, parallel=3,
                           model_factory=scripted(GOAL_PLAYS), judge_model=judge)
    assert [a.status for a in outcome.attempts] == ["succeeded", "succeeded", "failed"]
    assert outcome.attempts[2].impossible and not outcome.verified
    assert outcome.chosen == 2 and outcome.selection == "judge"
    assert outcome.result.status == "failed" and "IMPOSSIBLE" in outcome.result.message
    meta = Recording.load(outcome.recording).meta
    assert meta["chosen"] == 2 and meta["judge"]["choice"] == 2
    assert meta["judge"]["reasoning"] == "Attempt 2 told the truth." and '"choice": 2' in meta["judge"]["raw"]
    # one call: every candidate's narrative and its first and last screenshots
    (request,) = judge.requests
    (turn,) = request["history"]
    words = turn.text
    assert "## Attempt 0" in words and "## Attempt 1" in words and "## Attempt 2" in words
    assert "1. left_click (100, 100) -> no visible change" in words and "IMPOSSIBLE" in words
    assert len(turn.images) == 6
    assert request["tools"][0].name == "choose_attempt"


def test_an_unparseable_judge_reply_falls_back_to_the_cheapest_success(tmp_path: Path) -> None:
    judge = ScriptedModel([[say("They all look fine to me.")]])
    outcome = run_rollouts("Open the flux capacitor settings.", options(tmp_path), n=3, parallel=2,
                           model_factory=scripted(GOAL_PLAYS), judge_model=judge)
    assert outcome.chosen == 1 and outcome.selection == "fallback"
    assert "could not be parsed" in outcome.reason and "the cheapest that succeeded" in outcome.reason
    meta = Recording.load(outcome.recording).meta
    assert meta["judge"]["choice"] is None and meta["judge"]["raw"] == "They all look fine to me."
    assert outcome.result.status == "succeeded" and outcome.result.steps == 1


# ----------------------------------------------------------------------------- apply


def test_apply_replays_the_winner_onto_the_target_where_the_checks_hold(form, desktop, tmp_path: Path) -> None:
    name, submit = form["name"], form["submit"]
    plays = {
        0: [[computer("left_click", coordinate=list(name))], [computer("type", text="Bob")],
            [computer("left_click", coordinate=list(submit))]],
        1: [[computer("left_click", coordinate=list(name))], [computer("type", text="Ada")],
            [computer("left_click", coordinate=list(submit))]],
    }
    outcome = run_rollouts(task_in(tmp_path, form), options(tmp_path), n=2, parallel=2, model_factory=scripted(plays),
                           apply=True, target=desktop)
    assert [a.passed for a in outcome.attempts] == [False, True] and outcome.chosen == 1
    applied = outcome.applied
    assert applied["display"] == desktop.display and applied["status"] == "succeeded", applied
    assert [c["ok"] for c in applied["checks"]] == [True]
    saved = json.loads((Path(applied["dir"]) / "out.json").read_text(encoding="utf-8"))
    assert saved["name"] == "Ada"  # written by the demo app on the target display
    replayed = Recording.load(outcome.recording / applied["replay"])
    assert replayed.meta["kind"] == "replay" and replayed.meta["status"] == "succeeded"
    assert [s["action"]["action"] for s in replayed.steps] == ["left_click", "type", "left_click"]
    assert outcome.result.status == "succeeded" and "applied on" in outcome.result.message
    assert Recording.load(outcome.recording).meta["applied"]["status"] == "succeeded"


# ----------------------------------------------------------------------------- Ctrl-C


class SlowModel(ScriptedModel):
    """Answers only when released: the attempts are all waiting for it when Ctrl-C comes."""

    release = threading.Event()
    waiting = threading.Semaphore(0)

    def query(self, system, messages, tools):
        self.waiting.release()
        self.release.wait(60)
        return super().query(system, messages, tools)


def test_ctrl_c_stops_every_attempt_and_cleans_up(tmp_path: Path) -> None:
    calls: list[int] = []
    pressed: list[float] = []

    def factory(i: int, config: ModelConfig) -> ScriptedModel:
        calls.append(i)
        return SlowModel([])

    def press_ctrl_c() -> None:  # once both running attempts wait for their model
        if SlowModel.waiting.acquire(timeout=30) and SlowModel.waiting.acquire(timeout=30):
            time.sleep(0.3)
            pressed.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    try:
        outcome = run_rollouts("wait for me", options(tmp_path), n=3, parallel=2, model_factory=factory)
    finally:
        SlowModel.release.set()
        presser.join(timeout=1)
    assert pressed and time.monotonic() - pressed[0] < 10
    assert outcome.result.status == "stopped" and outcome.result.exit_code == 3
    assert sorted(calls) == [0, 1]  # the third attempt never started
    assert [a.status for a in outcome.attempts] == ["stopped", "stopped", "stopped"]
    assert outcome.attempts[2].message.startswith("not started")
    assert Recording.load(outcome.recording).meta["status"] == "stopped"
    assert leftovers(["deskpilot-attempt-"]) == []


# ----------------------------------------------------------------------------- pieces


def test_screens_differ_beyond_a_text_cursor_only() -> None:
    base = np.full((200, 300, 3), 240, np.uint8)
    caret = base.copy()
    caret[50:70, 100:102] = 0  # a 2 px text cursor
    assert not screens_differ(base, caret) and changed_boxes(base, base) == []
    word = base.copy()
    word[50:62, 100:140] = 0
    assert screens_differ(base, word) and changed_boxes(base, word) == [(100, 50, 140, 62)]
    two = word.copy()
    two[150:160, 250:260] = 0
    assert len(changed_boxes(base, two)) == 2


def _attempt(i: int, status: str, steps: int, message: str = "", crashed: bool = False) -> Attempt:
    return Attempt(i, "m", None, status=status, steps=steps, message=message, started=True,
                   usage=Usage(input_tokens=10 * steps), crashed="Traceback" if crashed else None)


def test_fallback_rule_and_judge_reply_parsing() -> None:
    pool = [_attempt(0, "succeeded", 5), _attempt(1, "failed", 0, "IMPOSSIBLE: no"), _attempt(2, "succeeded", 3),
            _attempt(3, "error", 0, crashed=True)]
    assert fallback_choice(pool).index == 2
    assert fallback_choice(pool[1:2] + pool[3:]).index == 1
    assert fallback_choice([pool[3]]) is None
    assert pool[1].impossible and _attempt(4, "failed", 1, "goal: the model did not finish: IMPOSSIBLE: x").impossible

    class Reply:
        def __init__(self, text: str = "", calls: list[ToolCall] | None = None) -> None:
            self.text, self.tool_calls = text, calls or []

    assert parse_judge_reply(Reply(calls=[ToolCall("t", "choose_attempt", {"choice": 1, "reasoning": "r"})]),
                             [0, 1]) == (1, "r")
    fenced = Reply('```json\n{"reasoning": "b is right", "choice": "0"}\n```')
    assert parse_judge_reply(fenced, [0, 1]) == (0, "b is right")
    assert parse_judge_reply(Reply("Choice: 2"), [0, 2])[0] == 2
    assert parse_judge_reply(Reply('{"choice": 7, "reasoning": "x"}'), [0, 1]) == (None, "x")  # not a candidate
    assert parse_judge_reply(Reply("attempt one, clearly"), [0, 1]) == (None, None)
    assert temperatures(1, 0.7) == [0.7] and temperatures(3) == [0.0, 0.5, 1.0]


def test_narrative_of_a_synthetic_recording(tmp_path: Path) -> None:
    import cv2

    blank = np.full((240, 400, 3), 255, np.uint8)
    hello = blank.copy()
    cv2.putText(hello, "Hello World", (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    writer = RecordingWriter(tmp_path, "run", screen={"width": 400, "height": 240})
    writer.add_step(action={"action": "left_click", "coordinate": [10, 10]}, frame=writer.save_frame(blank))
    writer.add_step(action={"action": "key", "text": "Return"}, frame=writer.save_frame(blank, 1))
    writer.finish("succeeded", final_frame=hello)
    story = narrate(writer.path)
    assert story[0] == "1. left_click (10, 10) -> no visible change"
    assert story[1].startswith("2. key Return -> changed [") and "appeared 'Hello World'" in story[1], story


def test_bad_input_and_a_missing_api_key_fail_before_any_work(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    from agent.errors import BadInput, EnvironmentProblem

    with pytest.raises(BadInput, match="--rollouts"):
        run_rollouts("goal", options(tmp_path), n=0, parallel=1)
    with pytest.raises(BadInput, match="--parallel"):
        run_rollouts("goal", options(tmp_path), n=2, parallel=0)
    with pytest.raises(BadInput, match="'gpt-9'"):
        run_rollouts("goal", options(tmp_path), n=2, parallel=2, models=["claude-sonnet-4-6", "gpt-9"])
    with pytest.raises(BadInput, match="tool table"):
        run_rollouts("goal", options(tmp_path), n=2, parallel=2, models=["claude-sonnet-4-6", "claude-future-9"])
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setattr("agent.models.credentials.api_key", lambda: None)
    with pytest.raises(EnvironmentProblem) as caught:
        run_rollouts("goal", options(tmp_path), n=3, parallel=3)
    assert caught.value.exit_code == 4 and not (tmp_path / "recordings").exists()


def test_passing_attempts_on_different_screens_go_to_the_judge(form, tmp_path: Path) -> None:
    from agent.rollouts.run import _Rollouts

    def recorded(i: int, final: np.ndarray) -> Attempt:
        writer = RecordingWriter(tmp_path / str(i), "task", screen={"width": 300, "height": 200})
        writer.add_step(action={"action": "left_click", "coordinate": [5, 5]}, frame=writer.save_frame(final))
        writer.finish("succeeded", final_frame=final)
        attempt = _attempt(i, "succeeded", 1 + i, "3 checks passed")
        attempt.recording, attempt.passed = writer.path, True
        attempt.final_frame, attempt.first_frame = writer.path / "frames/final.png", writer.path / "frames/000000.png"
        return attempt

    screen = np.full((200, 300, 3), 240, np.uint8)
    other = screen.copy()
    other[20:60, 20:200] = 30  # something else is on the screen
    judge = ScriptedModel([[say('{"reasoning": "1 shows the right dialog", "choice": 1}')]])
    rollouts = _Rollouts(task_in(tmp_path, form), options(tmp_path), n=3, parallel=1, models=None, apply=False,
                         judge_model=judge, model_factory=lambda i, c: None, callbacks=Callbacks(), target=None)
    rollouts.parent = RecordingWriter(tmp_path / "parent", "rollouts")
    same = rollouts._select([recorded(0, screen), recorded(1, screen), _attempt(2, "failed", 1)])
    assert (same.chosen, same.rule, judge.requests) == (0, "checks", [])  # the checks decided
    differ = rollouts._select([recorded(0, screen), recorded(1, other), _attempt(2, "failed", 1)])
    assert (differ.chosen, differ.rule) == (1, "judge") and "different screens" in differ.reason
    assert differ.judge["candidates"] == [0, 1] and len(judge.requests) == 1


def test_cli_rollouts_of_a_scripted_task(tmp_path: Path) -> None:
    """`deskpilot run TASK.yaml --rollouts 2`: both attempts pass; the summary and the parent recording."""
    import subprocess

    task = tmp_path / "task.yaml"
    task.write_text(f"""
display: {{width: 1280, height: 800}}
setup:
  - launch: python3 {DEMO_APP} "$DESKPILOT_ATTEMPT_DIR/out.json"
  - wait_for: {{text: "Demo form", timeout: 30}}
steps:
  - click: {{text: "Name:", offset: [180, 0]}}
  - type: Ada
  - click: Submit
checks:
  - command: grep -q Ada "$DESKPILOT_ATTEMPT_DIR/out.json"
  - file: {{path: $DESKPILOT_ATTEMPT_DIR/out.json, contains: Ada}}
""", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", str(task), "--rollouts", "2",
                             "--out", str(tmp_path / "rec")], capture_output=True, text=True, timeout=180,
                            cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "DISPLAY"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass@2: 1" in result.stdout and "chosen: attempt" in result.stdout
    parent = Recording.load(result.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    assert parent.meta["kind"] == "rollouts" and len(parent.meta["attempts"]) == 2
    attempt = Recording.load(parent.path / parent.meta["attempts"][0]["path"])
    file_check = next(c for c in attempt.meta["checks"] if c["kind"] == "file")
    assert file_check["ok"] and "/out.json contains 'Ada'" in file_check["detail"]  # $VARS expanded per attempt
