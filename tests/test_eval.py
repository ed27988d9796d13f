"""`deskpilot eval` on the local engine: suite.json, the report in Chromium, Ctrl-C, a killed worker,
--min-success, bad input; nothing left running (see tests/eval_helpers.py for how that is checked)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.eval.stats import wilson
from agent.recording.writer import Recording
from tests.eval_helpers import Cli, entry, run, run_folder, suite, suite_json, write

ROOT = Path(__file__).resolve().parent.parent


def test_wilson_interval_matches_published_values() -> None:
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(2, 2) == pytest.approx((0.3424, 1.0), abs=1e-4)
    assert wilson(0, 0) is None


def test_a_suite_on_the_local_engine(tmp_path: Path) -> None:
    """Two scripted tasks (one passes, one cannot) and a goal task crossed with two scripted models."""
    tasks = suite(tmp_path / "suite", goal=True)
    code, out, err, left = run(["eval", str(tasks), "--attempts", "2", "--parallel", "2", "--model", "scripted/a",
                                "--model", "scripted/b", "--out", str(tmp_path / "runs")], ROOT)
    assert code == 0, out + err
    assert left == []  # no worker, Xvfb or launched app survives
    folder = run_folder(out)
    assert folder.parent == tmp_path / "runs"
    assert "8 attempts on local" in out.splitlines()[0]
    progress = [line for line in out.splitlines() if line.startswith("[")]
    assert len(progress) == 8 and progress[-1].startswith("[8/8]") and "passing 6" in progress[-1]

    summary = suite_json(folder)
    assert summary["format"] == "deskpilot.suite/1" and summary["status"] == "completed"
    engine = summary["engine"]
    assert (engine["name"], engine["parallel"], engine["workers"]) == ("local", 2, "processes")
    assert 0 < engine["first_attempt_s"] < totals_wall(summary)
    assert summary["models"] == ["scripted/a", "scripted/b"] and summary["attempts_per_task"] == 2
    assert summary["versions"]["python"] and summary["versions"]["engine"] == "local"
    assert [(t["name"], t["model"]) for t in summary["tasks"]] == [
        ("cannot-pass", None), ("goal-task", "scripted/a"), ("goal-task", "scripted/b"), ("passes", None)]
    passes, cannot = entry(summary, "passes"), entry(summary, "cannot-pass")
    assert (passes["attempts"], passes["passed"], passes["success_rate"]) == (2, 2, 1.0)
    assert passes["interval95"] == pytest.approx(list(wilson(2, 2)))
    assert (cannot["passed"], cannot["failed"], cannot["success_rate"]) == (0, 2, 0.0)
    assert cannot["interval95"] == pytest.approx([0.0, 0.6576], abs=1e-4)
    assert passes["median_steps"] == 1 and passes["median_seconds"] > 0 and passes["median_cost_usd"] == 0
    for model in ("scripted/a", "scripted/b"):
        assert entry(summary, "goal-task", model)["passed"] == 2
    assert summary["by_model"]["scripted"]["success_rate"] == 0.5
    totals = summary["totals"]
    assert (totals["attempts"], totals["passed"], totals["errors"]) == (8, 6, 0)
    assert totals["interval95"] == pytest.approx(list(wilson(6, 8)))
    assert totals["wall_s"] > 0 and totals["attempts_per_minute"] > 0

    # every attempt: its own recording (setup afresh, its own DESKPILOT_ATTEMPT), its report
    for task in summary["tasks"]:
        assert sorted(r["number"] for r in task["runs"]) == [0, 1]
        for r in task["runs"]:
            rec = Recording.load(folder / r["recording"])
            assert rec.meta["status"] == r["status"] and (folder / r["report"]).is_file()
            assert rec.meta["eval"]["task"] == task["name"] and rec.meta["eval"]["attempt"] == r["number"]
            assert r["tries"] == 1 and r["worker"].startswith("process ")
    detail = entry(summary, "passes")["runs"][1]["checks"][1]["detail"]
    assert detail == "the output is 'attempt 1\\n'"  # this attempt's own DESKPILOT_ATTEMPT
    assert "is 'draft\\n', expected 'final\\n'" in cannot["runs"][0]["checks"][0]["detail"]
    assert (folder / "report.html").is_file()
    table = out[out.index("task "):]
    assert "passes       scripted    2/2" in table and "cannot-pass  scripted    0/2" in table
    assert "total: 6/8 passed" in table


def totals_wall(summary: dict) -> float:
    return summary["totals"]["wall_s"]


def test_min_success_sets_the_exit_code(tmp_path: Path) -> None:
    tasks = suite(tmp_path / "suite")
    args = ["eval", str(tasks), "--parallel", "2", "--out", str(tmp_path / "runs")]
    code, out, _, _ = run([*args, "--min-success", "50%"], ROOT)
    assert code == 0 and "min success 0.50: met" in out
    code, out, _, _ = run([*args, "--min-success", "0.9"], ROOT)
    assert code == 1 and "min success 0.90: NOT met: scripted 0.50" in out
    summary = suite_json(run_folder(out))
    assert summary["min_success"] == 0.9 and summary["met"] is False


@pytest.fixture(scope="module")
def browser():
    playwright_sync = pytest.importorskip("playwright.sync_api")
    from tests.test_report import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():  # pragma: no cover
        pytest.skip(f"{CHROMIUM} is not installed")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def test_the_report_in_chromium_links_every_attempt(tmp_path: Path, browser) -> None:
    tasks = suite(tmp_path / "suite")
    code, out, err, _ = run(["eval", str(tasks), "--attempts", "2", "--parallel", "2", "--out", str(tmp_path)],
                            ROOT)
    assert code == 0, out + err
    folder = run_folder(out)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    requests: list[str] = []
    errors: list[str] = []
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((folder / "report.html").as_uri(), wait_until="load")
    rows = page.evaluate("""() => [...document.querySelectorAll('tr.row')].map(r => ({
        task: r.dataset.task, model: r.dataset.model, cells: [...r.cells].map(c => c.innerText.trim()),
        links: [...r.querySelectorAll('a.attempt')].map(a => ({href: a.href, status: a.dataset.status,
                                                                cls: a.className, title: a.title}))}))""")
    assert [(r["task"], r["model"]) for r in rows] == [("cannot-pass", "scripted"), ("passes", "scripted")]
    cannot, passes = rows
    assert cannot["cells"][2] == "0/2" and passes["cells"][2] == "2/2" and passes["cells"][3].startswith("100%")
    assert all("pass" in link["cls"].split() for link in passes["links"])
    assert all("fail" in link["cls"].split() and link["status"] == "failed" for link in cannot["links"])
    assert "checks failed" in cannot["links"][0]["title"]
    summary = suite_json(folder)
    expected = {(folder / r["report"]).as_uri() for t in summary["tasks"] for r in t["runs"]}
    assert {link["href"] for r in rows for link in r["links"]} == expected
    bar = page.evaluate("() => document.querySelector('tr.row .ci span').style.width")
    assert bar == "65.8%"  # cannot-pass: 0/2, interval 0%-65.8%
    page.click("tr.row[data-task=passes] a.attempt")  # one click: the attempt's own report
    page.wait_for_load_state("load")
    assert page.url in expected and "passes.yaml" in page.content()
    assert errors == [] and all(u.startswith(("file:", "data:")) for u in requests)
    context.close()

    from agent.ui.cli import main

    (folder / "report.html").unlink()
    assert main(["report", str(folder)]) == 0  # `deskpilot report RUN` writes the suite's report again
    assert 'data-task="passes"' in (folder / "report.html").read_text(encoding="utf-8")


def test_ctrl_c_mid_suite_stops_every_attempt_and_leaves_nothing(tmp_path: Path) -> None:
    slow = """
name: slow-{n}
setup:
  - launch: [python3, -c, "import time; time.sleep(3600)"]
steps:
  - wait: 60
checks:
  - command: "true"
"""
    for n in range(4):
        write(tmp_path / "suite", f"slow{n}.yaml", slow.replace("{n}", str(n)))
    cli = Cli(["eval", str(tmp_path / "suite"), "--parallel", "2", "--out", str(tmp_path / "runs")], ROOT)
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "runs").glob("*/attempts/*/*/*/*/steps.jsonl"))) < 2:  # two attempts are running
        assert time.monotonic() < deadline, "the attempts never started"
        time.sleep(0.2)
    time.sleep(1.0)
    pressed = time.monotonic()
    cli.interrupt()
    code, out, err = cli.wait(60)
    assert time.monotonic() - pressed < 30
    assert code == 3, out + err
    assert cli.leftovers() == []
    folder = run_folder(out)
    summary = suite_json(folder)
    assert summary["status"] == "stopped" and "Ctrl-C" in summary["interrupted"]
    runs = [r for t in summary["tasks"] for r in t["runs"]]
    assert sorted(r["status"] for r in runs) == ["stopped"] * 4
    started = [r for r in runs if r["recording"]]
    assert len(started) == 2 and all(not r["message"].startswith("not started") for r in started)
    assert sum(r["message"].startswith("not started") for r in runs) == 2
    for r in started:  # ended cleanly: the recording says stopped, not running or error
        assert Recording.load(folder / r["recording"]).meta["status"] == "stopped"
    assert "stopped: interrupted by the user (Ctrl-C)" in out


def test_a_killed_worker_is_retried_once_then_recorded_as_an_error(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    once = f"""
name: killed-once
setup:
  - run: test -e {marks}/once-$DESKPILOT_ATTEMPT || {{ touch {marks}/once-$DESKPILOT_ATTEMPT; kill -9 $PPID; }}
steps:
  - wait: 0.1
checks:
  - command: "true"
"""
    always = """
name: killed-always
setup:
  - run: sleep 119.77 & kill -9 $PPID
steps:
  - wait: 0.1
"""  # the worker dies while a command of its own runs: that command must not outlive it
    write(tmp_path / "suite", "once.yaml", once)
    write(tmp_path / "suite", "always.yaml", always)
    code, out, err, left = run(["eval", str(tmp_path / "suite"), "--parallel", "2", "--out", str(tmp_path / "runs")],
                               ROOT)
    assert code == 0, out + err  # every attempt reached a verdict (an error is one)
    assert left == []
    summary = suite_json(run_folder(out))
    (retried,), (dead,) = entry(summary, "killed-once")["runs"], entry(summary, "killed-always")["runs"]
    assert retried["status"] == "succeeded" and retried["passed"] and retried["tries"] == 2
    assert dead["status"] == "error" and dead["tries"] == 2
    assert "the worker died (killed by signal 9) on each of 2 tries" in dead["message"]
    assert entry(summary, "killed-always")["errors"] == 1 and summary["totals"]["errors"] == 1
    folder = run_folder(out)
    assert Recording.load(folder / dead["recording"]).meta["status"] == "error"
    assert "1 errors" in out


def test_bad_input_is_refused_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.ui.cli import main

    tasks = suite(tmp_path / "suite")
    out = tmp_path / "runs"
    write(tmp_path / "dup", "a.yaml", "name: same\nsteps: [{wait: 0}]\n")
    write(tmp_path / "dup", "b.yaml", "name: same\nsteps: [{wait: 0}]\n")
    write(tmp_path / "bad", "broken.yaml", "steps:\n  - clik: Submit\n")
    (tmp_path / "empty").mkdir()
    goal = write(tmp_path / "goal", "goal.yaml", "goal: do something\n")
    cases = [
        (["eval", str(tmp_path / "nope.yaml")], 2, "no such file or folder"),
        (["eval", str(tmp_path / "empty")], 2, "no task files"),
        (["eval", str(tmp_path / "dup")], 2, "are both named 'same'"),
        (["eval", str(tmp_path / "bad")], 2, "broken.yaml:2: steps[0].clik"),
        (["eval", str(tasks), "--ray-address", "x:1"], 2, "--ray-address needs --engine ray"),
        (["eval", str(goal), "--model", "gpt-9"], 2, "'gpt-9'"),
        (["eval", str(tasks), "--min-success", "1.5"], 2, "between 0 and 1"),
        (["eval", str(tasks), "--attempts", "0"], 2, "must be positive"),
    ]
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setattr("agent.models.credentials.api_key", lambda: None)
    for args, code, _words in cases:
        got = main([*args, "--out", str(out)])
        assert got == code, args
    for args, code, words in cases:  # the messages, through a child process (argparse exits, stderr)
        result, stdout, stderr, _ = run([*args, "--out", str(out)], ROOT)
        assert result == code and words in stderr + stdout, (args, stderr)
    # a model without credentials: exit 4 before any attempt, nothing written
    assert main(["eval", str(goal), "--out", str(out)]) == 4
    assert not out.exists()


def test_eval_reads_osworld_json_and_crosses_models(tmp_path: Path) -> None:
    """An OSWorld task given as JSON runs through the converter; an infeasible one fails when the model
    claims it is done (the scripted model always does)."""
    home = tmp_path / "home"
    home.mkdir()
    task = {"id": "write-note", "snapshot": "os", "instruction": "Keep the note.",
            "config": [{"type": "execute", "parameters": {"command": "echo kept > /home/user/note.txt",
                                                          "shell": True}}],
            "evaluator": {"func": "exact_match", "result": {"type": "vm_command_line", "command": "cat ~/note.txt",
                                                            "shell": True},
                          "expected": {"type": "rule", "rules": {"expected": "kept\n"}}}}
    infeasible = {"id": "impossible-one", "instruction": "Install Photoshop.", "config": [],
                  "evaluator": {"func": "infeasible"}}
    (tmp_path / "a.json").write_text(json.dumps(task))
    (tmp_path / "b.json").write_text(json.dumps(infeasible))
    code, out, err, left = run(["eval", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--model", "scripted/x",
                                "--out", str(tmp_path / "runs")], ROOT, env={"HOME": str(home)})
    assert code == 0, out + err
    assert left == []
    summary = suite_json(run_folder(out))
    note, impossible = entry(summary, "write-note", "scripted/x"), entry(summary, "impossible-one", "scripted/x")
    assert note["source"] == "osworld" and note["passed"] == 1
    assert (home / "note.txt").read_text() == "kept\n"  # /home/user is the running user's home
    assert impossible["passed"] == 0
    assert "the model's work ended finished" in impossible["runs"][0]["checks"][0]["detail"]


def test_no_display_to_be_had_is_exit_4(tmp_path: Path) -> None:
    """Without Xvfb on PATH no attempt gets its display: each is an error with exit code 4, and so is the run."""
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    tasks = suite(tmp_path / "suite")
    code, out, err, left = run(["eval", str(tasks), "--out", str(tmp_path / "runs")], ROOT,
                               env={"PATH": str(bin_dir)})
    assert code == 4, out + err
    assert left == []
    summary = suite_json(run_folder(out))
    runs = [r for t in summary["tasks"] for r in t["runs"]]
    assert [r["status"] for r in runs] == ["error", "error"]
    assert all("Xvfb not found" in r["message"] for r in runs)


def test_ctrl_c_stops_workers_running_a_long_command(tmp_path: Path) -> None:
    """A setup command that would run for minutes: Ctrl-C (to the driver alone) stops each attempt, whose
    command is ended with its whole process group, and the suite ends stopped with nothing left."""
    import os
    import signal

    for n in range(2):
        write(tmp_path / "suite", f"stuck{n}.yaml", f"name: stuck-{n}\nsetup:\n  - run: sleep 120\n"
                                                    "steps:\n  - wait: 0\n")
    cli = Cli(["eval", str(tmp_path / "suite"), "--parallel", "2", "--out", str(tmp_path / "runs")], ROOT)
    deadline = time.monotonic() + 60
    while len([p for p in marked_commands(cli.mark) if p == "sleep 120"]) < 2:
        assert time.monotonic() < deadline, "the setup commands never started"
        time.sleep(0.2)
    pressed = time.monotonic()
    os.kill(cli.proc.pid, signal.SIGINT)  # to the driver alone: the commands do not see it
    code, out, err = cli.wait(60)
    assert code == 3 and time.monotonic() - pressed < 20, out + err
    assert cli.leftovers() == []  # the workers and their `sleep 120` are gone
    summary = suite_json(run_folder(out))
    runs = [r for t in summary["tasks"] for r in t["runs"]]
    assert [r["status"] for r in runs] == ["stopped", "stopped"]


def marked_commands(mark: str) -> list[str]:
    """The command lines of live processes carrying `mark`."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("DESKPILOT_TEST_MARK") == mark:
                found.append(" ".join(proc.cmdline()))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_ctrl_c_while_the_engine_closes_does_not_lose_the_attempts() -> None:
    """A second Ctrl-C often lands while a local Ray shuts down: the attempts still come back."""
    import os
    import signal
    from types import SimpleNamespace

    from agent.eval.attempt import Attempt
    from agent.eval.engines.base import Engine

    class ClosesSlowly(Engine):
        ended: list[Attempt] = []

        def _start(self, spec, on_step) -> None:  # type: ignore[no-untyped-def]
            self.ended.append(Attempt(spec.index, None, status="succeeded", exit_code=0, message="done"))

        def _collect(self, timeout: float) -> list[Attempt]:
            done, self.ended = self.ended, []
            return done

        def _stop_one(self, index: int, reason: str) -> None:
            pass

        def _abandon(self) -> list[Attempt]:
            return []

        def close(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C pressed as the engine shuts down
            time.sleep(0.3)
            self.closed = True

    engine = ClosesSlowly(2)
    specs = [SimpleNamespace(index=i) for i in range(2)]
    attempts = engine.run(specs, on_done=lambda attempt: None)  # type: ignore[arg-type]
    assert [(a.index, a.status) for a in attempts] == [(0, "succeeded"), (1, "succeeded")] and engine.closed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works again afterwards


def test_results_are_written_whatever_ctrl_c_comes_meanwhile() -> None:
    """`ctrl_c_held`, around writing a suite's results and report: Ctrl-C inside is ignored, and works after."""
    import os
    import signal

    from agent.eval.engines.base import ctrl_c_held

    written = []
    with ctrl_c_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        written.append("suite.json")
    assert written == ["suite.json"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
