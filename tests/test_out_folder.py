"""`--out` that cannot take a recording: a file, an unwritable place, a full disk (a real small tmpfs).

Before anything runs: exit 4 naming the folder, nothing executed. A disk that fills up during a
run: the step already done still gets its line, the run stops before acting again (exit 4), the
recording ends with status "error" and `recording: PATH` is printed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.recording.writer import Recording
from tests.conftest import Probe

ROOT = Path(__file__).resolve().parent.parent


def deskpilot(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=os.environ.copy())


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs filesystems (root only); unmounted at the end."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", "-l", str(point)], check=False)


def task_file(tmp_path: Path, marker: Path) -> Path:
    task = tmp_path / "task.yaml"
    task.write_text(f"display: {{width: 320, height: 240}}\nsetup:\n  - run: touch {marker}\nsteps:\n  - wait: 0\n",
                    encoding="utf-8")
    return task


def assert_refused(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "Traceback" not in output
    for needle in needles:
        assert needle in output, output


def test_out_that_is_a_file(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    out = tmp_path / "out.txt"
    out.write_text("not a folder", encoding="utf-8")
    assert_refused(deskpilot("run", str(task_file(tmp_path, marker)), "--out", str(out)), str(out), "is a file")
    assert not marker.exists() and out.read_text(encoding="utf-8") == "not a folder"
    assert_refused(deskpilot("act", '{"action":"wait","duration":0}', "--display", "virtual", "--out", str(out)),
                   "is a file")


@pytest.mark.parametrize("where", ["/proc/deskpilot-recordings", "below-a-file"])
def test_out_that_cannot_be_created_or_written(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "ran"
    if where == "below-a-file":
        (tmp_path / "plain").write_text("x", encoding="utf-8")
        where = str(tmp_path / "plain" / "recs")
    assert_refused(deskpilot("run", str(task_file(tmp_path, marker)), "--out", where), where, "cannot be written")
    assert not marker.exists()


def test_out_on_a_read_only_filesystem(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    point = tmpfs("8m")
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
    marker = tmp_path / "ran"
    assert_refused(deskpilot("run", str(task_file(tmp_path, marker)), "--out", str(point)), str(point),
                   "Read-only file system")
    assert not marker.exists()


def test_out_on_a_full_disk_is_refused_before_anything_runs(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    point = tmpfs("2m")
    marker = tmp_path / "ran"
    assert_refused(deskpilot("run", str(task_file(tmp_path, marker)), "--out", str(point)), str(point), "free")
    assert not marker.exists()


def test_a_disk_that_fills_during_a_run_stops_it_before_the_next_action(
        desktop, probe: Probe, tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    point = tmpfs("8m")
    task = tmp_path / "task.yaml"
    task.write_text(f"""setup:
  - run: dd if=/dev/zero of={point}/filler bs=64k 2>/dev/null; true
steps:
  - click: {{x: 100, y: 100}}
  - type: never typed
""", encoding="utf-8")
    result = deskpilot("run", str(task), "--display", desktop.display, "--out", str(point))
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "Traceback" not in output and "No space left on device" in output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("recording: "), output
    (filler,) = point.glob("filler")
    filler.unlink()  # room to read it back as a user would after freeing space
    recording = Recording.load(last.removeprefix("recording: "))
    assert recording.meta["status"] == "error" and "No space left" in recording.meta["error"]
    assert [s["action"]["action"] for s in recording.steps] == ["left_click"]  # the step done has its line
    time.sleep(0.3)
    assert [(e["x"], e["y"]) for e in probe.events() if e["type"] == "press"] == [(100, 100)]
    assert not [e for e in probe.events() if e["type"] == "keypress"]  # nothing acted after the failure
