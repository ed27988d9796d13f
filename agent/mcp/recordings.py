"""The recordings folder as MCP resources: the list, and each recording's meta.json and report.

- `deskpilot://recordings`: a JSON list, newest first, of every recording in `--out` (name, kind,
  status, created, goal or task, steps, path);
- `deskpilot://recordings/{name}/meta`: that recording's meta.json;
- `deskpilot://recordings/{name}/report`: its HTML report, written into the folder as
  `deskpilot report` writes it (report.html; images are referenced relative to the folder).

A name is a folder name inside `--out`, as the list gives it; anything else (a path, `..`) is
refused, so no file outside the recordings folder can be read through these resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.recording.format import META_FILE

Reporter = Callable[[Path], Path]  # writes a recording's report.html and returns its path


class UnknownRecording(LookupError):
    """No recording of that name in the recordings folder."""


def _summary(path: Path) -> dict[str, Any]:
    from agent.recording.reader import read_meta

    try:
        meta = read_meta(path / META_FILE)
    except Exception as exc:  # listed, with why it cannot be read
        return {"name": path.name, "path": str(path.resolve()), "error": str(exc)}
    summary = meta.get("summary") or {}
    return {"name": path.name, "kind": meta.kind, "status": meta.status, "created": meta.created,
            "goal": meta.goal, "task": meta.task, "steps": summary.get("steps"), "path": str(path.resolve()),
            "meta": f"deskpilot://recordings/{path.name}/meta", "report": f"deskpilot://recordings/{path.name}/report"}


def list_recordings(out: Path) -> str:
    """Every recording folder in `out`, newest first, as JSON text."""
    folders = sorted((p for p in Path(out).iterdir() if (p / META_FILE).is_file()), reverse=True) \
        if Path(out).is_dir() else []
    return json.dumps({"folder": str(Path(out).resolve()), "recordings": [_summary(p) for p in folders]}, indent=1)


def recording_folder(out: Path, name: str) -> Path:
    """The folder of the recording called `name` in `out`; UnknownRecording for anything else."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UnknownRecording(f"{name!r} is not a recording name; names are listed by deskpilot://recordings")
    folder = Path(out) / name
    if not (folder / META_FILE).is_file():
        raise UnknownRecording(f"no recording called {name!r} in {Path(out).resolve()}")
    return folder


def recording_meta(out: Path, name: str) -> str:
    """The recording's meta.json text."""
    return (recording_folder(out, name) / META_FILE).read_text(encoding="utf-8")


def recording_report(out: Path, name: str, reporter: Reporter | None) -> str:
    """The recording's HTML report, written afresh into its folder."""
    folder = recording_folder(out, name)
    if reporter is None:
        raise UnknownRecording("reports are not available from this server")
    return reporter(folder).read_text(encoding="utf-8")


__all__ = ["Reporter", "UnknownRecording", "list_recordings", "recording_folder", "recording_meta",
           "recording_report"]
