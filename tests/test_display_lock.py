"""One display, one actor: a second command on a display that is in use refuses (exit 4, naming the
display and the pid), or with --wait-display waits; keystrokes of two runs never interleave.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actions.platform.base import DesktopError
from actions.platform.display_lock import display_key, hold
from agent.recording.writer import Recording
from tests.conftest import Probe

ROOT = Path(__file__).resolve().parent.parent


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agent.ui.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=os.environ.copy())


def typed(probe: Probe) -> str:
    texts = [e["value"] for e in probe.events() if e["type"] == "text"]
    return texts[-1] if texts else ""


def wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def first_holds(desktop, tmp_path: Path, probe: Probe) -> subprocess.Popen:
    first = start("act", '{"action":"type","text":"aaaa"}', '{"action":"wait","duration":3}',
                  '{"action":"type","text":"aaaa"}', "--display", desktop.display, "--out", str(tmp_path / "one"))
    wait_until(lambda: typed(probe).endswith("aaaa"))
    return first


def test_a_second_act_on_a_busy_display_refuses_naming_the_holder(desktop, probe: Probe, tmp_path: Path) -> None:
    first = first_holds(desktop, tmp_path, probe)
    second = start("act", '{"action":"type","text":"bbbb"}', "--display", desktop.display,
                   "--out", str(tmp_path / "two"))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 4, out + err
    assert f"display {desktop.display} is in use" in err and f"pid {first.pid}" in err and "--wait-display" in err
    assert "Traceback" not in err
    assert first.wait(timeout=60) == 0
    assert typed(probe) == "aaaaaaaa"  # nothing of the second run
    assert not (tmp_path / "two").exists() or not any((tmp_path / "two").iterdir())


def test_with_wait_display_the_second_waits_and_nothing_interleaves(desktop, probe: Probe, tmp_path: Path) -> None:
    first = first_holds(desktop, tmp_path, probe)
    task = tmp_path / "task.yaml"
    task.write_text("steps:\n  - type: bbbb\n", encoding="utf-8")
    second = start("run", str(task), "--display", desktop.display, "--wait-display", "--out", str(tmp_path / "two"))
    out, err = second.communicate(timeout=90)
    assert second.returncode == 0, out + err
    assert f"display {desktop.display} is in use by pid {first.pid}" in err and "waiting" in err
    assert first.wait(timeout=30) == 0
    assert typed(probe) == "aaaaaaaabbbb"
    assert Recording.load(out.strip().splitlines()[-1].removeprefix("recording: ")).meta["status"] == "succeeded"


def test_a_killed_holder_releases_the_display(desktop, probe: Probe, tmp_path: Path) -> None:
    first = first_holds(desktop, tmp_path, probe)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    second = start("act", '{"action":"type","text":"bbbb"}', "--display", desktop.display,
                   "--out", str(tmp_path / "two"))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, out + err
    wait_until(lambda: typed(probe).endswith("bbbb"))


def test_the_lock_is_per_display_and_reentrant_in_one_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DESKPILOT_LOCK_DIR", str(tmp_path / "locks"))
    assert display_key(":7") == display_key(":7.0") == "7" and display_key("host:7.1") == "host-7"
    with hold(":7"), hold(":7.0"), hold(":8"):
        holder = subprocess.run([sys.executable, "-c", "from actions.platform.display_lock import hold\n"
                                 "with hold(':7'): pass"], capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "DESKPILOT_LOCK_DIR": str(tmp_path / "locks")})
        assert holder.returncode != 0 and "DisplayBusy" in holder.stderr and f"pid {os.getpid()}" in holder.stderr
    with hold(":7"):  # released, taken again
        pass


def test_a_lock_folder_of_someone_else_is_refused(tmp_path: Path, monkeypatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("DESKPILOT_LOCK_DIR", str(shared))
    with pytest.raises(DesktopError, match="not a private folder"), hold(":7"):
        pass
