"""The Ray engine: a local Ray that deskpilot starts and stops, a cluster the test starts (by address and
in-process), a killed worker, Ctrl-C, rollouts on Ray, and `--engine ray` without Ray installed."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from agent.budget import Limits
from agent.errors import BadInput
from agent.eval.engines import make_engine
from agent.eval.run import SuiteOptions, run_suite
from agent.eval.suite import load_suite
from agent.loop import LoopConfig
from agent.recording.writer import Recording
from agent.session import Callbacks, RunOptions
from tests.eval_helpers import Cli, entry, run, run_folder, suite, suite_json, write, xvfb_children

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray with 2 CPUs, started by this test module in this process; its GCS address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


_EARLIER_XVFB: set[int] = set()


@pytest.fixture(autouse=True)
def _earlier_xvfb() -> None:
    """Xvfb servers already below us when a test starts (a session display of this pytest worker)."""
    _EARLIER_XVFB.clear()
    _EARLIER_XVFB.update(xvfb_children())


def xvfb_below_us() -> list[int]:
    """Xvfb servers among this process's descendants that this test started (the test cluster's workers
    start them)."""
    return sorted(xvfb_children() - _EARLIER_XVFB)


def settled_xvfb(grace: float = 5.0) -> list[int]:
    deadline = time.monotonic() + grace
    while xvfb_below_us() and time.monotonic() < deadline:
        time.sleep(0.2)
    return xvfb_below_us()


def test_deskpilot_starts_and_stops_its_own_ray(tmp_path: Path) -> None:
    tasks = suite(tmp_path / "suite")
    code, out, err, left = run(["eval", str(tasks), "--engine", "ray", "--attempts", "2", "--parallel", "2",
                                "--out", str(tmp_path / "runs")], ROOT)
    assert code == 0, out + err
    assert left == []  # no raylet, GCS, Ray worker, Xvfb or app carries this run's mark any more
    folder = run_folder(out)
    summary = suite_json(folder)
    engine = summary["engine"]
    assert engine["name"] == "ray" and engine["own_cluster"] is True and engine["address"] is None
    assert engine["cluster"]["cpus"] == 2 and engine["num_cpus"] == 1 and engine["ray"] == ray.__version__
    assert engine["startup_s"] > 0 and engine["first_attempt_s"] >= engine["startup_s"]
    assert (entry(summary, "passes")["passed"], entry(summary, "cannot-pass")["passed"]) == (2, 0)
    for task in summary["tasks"]:  # recordings came back through the object store, whole
        for r in task["runs"]:
            rec = Recording.load(folder / r["recording"], partial_ok=False)
            assert rec.meta["status"] == r["status"] and r["worker"].startswith("ray ")
            assert (folder / r["recording"] / "frames" / "final.png").is_file()
            assert (folder / r["report"]).is_file()


def test_a_suite_on_a_cluster_given_by_address(cluster: str, tmp_path: Path) -> None:
    tasks = suite(tmp_path / "suite")
    code, out, err, left = run(["eval", str(tasks), "--engine", "ray", "--ray-address", cluster, "--num-cpus", "0.5",
                                "--out", str(tmp_path / "runs")], ROOT)
    assert code == 0, out + err
    assert left == []
    summary = suite_json(run_folder(out))
    assert summary["engine"]["address"] == cluster and summary["engine"]["own_cluster"] is False
    assert summary["engine"]["num_cpus"] == 0.5
    assert summary["totals"]["passed"] == 1 and summary["totals"]["attempts"] == 2
    assert ray.cluster_resources()["CPU"] == 2  # the cluster is still up: deskpilot only disconnected
    assert settled_xvfb() == []


def test_a_killed_ray_worker_is_retried_once_then_an_error(cluster: str, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    write(tmp_path / "suite", "once.yaml", f"""
name: killed-once
setup:
  - run: test -e {marks}/once || {{ touch {marks}/once; kill -9 $PPID; }}
steps:
  - wait: 0.1
checks:
  - command: "true"
""")
    write(tmp_path / "suite", "always.yaml", "name: killed-always\nsetup:\n  - run: kill -9 $PPID\nsteps:\n"
                                             "  - wait: 0.1\n")
    done: list[str] = []
    options = SuiteOptions(run=RunOptions(out=tmp_path / "runs"), engine="ray", parallel=2)
    outcome = run_suite(load_suite([tmp_path / "suite"]), options, on_done=lambda a, p: done.append(a.task))
    assert outcome.exit_code == 0 and sorted(done) == ["killed-always", "killed-once"]
    (retried,), (dead,) = entry(outcome.summary, "killed-once")["runs"], entry(outcome.summary, "killed-always")["runs"]
    assert retried["passed"] and retried["tries"] == 2
    assert dead["status"] == "error" and "the Ray worker died on each of 2 tries" in dead["message"]
    assert Recording.load(outcome.folder / dead["recording"]).meta["status"] == "error"
    assert settled_xvfb() == []


def test_ctrl_c_cancels_every_ray_attempt(cluster: str, tmp_path: Path) -> None:
    for n in range(3):
        write(tmp_path / "suite", f"slow{n}.yaml", f"name: slow-{n}\nsetup:\n  - launch: [sleep, '3600']\n"
                                                   "steps:\n  - wait: 60\nchecks:\n  - command: 'true'\n")
    cli = Cli(["eval", str(tmp_path / "suite"), "--engine", "ray", "--ray-address", cluster, "--parallel", "2",
               "--out", str(tmp_path / "runs")], ROOT)
    deadline = time.monotonic() + 90
    while len(xvfb_below_us()) < 2:  # both running attempts have their display
        assert time.monotonic() < deadline and cli.proc.poll() is None, "the attempts never started"
        time.sleep(0.2)
    time.sleep(1.5)
    cli.interrupt()
    code, out, err = cli.wait(90)
    assert code == 3, out + err
    assert cli.leftovers() == [] and settled_xvfb() == []
    summary = suite_json(run_folder(out))
    runs = [r for t in summary["tasks"] for r in t["runs"]]
    assert sorted(r["status"] for r in runs) == ["stopped"] * 3
    stopped = [r for r in runs if r["recording"]]
    assert len(stopped) == 2  # ended cleanly on their workers; their recordings came back
    for r in stopped:
        assert Recording.load(run_folder(out) / r["recording"]).meta["status"] == "stopped"
    assert ray.cluster_resources()["CPU"] == 2


def test_rollouts_on_the_ray_engine(cluster: str, tmp_path: Path) -> None:
    from agent.rollouts.run import run_rollouts
    from agent.tasks.loader import load_task

    task = load_task(write(tmp_path, "task.yaml", """
name: rollout-on-ray
setup:
  - run: echo "$DESKPILOT_ATTEMPT" > "$DESKPILOT_ATTEMPT_DIR/n.txt"
steps:
  - key: shift
  - wait: 0.1
checks:
  - output: {file: $DESKPILOT_ATTEMPT_DIR/n.txt, contains: ["0", "1"]}
"""))
    lines: list[dict] = []
    options = RunOptions(out=tmp_path / "rec", loop=LoopConfig(limits=Limits(max_seconds=60)))
    outcome = run_rollouts(task, options, n=2, parallel=2, engine="ray",
                           callbacks=Callbacks(on_step=lambda line, usage: lines.append(line)))
    # a check no attempt can pass: its number is 0 or 1, never both
    assert [a.passed for a in outcome.attempts] == [False, False]
    assert [a.status for a in outcome.attempts] == ["failed", "failed"]
    assert {a.worker.split()[0] for a in outcome.attempts} == {"ray"}
    assert sorted((line["attempt"], line["action"]["action"]) for line in lines) == [
        (0, "key"), (0, "wait"), (1, "key"), (1, "wait")]  # step lines relayed live from the workers
    meta = Recording.load(outcome.recording).meta
    assert meta["kind"] == "rollouts" and len(meta["attempts"]) == 2
    for i, a in enumerate(meta["attempts"]):
        rec = Recording.load(outcome.recording / a["path"])
        assert rec.path.parent == outcome.recording / "attempts" / str(i)
        assert rec.meta["attempt"]["index"] == i and f"('{i}\\n')" in rec.meta["checks"][0]["detail"]
    with pytest.raises(BadInput, match="model factory"):
        run_rollouts(task, options, n=2, parallel=2, engine="ray", model_factory=lambda i, c: None)
    assert settled_xvfb() == []


def test_rollouts_on_ray_choose_the_passing_attempt(cluster: str, tmp_path: Path) -> None:
    from agent.rollouts.run import run_rollouts
    from agent.tasks.loader import load_task

    task = load_task(write(tmp_path, "task.yaml", """
name: only-attempt-one
setup:
  - run: echo "$DESKPILOT_ATTEMPT" > "$DESKPILOT_ATTEMPT_DIR/n.txt"
steps:
  - wait: 0.1
checks:
  - output: {file: $DESKPILOT_ATTEMPT_DIR/n.txt, equals: "1\\n"}
"""))
    outcome = run_rollouts(task, RunOptions(out=tmp_path / "rec"), n=2, parallel=2, engine="ray")
    assert [a.passed for a in outcome.attempts] == [False, True]
    assert outcome.chosen == 1 and outcome.selection == "checks" and outcome.result.exit_code == 0


def test_engine_ray_without_ray_names_the_extra(tmp_path: Path) -> None:
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    tasks = suite(tmp_path / "suite")
    env = {"PYTHONPATH": f"{tmp_path / 'noray'}:{ROOT}"}
    code, out, err, _ = run(["eval", str(tasks), "--engine", "ray", "--out", str(tmp_path / "runs")], ROOT, env=env)
    assert code == 4 and "pip install 'deskpilot[ray]'" in err, err
    assert not (tmp_path / "runs").exists()
    code, out, err, _ = run(["run", str(tasks / "passes.yaml"), "--rollouts", "2", "--engine", "ray"], ROOT, env=env)
    assert code == 4 and "deskpilot[ray]" in err, err
    with pytest.raises(BadInput, match="--ray-address needs --engine ray"):
        make_engine("local", 2, address="x:1")


def test_an_unreachable_cluster_is_exit_4_within_seconds(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tasks = suite(tmp_path / "suite")
    started = time.monotonic()
    code, out, err, left = run(["eval", str(tasks), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}",
                                "--out", str(tmp_path / "runs")], ROOT)
    assert code == 4 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err, err
    assert time.monotonic() - started < 30 and left == []
    assert list((tmp_path / "runs").iterdir()) == []  # no empty run folder left behind


def test_a_second_ctrl_c_cancels_ray_tasks_stuck_in_a_command(cluster: str, tmp_path: Path) -> None:
    """Ray kills the worker of a cancelled task; the attempt's guard kills the command it was running."""
    import os
    import signal

    stuck = "sleep 119.731"  # a command line no other process on this machine has
    for n in range(2):
        write(tmp_path / "suite", f"stuck{n}.yaml", f"name: stuck-{n}\nsetup:\n  - run: {stuck}\n"
                                                    "steps:\n  - wait: 0\n")

    def sleeping() -> list[int]:
        return [p.pid for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []) == stuck]

    cli = Cli(["eval", str(tmp_path / "suite"), "--engine", "ray", "--ray-address", cluster, "--parallel", "2",
               "--out", str(tmp_path / "runs")], ROOT)
    deadline = time.monotonic() + 90
    while len(sleeping()) < 2:
        assert time.monotonic() < deadline and cli.proc.poll() is None, "the setup commands never started"
        time.sleep(0.2)
    os.kill(cli.proc.pid, signal.SIGINT)
    time.sleep(1.0)
    os.kill(cli.proc.pid, signal.SIGINT)
    code, out, err = cli.wait(60)
    assert code == 3, out + err
    deadline = time.monotonic() + 10
    while sleeping() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sleeping() == [] and settled_xvfb() == []
    runs = [r for t in suite_json(run_folder(out))["tasks"] for r in t["runs"]]
    assert [r["status"] for r in runs] == ["stopped", "stopped"]
    assert all(any(w in r["message"] for w in ("cancelled", "stopped", "interrupted")) for r in runs), runs
    assert ray.cluster_resources()["CPU"] == 2
