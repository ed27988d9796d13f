"""`deskpilot doctor`, `act` and `screenshot` as a user runs them: real processes, real displays."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agent.recording.writer import Recording
from tests.conftest import Probe
from vision.encode import decode

DESKPILOT = [sys.executable, "-m", "agent.ui.cli"]


def run(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*DESKPILOT, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ.copy(), cwd=Path(__file__).parent.parent)


def test_doctor_on_a_virtual_display_is_ready() -> None:
    result = run("doctor", "--display", "virtual")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "input injection  ok" in result.stdout
    assert "deskpilot is ready." in result.stdout


def test_doctor_without_a_display_or_xvfb_exits_4_with_the_fix() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["PATH"] = str(Path(sys.executable).parent)  # no Xvfb on this PATH
    result = run("doctor", env=env)
    assert result.returncode == 4
    assert "apt-get install xvfb" in result.stdout
    assert "FAIL" in result.stdout


def test_act_performs_actions_in_order_on_an_existing_display(desktop, probe: Probe, tmp_path: Path) -> None:
    result = run("act", '{"action":"left_click","coordinate":[200,150]}',
                 '{"action":"type","text":"héllo"}', '{"action":"key","text":"ctrl+s"}',
                 "--display", desktop.display, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    recording = Recording.load(result.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    assert recording.meta["kind"] == "act" and recording.meta["status"] == "succeeded"
    assert [s["action"]["action"] for s in recording.steps] == ["left_click", "type", "key"]
    assert recording.steps[0]["anchor"]["point"] == [200, 150]
    events = probe.wait_for(lambda ev: any(e["type"] == "keyrelease" and e["keysym"] == "s" for e in ev))
    press = next(e for e in events if e["type"] == "press")
    assert (press["x"], press["y"], press["button"]) == (200, 150, 1)
    assert [e["value"] for e in events if e["type"] == "text"][-1].endswith("héllo")


def test_act_refuses_a_bad_action_and_executes_nothing(desktop, probe: Probe, tmp_path: Path) -> None:
    for bad, message in [
        ('{"action":"left_click","coordinate":[5000,10]}', "action 2: left_click: coordinate: (5000, 10) is outside"),
        ('{"action":"type"}', "action 2: type: text: Field required"),
        ('{"action":"left_click",', "action 2: not valid JSON"),
        ('{"action":"teleport"}', "action 2: action: unknown action 'teleport'"),
    ]:
        result = run("act", '{"action":"left_click","coordinate":[100,100]}', bad, "--display", desktop.display,
                     "--out", str(tmp_path / "out"))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
    time.sleep(0.3)
    assert [e for e in probe.events() if e["type"] in ("press", "keypress")] == []
    assert not (tmp_path / "out").exists()  # nothing ran, so no recording either


def test_act_bad_display_and_size_are_usage_errors() -> None:
    result = run("act", '{"action":"wait","duration":0}', "--display", "moon")
    assert result.returncode == 2 and "invalid display 'moon'" in result.stderr
    result = run("act", '{"action":"wait","duration":0}', "--display", "virtual", "--size", "12x")
    assert result.returncode == 2 and "size must look like 1280x800" in result.stderr
    result = run("act", '{"action":"wait","duration":0}', "--display", ":93")
    assert result.returncode == 4 and ":93" in result.stderr


def test_screenshot_full_and_model_size(tmp_path: Path) -> None:
    full, model = tmp_path / "full.png", tmp_path / "model.png"
    assert run("screenshot", "--display", "virtual", "--size", "1920x1080", "--out", str(full)).returncode == 0
    assert decode(full.read_bytes()).shape == (1080, 1920, 3)
    result = run("screenshot", "--display", "virtual", "--size", "1920x1080", "--model-size", "--out", str(model))
    assert result.returncode == 0
    assert decode(model.read_bytes()).shape == (804, 1430, 3)
    bad = run("screenshot", "--display", "virtual", "--out", str(tmp_path / "x.jpg"))
    assert bad.returncode == 2 and "PNG" in bad.stderr


def test_ctrl_c_after_the_command_ended_keeps_its_exit_code(tmp_path: Path) -> None:
    """A Ctrl-C that arrives once the command has returned (the console script not yet exited, a library
    still cleaning up) exits at once with the command's own code, not Python's 'killed by SIGINT' (-2)."""
    import signal

    script = (
        "import sys, time\n"
        "from agent.ui import cli\n"
        "sys.argv = ['deskpilot', 'schema']\n"
        "code = cli.main()\n"
        "print('ENDED', flush=True)\n"
        "time.sleep(30)  # what comes after main() returns, made long enough to hit\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent.parent)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("ENDED"):
            break
    time.sleep(0.3)  # now in the sleep after main() returned
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5
    assert '"$schema"' in "".join(lines) or '"properties"' in "".join(lines)


def test_ctrl_c_during_the_interpreters_last_teardown_keeps_the_exit_code() -> None:
    """After atexit, Python puts SIGINT's default action back; a Ctrl-C while a library's threads still
    end (Ray's driver) killed the process (-2). Here the C library sleeps as the process exits."""
    import signal

    script = (
        "import ctypes, sys\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.on_exit(ctypes.cast(libc.sleep, ctypes.c_void_p), None)  # sleep(exit status) at the very end\n"
        "from agent.ui import cli\n"
        "sys.argv = ['deskpilot', 'act', '{not json', '--display', ':99']\n"
        "code = cli.main()\n"
        "print('ENDED', code, flush=True)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parent.parent)
    line = proc.stdout.readline()
    assert line.strip() == "ENDED 2", line + proc.stderr.read()
    time.sleep(0.8)  # past the interpreter's teardown, inside the C library's sleep(2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 2
