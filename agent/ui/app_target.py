"""The controller's half that chooses where jobs act and what the live view shows (no Tk here).

`TargetView` is mixed into `agent.ui.app_controller.AppController`: the target (this desktop, the
sandbox, a given display), the sandbox's life, and the live view's two modes: "live" (the target's
screen through the ScreenFeed) and "still" (a finished run's final screen, read off the UI thread).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.session import RunOptions
from agent.ui import app_jobs
from agent.ui.app_state import same_display


class TargetView:
    """Where jobs act and what the live view shows (uses the controller's state, view, feed and sandbox)."""

    state: Any
    view: Any
    feed: Any
    sandbox: Any
    settings: Any
    target: str
    job_display: str | None

    def set_status(self, text: str, error: bool = False) -> None:  # the controller's
        raise NotImplementedError

    def remember(self, **choices: Any) -> None:  # the controller's
        raise NotImplementedError

    def _post(self, kind: str, *args: Any) -> None:  # the controller's
        raise NotImplementedError

    def choose_target(self, spec: str) -> None:
        """Make `spec` (a --display value) the target of the next job and show it."""
        self.target = spec
        self.remember(target=spec if spec in ("host", "virtual") else self.settings.target)
        self.go_live()

    def show_target(self) -> None:
        """Point the live view's feed at the chosen target (the sandbox once it has started)."""
        target = (self.job_display if self.state.running else None) or self.target
        if target == "virtual":
            display = self.sandbox.display
        else:
            display = (os.environ.get("DISPLAY") or None) if target == "host" else target
        self.feed.watch(display)
        if display is None and self.state.view_mode == "live":
            self.view.placeholder("The sandbox (a private virtual display) starts with the first run."
                                  if self.target == "virtual" else "No display to show.")

    def go_live(self) -> None:
        """Show the chosen target's screen, live, instead of a finished run's final screen."""
        self.state.view_mode, self.state.still = "live", None
        self.show_target()
        self.view.refresh()

    def show_run(self, path: str | Path, with_rows: bool = True) -> None:
        """Show a finished run's final screen (and its steps) in the live view, read off the UI thread."""
        box = tuple(self.feed.box)
        app_jobs.start_background(app_jobs.view_job, self._post, Path(path), box, with_rows)

    def stop_sandbox(self) -> None:
        """Stop the sandbox (not while a job runs there); what it showed last stays in the view."""
        if self.state.running and self.target == "virtual":
            self.set_status("a job runs in the sandbox: stop it first", error=True)
            return
        self.sandbox.stop()
        self.state.sandbox = None
        self.show_target()
        self.set_status("sandbox stopped")

    def acts_on_own_desktop(self, display: str | None = None) -> bool:
        """True when `display` (default: the chosen target) is the desktop the app itself is on."""
        spec = display or self.target
        return spec == "host" or same_display(spec, os.environ.get("DISPLAY") or None)

    def _open_target(self, options: RunOptions, size: Any = None) -> Any:
        """Worker thread: the job's desktop; the sandbox is kept between jobs (restarted for another size)."""
        from agent.session import open_display

        if options.display == "virtual":
            desktop = self.sandbox.open(size or options.size)
        else:
            desktop = open_display(options.display)
        self._post("target", desktop.display)
        return desktop
