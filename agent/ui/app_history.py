"""The app's run history: the runs in the recordings folder, filtered, and what the window shows of one.

- `scan_runs(folder)` lists the folder's runs, newest first: every recording (meta.json, read and
  validated by agent.recording.reader) and every evaluation run (suite.json); a folder whose
  meta.json cannot be read is listed as "invalid" with the reason, anything else is skipped. At
  most `limit` folders are read (the newest by name: run folders start with their time stamp).
- `filter_runs(runs, status, text)`: by status ("all" or one) and by words (every word must occur in
  the goal or task, the model, the kind or the folder's name; case-insensitive).
- `run_view(path, box)`: what the live view shows of a finished run: its final screen
  (frames/final.png, else the last step's frame) scaled into `box`, the last pointer action's point
  and text to mark it, and the step rows for the step list.

No Tk here: these run in worker threads and hand plain values to the window.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATUS_CHOICES = ("all", "succeeded", "failed", "stopped", "error", "running", "invalid")
SCAN_LIMIT = 500
SUITE_FILE = "suite.json"


@dataclass(frozen=True)
class RunEntry:
    """One run of the history: what the list shows and what its buttons need."""

    path: str
    name: str  # the folder's name
    kind: str  # run | task | human | replay | rollouts | act | mcp | suite
    what: str  # the goal, the task, or a short description
    model: str
    status: str
    steps: int | None
    cost_usd: float | None
    created: str  # ISO time as recorded ("" when unknown)
    error: str | None = None
    task: str | None = None  # a task run's task file
    goal: str | None = None  # a goal run's goal
    replay_of: str | None = None

    @property
    def date_text(self) -> str:
        """`Jun 14 10:32` in local time (`2024-06-14 10:32` for another year), or "" when unknown."""
        try:
            when = dt.datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        except ValueError:
            return ""
        if when.tzinfo is not None:
            when = when.astimezone()
        return when.strftime("%b %d %H:%M" if when.year == dt.datetime.now().year else "%Y-%m-%d %H:%M")

    @property
    def can_replay(self) -> bool:
        """True for a recording with steps (a suite is not one)."""
        return self.kind != "suite" and self.status != "invalid" and bool(self.steps)

    @property
    def can_run_again(self) -> bool:
        """True when the run says what to run: a goal, a task file, or a recording replayed."""
        return self.status != "invalid" and bool(self.goal or self.task or self.replay_of)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe, with the date as shown."""
        return asdict(self) | {"date": self.date_text}


def _recording_entry(path: Path) -> RunEntry:
    from agent.recording.reader import RecordingError, read_meta

    try:
        meta = read_meta(path / "meta.json")
    except RecordingError as exc:
        return RunEntry(str(path), path.name, "?", f"unreadable: {exc}", "", "invalid", None, None, "", error=str(exc))
    summary = meta.summary
    replayed = Path(meta.replay_of).name if meta.replay_of else "a recording"
    what = meta.goal or (Path(meta.task).name if meta.task else None) or {
        "human": "a person's demonstration", "replay": f"replay of {replayed}", "act": "deskpilot act",
        "mcp": "MCP session"}.get(meta.kind, meta.kind)
    task = meta.task if meta.kind == "task" and meta.task and meta.task.lower().endswith((".yaml", ".yml")) else None
    return RunEntry(str(path), path.name, meta.kind, str(what), meta.model or "", meta.status,
                    summary.steps if summary else None, summary.cost_usd if summary else None, meta.created or "",
                    error=meta.error, task=task, goal=meta.goal if meta.kind == "run" else None,
                    replay_of=meta.replay_of if meta.kind == "replay" else None)


def _suite_entry(path: Path) -> RunEntry:
    try:
        data = json.loads((path / SUITE_FILE).read_text(encoding="utf-8"))
        totals, tasks = data["totals"], data["tasks"]
        what = f"suite: {len({t['name'] for t in tasks})} tasks, {totals['passed']}/{totals['attempts']} passed"
        if data.get("status") == "stopped":
            status = "stopped"
        else:
            status = "succeeded" if totals["passed"] == totals["attempts"] else "failed"
        return RunEntry(str(path), path.name, "suite", what, ", ".join(m for m in data.get("models") or [] if m),
                        status, int(totals["attempts"]), float(totals.get("cost_usd") or 0.0),
                        str(data.get("created") or ""))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return RunEntry(str(path), path.name, "suite", f"unreadable: {exc}", "", "invalid", None, None, "",
                        error=str(exc))


def scan_runs(folder: Path | str, limit: int = SCAN_LIMIT) -> list[RunEntry]:
    """The runs in `folder`, newest first (see the module docstring); [] when it does not exist."""
    folder = Path(folder)
    try:
        children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    entries = []
    for path in sorted(children, key=lambda p: p.name, reverse=True)[:limit]:
        if (path / "meta.json").exists() or (path / "meta.json").is_symlink():
            entries.append(_recording_entry(path))
        elif (path / SUITE_FILE).is_file():
            entries.append(_suite_entry(path))
    entries.sort(key=lambda e: (e.created or "", e.name), reverse=True)
    return entries


def filter_runs(runs: list[RunEntry], status: str = "all", text: str = "") -> list[RunEntry]:
    """The runs with `status` ("all": any) whose goal/task, model, kind or folder name hold every word of `text`."""
    words = text.lower().split()
    kept = []
    for run in runs:
        if status not in ("", "all") and run.status != status:
            continue
        haystack = " ".join((run.what, run.model, run.kind, run.name)).lower()
        if all(word in haystack for word in words):
            kept.append(run)
    return kept


def run_view(path: Path | str, box: tuple[int, int]) -> dict[str, Any]:
    """A finished run's final screen for the live view, and its step rows (see the module docstring).

    Returns {"image": png_base64 | None, "scale", "size": [w, h], "point": [x, y] | None, "action",
    "caption", "rows", "path"}; RecordingError for a recording that cannot be read.
    """
    from agent.recording.reader import Recording
    from agent.ui.step_rows import step_row
    from vision.encode import encode, resize
    from vision.geometry import Size

    recording = Recording.load(path)
    rows = [step_row(step) for step in recording.steps]
    relative = recording.meta.final_frame or next((s.get("frame") for s in reversed(recording.steps)
                                                   if s.get("frame")), None)
    image, scale, size = None, 1.0, None
    if relative:
        pixels = recording.load_image(relative)
        h, w = pixels.shape[:2]
        scale = min(max(box[0], 16) / w, max(box[1], 16) / h, 1.0)
        small = resize(pixels, Size(max(1, int(w * scale)), max(1, int(h * scale))))
        image, size = encode(small, "png").base64(), [w, h]
    last = next((row for row in reversed(rows) if row["point"] is not None), None)
    meta = recording.meta
    which = "final screen" if recording.meta.final_frame else "last step's screen" if relative else "no screen saved"
    caption = f"{meta.status}: {which} of {Path(path).name}"
    return {"image": image, "scale": scale, "size": size, "point": last["point"] if last else None,
            "action": last["action"] if last else None, "caption": caption, "rows": rows, "path": str(path)}
