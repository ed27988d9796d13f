"""Every entry point that acts goes through the policy, end to end on a real X server.

A pretend terminal (tests/terminal_window.py: a Tk window of an unknown class titled "Terminal - Bash")
logs every key press that reaches it. A task step, `deskpilot act`, a replay and the model each try
to type `rm -rf ~` into it with `--confirm deny`: nothing reaches it, the command fails naming the
rule, and a downloaded task file cannot switch the rule off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.scripted import ScriptedModel
from agent.recording.writer import Recording
from agent.session import Callbacks, RunOptions, run_goal

ROOT = Path(__file__).parent.parent
RM = "rm -rf ~\n"


class Terminal:
    """The pretend terminal's key log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def records(self) -> list[dict]:
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        return [json.loads(line) for line in lines if line.strip().endswith("}")]

    def new_keys(self, settle: float = 0.6) -> list[dict]:
        time.sleep(settle)
        keys = [k for k in self.records() if k["type"] == "key"]
        fresh, self.seen = keys[self.seen:], len(keys)
        return fresh


@pytest.fixture
def terminal(desktop: Any, tmp_path: Path) -> Terminal:
    log = tmp_path / "terminal.jsonl"
    window = ROOT / "tests" / "terminal_window.py"
    desktop.launch([sys.executable, str(window), str(log), "Weirdterm", "Terminal - Bash"])
    found = Terminal(log)
    deadline = time.monotonic() + 20
    while not any(k["type"] == "ready" for k in found.records()):
        assert time.monotonic() < deadline, "the pretend terminal never came up"
        time.sleep(0.05)
    return found


def deskpilot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(config)}
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120, cwd=tmp_path)


def act(tmp_path: Path, desktop: Any, *actions: dict, confirm: str | None = "deny") -> subprocess.CompletedProcess:
    extra = ["--confirm", confirm] if confirm else []
    return deskpilot(tmp_path, "act", *(json.dumps(a) for a in actions), "--display", desktop.display,
                     "--out", str(tmp_path / "recordings"), *extra)


def typed(keys: list[dict]) -> str:
    return "".join("\n" if k["keysym"] == "Return" else k["char"] for k in keys)


def test_act_types_nothing_the_policy_refuses(desktop: Any, terminal: Terminal, tmp_path: Path) -> None:
    done = act(tmp_path, desktop, {"action": "type", "text": "ls\n"})
    assert done.returncode == 0, done.stderr
    assert typed(terminal.new_keys()) == "ls\n"  # the terminal logs what reaches it

    refused = act(tmp_path, desktop, {"action": "type", "text": RM})
    assert refused.returncode == 1, refused.stderr
    assert "refused by policy rule 'recursive-delete-typed'" in refused.stderr and "Traceback" not in refused.stderr
    assert terminal.new_keys() == []
    recording = Path(refused.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    step = Recording.load(recording).steps[0]
    assert step["ok"] is False and "recursive-delete-typed" in step["error"]
    assert Recording.load(recording).meta["status"] == "failed"

    split = act(tmp_path, desktop, {"action": "type", "text": "rm -"}, {"action": "type", "text": "rf ~\n"})
    assert split.returncode == 1 and "action 2 (type) refused" in split.stderr
    assert typed(terminal.new_keys()) == "rm -"  # the harmless half, never the rest nor Return

    as_keys = act(tmp_path, desktop, {"action": "key", "text": "ctrl+u r m space minus r f space asciitilde Return"})
    assert as_keys.returncode == 1 and "recursive-delete-typed" in as_keys.stderr
    assert terminal.new_keys() == []

    no_terminal_to_ask = act(tmp_path, desktop, {"action": "type", "text": RM}, confirm=None)  # stdin is no tty
    assert no_terminal_to_ask.returncode == 1 and "confirmation" in no_terminal_to_ask.stderr
    assert terminal.new_keys() == []


def write_task(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_a_task_step_is_refused_and_a_task_cannot_switch_safety_off(desktop: Any, terminal: Terminal,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "recordings"
    step = write_task(tmp_path / "step.yaml", f"name: clean\nsteps:\n  - type: {json.dumps(RM)}\n")
    run = deskpilot(tmp_path, "run", str(step), "--display", desktop.display, "--out", str(out), "--confirm", "deny")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "step 1 (line 3)" in run.stdout and "refused by policy rule 'recursive-delete-typed'" in run.stdout
    assert terminal.new_keys() == []

    keep = tmp_path / "keep"
    (keep / "sub").mkdir(parents=True)
    setup = write_task(tmp_path / "setup.yaml", f"name: wipe\nsetup:\n  - run: rm -rf {keep}\nsteps:\n  - wait: 0.1\n")
    run = deskpilot(tmp_path, "run", str(setup), "--display", desktop.display, "--out", str(out), "--confirm", "deny")
    assert run.returncode == 1 and "refused by policy rule 'recursive-delete'" in run.stdout
    assert (keep / "sub").is_dir()

    before = set(out.iterdir())
    sneaky = write_task(tmp_path / "downloaded.yaml", "name: sneaky\npolicy:\n  rules:\n"
                        "    - {name: recursive-delete-typed, enabled: false}\n"
                        f"steps:\n  - type: {json.dumps(RM)}\n")
    run = deskpilot(tmp_path, "run", str(sneaky), "--display", desktop.display, "--out", str(out), "--confirm", "deny")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "rule 'recursive-delete-typed'" in run.stderr and "--confirm allow" in run.stderr
    assert "Traceback" not in run.stderr and set(out.iterdir()) == before  # no recording, nothing done
    assert terminal.new_keys() == []

    tighter = write_task(tmp_path / "tighter.yaml", "name: tighter\npolicy:\n  rules:\n"
                         "    - {name: no-ls, decision: deny, reason: not here, tool: computer, text: '^ls'}\n"
                         "steps:\n  - type: \"ls\\n\"\n")
    run = deskpilot(tmp_path, "run", str(tighter), "--display", desktop.display, "--out", str(out), "--confirm",
                    "allow")
    assert run.returncode == 1 and "refused by policy rule 'no-ls': not here" in run.stdout
    assert terminal.new_keys() == []


def test_a_replay_types_nothing_the_policy_refuses(desktop: Any, terminal: Terminal, tmp_path: Path) -> None:
    made = act(tmp_path, desktop, {"action": "type", "text": "echo hi\n"}, {"action": "type", "text": RM},
               confirm="allow")  # a person allowed it once, into this pretend terminal
    assert made.returncode == 0, made.stderr
    assert typed(terminal.new_keys()) == "echo hi\n" + RM
    recording = made.stdout.strip().splitlines()[-1].removeprefix("recording: ")

    replayed = deskpilot(tmp_path, "replay", recording, "--display", desktop.display, "--out",
                         str(tmp_path / "replays"), "--confirm", "deny")
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "refused by policy rule 'recursive-delete-typed'" in replayed.stdout
    assert typed(terminal.new_keys()) == "echo hi\n"  # the harmless step only


def test_the_model_cannot_type_it_either(desktop: Any, terminal: Terminal, tmp_path: Path) -> None:
    model = ScriptedModel([[{"type": "tool_use", "id": "toolu_t", "name": "computer",
                             "input": {"action": "type", "text": RM}}]])
    options = RunOptions(loop=LoopConfig(limits=Limits(max_steps=3, max_seconds=60)), out=tmp_path / "rec",
                         workdir=tmp_path)
    outcome = run_goal("clean up", options, desktop=desktop, model=model, callbacks=Callbacks(confirm_mode="deny"))
    assert outcome.result.status == "succeeded"
    [(call, result)] = model.requests[1]["history"][-1].results
    assert not result.ok and "refused by policy rule 'recursive-delete-typed'" in result.error
    assert terminal.new_keys() == []
