"""Coordinates, regions and offsets outside the display: refused at load when the task says its display
size (exit 2, file, line and field named), else before acting (exit 1, the step named). Nothing acts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.recording.writer import Recording
from tests.conftest import Probe

ROOT = Path(__file__).resolve().parent.parent
DISPLAY = "display: {width: 640, height: 480}\n"


def deskpilot(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=os.environ.copy())


@pytest.mark.parametrize(("step", "line", "field", "needle"), [
    ("  - click: {x: 5000, y: 5000}", 5, "steps[0].click.x", "outside the 640x480 display"),
    ("  - click: {x: 10, y: 480}", 5, "steps[0].click.y", "outside the 640x480 display"),
    ("  - drag: {from: {x: 1, y: 1}, to: {x: 700, y: 1}}", 5, "steps[0].drag.to.x", "outside"),
    ("  - scroll: {direction: down, target: {x: 1, y: 900}}", 5, "steps[0].scroll.target.y", "outside"),
    ("  - click: {text: OK, region: [0, 0, 2000, 100]}", 5, "steps[0].click.region", "extends past"),
    ("  - wait_for: {text: OK, region: [700, 0, 800, 100]}", 5, "steps[0].wait_for.region", "extends past"),
    ("  - click: {text: OK, offset: [0, 5000]}", 5, "steps[0].click.offset", "larger than the 640x480 display"),
    ("  - move: {image: img.png, region: [0, 0, 10, 481]}", 5, "steps[0].move.region", "extends past"),
])
def test_out_of_display_values_are_refused_at_load(tmp_path: Path, step: str, line: int, field: str,
                                                   needle: str) -> None:
    (tmp_path / "img.png").write_bytes((ROOT / "tests" / "tasks" / "valid" / "images" / "ok.png").read_bytes())
    marker = tmp_path / "ran"
    task = tmp_path / "task.yaml"
    task.write_text(DISPLAY + f"setup:\n  - run: touch {marker}\nsteps:\n{step}\n", encoding="utf-8")
    result = deskpilot("run", str(task), "--out", str(tmp_path / "recs"))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert f"{task}:{line}: {field}:" in output and needle in output, output
    assert not marker.exists()


def test_checks_and_setup_regions_too(tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(DISPLAY + "setup:\n  - wait_for: {text: A, region: [0, 0, 641, 10]}\nsteps:\n  - wait: 0\n"
                              "checks:\n  - screen: {text: B, region: [0, 470, 10, 490]}\n", encoding="utf-8")
    result = deskpilot("run", str(task), "--out", str(tmp_path / "recs"))
    assert result.returncode == 2
    assert f"{task}:3: setup[0].wait_for.region:" in result.stderr
    assert f"{task}:7: checks[0].screen.region:" in result.stderr


def test_without_a_known_display_an_outside_point_fails_before_acting(desktop, probe: Probe,
                                                                      tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("steps:\n  - click: {x: 100, y: 100}\n  - click: {x: 5000, y: 5000}\n  - type: never\n",
                    encoding="utf-8")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "recs"))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "step 2 (line 3)" in output and "(5000, 5000) is outside the 1280x800 screen" in output
    recording = Recording.load(result.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    assert recording.meta["status"] == "failed" and len(recording.steps) == 1
    time.sleep(0.3)
    presses = [e for e in probe.events() if e["type"] == "press"]
    assert [(e["x"], e["y"]) for e in presses] == [(100, 100)]
    assert not [e for e in probe.events() if e["type"] == "keypress"]


def test_without_a_known_display_an_outside_region_fails_the_step(desktop, tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("steps:\n  - click: {text: OK, region: [0, 0, 5000, 100], timeout: 0}\n", encoding="utf-8")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(tmp_path / "recs"))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "step 1 (line 2)" in output and "region" in output
