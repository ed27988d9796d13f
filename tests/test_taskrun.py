"""Task files driving the demo app end to end: every step kind, every check kind, failures, secrets."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from agent.recording.writer import Recording
from tests.fake_anthropic import message, text, tool_use
from vision.capture import Screen
from vision.encode import encode

ROOT = Path(__file__).resolve().parent.parent
DEMO_APP = ROOT / "examples" / "demo_app.py"


def deskpilot(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def recording_of(result: subprocess.CompletedProcess) -> Recording:
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("recording: "), result.stdout + result.stderr
    return Recording.load(last.removeprefix("recording: "))


def write_task(folder: Path, body: str, name: str = "task.yaml") -> Path:
    path = folder / name
    path.write_text(body.replace("APP", str(DEMO_APP)).replace("OUT", str(folder / "out.json")), encoding="utf-8")
    return path


SETUP = """
setup:
  - launch: [python3, APP, OUT]
  - wait_for: {text: "Demo form", timeout: 30}
"""


def test_demo_command_runs_the_demo_with_no_api_key(tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": ""}
    result = deskpilot("demo", "--out", str(tmp_path), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    recording = recording_of(result)
    assert recording.meta["kind"] == "task" and recording.meta["status"] == "succeeded"
    assert all(check["ok"] for check in recording.meta["checks"]) and len(recording.meta["checks"]) == 3
    assert all(step["source"] == "script" for step in recording.steps)
    clicks = [s for s in recording.steps if s["action"]["action"] == "left_click"]
    assert all(s["target"]["method"] == "ocr" and s["anchor"] for s in clicks)


def test_every_step_and_check_kind_on_the_demo_app(desktop, tmp_path: Path) -> None:
    # a template image of the Clear button, cut from a real screenshot of the app
    app = desktop.launch([sys.executable, str(DEMO_APP), str(tmp_path / "scratch.json")])
    import time
    time.sleep(2.0)
    frame = Screen(desktop.display).grab()
    from vision.locate.ocr import find_text
    clear = find_text(frame, "Clear")[0].box
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "clear.png").write_bytes(encode(frame.pixels[clear[1] - 6:clear[3] + 6,
                                                                        clear[0] - 12:clear[2] + 12]).data)
    app.terminate()
    app.wait()
    time.sleep(0.5)
    task = write_task(tmp_path, SETUP + """
steps:
  - click: {text: "Name:", offset: [180, 0]}
  - type: Grace Hopper
  - double_click: {text: "Name:", offset: [180, 0]}
  - triple_click: {text: "Name:", offset: [180, 0]}
  - type: Ada Lovelace
  - key: ctrl+a
  - click: {text: "Email:", offset: [180, 0]}
  - type: ada@example.com
  - right_click: {x: 900, y: 700}
  - move: {text: Blue}
  - click: Green
  - click: {text: Subscribe}
  - drag: {from: {text: "Volume:", offset: [75, 15]}, to: {text: "Volume:", offset: [300, 15]}}
  - scroll: {direction: down, amount: 5, target: {text: "line 3"}}
  - wait: 0.2
  - click: {image: images/clear.png}
  - wait_for: {text: Cleared, timeout: 5}
  - click: {text: "Name:", offset: [180, 0]}
  - type: Ada Lovelace
  - click: {text: "Email:", offset: [180, 0]}
  - type: ada@example.com
  - click: Green
  - click: Submit
  - expect: {text: "Hello Ada Lovelace", timeout: 10}
checks:
  - screen: {text: "Hello Ada"}
  - file: {path: out.json, contains: Ada Lovelace}
  - command: python3 -c "import json,sys; d=json.load(open('out.json')); sys.exit(0 if d['volume'] > 20 else 1)"
  - command: [python3, -c, "import json,sys; d=json.load(open('out.json')); sys.exit(d['colour'] != 'Green')"]
""")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "rec"))
    assert result.returncode == 0, result.stdout + result.stderr
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["name"] == "Ada Lovelace" and saved["email"] == "ada@example.com"
    assert saved["colour"] == "Green" and saved["volume"] > 20 and saved["notes_top_line"] != "1.0"
    recording = recording_of(result)
    kinds = [s["describe"].split()[0] for s in recording.steps]
    assert {"click", "double_click", "triple_click", "right_click", "move", "drag", "type", "key", "scroll", "wait",
            "wait_for", "expect"} <= set(kinds)
    image_step = next(s for s in recording.steps if s["describe"].startswith("click image"))
    assert image_step["target"]["method"] == "image" and image_step["target"]["confidence"] > 0.9
    assert [c["ok"] for c in recording.meta["checks"]] == [True] * 4
    assert all(s["line"] for s in recording.steps)


def test_target_not_found_names_the_step_and_saves_the_screenshot(desktop, tmp_path: Path) -> None:
    task = write_task(tmp_path, SETUP + """
steps:
  - click: {text: "Name:", offset: [180, 0]}
  - click: {text: "Launch rockets", timeout: 1}
  - type: never typed
checks:
  - file: {path: out.json}
""")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "rec"))
    assert result.returncode == 1
    recording = recording_of(result)
    error = recording.meta["error"]
    assert "step 2 (line 8): click 'Launch rockets': not found within 1 s" in error
    assert (recording.path / "frames" / "notfound-2.png").is_file()
    assert len(recording.steps) == 1  # the type step never ran


def test_ambiguous_text_lists_the_candidates(desktop, tmp_path: Path) -> None:
    task = write_task(tmp_path, SETUP + """
steps:
  - click: line
""")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "rec"))
    assert result.returncode == 1
    error = recording_of(result).meta["error"]
    assert "step 1 (line 7): click 'line'" in error and "matches several places" in error
    assert "[0]* 'line' at [" in error and "[4]* 'line' at [" in error  # every candidate, with its box


def test_index_picks_one_of_several(desktop, tmp_path: Path) -> None:
    task = write_task(tmp_path, SETUP + """
steps:
  - click: {text: line, index: 2}
""")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "rec"))
    assert result.returncode == 0, result.stdout + result.stderr
    target = recording_of(result).steps[0]["target"]
    assert target["text"] == "line" and 465 <= target["point"][1] <= 505  # the third line of the notes


def test_failed_setup_command_and_failed_check_exit_1(desktop, tmp_path: Path) -> None:
    task = write_task(tmp_path, """
setup:
  - run: "echo broken >&2; exit 3"
steps:
  - wait: 0
""")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "a"))
    assert result.returncode == 1 and "setup 1 (line 3)" in recording_of(result).meta["error"]
    assert "exited with code 3: broken" in recording_of(result).meta["error"]
    task = write_task(tmp_path, """
steps:
  - wait: 0
checks:
  - file: {path: missing.txt}
  - command: "true"
""", "checks.yaml")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "b"))
    assert result.returncode == 1
    checks = recording_of(result).meta["checks"]
    assert [c["ok"] for c in checks] == [False, True] and "does not exist" in checks[0]["detail"]
    assert "check FAIL" in result.stdout


def test_invalid_task_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    task = tmp_path / "bad.yaml"
    task.write_text(f"setup:\n  - run: touch {marker}\nsteps:\n  - click: {{text: Go, index: two}}\n")
    result = deskpilot("run", str(task), "--display", "virtual", "--out", str(tmp_path / "rec"))
    assert result.returncode == 2
    assert "bad.yaml:4: steps[0].click.index" in result.stderr
    assert not marker.exists() and not (tmp_path / "rec").exists()


def test_secret_never_reaches_any_file_or_output(desktop, tmp_path: Path) -> None:
    secret = "s3cr3t-Pa55-Ünïcødé"
    task = write_task(tmp_path, SETUP + """
steps:
  - click: {text: "Password:", offset: [180, 0]}
  - type: {secret: DEMO_PASSWORD}
  - click: {text: "Name:", offset: [180, 0]}
  - type: Ada
  - click: Submit
  - wait_for: {text: "Hello Ada", timeout: 10}
""")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "rec"),
                       env={"DEMO_PASSWORD": secret})
    assert result.returncode == 0, result.stdout + result.stderr
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["password_sha256"] == hashlib.sha256(secret.encode()).hexdigest()  # typed intact
    recording = recording_of(result)
    typed = next(s for s in recording.steps if s["action"].get("secret"))
    assert typed["action"] == {"action": "type", "text": "•••", "secret": "DEMO_PASSWORD"}
    assert secret not in result.stdout + result.stderr
    for path in recording.path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and json.dumps(secret).encode() not in data, path


def test_unset_secret_is_refused_at_load(tmp_path: Path) -> None:
    task = write_task(tmp_path, "steps:\n  - type: {secret: NOT_SET_ANYWHERE_42}\n")
    result = deskpilot("run", str(task), "--display", "virtual")
    assert result.returncode == 2 and "NOT_SET_ANYWHERE_42" in result.stderr and "task.yaml:2" in result.stderr


def test_agent_step_and_model_typed_secret(fake, desktop, tmp_path: Path) -> None:
    secret = "model-never-sees-this"
    fake.add(message(text("Typing it."), tool_use("computer", {"action": "type", "text": "{{secret:DEMO_PASSWORD}}"})),
             message(text("Typed.")),
             message(tool_use("computer", {"action": "wait", "duration": 0})), message(text("Looked.")))
    task = write_task(tmp_path, SETUP + """
secrets: [DEMO_PASSWORD]
steps:
  - click: {text: "Name:", offset: [180, 0]}
  - type: Ada
  - click: {text: "Password:", offset: [180, 0]}
  - agent: Type the password into the focused field.
  - click: Submit
  - wait_for: {text: "Hello Ada", timeout: 10}
  - agent: Check that the dialog says hello.
checks:
  - file: {path: out.json, contains: Ada}
  - screen: {text: Hello Ada}
""")
    env = {"ANTHROPIC_BASE_URL": fake.base_url, "ANTHROPIC_API_KEY": "sk-test", "DEMO_PASSWORD": secret}
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "rec"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    recording = recording_of(result)
    assert [s["source"] for s in recording.steps] == ["script"] * 3 + ["model"] + ["script"] * 2 + ["model"]
    assert len(fake.requests) == 4 and fake.requests[0].first_user_text().startswith("Type the password")
    for request in fake.requests:
        assert secret not in json.dumps(request.body)
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["password_sha256"] == hashlib.sha256(secret.encode()).hexdigest()  # typed by the executor
    for path in recording.path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_task_step_budget_stops_with_exit_3(desktop, tmp_path: Path) -> None:
    task = write_task(tmp_path, "limits: {max_steps: 2}\nsteps:\n  - wait: 0\n  - wait: 0\n  - wait: 0\n")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "rec"))
    assert result.returncode == 3
    recording = recording_of(result)
    assert recording.meta["status"] == "stopped" and len(recording.steps) == 2


def test_schema_command_prints_json_schema() -> None:
    result = deskpilot("schema")
    schema = json.loads(result.stdout)
    assert result.returncode == 0 and {"goal", "steps", "setup", "checks", "limits"} <= set(schema["properties"])


def test_task_policy_rules_apply_to_its_model_steps(desktop, tmp_path: Path) -> None:
    from agent.models.base import ModelConfig
    from agent.models.scripted import ScriptedModel
    from agent.session import Callbacks, RunOptions
    from agent.tasks.loader import load_task
    from agent.tasks.runner import run_task

    task = load_task(write_task(tmp_path, """
goal: Publish the branch.
policy:
  - {name: no-push, decision: deny, reason: this task must never push, tool: bash, command: 'git\\s+push'}
"""))
    model = ScriptedModel([[{"type": "tool_use", "id": "toolu_push", "name": "bash",
                             "input": {"command": "git push origin main"}}]])
    outcome = run_task(task, RunOptions(model=ModelConfig(), out=tmp_path / "rec", workdir=tmp_path),
                       desktop=desktop, callbacks=Callbacks(confirm_mode="allow"), model=model)
    assert outcome.result.exit_code == 0
    [(call, answer)] = model.requests[1]["history"][-1].results
    assert call.id == "toolu_push" and not answer.ok and "no-push" in answer.error


def test_invalid_task_policy_is_refused_at_load(tmp_path: Path) -> None:
    task = write_task(tmp_path, "goal: x\npolicy:\n  - {name: odd, decision: sometimes, reason: r, tool: bash}\n")
    result = deskpilot("run", str(task), "--display", "virtual")
    assert result.returncode == 2 and "task.yaml:2: policy" in result.stderr and "'decision'" in result.stderr
