"""The history panel's logic: the runs of the recordings folder, the filter, the chosen run and what its
buttons do (open the report, replay here or in a sandbox, run again, show the folder). No Tk here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.ui import app_jobs
from agent.ui.app_history import RunEntry, filter_runs


class History:
    """The runs of `controller.options.out`, read off the UI thread; `state.runs` holds the visible ones."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.entries: list[RunEntry] = []
        self.status, self.text = "all", ""
        self.loads = 0  # how often the folder was read (tests wait on it)

    def refresh(self) -> None:
        """Read the recordings folder again (in the background)."""
        app_jobs.start_background(app_jobs.history_job, self.controller._post, Path(self.controller.options.out))

    def loaded(self, entries: list[RunEntry]) -> None:
        """UI thread: the runs were read."""
        self.entries = entries
        self.loads += 1
        self._apply()

    def set_filter(self, status: str, text: str) -> None:
        """Show the runs with `status` ("all": any) and every word of `text`."""
        self.status, self.text = status or "all", text
        self._apply()

    def _apply(self) -> None:
        state = self.controller.state
        state.runs = [e.as_dict() for e in filter_runs(self.entries, self.status, self.text)]
        if state.selected_run not in {r["path"] for r in state.runs}:
            state.selected_run = None
        self.controller.view.history_changed()

    def entry(self, path: str | None) -> RunEntry | None:
        """The run at `path`, if it is listed."""
        return next((e for e in self.entries if e.path == path), None)

    def select(self, path: str | None) -> None:
        """Choose a run: its final screen and steps are shown (unless a job is running)."""
        controller = self.controller
        controller.state.selected_run = path
        entry = self.entry(path)
        if entry is None:
            return
        if entry.kind != "suite" and entry.status != "invalid" and not controller.state.running:
            controller.show_run(entry.path, with_rows=True)
        elif entry.status == "invalid":
            controller.set_status(f"this run cannot be read: {entry.error}", error=True)
        controller.view.refresh()

    def _chosen(self, what: str) -> RunEntry | None:
        entry = self.entry(self.controller.state.selected_run)
        if entry is None:
            self.controller.set_status(f"{what}: choose a run in the list first", error=True)
        return entry

    def open_report(self) -> None:
        """Write and open the chosen run's report (a suite's for a suite)."""
        entry = self._chosen("Open report")
        if entry is not None:
            self.controller.open_report(entry.path)

    def show_folder(self) -> None:
        """Show the chosen run's folder in the file manager."""
        entry = self._chosen("Show folder")
        if entry is not None:
            self.controller.show_folder(entry.path)

    def replay(self, display: str, model: str | None = None) -> None:
        """Replay the chosen run on `display`: "host" (this desktop) or "virtual" (a sandbox)."""
        entry = self._chosen("Replay")
        if entry is None:
            return
        if not entry.can_replay:
            self.controller.set_status(f"Replay: {entry.name} has no steps to replay", error=True)
            return
        self.controller.replay(entry.path, model, display)

