"""API keys and task secrets are out of every child's reach, and redacted from every tool output.

The model's shell tries the issue's exact command (`tr '\\0' '\\n' < /proc/$PPID/environ`) through
the real command line; task `run`, `launch` and `command` checks print what they can see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agent.recording.writer import Recording
from tests.fake_anthropic import FakeAnthropic, message, text, tool_use

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-ant-api03-THIS-KEY-MUST-NEVER-LEAK-0123456789"
OPENAI = "sk-openai-never-leak-9876543210"
PASSWORD = "form-password-never-leak-42"


def env_for(fake: FakeAnthropic | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "ANTHROPIC_API_KEY")}
    env.update(ANTHROPIC_API_KEY=KEY, OPENAI_API_KEY=OPENAI, FORM_PASSWORD=PASSWORD)
    if fake is not None:
        env["ANTHROPIC_BASE_URL"] = fake.base_url
    return env


def everything_written(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file()
                     and p.suffix in (".json", ".jsonl", ".txt", ".html"))


def tool_results(request: object) -> str:
    return json.dumps([b for m in request.body["messages"] for b in m["content"]
                       if isinstance(b, dict) and b.get("type") == "tool_result"])


def test_the_models_shell_cannot_read_the_key_from_the_parent(tmp_path: Path) -> None:
    leaked = tmp_path / "leaked.txt"
    leaked.write_text(f"the key is {KEY} and the password {PASSWORD}\n", encoding="utf-8")
    with FakeAnthropic() as fake:
        fake.add(message(tool_use("bash", {"command": "tr '\\0' '\\n' < /proc/$PPID/environ"})),
                 message(tool_use("bash", {"command": "tr '\\0' '\\n' < /proc/$PPID/environ | "
                                                      "grep -c '^ANTHROPIC_API_KEY=' || true"})),
                 message(tool_use("bash", {"command": "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done "
                                                      "2>/dev/null | grep -c 'API_KEY=sk-' || true"})),
                 message(tool_use("bash", {"command": f"cat {leaked}"})),
                 message(text("done")))
        result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", "look around", "--display", "virtual",
                                 "--out", str(tmp_path / "recs")], capture_output=True, text=True, timeout=180,
                                cwd=ROOT, env=env_for(fake))
        requests = fake.messages_requests()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    recording = Recording.load(result.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    outputs = [s.get("output") or s.get("error") or "" for s in recording.steps]
    assert "PATH=" in outputs[0]  # the command ran and read the parent's environment...
    assert "ANTHROPIC_API_KEY" not in outputs[0] and "FORM_PASSWORD" not in outputs[0]  # ...which holds no secret
    assert outputs[1].strip().startswith("0") and outputs[2].strip().startswith("0")
    assert "•••" in outputs[3]  # a secret read from elsewhere is redacted before anyone sees it
    seen = output + everything_written(recording.path) + "".join(tool_results(r) for r in requests)
    for secret in (KEY, OPENAI, PASSWORD):
        assert secret not in seen
    assert KEY in json.dumps(requests[0].headers)  # the model API still got its key


def test_task_commands_never_see_the_keys(tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(f"""
display: {{width: 320, height: 240}}
setup:
  - run: env > {tmp_path}/run_env.txt
  - launch: tr '\\0' '\\n' < /proc/$PPID/environ > {tmp_path}/launch_parent.txt; env > {tmp_path}/launch_env.txt
steps:
  - wait: 0.5
checks:
  - command: env > {tmp_path}/check_env.txt
  - command: [sh, -c, "tr '\\\\0' '\\\\n' < /proc/$PPID/environ > {tmp_path}/check_parent.txt"]
""", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", str(task), "--out", str(tmp_path / "recs")],
                            capture_output=True, text=True, timeout=180, cwd=ROOT, env=env_for())
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("run_env", "launch_parent", "launch_env", "check_env", "check_parent"):
        seen = (tmp_path / f"{name}.txt").read_text(encoding="utf-8")
        assert "PATH=" in seen, name
        for secret in (KEY, OPENAI, PASSWORD):
            assert secret not in seen, name


def test_a_task_secret_is_still_typed_and_never_shown(tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("""
display: {width: 320, height: 240}
steps:
  - type: {secret: FORM_PASSWORD}
""", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "agent.ui.cli", "run", str(task), "--out", str(tmp_path / "recs")],
                            capture_output=True, text=True, timeout=180, cwd=ROOT, env=env_for())
    assert result.returncode == 0, result.stdout + result.stderr
    recording = Recording.load(result.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    assert recording.steps[0]["action"] == {"action": "type", "text": "•••", "secret": "FORM_PASSWORD"}
    assert PASSWORD not in everything_written(recording.path)
