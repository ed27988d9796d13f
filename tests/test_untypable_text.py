"""Text that cannot be typed (NUL, BEL, ESC, lone surrogates) is refused everywhere it can be typed:
`act`, task files, replays and model tool calls. Nothing is typed, the character is named, exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actions.vocabulary import ActionError, parse_action
from agent.recording.writer import RecordingWriter
from tests.conftest import Probe

ROOT = Path(__file__).resolve().parent.parent


def deskpilot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=os.environ.copy())


def refused(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, output


@pytest.mark.parametrize(("text", "name"), [("a\\u0000b", "U+0000 (NUL)"), ("ding\\u0007", "U+0007 (BEL)"),
                                            ("\\u001b[2J", "U+001B (ESC)")])
def test_act_refuses_untypable_text_and_types_nothing(desktop, probe: Probe, tmp_path: Path, text: str,
                                                      name: str) -> None:
    result = deskpilot("act", '{"action":"type","text":"ok"}', f'{{"action":"type","text":"{text}"}}',
                       "--display", desktop.display, "--out", str(tmp_path / "out"))
    refused(result, "action 2", name, "cannot be typed")
    time.sleep(0.5)
    assert [e for e in probe.events() if e["type"] in ("keypress", "text")] == []
    assert not (tmp_path / "out").exists()


def test_a_task_file_with_an_escaped_nul_in_type_is_refused_at_load(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    task = tmp_path / "task.yaml"
    task.write_text(f'setup:\n  - run: touch {marker}\nsteps:\n  - type: "a\\x00b"\n', encoding="utf-8")
    refused(deskpilot("run", str(task), "--display", ":99"), f"{task}:4:", "steps[0].type", "U+0000")
    assert not marker.exists()


def test_a_replay_of_a_recording_with_untypable_text_is_refused(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "recs", "act", screen={"width": 64, "height": 48})
    writer.add_step(action={"action": "type", "text": "fine"})
    writer.finish("succeeded")
    steps = writer.path / "steps.jsonl"
    steps.write_text(steps.read_text(encoding="utf-8").replace('"fine"', '"fi\\u0000ne"'), encoding="utf-8")
    refused(deskpilot("replay", str(writer.path), "--display", ":99", "--out", str(tmp_path / "out")), "U+0000")


def test_a_models_type_call_is_refused_before_it_runs() -> None:
    with pytest.raises(ActionError, match=r"U\+0000"):
        parse_action({"action": "type", "text": "x\x00"})
    assert parse_action({"action": "type", "text": "line\nnext\ttab é 日本"}).text.endswith("日本")
