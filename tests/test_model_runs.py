"""Runs across families: a planner with a grounder, rollouts over two families, faults and retries,
OpenAI's safety checks, doctor's server check and the app's model box."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.base import ModelConfig
from agent.recording.writer import Recording
from agent.session import Callbacks, RunOptions, run_goal
from tests.conftest import start_probe
from tests.fake_openai import (
    FakeOpenAI,
    Request,
    chat,
    computer_call,
    drop,
    fault,
    function_call,
    message_item,
    response,
    slow,
)
from tests.family_script import image_size
from vision.geometry import GridSpace, ScreenMap, Size

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(models=("gpt-4.1", "ui-tars-1.5")).start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    yield fake
    fake.stop()


@pytest.fixture
def grounder_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def options(tmp_path: Path, model: str, base_url: str, **settings: object) -> RunOptions:
    settings = {"max_retries": 3, "timeout_s": 5.0, **settings}
    return RunOptions(model=ModelConfig(model=model, base_url=base_url, **settings),
                      loop=LoopConfig(limits=Limits(max_steps=20, max_seconds=120)), out=tmp_path / "rec",
                      workdir=tmp_path)


@pytest.mark.parametrize("grounder", ["ui-tars/ui-tars-1.5", "qwen3-vl/qwen3"])
def test_a_planner_names_targets_and_the_grounder_points(grounder: str, server, grounder_server, desktop_factory,
                                                         tmp_path: Path) -> None:
    screen = Size(1920, 1080)
    desktop = desktop_factory(screen)
    probe = start_probe(desktop, tmp_path / "events.jsonl")
    image = image_size(grounder.split("/")[0], screen)
    mapping = ScreenMap(screen, image)
    if grounder.startswith("ui-tars"):
        point, answer = [640, 300], "(640,300)"
        landing = mapping.to_screen(*point)
    else:
        point = [333, 277]
        answer = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "mouse_move", "coordinate": ' \
                 '[333, 277]}}\n</tool_call>'
        landing = mapping.to_screen(*GridSpace(1000).to_image(*point, image, screen))
    server.add(chat("I click the Save button.", function_call("computer", {"action": "left_click",
                                                                          "target": "the Save button"})),
               chat(None, function_call("computer", {"action": "left_click", "target": "the missing Frobnicate icon"})),
               chat(None, function_call("computer", {"action": "left_click", "coordinate": [5, 5]})),
               chat("Saved."))
    grounder_server.add(chat(answer), chat("I cannot see such an element."))
    run = options(tmp_path, "chat/gpt-4.1", server.base_url, grounder=grounder,
                  grounder_base_url=grounder_server.base_url)
    outcome = run_goal("Save the file", run, desktop=desktop, callbacks=Callbacks(confirm_mode="deny"),
                       kill_switch=False)
    assert outcome.result.status == "succeeded", outcome.result.message

    presses = [(e["x"], e["y"]) for e in probe.wait_for(lambda ev: any(e["type"] == "press" for e in ev))
               if e["type"] == "press"]
    assert presses == [landing]  # only the grounded click ran
    plan, ground = server.api_requests(), grounder_server.api_requests()
    computer = plan[0].body["tools"][0]["function"]
    assert "target" in computer["parameters"]["properties"] and "coordinate" not in computer["parameters"]["properties"]
    assert "never give coordinates" in plan[0].body["messages"][0]["content"]
    planner_image = image_size("chat", image)
    assert planner_image != image
    assert all(set(r.images()) == {(planner_image.width, planner_image.height)} for r in plan)
    assert ground[0].images() == [(image.width, image.height)]
    assert "the Save button" in json.dumps(ground[0].body["messages"])
    said = next(m for m in plan[1].body["messages"] if m["role"] == "assistant")  # the planner's own call
    assert json.loads(said["tool_calls"][0]["function"]["arguments"]) == {"action": "left_click",
                                                                          "target": "the Save button"}

    recording = Recording.load(outcome.recording)
    assert recording.meta["grounder"] == grounder
    steps = recording.steps
    assert steps[0]["ok"] and steps[0]["model_action"] == {"action": "left_click", "target": "the Save button"}
    assert not steps[1]["ok"] and "Frobnicate" in steps[1]["error"]
    assert not steps[2]["ok"] and "in words" in steps[2]["error"]
    purposes = [c.get("purpose") for c in recording.model_calls]
    assert purposes[:2] == ["plan", "ground"] and purposes.count("ground") == 2
    assert all(c["usage"]["input_tokens"] > 0 for c in recording.model_calls)


def test_a_planner_must_plan_in_words_and_a_grounder_must_point(tmp_path: Path) -> None:
    from agent.errors import BadInput
    from agent.models import registry

    with pytest.raises(BadInput, match="cannot be a planner"):
        registry.create(ModelConfig(model="ui-tars/x", grounder="qwen3-vl/y"))
    with pytest.raises(BadInput, match="cannot ground"):
        registry.create(ModelConfig(model="chat/x", grounder="chat/y"))


def _rollout_responder(request: Request) -> object:
    body = request.body
    if any((t.get("function") or {}).get("name") == "choose_attempt" for t in body.get("tools") or []):
        return chat(None, function_call("choose_attempt", {"reasoning": "both did it", "choice": 1}))
    if body["model"] == "gpt-4.1":
        done = any(m["role"] == "tool" for m in body["messages"])
        return chat("Done.") if done else chat(None, function_call("computer", {"action": "left_click",
                                                                              "coordinate": [50, 60]}))
    done = any(m["role"] == "assistant" for m in body["messages"])
    return chat("Action: finished(content='done')") if done else chat("Action: click(start_box='(70,80)')")


def test_rollouts_over_two_families(server, tmp_path: Path) -> None:
    server.responder = _rollout_responder
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test"}
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", "Click somewhere", "--rollouts", "2",
                             "--model", "chat/gpt-4.1", "--model", "ui-tars/ui-tars-1.5", "--base-url",
                             server.base_url, "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    parent = Recording.load(result.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    models = {r.body["model"] for r in server.api_requests()}
    assert {"gpt-4.1", "ui-tars-1.5"} <= models
    attempts = parent.meta["attempts"]
    assert sorted(a["model"] for a in attempts) == ["chat/gpt-4.1", "ui-tars/ui-tars-1.5"]
    assert all(a["status"] == "succeeded" and a["steps"] == 1 for a in attempts)
    metas = [Recording.load(Path(parent.path) / a["path"]).meta for a in attempts]
    assert sorted(m["model"] for m in metas) == ["chat/gpt-4.1", "ui-tars/ui-tars-1.5"]


def test_faults_are_retried_with_backoff_then_the_run_goes_on(server, desktop, probe, tmp_path: Path) -> None:
    server.add(fault(429, "slow down", retry_after=1.0),
               chat(None, function_call("computer", {"action": "left_click", "coordinate": [50, 60]})),
               fault(500), drop(),
               chat(None, function_call("computer", {"action": "left_click", "coordinate": [70, 80]})),
               slow(6.0, chat("too late")), chat("finished"))
    outcome = run_goal("survive", options(tmp_path, "chat/gpt-4.1", server.base_url, timeout_s=2.0),
                       desktop=desktop, callbacks=Callbacks(confirm_mode="deny"), kill_switch=False)
    assert outcome.result.exit_code == 0, outcome.result.message
    assert [(e["x"], e["y"]) for e in probe.events() if e["type"] == "press"] == [(50, 60), (70, 80)]
    times = [r.time for r in server.requests]
    assert times[1] - times[0] >= 0.9  # the retry-after was honoured
    assert [r.outcome for r in server.requests][:5] == ["fault", "chat", "fault", "drop", "chat"]
    assert len(server.requests) == 7  # the slow answer timed out and was asked again


@pytest.mark.parametrize("model", ["ui-tars/ui-tars-1.5", "openai/computer-use-preview"])
def test_exhausted_retries_end_the_run_with_exit_4_and_a_complete_recording(model, server, desktop,
                                                                             tmp_path: Path) -> None:
    first = chat("Action: wait()") if model.startswith("ui-tars") else response(computer_call({"type": "wait"}))
    server.add(first, *[fault(503)] * 4)
    outcome = run_goal("fail", options(tmp_path, model, server.base_url), desktop=desktop,
                       callbacks=Callbacks(confirm_mode="deny"), kill_switch=False)
    assert outcome.result.exit_code == 4 and outcome.result.status == "error"
    recording = Recording.load(outcome.recording)
    assert recording.complete and recording.meta["status"] == "error" and "retries" in recording.meta["error"]
    assert len(recording.steps) == 1


def test_openai_safety_checks_are_asked_and_acknowledged_only_when_allowed(server, desktop, probe, tmp_path) -> None:
    check = {"id": "sc_1", "code": "malicious_instructions", "message": "The page asks to ignore the user."}
    server.add(response(computer_call({"type": "click", "button": "left", "x": 40, "y": 50}, checks=(check,))),
               response(computer_call({"type": "click", "button": "left", "x": 60, "y": 70}, checks=(check,))),
               response(message_item("done")))
    asked: list[str] = []

    def asker(verdict, call, action) -> str:
        asked.append(verdict.reason)
        return "allow" if len(asked) == 1 else "deny"

    run = options(tmp_path, "openai/computer-use-preview", server.base_url)
    outcome = run_goal("click", run, desktop=desktop, callbacks=Callbacks(confirm_mode="ask", asker=asker),
                       kill_switch=False)
    assert outcome.result.exit_code == 0
    assert len(asked) == 2 and "The page asks to ignore the user." in asked[0]
    assert [(e["x"], e["y"]) for e in probe.events() if e["type"] == "press"][:1] == [
        ScreenMap(Size(1280, 800), image_size("openai", Size(1280, 800))).to_screen(40, 50)]
    assert len([e for e in probe.events() if e["type"] == "press"]) == 1  # the refused click never ran
    second, third = server.api_requests()[1].body["input"], server.api_requests()[2].body["input"]
    assert second[0]["acknowledged_safety_checks"] == [check]
    assert "acknowledged_safety_checks" not in third[0] and "not performed" in json.dumps(third)


def test_doctor_checks_the_server_answers_and_serves_the_model(server, tmp_path: Path) -> None:
    from agent.ui.doctor import model_checks

    [ok] = model_checks("ui-tars/ui-tars-1.5", server.base_url)
    assert ok.status == "ok" and "serves 'ui-tars-1.5'" in ok.detail
    [missing] = model_checks("ui-tars/UI-TARS-72B", server.base_url)
    assert missing.status == "FAIL" and "gpt-4.1, ui-tars-1.5" in missing.detail
    started = time.monotonic()
    [down] = model_checks("qwen3-vl/q", "http://127.0.0.1:9/v1")
    assert down.status == "FAIL" and "does not answer" in down.detail and time.monotonic() - started < 15
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "doctor", "--display", "virtual", "--model",
                             "chat/gpt-9", "--base-url", server.base_url], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 4 and "does not serve 'gpt-9'" in result.stdout


def test_the_app_offers_every_family() -> None:
    from agent.ui.app import model_choices

    choices = model_choices()
    for family in ("ui-tars/", "qwen2.5-vl/", "qwen3-vl/", "openai/", "chat/"):
        assert any(c.startswith(family) for c in choices), family
    assert choices[0] == "claude-sonnet-4-6"
