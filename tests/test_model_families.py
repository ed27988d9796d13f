"""Every OpenAI-compatible family end to end: the real `openai` SDK against the local fake server,
scripted replies of each family acting on the probe window of a real Xvfb, at 1920x1080 and 1280x800."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.base import ModelConfig
from agent.recording.writer import Recording
from agent.session import Callbacks, RunOptions, run_goal
from tests.conftest import start_probe
from tests.fake_openai import FakeOpenAI, chat
from tests.family_script import FAMILIES, MODEL_NAMES, TEXT, FamilyScript
from vision.geometry import Size

ROOT = Path(__file__).resolve().parent.parent
SIZES = (Size(1920, 1080), Size(1280, 800))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake OpenAI API; the SDK's variables point at it (a test key, as for OpenAI's own API)."""
    fake = FakeOpenAI().start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    yield fake
    fake.stop()


def options(tmp_path: Path, family: str, fake: FakeOpenAI, **model: object) -> RunOptions:
    config = ModelConfig(model=f"{family}/{MODEL_NAMES[family]}", base_url=fake.base_url, max_retries=2,
                         timeout_s=10.0, **model)
    return RunOptions(model=config, loop=LoopConfig(limits=Limits(max_steps=30, max_seconds=120)),
                      out=tmp_path / "recordings", workdir=tmp_path)


def points(screen: Size) -> dict[str, tuple[int, int]]:
    w, h = screen.width, screen.height
    return {"click": (w * 3 // 10, h // 4), "double": (w // 2 + 7, h // 2 + 3), "right": (w * 7 // 10, h * 3 // 5),
            "drag_a": (w // 10 + 1, h * 7 // 10), "drag_b": (w * 4 // 10 + 3, h * 8 // 10 + 1),
            "scroll": (w * 6 // 10, h // 3)}


@pytest.mark.parametrize("screen", SIZES, ids=str)
@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_drives_the_probe_window(family: str, screen: Size, server: FakeOpenAI, desktop_factory,
                                          tmp_path: Path) -> None:
    desktop = desktop_factory(screen)
    probe = start_probe(desktop, tmp_path / "events.jsonl")
    script = FamilyScript(family, screen)
    p = points(screen)
    server.add(*script.replies(p["click"], p["double"], p["right"], (p["drag_a"], p["drag_b"]), p["scroll"]))
    outcome = run_goal("Type the greeting", options(tmp_path, family, server), desktop=desktop,
                       callbacks=Callbacks(confirm_mode="deny"), kill_switch=False)
    assert outcome.result.status == "succeeded", outcome.result.message
    assert outcome.result.exit_code == 0

    def landing(name: str) -> tuple[int, int]:
        spot = script.landing(script.model_point(p[name]))
        assert abs(spot[0] - p[name][0]) <= 1 and abs(spot[1] - p[name][1]) <= 1  # within one screen pixel
        return spot

    events = probe.wait_for(lambda ev: any(e["type"] == "keypress" and e["keysym"] == "a" for e in ev), timeout=10)
    presses = [(e["button"], e["x"], e["y"]) for e in events if e["type"] == "press"]
    releases = [(e["button"], e["x"], e["y"]) for e in events if e["type"] == "release"]
    clicks = [x for x in presses if x[0] in (1, 3)]
    assert clicks[0] == (1, *landing("click"))
    assert clicks[1:3] == [(1, *landing("double"))] * 2
    assert clicks[3] == (3, *landing("right"))
    assert clicks[4] == (1, *landing("drag_a")) and (1, *landing("drag_b")) in releases
    assert [x for x in presses if x[0] == 5] == [(5, *landing("scroll"))] * 5  # five wheel clicks down
    assert any(e["type"] == "text" and TEXT in e["value"] for e in events)
    ctrl_a = [e for e in events if e["type"] == "keypress" and e["keysym"] == "a"]
    assert ctrl_a and ctrl_a[-1]["state"] & 0x4  # with Control held

    requests = server.api_requests()
    assert all(r.body["model"] == MODEL_NAMES[family] for r in requests)
    for request in requests:  # every image was a PNG data URL of exactly the declared size
        assert request.images() and set(request.images()) == {(script.image.width, script.image.height)}
    assert len(requests) == 8
    _check_history(family, script, requests)

    recording = Recording.load(outcome.recording)
    assert recording.meta["model_image"] == {"width": script.image.width, "height": script.image.height}
    assert recording.steps[0]["action"]["coordinate"] == list(landing("click"))
    assert recording.steps[0]["model_action"] is not None
    assert len(recording.model_calls) == 8
    assert all(c["usage"]["input_tokens"] > 0 and c["latency_ms"] >= 0 for c in recording.model_calls)
    assert "base64" not in (outcome.recording / "model.jsonl").read_text()


def _check_history(family: str, script: FamilyScript, requests: list) -> None:
    """What the second and later requests carried of the conversation, per family."""
    first, second, last = requests[0].body, requests[1].body, requests[-1].body
    if family == "ui-tars":
        intro = first["messages"][0]["content"][0]["text"]
        assert "## Action Space" in intro and intro.endswith("Type the greeting")
        assistants = [m["content"] for m in last["messages"] if m["role"] == "assistant"]
        assert assistants[0].startswith("Thought: I click the text area.\nAction: click(start_box=")
        assert len(assistants) == 7 and len(requests[-1].images()) == 5  # its own texts, the latest 5 screenshots
    elif family.startswith("qwen"):
        assert "tools" in first and first["tools"][0]["function"]["name"] == "computer_use"
        described = f"resolution is {1000 if family == 'qwen3-vl' else script.image.width}x"
        assert described in json.dumps(first["tools"])
        texts = [m["content"] for m in second["messages"] if m["role"] == "assistant"]
        assert "<tool_call>" in texts[0] and '"left_click"' in texts[0]
        assert "<tool_response>" in json.dumps(second["messages"][-1])
    elif family == "openai":
        tool = first["tools"][0]
        assert tool["type"] == "computer_use_preview" and first["truncation"] == "auto"
        assert (tool["display_width"], tool["display_height"]) == (script.image.width, script.image.height)
        assert second["previous_response_id"] and second["input"][0]["type"] == "computer_call_output"
    else:
        computer = first["tools"][0]["function"]
        assert computer["name"] == "computer" and "left_click" in computer["parameters"]["properties"]["action"]["enum"]
        assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool", "user"]
        assert second["messages"][3]["tool_call_id"] == second["messages"][2]["tool_calls"][0]["id"]


def test_deskpilot_run_with_a_ui_tars_model_and_base_url(server: FakeOpenAI, tmp_path: Path) -> None:
    """`deskpilot run GOAL --model ui-tars/NAME --base-url URL` on a virtual display, no API key at all."""
    server.add(chat("Thought: Click.\nAction: click(start_box='(100,100)')"),
               chat("Thought: Done.\nAction: finished(content='clicked')"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env.pop("DISPLAY", None)
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", "Click once", "--model",
                             "ui-tars/ByteDance-Seed/UI-TARS-1.5-7B", "--base-url", server.base_url, "--display",
                             "virtual", "--out", str(tmp_path), "--price", "0.2,0.6"],
                            capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("[0] left_click") and "Click." in lines[0]
    assert lines[-1].startswith("recording: ")
    assert server.api_requests()[0].headers["authorization"] == "Bearer no-key-needed"
    recording = Recording.load(lines[-1].removeprefix("recording: "))
    assert recording.meta["model"] == "ui-tars/ByteDance-Seed/UI-TARS-1.5-7B"
    assert recording.meta["summary"]["cost_usd"] > 0  # priced with --price
    assert recording.steps[0]["model_action"] == "click(start_box='(100,100)')"


@pytest.mark.parametrize("args,expected", [
    (["--base-url", "localhost:8000"], "invalid URL"),
    (["--price", "cheap"], "invalid price"),
    (["--price", "1,-2"], "invalid price"),
    (["--grounder", "nope/x"], "unknown family 'nope'"),
    (["--model", "ui-tars/"], "is empty"),
])
def test_bad_model_options_are_refused_before_anything_runs(args: list[str], expected: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", "hi", "--display", "virtual", "--out",
                             str(tmp_path), *args], capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())


def test_a_server_family_without_a_server_is_an_environment_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", "hi", "--model", "qwen3-vl/q",
                             "--display", "virtual", "--out", str(tmp_path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 4 and "--base-url" in result.stderr, result.stdout + result.stderr
