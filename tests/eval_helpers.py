"""Helpers of the evaluation tests: suites written on the fly, the CLI in a child process, leftovers.

Every CLI run gets a unique environment variable (`DESKPILOT_TEST_MARK`), which every process it
starts inherits (worker processes, Xvfb, the apps of task setups, a local Ray's raylet and
workers): after the run, no live process may carry it. Other test sessions running on the same
machine at the same time carry other marks (or none), so they never count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
APP = "import sys, time; time.sleep(3600)"

PASSES = """
name: passes
setup:
  - run: echo ready > "$DESKPILOT_ATTEMPT_DIR/state.txt"
  - launch: [python3, -c, "{app}", "eval-test-app-$DESKPILOT_ATTEMPT"]
steps:
  - wait: 0.2
checks:
  - file: {{path: $DESKPILOT_ATTEMPT_DIR/state.txt, contains: ready}}
  - output: {{command: echo "attempt $DESKPILOT_ATTEMPT", contains: attempt}}
"""

CANNOT_PASS = """
name: cannot-pass
setup:
  - run: echo draft > "$DESKPILOT_ATTEMPT_DIR/state.txt"
steps:
  - wait: 0.1
checks:
  - output: {file: $DESKPILOT_ATTEMPT_DIR/state.txt, equals: "final\\n"}
"""

GOAL = """
name: goal-task
goal: Leave the file as it is.
setup:
  - run: echo kept > "$DESKPILOT_ATTEMPT_DIR/goal.txt"
checks:
  - file: {path: $DESKPILOT_ATTEMPT_DIR/goal.txt, contains: kept}
"""


def write(folder: Path, name: str, text: str) -> Path:
    """A task file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.format(app=APP) if "{app}" in text else text, encoding="utf-8")
    return path


def suite(folder: Path, goal: bool = False) -> Path:
    """A folder with the task that passes and the one that cannot (and a goal task)."""
    write(folder, "passes.yaml", PASSES)
    write(folder, "cannot_pass.yaml", CANNOT_PASS)
    if goal:
        write(folder, "goal.yaml", GOAL)
    return folder


class Cli:
    """One `deskpilot ...` in a child process (its own session, as from a terminal), with a leftover mark."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.mark = uuid.uuid4().hex
        environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "ANTHROPIC_API_KEY")}
        environ.update({"DESKPILOT_TEST_MARK": self.mark, "PYTHONPATH": str(ROOT), **(env or {})})
        self.proc = subprocess.Popen([sys.executable, "-m", "agent.ui.cli", *args], cwd=cwd, env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def wait(self, timeout: float = 240) -> tuple[int, str, str]:
        """(exit code, stdout, stderr)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
            raise AssertionError(f"deskpilot did not end in {timeout} s:\n{out}\n{err}") from None
        return self.proc.returncode, out, err

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def leftovers(self, grace: float = 5.0) -> list[str]:
        """Live processes this run started (directly or not), after `grace` seconds to end."""
        deadline = time.monotonic() + grace
        while True:
            alive = marked(self.mark)
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)


def marked(mark: str) -> list[str]:
    """Live processes whose environment carries `mark`."""
    found = []
    for proc in psutil.process_iter(["pid", "name"]):
        try:
            if proc.environ().get("DESKPILOT_TEST_MARK") == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.info['pid']} {' '.join(proc.cmdline())[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def run(args: list[str], cwd: Path, timeout: float = 240, env: dict[str, str] | None = None
        ) -> tuple[int, str, str, list[str]]:
    """Run the CLI to its end: (exit code, stdout, stderr, leftover processes)."""
    cli = Cli(args, cwd, env)
    code, out, err = cli.wait(timeout)
    return code, out, err, cli.leftovers()


def run_folder(stdout: str) -> Path:
    """The run folder from the last line, `recording: PATH`."""
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("recording: "), stdout
    return Path(last.removeprefix("recording: "))


def suite_json(folder: Path) -> dict:
    """The run's suite.json."""
    return json.loads((folder / "suite.json").read_text(encoding="utf-8"))


def entry(summary: dict, name: str, model: str | None = None) -> dict:
    """suite.json's entry for a task (and model)."""
    (found,) = [t for t in summary["tasks"] if t["name"] == name and t["model"] == model]
    return found


def xvfb_children() -> set[int]:
    """Pids of the live Xvfb servers among this process's descendants."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "Xvfb" and child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found
