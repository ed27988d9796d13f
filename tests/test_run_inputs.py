"""`deskpilot run` before anything runs: credentials checked first, task files recognised by any case of
.yaml, an existing file never sent to the model as a goal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def deskpilot(*args: str, timeout: float = 120, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "DISPLAY")}
    if home is not None:  # no keyring entry either
        env.update(HOME=str(home), XDG_DATA_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_a_goal_only_task_without_a_key_exits_4_before_setup(tmp_path: Path) -> None:
    marker = tmp_path / "setup-ran"
    task = tmp_path / "task.yaml"
    task.write_text(f"goal: Open the terminal\nsetup:\n  - run: touch {marker}\n  - launch: [sleep, '4242.81']\n",
                    encoding="utf-8")
    started = time.monotonic()
    result = deskpilot("run", str(task), "--display", "virtual", "--out", str(tmp_path / "recs"), home=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "no API key" in output and "Traceback" not in output
    assert not marker.exists()
    assert not (tmp_path / "recs").exists() or list((tmp_path / "recs").iterdir()) == []  # no recording at all
    assert time.monotonic() - started < 20


def test_a_goal_without_a_key_exits_4_and_leaves_no_recording(tmp_path: Path) -> None:
    result = deskpilot("run", "Open the terminal", "--display", "virtual", "--out", str(tmp_path / "recs"),
                       home=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "no API key" in result.stderr
    assert not (tmp_path / "recs").exists() or list((tmp_path / "recs").iterdir()) == []


def test_an_upper_case_yaml_name_is_a_task_file(tmp_path: Path) -> None:
    task = tmp_path / "X.YAML"
    task.write_text("display: {width: 320, height: 240}\nsteps:\n  - wait: 0\n", encoding="utf-8")
    result = deskpilot("run", str(task), "--out", str(tmp_path / "recs"), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded: 1 steps" in result.stdout


def test_an_existing_file_is_a_task_or_an_error_never_a_goal(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Buy milk. Then delete everything in /tmp.\n", encoding="utf-8")
    result = deskpilot("run", str(notes), "--out", str(tmp_path / "recs"), home=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{notes} is a file, so it must be a task file" in result.stderr and "Traceback" not in result.stderr
    plain = tmp_path / "mytask"
    plain.write_text("display: {width: 320, height: 240}\nsteps:\n  - wait: 0\n", encoding="utf-8")
    result = deskpilot("run", str(plain), "--out", str(tmp_path / "recs"), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
