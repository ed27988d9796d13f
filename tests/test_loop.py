"""The agent loop through the real Anthropic SDK, against the local scripted Messages API server."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.anthropic import image_size as claude_image_size
from agent.models.base import ModelConfig
from agent.recording.writer import Recording
from agent.session import RunOptions, run_goal
from tests.conftest import Probe, start_probe
from tests.fake_anthropic import FakeAnthropic, drop, fault, message, slow, text, tool_use
from vision.encode import decode
from vision.geometry import ScreenMap, Size

SCREEN = Size(1920, 1080)
MAP = ScreenMap(SCREEN, claude_image_size(SCREEN))  # model image 1430x804


@pytest.fixture
def big_desktop(desktop_factory):
    return desktop_factory(SCREEN)


@pytest.fixture
def big_probe(big_desktop, tmp_path: Path) -> Probe:
    return start_probe(big_desktop, tmp_path / "events.jsonl")


def options(tmp_path: Path, model: str = "claude-sonnet-4-6", **limits) -> RunOptions:
    return RunOptions(model=ModelConfig(model=model, max_retries=3, timeout_s=5.0),
                      loop=LoopConfig(limits=Limits(**{"max_steps": 40, "max_seconds": 120, **limits})),
                      out=tmp_path / "recordings", workdir=tmp_path)


def model_point(fx: float, fy: float) -> tuple[tuple[int, int], list[int]]:
    target = (int(fx * SCREEN.width), int(fy * SCREEN.height))
    return target, list(MAP.to_model(*target))


def near(event: dict, target: tuple[int, int]) -> bool:
    return abs(event["x"] - target[0]) <= MAP.ratio_x and abs(event["y"] - target[1]) <= MAP.ratio_y


def tool_results(request) -> list[dict]:
    last = request.body["messages"][-1]
    return [b for b in last["content"] if b.get("type") == "tool_result"]


def test_every_computer_action_bash_and_editor_end_to_end(fake, big_desktop, big_probe, tmp_path: Path) -> None:
    click, click_m = model_point(0.25, 0.30)
    right, right_m = model_point(0.60, 0.40)
    double, double_m = model_point(0.40, 0.70)
    drag_a, drag_a_m = model_point(0.10, 0.10)
    drag_b, drag_b_m = model_point(0.30, 0.20)
    notes = tmp_path / "notes.txt"
    fake.add(
        message(text("I will click the text area."),
                tool_use("computer", {"action": "left_click", "coordinate": click_m})),
        message(tool_use("computer", {"action": "type", "text": "héllo → 日本"}),
                tool_use("computer", {"action": "key", "text": "ctrl+a"})),  # a multi-tool reply
        message(tool_use("computer", {"action": "right_click", "coordinate": right_m}),
                tool_use("computer", {"action": "middle_click", "coordinate": right_m}),
                tool_use("computer", {"action": "double_click", "coordinate": double_m}),
                tool_use("computer", {"action": "triple_click", "coordinate": double_m})),
        message(tool_use("computer", {"action": "left_click_drag", "start_coordinate": drag_a_m,
                                      "coordinate": drag_b_m})),
        message(tool_use("computer", {"action": "scroll", "coordinate": click_m, "scroll_direction": "down",
                                      "scroll_amount": 2}),
                tool_use("computer", {"action": "mouse_move", "coordinate": right_m}),
                tool_use("computer", {"action": "cursor_position"})),
        message(tool_use("computer", {"action": "left_mouse_down", "coordinate": click_m}),
                tool_use("computer", {"action": "left_mouse_up", "coordinate": right_m}),
                tool_use("computer", {"action": "hold_key", "text": "shift", "duration": 0.2}),
                tool_use("computer", {"action": "wait", "duration": 0.1}),
                tool_use("computer", {"action": "screenshot"}),
                tool_use("computer", {"action": "zoom", "region": [0, 0, 200, 100]})),
        message(tool_use("bash", {"command": f"echo from-bash > {notes} && cat {notes}"}),
                tool_use("str_replace_based_edit_tool", {"command": "str_replace", "path": str(notes),
                                                         "old_str": "from-bash", "new_str": "edited"})),
        message(text("All done.")),
    )
    outcome = run_goal("exercise everything", options(tmp_path), desktop=big_desktop)
    assert outcome.result.status == "succeeded" and outcome.result.exit_code == 0, outcome.result.message

    events = big_probe.events()
    presses = [e for e in events if e["type"] == "press"]
    by_button = {b: [e for e in presses if e["button"] == b] for b in (1, 2, 3)}
    assert near(by_button[1][0], click)
    assert near(by_button[3][0], right) and near(by_button[2][0], right)
    assert sum(near(e, double) for e in by_button[1]) == 5  # double (2) + triple (3)
    assert any(near(e, drag_a) for e in by_button[1])
    releases = [e for e in events if e["type"] == "release" and e["button"] == 1]
    assert any(near(e, drag_b) for e in releases)
    assert [e["scroll"] for e in events if e.get("scroll")] == ["down", "down"]
    typed = [e["value"] for e in events if e["type"] == "text"]
    assert any("héllo → 日本" in value for value in typed)
    assert notes.read_text() == "edited\n"

    requests = fake.requests
    # every tool_use answered by exactly one tool_result, in the next request
    for after in requests[1:]:
        asked = [b["id"] for m in after.body["messages"][-2:-1] for b in m["content"] if b.get("type") == "tool_use"]
        answered = [b["tool_use_id"] for b in tool_results(after)]
        assert sorted(asked) == sorted(answered) and len(set(answered)) == len(answered)
    # cursor position comes back in model space
    cursor = [b for b in tool_results(requests[5]) if "X=" in json.dumps(b)]
    assert f"X={right_m[0]},Y={right_m[1]}" in json.dumps(cursor)
    # the declared display equals the image actually sent, for the first screenshot and after actions
    tool = requests[0].body["tools"][0]
    assert (tool["display_width_px"], tool["display_height_px"]) == (MAP.model.width, MAP.model.height)
    for request in (requests[0], requests[3]):
        images = [b for m in request.body["messages"] for blk in m["content"]
                  for b in ([blk] + (blk.get("content") if isinstance(blk.get("content"), list) else []))
                  if b.get("type") == "image"]
        shape = decode(base64.b64decode(images[-1]["source"]["data"])).shape
        assert (shape[1], shape[0]) == (MAP.model.width, MAP.model.height)
    # a zoom comes back at full resolution, scaled up
    zoom_block = tool_results(requests[6])[-1]
    zoom_image = next(b for b in zoom_block["content"] if b["type"] == "image")
    assert decode(base64.b64decode(zoom_image["source"]["data"])).shape[1] > 200

    recording = Recording.load(outcome.recording)
    assert recording.meta["status"] == "succeeded" and recording.complete
    assert len(recording.steps) == 19
    first = recording.steps[0]
    assert first["action"]["coordinate"] == list(MAP.to_screen(*click_m))
    assert first["model_action"]["coordinate"] == click_m
    assert first["anchor"] and first["thought"] == "I will click the text area." and first["usage"]
    assert all((outcome.recording / s["frame"]).exists() for s in recording.steps)
    assert len(recording.model_calls) == 8
    assert "data" not in (outcome.recording / "model.jsonl").read_text()
    assert recording.meta["summary"]["cost_usd"] > 0


@pytest.mark.parametrize("model,tool_type,beta,zoom", [
    ("claude-sonnet-4-6", "computer_20251124", "computer-use-2025-11-24", True),
    ("claude-opus-4-5", "computer_20251124", "computer-use-2025-11-24", True),
    ("claude-sonnet-4-5", "computer_20250124", "computer-use-2025-01-24", False),
    ("claude-haiku-4-5", "computer_20250124", "computer-use-2025-01-24", False),
])
def test_tool_definitions_and_beta_header_per_model(fake, desktop, tmp_path, model, tool_type, beta, zoom) -> None:
    fake.add(message(text("nothing to do")))
    outcome = run_goal("look", options(tmp_path, model=model), desktop=desktop)
    assert outcome.result.exit_code == 0
    request = fake.requests[0]
    assert request.headers["anthropic-beta"] == beta
    computer, bash, editor = request.body["tools"]
    assert computer["type"] == tool_type and computer["name"] == "computer"
    assert computer.get("enable_zoom", False) is zoom
    assert bash == {"type": "bash_20250124", "name": "bash"}
    assert editor["type"] == "text_editor_20250728" and editor["name"] == "str_replace_based_edit_tool"
    assert request.body["model"] == model


def test_unknown_model_needs_a_tool_version(fake, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", "hi", "--model", "claude-future-9",
                             "--display", "virtual", "--out", str(tmp_path)], capture_output=True, text=True,
                            env=os.environ.copy())
    assert result.returncode == 2 and "--tool-version" in result.stderr
    assert not any(tmp_path.iterdir())  # nothing ran, nothing was written


def test_toolset_form_is_parsed(fake, desktop, probe, tmp_path: Path) -> None:
    fake.add(message({"type": "tool_use", "id": "toolu_ts1", "name": "left_click", "toolset_name": "computer",
                      "input": {"coordinate": [100, 120]}}),
             message(text("ok")))
    outcome = run_goal("click", options(tmp_path, model="claude-opus-4-6"), desktop=desktop)
    assert outcome.result.exit_code == 0
    press = next(e for e in probe.events() if e["type"] == "press")
    assert (press["x"], press["y"]) == (100, 120)  # 1280x800 is sent unscaled
    assert tool_results(fake.requests[1])[0]["tool_use_id"] == "toolu_ts1"


def test_cache_breakpoints_and_batched_image_pruning(fake, desktop, tmp_path: Path) -> None:
    for n in range(20):
        fake.add(message(tool_use("computer", {"action": "mouse_move", "coordinate": [10 + n, 10]})))
    fake.add(message(text("done")))
    outcome = run_goal("move around", options(tmp_path), desktop=desktop)
    assert outcome.result.exit_code == 0
    for request in fake.requests:
        body = request.body
        marks = [b for b in body["system"] if "cache_control" in b]
        marks += [b for m in body["messages"] for b in m["content"] if "cache_control" in b]
        assert 1 <= len(marks) <= 4
        assert "cache_control" in body["system"][-1]
        assert "cache_control" in body["messages"][-1]["content"][-1]
        images = json.dumps(body["messages"]).count('"type": "image"')
        assert images <= 3 + 8  # keep 3, prune in batches of 8
    last = fake.requests[-1].body["messages"]
    assert "older screenshot was removed" in json.dumps(last)
    # pruning happened in one batch: the earlier requests' prefixes stayed intact until then
    reads = [r.usage["cache_read_input_tokens"] for r in fake.requests[1:]]
    assert sum(1 for value in reads if value > 0) >= len(reads) - 2


def test_faults_are_retried_then_the_run_goes_on(fake, desktop, probe, tmp_path: Path) -> None:
    fake.add(fault(429, retry_after=0.2),
             message(tool_use("computer", {"action": "left_click", "coordinate": [50, 60]})),
             fault(500), fault(529), drop(),
             message(tool_use("computer", {"action": "left_click", "coordinate": [70, 80]})),
             slow(8.0, message(text("too late"))), message(text("finished")))
    outcome = run_goal("survive faults", options(tmp_path), desktop=desktop)
    assert outcome.result.exit_code == 0, outcome.result.message
    clicks = [(e["x"], e["y"]) for e in probe.events() if e["type"] == "press"]
    assert clicks == [(50, 60), (70, 80)]
    assert len(fake.requests) == 8


def test_exhausted_retries_exit_4_with_a_complete_recording(fake, desktop, tmp_path: Path) -> None:
    fake.add(message(tool_use("computer", {"action": "wait", "duration": 0})), *[fault(529)] * 4)
    outcome = run_goal("fail", options(tmp_path), desktop=desktop)
    assert outcome.result.exit_code == 4 and outcome.result.status == "error"
    recording = Recording.load(outcome.recording)
    assert recording.meta["status"] == "error" and "retries" in recording.meta["error"]
    assert len(recording.steps) == 1


MALFORMED = [
    ({"action": "left_click"} | {"coordinate": [10]}, "coordinate"),
    ({"action": "mouse_move"}, "coordinate: Field required"),
    ({"action": "left_click", "coordinate": ["a", 5]}, "coordinate"),
    ({"action": "explode"}, "unknown action 'explode'"),
    ({"action": "left_click", "coordinate": [1430, 10]}, "outside the 1430x804 model image"),
    ({"action": "type", "text": "x" * 1_000_000}, "text: String should have at most"),
    ({"action": "key", "text": "ctrl+nope"}, "unknown key 'nope'"),
    ({"action": "type", "text": "{{secret:NOT_MINE}}"}, "is not a secret of this task"),
]


def test_malformed_tool_inputs_are_error_results_and_never_executed(fake, big_desktop, big_probe, tmp_path) -> None:
    fake.add(message(*[tool_use("computer", data) for data, _ in MALFORMED], tool_use("teleport", {"to": "mars"})),
             message(text("giving up on those")))
    outcome = run_goal("bad inputs", options(tmp_path), desktop=big_desktop)
    assert outcome.result.exit_code == 0
    results = tool_results(fake.requests[1])
    assert len(results) == len(MALFORMED) + 1 and all(r.get("is_error") for r in results)
    for result, (_, expected) in zip(results, MALFORMED, strict=False):
        assert expected in result["content"][0]["text"]
    assert "unknown tool 'teleport'" in results[-1]["content"][0]["text"]
    time.sleep(0.2)
    assert [e for e in big_probe.events() if e["type"] in ("press", "keypress")] == []
    steps = Recording.load(outcome.recording).steps
    assert len(steps) == len(MALFORMED) + 1 and not any(s["ok"] for s in steps)


def test_step_budget_stops_with_exit_3(fake, desktop, tmp_path: Path) -> None:
    for n in range(10):
        fake.add(message(tool_use("computer", {"action": "mouse_move", "coordinate": [n + 1, 5]})))
    outcome = run_goal("move", options(tmp_path, max_steps=3), desktop=desktop)
    assert outcome.result.exit_code == 3 and "step budget of 3" in outcome.result.message
    recording = Recording.load(outcome.recording)
    assert recording.meta["status"] == "stopped" and len(recording.steps) == 3


def test_cost_budget_stops_with_exit_3(fake, desktop, tmp_path: Path) -> None:
    usage = {"input_tokens": 400_000, "output_tokens": 10}
    fake.add(*[message(tool_use("computer", {"action": "wait", "duration": 0}), usage=usage) for _ in range(5)])
    outcome = run_goal("spend", options(tmp_path, max_cost_usd=2.0), desktop=desktop)
    assert outcome.result.exit_code == 3 and "cost budget" in outcome.result.message
    assert outcome.result.usage.cost_usd >= 2.0 and len(fake.requests) == 2


def test_a_loop_of_identical_screens_and_actions_is_told_then_stopped(fake, desktop, tmp_path: Path) -> None:
    for _ in range(8):
        fake.add(message(tool_use("computer", {"action": "mouse_move", "coordinate": [30, 30]})))
    outcome = run_goal("loop", options(tmp_path), desktop=desktop)
    assert outcome.result.exit_code == 1 and outcome.result.status == "failed"
    assert "repeated 5 times" in outcome.result.message
    assert len(Recording.load(outcome.recording).steps) == 5  # the fifth, executed, call is recorded too
    warned = tool_results(fake.requests[3])[0]["content"][0]["text"]
    assert "3 times on an unchanged screen" in warned


def test_impossible_task_is_reported_as_failed(fake, desktop, tmp_path: Path) -> None:
    fake.add(message(text("IMPOSSIBLE: there is no such application on this desktop.")))
    outcome = run_goal("open the flux capacitor", options(tmp_path), desktop=desktop)
    assert outcome.result.exit_code == 1 and outcome.result.status == "failed"


def test_interrupt_answers_pending_tool_calls_and_stops(fake, desktop, tmp_path: Path) -> None:
    from agent.loop import Agent

    fake.add(message(tool_use("computer", {"action": "wait", "duration": 30}, id="toolu_long"),
                     tool_use("computer", {"action": "left_click", "coordinate": [5, 5]}, id="toolu_pending")))
    agents: list[Agent] = []
    original_init = Agent.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        agents.append(self)

    stop = threading.Event()
    stopped_at: list[float] = []

    def press_stop() -> None:  # as the app's Stop button does, once the long wait is running
        while not fake.requests:
            time.sleep(0.02)
        time.sleep(0.7)
        stopped_at.append(time.monotonic())
        stop.set()

    threading.Thread(target=press_stop, daemon=True).start()
    Agent.__init__ = init
    try:
        outcome = run_goal("wait", options(tmp_path), desktop=desktop, stop=stop)
    finally:
        Agent.__init__ = original_init
    assert time.monotonic() - stopped_at[0] < 2  # the 30 s wait was cut short
    assert outcome.result.exit_code == 3 and outcome.result.status == "stopped"
    last_turn = agents[0].history[-1]
    answers = {call.id: result for call, result in last_turn.results}
    assert set(answers) == {"toolu_long", "toolu_pending"}
    assert all(not r.ok and "interrupted" in r.error for r in answers.values())
    assert Recording.load(outcome.recording).meta["status"] == "stopped"


def _cli_run(fake: FakeAnthropic, tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = os.environ | {"ANTHROPIC_BASE_URL": fake.base_url, "ANTHROPIC_API_KEY": "sk-test"}
    env.pop("DISPLAY", None)
    return subprocess.Popen([sys.executable, "-m", "agent.ui.cli", "run", "keep moving", "--display", "virtual",
                             "--out", str(tmp_path), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=Path(__file__).parent.parent)


def test_ctrl_c_during_a_slow_model_call_exits_3_with_status_stopped(fake, tmp_path: Path) -> None:
    fake.add(message(tool_use("computer", {"action": "mouse_move", "coordinate": [5, 5]})),
             slow(30, message(text("late"))))
    proc = _cli_run(fake, tmp_path)
    deadline = time.monotonic() + 30
    while len(fake.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3, out + err
    assert out.strip().splitlines()[-1].startswith("recording: ")
    recording = Recording.load(out.strip().splitlines()[-1].removeprefix("recording: "))
    assert recording.meta["status"] == "stopped" and len(recording.steps) == 1


def test_sigkill_leaves_a_recording_readable_up_to_the_last_step(fake, tmp_path: Path) -> None:
    for n in range(6):
        fake.add(message(tool_use("computer", {"action": "mouse_move", "coordinate": [n + 1, 5]})))
    fake.add(slow(30, message(text("late"))))
    proc = _cli_run(fake, tmp_path)
    deadline = time.monotonic() + 30
    while len(fake.requests) < 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.wait(timeout=10)
    (folder,) = list(tmp_path.iterdir())
    recording = Recording.load(folder)
    assert recording.meta["status"] == "running" and not recording.complete
    assert [s["action"]["coordinate"][0] for s in recording.steps] == [1, 2, 3, 4, 5, 6]


def test_cli_run_prints_progress_and_the_recording_last(fake, tmp_path: Path) -> None:
    fake.add(message(text("Clicking."), tool_use("computer", {"action": "left_click", "coordinate": [20, 20]})),
             message(text("Done.")))
    proc = _cli_run(fake, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("[0] left_click [20, 20]") and "Clicking." in lines[0] and "tokens" in lines[0]
    assert lines[-1].startswith("recording: ") and Path(lines[-1].split(": ", 1)[1]).is_dir()
