"""How rollouts scale: wall time and peak memory of N = 1, 2, 4, 8 attempts of the demo form task at K = N.

Each attempt runs the real rollouts path on its own 1280x800 Xvfb: the task's setup (the demo app,
launched with `$DESKPILOT_ATTEMPT_DIR/out.json`, and `wait_for: {text: "Demo form"}`, i.e. OCR), a
zero-latency scripted model (agent/scripted.py through `model_factory`) that clicks the Name field,
types "Ada" and clicks Submit, and a command check that reads the attempt's JSON back. Before timing,
the OCR engine is loaded and the form's coordinates are found once (not counted).

Memory is the resident set size of this process plus all its children (Xvfb servers, demo apps,
shells), sampled every 50 ms with psutil while the rollouts run; shared pages are counted once per
process, so the sum overstates the truth a little. Prints one JSON object: per N the wall time,
the sequential time (sum of the attempts' own durations, as the rollouts summary reports it), the
one-by-one estimate (N times one attempt alone) and the speed-up against it, the peak RSS and its
growth over the idle baseline, and how both grow against N = 1; then N = 8 at K = 2 and 4.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from actions.platform.x11.desktop import VirtualDesktop
from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.base import ModelConfig
from agent.models.scripted import ScriptedModel, computer
from agent.rollouts.run import run_rollouts
from agent.session import RunOptions
from agent.tasks.loader import parse_task
from benchmarks._screens import ROOT
from vision.capture import Screen
from vision.locate.ocr import TextFinder, load_engine

NS = (1, 2, 4, 8)
DEMO_APP = ROOT / "examples" / "demo_app.py"
TASK = f"""
name: rollouts-scaling
goal: Type Ada in the Name field and press Submit.
display: {{width: 1280, height: 800}}
setup:
  - launch: python3 {DEMO_APP} "$DESKPILOT_ATTEMPT_DIR/out.json"
  - wait_for: {{text: "Demo form", timeout: 120}}
checks:
  - command: >-
      python3 -c "import json, os; d = json.load(open(os.environ['DESKPILOT_ATTEMPT_DIR'] + '/out.json'));
      assert d['name'] == 'Ada', d"
"""


def rss_mb() -> float:
    """This process and all its descendants, in MB."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # it ended meanwhile
            total += child.memory_info().rss
    return total / 2**20


class Sampler:
    """Samples rss_mb() every 50 ms in a thread; keeps the peak."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def find_form() -> dict[str, list[int]]:
    """The Name field and the Submit button of the demo form on a 1280x800 display (by OCR, once)."""
    with VirtualDesktop() as desktop:
        desktop.launch([sys.executable, str(DEMO_APP), os.devnull])
        screen, finder = Screen(desktop.display), TextFinder()
        deadline = time.monotonic() + 60
        while True:
            frame = screen.grab()
            try:
                name, submit = finder.find_text(frame, "Name:")[0], finder.find_text(frame, "Submit")[0]
                break
            except LookupError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        screen.close()
    return {"name": [name.center[0] + 180, name.center[1]], "submit": list(submit.center)}


def main() -> None:
    """Run every N and print the figures."""
    load_engine()
    form = find_form()
    script = [[computer("left_click", coordinate=form["name"])], [computer("type", text="Ada")],
              [computer("left_click", coordinate=form["submit"])]]
    with tempfile.TemporaryDirectory() as tmp:
        task_path = Path(tmp) / "task.yaml"
        task_path.write_text(TASK, encoding="utf-8")
        task = parse_task(TASK, task_path)
        def measure(n: int, k: int) -> dict:
            options = RunOptions(model=ModelConfig(), out=Path(tmp) / f"n{n}k{k}", workdir=Path(tmp),
                                 loop=LoopConfig(limits=Limits(max_steps=10, max_seconds=600, max_cost_usd=None)))
            baseline = rss_mb()
            started = time.monotonic()
            with Sampler() as sampler:
                outcome = run_rollouts(task, options, n=n, parallel=k,
                                       model_factory=lambda i, config: ScriptedModel([list(s) for s in script]))
            wall = time.monotonic() - started
            durations = [a.duration_s for a in outcome.attempts]
            return {
                "n": n, "k": k, "passed": sum(a.passed for a in outcome.attempts),
                "wall_s": round(wall, 2), "sequential_s": round(sum(durations), 2),
                "mean_attempt_s": round(sum(durations) / n, 2), "max_attempt_s": round(max(durations), 2),
                "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(sampler.peak, 1),
                "growth_rss_mb": round(sampler.peak - baseline, 1),
                "growth_rss_mb_per_attempt": round((sampler.peak - baseline) / n, 1),
            }

        runs = [measure(n, n) for n in NS]
        sweep = [measure(NS[-1], k) for k in (2, 4)]
    alone = runs[0]["mean_attempt_s"]  # one attempt with the machine to itself
    for run in runs + sweep:
        # what running the attempts one after another would take; `sequential_s` (the sum of the
        # attempts' own durations, as the rollouts summary reports it) overstates it under contention
        run["one_by_one_estimate_s"] = round(run["n"] * alone, 2)
        run["speedup_vs_one_by_one"] = round(run["n"] * alone / run["wall_s"], 2)
        run["wall_vs_n1"] = round(run["wall_s"] / runs[0]["wall_s"], 2)
        run["memory_growth_vs_n1"] = round(run["growth_rss_mb"] / max(runs[0]["growth_rss_mb"], 1e-9), 2)
    print(json.dumps({
        "benchmark": "rollouts_scaling", "screen": "1280x800", "cpus": os.cpu_count(),
        "task": "demo form: setup (launch + OCR wait_for), 3 scripted model steps, 1 command check",
        "model": "scripted, zero latency", "runs": runs, "n8_parallel_sweep": sweep,
    }))


if __name__ == "__main__":
    main()
