"""Per-step time of the whole loop outside the model call, with a zero-latency scripted model.

On a 1280x800 virtual display showing a window that reacts to clicks, a 40-step session
alternates clicks and key presses. The time between consecutive steps in the recording is
capture, encode, execute, settle and log (the scripted model answers instantly). Prints one
JSON object with the median and the parts (from each step's timing).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from actions.platform.x11.desktop import VirtualDesktop
from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.base import ModelConfig
from agent.models.scripted import ScriptedModel, computer
from agent.recording.writer import Recording
from agent.session import RunOptions, run_goal
from benchmarks._screens import ROOT
from vision.geometry import Size

STEPS = 40


def main() -> None:
    """Run the session and print the figures."""
    desktop = VirtualDesktop(Size(1280, 800)).start()
    desktop.launch([sys.executable, str(ROOT / "tests" / "reactive_window.py"), "20"])
    time.sleep(1.0)
    script = [[computer("left_click", coordinate=[300 + n, 300])] if n % 2 == 0 else
              [computer("key", text="Right")] for n in range(STEPS)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = run_goal("benchmark", RunOptions(model=ModelConfig(), loop=LoopConfig(limits=Limits(
                max_steps=STEPS, max_seconds=None, max_cost_usd=None)), out=Path(tmp)),
                desktop=desktop, model=ScriptedModel(script))
            steps = Recording.load(outcome.recording).steps
    finally:
        desktop.stop()
    gaps = [b["t"] - a["t"] for a, b in zip(steps, steps[1:], strict=False)]
    part = {key: statistics.median(s["timing"][key] or 0 for s in steps)
            for key in ("capture_ms", "exec_ms", "settle_ms")}
    print(json.dumps({
        "benchmark": "loop_overhead", "screen": "1280x800", "steps": len(steps),
        "median_step_ms": round(statistics.median(gaps) * 1000, 1),
        "p90_step_ms": round(sorted(gaps)[int(len(gaps) * 0.9)] * 1000, 1),
        "median_parts_ms": part,
        "target_ms": 300,
    }))


if __name__ == "__main__":
    main()
