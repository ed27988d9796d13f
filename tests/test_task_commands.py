"""Task commands as a hostile user breaks them: missing programs, programs that die at once, commands
that never end, Ctrl-C and SIGTERM in the middle. Each run ends with a clear message, a finished
recording, and no process left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent.recording.writer import Recording

ROOT = Path(__file__).resolve().parent.parent
SMALL = "display: {width: 320, height: 240}\n"


def start(task: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.Popen([sys.executable, "-m", "agent.ui.cli", "run", str(task), "--out",
                             str(task.parent / "recs"), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in out + err, out + err
    return proc.returncode, out, err


def recording_of(out: str) -> Recording:
    last = out.strip().splitlines()[-1]
    assert last.startswith("recording: "), out
    recording = Recording.load(last.removeprefix("recording: "))
    assert recording.meta["status"] != "running"
    return recording


def running(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def write(tmp_path: Path, body: str) -> Path:
    task = tmp_path / "task.yaml"
    task.write_text(SMALL + body, encoding="utf-8")
    return task


# ------------------------------------------------------------------------------------ launch (item 7)


@pytest.mark.parametrize(("launch", "needles"), [
    ("[/nonexistent/program]", ["/nonexistent/program", "no such program", "127"]),
    ("nonexistent-program-4a7b", ["code 127", "nonexistent-program-4a7b", "not found"]),
    ('[sh, -c, "echo the config is broken >&2; exit 3"]', ["code 3", "the config is broken"]),
])
def test_a_launch_that_cannot_run_fails_its_setup_step(tmp_path: Path, launch: str, needles: list[str]) -> None:
    marker = tmp_path / "stepped"
    task = write(tmp_path, f"setup:\n  - launch: {launch}\nsteps:\n  - wait: 0\nchecks:\n"
                           f"  - command: touch {marker}\n")
    code, out, err = finish(start(task))
    assert code == 1, out + err
    recording = recording_of(out)
    assert recording.meta["status"] == "failed"
    message = recording.meta["error"]
    assert "setup 1 (line 3)" in message
    for needle in needles:
        assert needle in message, message
    assert recording.steps == [] and not marker.exists()


def test_a_launch_that_dies_while_setup_waits_fails_fast(tmp_path: Path) -> None:
    task = write(tmp_path, 'setup:\n  - launch: [sh, -c, "sleep 1; echo gone >&2; exit 5"]\n'
                           '  - wait_for: {text: "Never shown", timeout: 60}\nsteps:\n  - wait: 0\n')
    started = time.monotonic()
    code, out, err = finish(start(task))
    assert code == 1, out + err
    assert time.monotonic() - started < 30
    assert "code 5" in recording_of(out).meta["error"] and "gone" in recording_of(out).meta["error"]


def test_a_launched_program_that_keeps_running_is_fine_and_stopped_at_the_end(tmp_path: Path) -> None:
    task = write(tmp_path, "setup:\n  - launch: [sleep, '4242.17']\nsteps:\n  - wait: 0\n")
    code, out, err = finish(start(task))
    assert code == 0, out + err
    assert running("4242.17") == []


# --------------------------------------------------------------------------- timeouts (item 11)


def test_a_command_check_times_out_and_leaves_no_orphan(tmp_path: Path) -> None:
    task = write(tmp_path, 'steps:\n  - wait: 0\nchecks:\n'
                           '  - command: {run: "sleep 100000.31 & sleep 100000.32", timeout: 1.5}\n')
    started = time.monotonic()
    code, out, err = finish(start(task))
    assert code == 1, out + err
    assert time.monotonic() - started < 40
    check = recording_of(out).meta["checks"][0]
    assert not check["ok"] and "timed out after 1.5 s" in check["detail"]
    assert running("100000.31") == [] and running("100000.32") == []


def test_a_run_step_times_out(tmp_path: Path) -> None:
    task = write(tmp_path, 'setup:\n  - run: {run: [sleep, "100000.41"], timeout: 1}\nsteps:\n  - wait: 0\n')
    code, out, err = finish(start(task))
    assert code == 1, out + err
    assert "timed out after 1 s" in recording_of(out).meta["error"]
    assert running("100000.41") == []


def test_a_bad_timeout_is_refused_at_load(tmp_path: Path) -> None:
    task = write(tmp_path, "steps:\n  - wait: 0\nchecks:\n  - command: {run: 'true', timeout: -1}\n")
    code, out, err = finish(start(task))
    assert code == 2 and "checks[0].command.timeout" in err and f"{task}:5" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_check_kills_its_process_group(tmp_path: Path, sig: signal.Signals) -> None:
    marker = f"100000.{5 if sig == signal.SIGINT else 6}1"
    task = write(tmp_path, f"steps:\n  - wait: 0\nchecks:\n  - command: sleep {marker}\n")
    proc = start(task)
    wait_until(lambda: running(marker) != [], timeout=60)
    proc.send_signal(sig)
    code, out, err = finish(proc)
    assert code == 3, out + err
    assert recording_of(out).meta["status"] == "stopped"
    time.sleep(0.3)
    assert running(marker) == []


# ----------------------------------------------------------------------------- SIGTERM (item 12)


def test_sigterm_ends_a_run_like_ctrl_c(tmp_path: Path) -> None:
    task = write(tmp_path, "setup:\n  - launch: [sleep, '4242.71']\nsteps:\n  - wait: 0\n  - wait: 60\n")
    proc = start(task)
    children = psutil.Process(proc.pid)
    wait_until(lambda: running("4242.71") != [], timeout=60)
    time.sleep(1.0)  # into the long wait
    xvfb = [p for p in children.children(recursive=True) if "Xvfb" in " ".join(p.cmdline())]
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc, timeout=30)
    assert code == 3, out + err
    recording = recording_of(out)
    assert recording.meta["status"] == "stopped" and "SIGTERM" in recording.meta["error"]
    assert "stopped: terminated by SIGTERM" in out
    time.sleep(0.3)
    assert running("4242.71") == []
    assert xvfb and not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in xvfb)
