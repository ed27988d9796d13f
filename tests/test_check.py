"""`deskpilot check` before and after the state it checks, and the output, outcome and any checks at run time."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agent.models.scripted import ScriptedModel, say
from agent.session import RunOptions
from agent.tasks.loader import parse_task
from agent.tasks.runner import run_task
from tests.eval_helpers import run, write

ROOT = Path(__file__).resolve().parent.parent
LABEL = "import tkinter as tk; r = tk.Tk(); tk.Label(r, text='Report ready', font=('DejaVu Sans', 28)).pack(); " \
        "r.mainloop()"


def test_check_before_and_after_the_state_it_checks(desktop, tmp_path: Path) -> None:
    task = write(tmp_path, "report.yaml", """
goal: Write the report and show it
checks:
  - file: {path: report.txt, contains: total}
  - output: {command: cat report.txt, contains: total, excludes: draft}
  - screen: {text: Report ready, timeout: 1}
""")
    code, out, err, _ = run(["check", str(task), "--display", desktop.display], tmp_path)
    assert code == 1, out + err
    assert out.count("check FAIL") == 3 and "0 of 3 checks hold" in out
    assert "report.txt does not exist" in out and "the output ('') lacks ['total']" in out

    (tmp_path / "report.txt").write_text("draft total 42\n")
    code, out, err, _ = run(["check", str(task), "--display", desktop.display], tmp_path)
    assert code == 1 and "has ['draft']" in out and "1 of 3 checks hold" in out

    (tmp_path / "report.txt").write_text("total 42\n")
    desktop.launch([sys.executable, "-c", LABEL])
    time.sleep(1.5)
    code, out, err, _ = run(["check", str(task), "--display", desktop.display], tmp_path)
    assert code == 0, out + err
    assert out.count("check ok") == 3 and "3 of 3 checks hold" in out
    assert not (tmp_path / "recordings").exists()  # check acts on nothing and records nothing


def test_check_refuses_what_it_cannot_check(desktop, tmp_path: Path) -> None:
    none = write(tmp_path, "none.yaml", "steps:\n  - wait: 0\n")
    outcome = write(tmp_path, "outcome.yaml", "goal: Install Photoshop\nchecks:\n  - outcome: impossible\n")
    code, _, err, _ = run(["check", str(none), "--display", desktop.display], tmp_path)
    assert code == 2 and "the task has no checks" in err
    code, _, err, _ = run(["check", str(tmp_path / "missing.yaml"), "--display", desktop.display], tmp_path)
    assert code == 2 and "no such task file" in err
    code, out, _, _ = run(["check", str(outcome), "--display", desktop.display], tmp_path)
    assert code == 1 and "no model worked on the task" in out


def test_an_outcome_check_holds_when_the_model_answers_impossible(desktop, tmp_path: Path) -> None:
    task = parse_task("goal: Install Photoshop on this Linux desktop\nchecks:\n  - outcome: impossible\n",
                      tmp_path / "infeasible.yaml")
    options = RunOptions(out=tmp_path / "rec", workdir=tmp_path)
    honest = run_task(task, options, desktop=desktop, kill_switch=False,
                      model=ScriptedModel([[say("IMPOSSIBLE: Photoshop does not run on Linux.")]]))
    assert honest.result.status == "succeeded" and honest.result.exit_code == 0, honest.result.message
    boastful = run_task(task, options, desktop=desktop, kill_switch=False, model=ScriptedModel([[say("Done.")]]))
    assert boastful.result.status == "failed"
    assert "the model's work ended finished" in boastful.result.message
    # without an outcome check, an IMPOSSIBLE answer still fails the task
    plain = parse_task("goal: Install Photoshop\n", tmp_path / "plain.yaml")
    gave_up = run_task(plain, options, desktop=desktop, kill_switch=False,
                       model=ScriptedModel([[say("IMPOSSIBLE: no.")]]))
    assert gave_up.result.status == "failed" and "IMPOSSIBLE" in gave_up.result.message


def test_output_and_any_checks_at_run_time(desktop, tmp_path: Path) -> None:
    (tmp_path / "expected.txt").write_text("Hello   World\n\n")
    task = parse_task("""
steps:
  - wait: 0
checks:
  - output: {command: printf 'hello world', equals_file: expected.txt, ignore_case: true, ignore_blanks: true}
  - output: {command: printf 'hello world', equals_file: expected.txt}
  - output: {command: no-such-program-xyz, contains: x}
  - output: {command: "echo out; echo err >&2; exit 3", equals: "out\\n"}
  - any:
      - file: {path: missing.txt}
      - output: {file: expected.txt, contains: World}
  - any:
      - file: {path: missing.txt}
      - output: {file: missing.txt, contains: x}
""", tmp_path / "t.yaml")
    outcome = run_task(task, RunOptions(out=tmp_path / "rec", workdir=tmp_path), desktop=desktop, kill_switch=False)
    from agent.recording.writer import Recording

    checks = Recording.load(outcome.recording).meta["checks"]
    assert [c["ok"] for c in checks] == [True, False, False, True, True, False], checks
    assert "expected 'Hello   World\\n\\n' (they differ from character 0)" in checks[1]["detail"]
    assert checks[2]["detail"].startswith("the command did not run")
    assert checks[4]["detail"].startswith("FAIL file") and "| ok output" in checks[4]["detail"]
    assert "cannot read" in checks[5]["detail"]
    assert outcome.result.status == "failed"
