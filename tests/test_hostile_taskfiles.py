"""Hostile task files are refused before anything runs: control characters, deep nesting, huge files.

Each test runs the real command line (a subprocess) and asserts exit 2, a message naming the
problem (and the line where there is one), no traceback, and that nothing ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.tasks.loader import MAX_TASK_BYTES, TaskFileError, load_task
from agent.yaml_lines import MAX_DEPTH, YamlError, read_yaml

ROOT = Path(__file__).resolve().parent.parent


def deskpilot(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "ANTHROPIC_API_KEY": "", **(env or {})})


def refused(result: subprocess.CompletedProcess, *needles: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, output
    return output


@pytest.mark.parametrize(("char", "name"), [("\x07", "U+0007"), ("\x00", "U+0000"), ("\x1b", "U+001B")])
def test_control_characters_are_refused_naming_the_line(tmp_path: Path, char: str, name: str) -> None:
    marker = tmp_path / "ran"
    task = tmp_path / "ctrl.yaml"
    task.write_bytes(f"name: x\nsetup:\n  - run: touch {marker}\ngoal: \"a{char}b\"\n".encode())
    output = refused(deskpilot("run", str(task), "--display", ":99"), f"{task}:4:", name)
    assert "control character" in output
    assert not marker.exists()


def test_zero_bytes_in_a_file_are_refused(tmp_path: Path) -> None:
    task = tmp_path / "zeros.yaml"
    task.write_bytes(b"name: x\n" + b"\0" * 64 + b"\ngoal: hi\n")
    refused(deskpilot("run", str(task), "--display", ":99"), f"{task}:2:", "U+0000")


def test_deeply_nested_flow_yaml_is_refused(tmp_path: Path) -> None:
    task = tmp_path / "deep.yaml"
    task.write_text("goal: " + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")
    assert task.stat().st_size < 2100
    output = refused(deskpilot("run", str(task), "--display", ":99"), f"{task}:1:", "nested")
    assert "RecursionError" not in output


def test_deep_block_nesting_is_refused_in_process() -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    with pytest.raises(YamlError, match="nested more than"):
        read_yaml(text)


def test_a_huge_task_file_is_refused_fast_before_parsing(tmp_path: Path) -> None:
    task = tmp_path / "huge.yaml"
    with task.open("w", encoding="utf-8") as f:
        f.write("name: huge\nsteps:\n")
        line = "  - wait: 0.1\n"
        f.write(line * (50 * 1024 * 1024 // len(line)))
    # a fresh parent whose only child is deskpilot reports that child's peak memory
    wrapper = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
               "print('maxrss_kb=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
               "sys.exit(r.returncode)\n")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "agent.ui.cli", "run", str(task),
                             "--display", ":99"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    elapsed = time.monotonic() - started
    refused(result, str(task), "too large", f"{MAX_TASK_BYTES // (1024 * 1024)} MiB")
    assert elapsed < 10, elapsed
    rss_kb = int(result.stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    assert rss_kb < 200 * 1024, rss_kb  # the file is never read whole


def test_a_file_just_under_the_limit_but_with_too_many_values_is_refused_fast(tmp_path: Path) -> None:
    task = tmp_path / "many.yaml"
    body = "name: many\nsteps:\n" + "  - wait: 0\n" * ((MAX_TASK_BYTES - 100) // 12)
    task.write_text(body, encoding="utf-8")
    assert task.stat().st_size < MAX_TASK_BYTES
    started = time.monotonic()
    with pytest.raises(TaskFileError, match="values"):
        load_task(task)
    assert time.monotonic() - started < 10


def test_special_files_are_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    refused(deskpilot("run", str(fifo), "--display", ":99", timeout=20), str(fifo), "not a regular file")
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    refused(deskpilot("run", str(zero), "--display", ":99", timeout=20), str(zero), "not a regular file")
