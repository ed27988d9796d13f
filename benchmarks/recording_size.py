"""Bytes a recording takes per step, and how a recording grows with the session's length.

Model sessions (the loop with a zero-latency scripted model, one action per reply) fill in the demo
form on a 1280x800 virtual display for 10, 20 and 40 steps: clicks on fields, list entries and a
checkbox, typing, key presses and scrolls. For each, the bytes of frames/ (one PNG per step, plus
final.png), anchors/ (a crop per pointer step), steps.jsonl, model.jsonl and meta.json, in total and
per step. The demo form is a mostly flat Tk window; a busy desktop (photos, gradients) makes PNG
frames several times larger, so `busy_frame_bytes` also gives the size of one frame of a screen full
of source text. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from actions.platform.x11.desktop import VirtualDesktop
from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.scripted import ScriptedModel, computer, say
from agent.recording.writer import Recording, RecordingWriter
from agent.session import RunOptions, run_goal
from benchmarks._screens import ROOT, text_desktop
from vision.capture import Screen
from vision.geometry import Size

LENGTHS = (10, 20, 40)
CYCLE = [
    [say("The Name field."), computer("left_click", coordinate=[300, 117])],
    [computer("type", text="Ada ")],
    [computer("left_click", coordinate=[300, 161])],
    [computer("type", text="ada@example.com ")],
    [say("Green."), computer("left_click", coordinate=[194, 267])],
    [computer("left_click", coordinate=[194, 243])],
    [computer("left_click", coordinate=[232, 352])],
    [computer("scroll", coordinate=[192, 487], scroll_direction="down", scroll_amount=2)],
    [computer("scroll", coordinate=[192, 487], scroll_direction="up", scroll_amount=1)],
    [computer("key", text="ctrl+a")],
]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def session(steps: int, root: Path) -> dict:
    """One model session of `steps` actions on a fresh demo form; its recording's sizes."""
    desktop = VirtualDesktop(Size(1280, 800)).start()
    try:
        desktop.launch([sys.executable, str(ROOT / "examples" / "demo_app.py"), str(root / "form.json")])
        time.sleep(2.0)
        script = [CYCLE[n % len(CYCLE)] for n in range(steps)]
        loop = LoopConfig(limits=Limits(max_steps=steps + 5, max_seconds=None, max_cost_usd=None))
        outcome = run_goal("fill in the form", RunOptions(loop=loop, out=root / f"rec{steps}"), desktop=desktop,
                           model=ScriptedModel(script))
    finally:
        desktop.stop()
    recording = Recording.load(outcome.recording)
    path = outcome.recording
    parts = {
        "frames": folder_bytes(path / "frames"),
        "final_frame": (path / "frames" / "final.png").stat().st_size,
        "anchors": folder_bytes(path / "anchors"),
        "steps_jsonl": (path / "steps.jsonl").stat().st_size,
        "model_jsonl": (path / "model.jsonl").stat().st_size,
        "meta_json": (path / "meta.json").stat().st_size,
    }
    total = folder_bytes(path)
    n = len(recording.steps)
    pointer = sum(1 for s in recording.steps if s.get("anchor"))
    return {"steps": n, "total_bytes": total, "bytes_per_step": round(total / n),
            "parts_bytes": parts,
            "per_step_bytes": {"frame": round((parts["frames"] - parts["final_frame"]) / n),
                               "anchor_per_pointer_step": round(parts["anchors"] / max(1, pointer)),
                               "steps_jsonl": round(parts["steps_jsonl"] / n),
                               "model_jsonl": round(parts["model_jsonl"] / n)}}


def busy_frame_bytes(root: Path) -> int:
    """The PNG size of one 1280x800 frame of a screen full of source text."""
    desktop = text_desktop(Size(1280, 800))
    try:
        with Screen(desktop.display) as screen:
            frame = screen.grab()
    finally:
        desktop.stop()
    writer = RecordingWriter(root / "busy", "act")
    relative = writer.save_frame(frame)
    writer.finish("succeeded")
    return (writer.path / relative).stat().st_size


def main() -> None:
    """Measure each length and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sessions = [session(n, root) for n in LENGTHS]
        busy = busy_frame_bytes(root)
    first, last = sessions[0], sessions[-1]
    growth = (last["total_bytes"] - first["total_bytes"]) / (last["steps"] - first["steps"])
    print(json.dumps({
        "benchmark": "recording_size", "screen": "1280x800", "app": "examples/demo_app.py",
        "sessions": sessions,
        "marginal_bytes_per_step": round(growth),
        "fixed_bytes": round(first["total_bytes"] - growth * first["steps"]),
        "busy_frame_bytes": busy,
    }))


if __name__ == "__main__":
    main()
