"""How `deskpilot eval` scales: 8 scripted tasks x 2 attempts at 1, 2 and 4 attempts at once, local engine and
Ray engine, in one run; and Ray's fixed cost.

Each task is real desktop work, scripted (no model): its setup launches a small Tk app (an entry that
writes what it holds to `$DESKPILOT_ATTEMPT_DIR/out.txt`) on the attempt's own 1024x768 Xvfb and waits
for its window (xdotool); its steps click the entry, type "hello N" and press Return (XTest, settling,
frames saved); its check reads the file back. The 8 tasks differ by N.

Per configuration (engine, K): wall time of `run_suite` (the engine's start and stop included: for Ray,
deskpilot's own local Ray with K CPUs, started and shut down every time, as `deskpilot eval --engine
ray` does), attempts per minute, the median attempt duration, the CPU seconds the whole process tree
used per attempt (driver, worker processes, Xvfb, apps, Ray's processes: sampled every 0.25 s per
process, so a process's last < 0.25 s can be missed), and peak memory: the proportional set size
(PSS, shared pages split between their users, so forked workers are not counted N times) summed over
this process and all its descendants, sampled every 0.25 s. For Ray also the fixed cost: `ray.init`
and from the engine's start to the first attempt beginning on a worker, and the rate once the first
attempt began. A warm-up attempt on the local engine (not counted) starts its fork server first.
Every attempt must pass, or the script stops saying why instead of printing numbers.

The projection for a 4-node cluster of this machine's kind (2 cores each) is computed from the
measured per-attempt CPU cost c and the uncontended attempt time w (K = 1): each node runs at most
2 / c attempts per second when the CPU is the limit, or K / w when it is not, so 4 nodes give
4 * min(2 / c, K / w) per second, plus Ray's fixed cost once per run.

Last, the local engine at K = 1 with and without its fork server's preload (agent.eval.warm): the
median attempt time of each.

Prints one JSON object. Run: `python -m benchmarks.eval_scaling`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

PARALLEL = (1, 2, 4)
TASKS, ATTEMPTS = 8, 2
APP = """
import sys, tkinter as tk
root = tk.Tk(className="evalbench")
root.title("evalbench")
root.geometry("400x80+0+0")
entry = tk.Entry(root, font=("DejaVu Sans", 16))
entry.pack(fill="x", padx=10, pady=10)
def save(_event=None):
    with open(sys.argv[1], "w") as f:
        f.write(entry.get())
entry.bind("<KeyRelease>", save)
root.mainloop()
"""
TASK = """
name: bench-{n}
display: {{width: 1024, height: 768}}
setup:
  - launch: python3 app.py "$DESKPILOT_ATTEMPT_DIR/out.txt"
  - run: for i in $(seq 200); do xdotool search --name '^evalbench$' >/dev/null && exit 0; sleep 0.05; done; exit 1
steps:
  - click: {{x: 200, y: 30}}
  - type: hello {n}
  - key: Return
checks:
  - file: {{path: $DESKPILOT_ATTEMPT_DIR/out.txt, contains: hello {n}}}
"""


class Sampler:
    """Peak PSS and per-process CPU time of this process and its descendants, sampled in a thread."""

    def __init__(self, period: float = 0.25) -> None:
        self.period, self.peak_mb, self.cpu = period, 0.0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        total = 0.0
        for proc in [me, *me.children(recursive=True)]:
            try:
                with proc.oneshot():
                    total += proc.memory_full_info().pss
                    times = proc.cpu_times()
                key = (proc.pid, proc.create_time())
                self.cpu[key] = max(self.cpu.get(key, 0.0), times.user + times.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.peak_mb = max(self.peak_mb, total / 2**20)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.period)

    def __enter__(self) -> Sampler:
        self._sample()
        self.baseline_cpu = sum(self.cpu.values())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_s(self) -> float:
        """CPU seconds used since entering."""
        return sum(self.cpu.values()) - self.baseline_cpu


def measure(engine: str, parallel: int, tasks: list, out: Path) -> dict:
    from agent.eval.engines import make_engine
    from agent.eval.run import SuiteOptions, run_suite
    from agent.session import RunOptions

    options = SuiteOptions(run=RunOptions(out=out), attempts=ATTEMPTS, parallel=parallel, engine=engine)
    built = make_engine(engine, parallel)
    with Sampler() as sampler:
        started = time.monotonic()
        outcome = run_suite(tasks, options, engine=built)
        wall = time.monotonic() - started
    summary = outcome.summary
    runs = [r for t in summary["tasks"] for r in t["runs"]]
    n = len(runs)
    failed = [r["message"] for r in runs if not r["passed"]]
    if failed:  # a broken run measures nothing: say so instead of printing numbers
        raise SystemExit(f"{engine} K={parallel}: {len(failed)} attempts did not pass, e.g. {failed[0]}")
    described = summary["engine"]
    result = {
        "engine": engine, "parallel": parallel, "attempts": n,
        "passed": sum(r["passed"] for r in runs), "errors": summary["totals"]["errors"],
        "wall_s": round(wall, 2), "attempts_per_min": round(n / wall * 60, 1),
        "median_attempt_s": round(statistics.median(r["seconds"] for r in runs), 2),
        "cpu_s_per_attempt": round(sampler.cpu_s / n, 2), "peak_pss_mb": round(sampler.peak_mb),
        "first_attempt_s": described.get("first_attempt_s"),
    }
    if engine == "ray":
        result["ray_init_s"] = described.get("startup_s")
        steady = wall - (described.get("first_attempt_s") or 0.0)
        result["attempts_per_min_after_start"] = round(n / steady * 60, 1) if steady > 0 else None
    return result


def preload_effect(tasks: list, out: Path) -> dict:
    """The local engine at K = 1 with its fork server preloading agent.eval.warm (the default) against only
    the attempt code (agent.eval.worker): the median attempt time of each, 16 attempts each."""
    import multiprocessing.forkserver

    from agent.eval.engines import processes

    result = {}
    default = list(processes.PRELOAD)
    for label, preload in (("attempt code only", ["agent.eval.worker"]), ("agent.eval.warm", default)):
        processes.PRELOAD = preload
        multiprocessing.forkserver._forkserver._stop()  # a fresh fork server with this preload (a private call)
        result[label] = measure("local", 1, tasks, out)["median_attempt_s"]
    processes.PRELOAD = default
    result["saved_s_per_attempt"] = round(result["attempt code only"] - result["agent.eval.warm"], 2)
    return result


def main() -> None:
    from agent.eval.suite import load_suite

    work = Path(tempfile.mkdtemp(prefix="deskpilot-eval-bench-"))
    (work / "suite").mkdir()
    (work / "suite" / "app.py").write_text(APP, encoding="utf-8")
    for n in range(TASKS):
        (work / "suite" / f"bench{n}.yaml").write_text(TASK.format(n=n), encoding="utf-8")
    tasks = load_suite([work / "suite"])
    measure("local", 1, tasks[:1], work / "warm-up")  # the fork server and first imports, not counted
    load_before = os.getloadavg()
    runs = [measure(engine, k, tasks, work / "runs") for engine in ("local", "ray") for k in PARALLEL]
    preload = preload_effect(tasks, work / "preload")
    by = {(r["engine"], r["parallel"]): r for r in runs}
    local1 = by[("local", 1)]
    cost, alone = local1["cpu_s_per_attempt"], local1["median_attempt_s"]
    per_node = min(2 / cost, 2 / alone) if cost > 0 else 2 / alone
    fixed = by[("ray", 1)]["first_attempt_s"] or 0.0
    project = {
        "nodes": 4, "cores_per_node": 2, "cpu_s_per_attempt": cost, "uncontended_attempt_s": alone,
        "attempts_per_min": round(4 * per_node * 60, 1),
        "minutes_for_1000_attempts": round(1000 / (4 * per_node) / 60 + fixed / 60, 1),
        "this_machine_best_attempts_per_min": max(r["attempts_per_min"] for r in runs),
    }
    print(json.dumps({
        "benchmark": "eval_scaling", "tasks": TASKS, "attempts_per_task": ATTEMPTS, "cpus": os.cpu_count(),
        "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()],
        "python": sys.version.split()[0], "runs": runs,
        "speedup_vs_k1": {f"{e} k={k}": round(by[(e, 1)]["wall_s"] / by[(e, k)]["wall_s"], 2)
                          for e in ("local", "ray") for k in PARALLEL},
        "ray_fixed_cost_s": {"ray_init": by[("ray", 1)].get("ray_init_s"), "start_to_first_attempt": fixed},
        "projection_4_nodes": project, "fork_server_preload": preload,
    }, indent=2))


if __name__ == "__main__":  # the local engine's worker processes import this module again: keep it inert
    main()
