"""How replay copes with a moved window: deskpilot's replay against naive coordinate replay.

A 20-step task on the demo form (clicks, typing, a key combination, a colour, a checkbox, a slider
drag, a scroll, a wait, Submit, a wait_for and the dialog's OK) is recorded once on a 1600x1260
virtual display, with the window at +420+320. Then, 10 times (seed 7), a fresh form is opened
moved by a random offset of up to 300 px and the recording is replayed onto it twice: once with
deskpilot's replay (anchors found again) and once naively (`verify=False`, the recorded
coordinates). Each replay is judged by the JSON the form saved on Submit: a success is exit 0 and
the recorded state; a wrong click is exit 0 with another state or none (it claimed success); a
stop is any other exit. Time per step is the gap between consecutive steps of the replay's
recording; the overhead is the time spent finding targets (`timing.locate_ms`) per pointer step.
Prints one JSON object.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from actions.platform.x11.desktop import VirtualDesktop
from agent.recording.writer import Recording
from agent.replay.replayer import replay
from agent.session import RunOptions
from agent.ui.cli import main as cli_main
from benchmarks._screens import ROOT
from vision.capture import Screen
from vision.geometry import Size

SCREEN = Size(1600, 1260)
BASE = (420, 320)
TRIALS, MAX_OFFSET, SEED = 10, 300, 7
DEMO = ROOT / "examples" / "demo_app.py"
TASK = """\
name: replay-robustness
setup:
  - run: rm -f {out}
  - launch: [python3, {demo}, {out}, --geometry, 760x620+{x}+{y}]
  - wait_for: {{text: "Demo form", timeout: 30}}
steps:
  - click: {{text: "Name:", offset: [180, 0]}}
  - type: Lovelace
  - key: ctrl+a
  - type: "Ada "
  - click: {{text: "Email:", offset: [180, 0]}}
  - type: ada@example.com
  - click: {{text: "Password:", offset: [180, 0]}}
  - type: hunter2
  - click: Red
  - click: Green
  - click: Subscribe
  - drag: {{from: {{text: "Volume:", offset: [72, 14]}}, to: {{text: "Volume:", offset: [240, 14]}}}}
  - scroll: {{direction: down, amount: 5, target: {{text: "line 3"}}}}
  - click: {{text: "Email:", offset: [180, 0]}}
  - key: End
  - type: .uk
  - wait: 0.2
  - click: Submit
  - wait_for: {{text: "Hello Ada", timeout: 10}}
  - click: OK
"""


def offsets() -> list[tuple[int, int]]:
    """TRIALS random window moves, each at most MAX_OFFSET px long (and at least 20 px)."""
    rng = random.Random(SEED)
    moves: list[tuple[int, int]] = []
    while len(moves) < TRIALS:
        dx, dy = rng.randint(-MAX_OFFSET, MAX_OFFSET), rng.randint(-MAX_OFFSET, MAX_OFFSET)
        if 20 <= math.hypot(dx, dy) <= MAX_OFFSET:
            moves.append((dx, dy))
    return moves


def launch(desktop: VirtualDesktop, out: Path, x: int, y: int):  # noqa: ANN201 - a Popen
    """A fresh form at (x, y), once it is drawn and still."""
    proc = desktop.launch([sys.executable, str(DEMO), str(out), "--geometry", f"760x620+{x}+{y}"])
    with Screen(desktop.display) as screen:
        last, deadline = None, time.monotonic() + 30
        while time.monotonic() < deadline:
            frame = screen.grab()
            if frame.pixels.std() > 10 and last is not None and frame.same_as(last):
                break
            last = frame
            time.sleep(0.25)
    return proc


def close(proc) -> None:  # noqa: ANN001
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, PermissionError):
        pass


def judge(code: int, out: Path, expected: dict) -> str:
    state = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    if code != 0:
        return "stopped"
    return "success" if state == expected else "wrong"


def main() -> None:
    """Record once, replay 2 x TRIALS times, print the figures."""
    results: dict[str, list[str]] = {"deskpilot": [], "naive": []}
    gaps: dict[str, list[float]] = {"deskpilot": [], "naive": []}
    locate: list[float] = []
    methods: dict[str, int] = {}
    moves = offsets()
    desktop = VirtualDesktop(SCREEN).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            out = root / "form.json"
            task = root / "task.yaml"
            task.write_text(TASK.format(out=out, demo=DEMO, x=BASE[0], y=BASE[1]), encoding="utf-8")
            with open(os.devnull, "w") as quiet:
                stdout, sys.stdout = sys.stdout, quiet
                try:
                    code = cli_main(["run", str(task), "--display", desktop.display, "--out", str(root / "rec")])
                finally:
                    sys.stdout = stdout
            if code != 0:
                raise SystemExit(f"the recording failed (exit {code})")
            [recording] = (root / "rec").iterdir()
            steps = len(Recording.load(recording).steps)
            expected = json.loads(out.read_text(encoding="utf-8"))
            for dx, dy in moves:
                for mode in ("deskpilot", "naive"):
                    out.unlink(missing_ok=True)
                    proc = launch(desktop, out, BASE[0] + dx, BASE[1] + dy)
                    try:
                        outcome = replay(recording, RunOptions(display=desktop.display, out=root / "replays"),
                                         verify=mode == "deskpilot", desktop=desktop)
                        time.sleep(0.3)  # the form writes its file on Submit's click
                        results[mode].append(judge(outcome.result.exit_code, out, expected))
                    finally:
                        close(proc)
                    lines = Recording.load(outcome.recording).steps
                    gaps[mode] += [b["t"] - a["t"] for a, b in zip(lines, lines[1:], strict=False)]
                    if mode == "deskpilot":
                        locate += [s["timing"]["locate_ms"] for s in lines if s["timing"].get("locate_ms")]
                        for s in lines:
                            if s.get("target"):
                                methods[s["target"]["method"]] = methods.get(s["target"]["method"], 0) + 1
    finally:
        desktop.stop()

    def summary(mode: str) -> dict:
        return {"success": results[mode].count("success"), "wrong_clicks": results[mode].count("wrong"),
                "stopped": results[mode].count("stopped"), "of": TRIALS,
                "median_step_ms": round(statistics.median(gaps[mode]) * 1000, 1)}

    print(json.dumps({
        "benchmark": "replay_robustness", "screen": str(SCREEN), "recording_steps": steps, "trials": TRIALS,
        "seed": SEED, "offsets": [list(m) for m in moves],
        "deskpilot": {**summary("deskpilot"), "median_locate_ms": round(statistics.median(locate), 1),
                      "p90_locate_ms": round(sorted(locate)[int(len(locate) * 0.9)], 1), "methods": methods},
        "naive": summary("naive"),
        "overhead_ms_per_step": round(statistics.median(gaps["deskpilot"]) * 1000
                                      - statistics.median(gaps["naive"]) * 1000, 1),
        "targets": {"success": f"{TRIALS}/{TRIALS}", "wrong_clicks": 0, "overhead_ms": 400},
    }))


if __name__ == "__main__":
    main()
