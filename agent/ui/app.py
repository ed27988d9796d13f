"""`deskpilot app`: a Tk window to run goals and task files, watch the agent, and steer it.

The window holds a goal field (or a task file's path: a name ending in .yaml/.yml runs the
task), the model, the target ("This desktop" or "Sandbox (virtual desktop)", a private Xvfb
that the app starts with the first run and keeps until it quits, so the result stays visible),
Start / Pause / Resume / Stop, a live view of the target screen with the last action circled,
the step list, the cost against the budget and a status line. The File menu opens task files,
replays recordings, records demonstrations, writes and opens a run's report, and stores the API
key in the system keyring.

Safety: the policy's "ask" verdicts open a modal dialog (Allow / Deny / Always allow this rule
for the rest of the run). While a job acts on the desktop the app itself is on, the main window
is iconified and a small always-on-top bar at the top-right corner offers Pause and Stop; the
kill switch (Ctrl+Alt+Shift+K, or the pointer pushed into a screen corner) works as in the CLI.

Threading: every job (run, task, replay, recording, report) runs in a worker thread and talks
to the window only through `events`, a queue the Tk thread drains every 50 ms; no Tk call is
made off the Tk thread. Every worker catches its errors and posts them, so they show in the
window (red status line, `last_error`). The UI state is kept in plain attributes (`steps`,
`status`, `cost_text`, `running`, `paused`, `last_error`, `pending_confirmation`, `recording`);
`state()` returns them as one JSON-safe dict.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import sys
import threading
import time
import tkinter as tk
import traceback
from dataclasses import replace
from pathlib import Path
from tkinter import filedialog, simpledialog, ttk
from typing import Any

from agent.errors import DeskpilotError, ExitCode
from agent.models.base import DEFAULT_MODEL
from agent.session import Callbacks, RunOptions
from agent.ui.app_views import ERROR_COLOR, ConfirmDialog, HostBar, LiveView, ScreenFeed, StepList, step_row

HOST_TARGET = "This desktop"
SANDBOX_TARGET = "Sandbox (virtual desktop)"
POLL_MS = 50
VIEW_FPS = 4.0
HOST_SETTLE_S = 0.6  # after iconifying, before a job on the app's own desktop takes its first screenshot
JOIN_ON_QUIT_S = 10.0
_DISPLAY_RE = re.compile(r"^:\d+(\.\d+)?$")


def model_choices() -> list[str]:
    """DEFAULT_MODEL first, then every model the backends know."""
    from agent.models import registry

    names = [DEFAULT_MODEL]
    names += [name for name in registry.known_models() if name not in names]
    return names


def _same_display(a: str | None, b: str | None) -> bool:
    def norm(name: str | None) -> str:
        name = (name or "").strip()
        return name[:-2] if name.endswith(".0") else name

    return bool(a and b) and norm(a) == norm(b)


def expected_error(exc: BaseException) -> bool:
    """Errors that explain themselves (bad input, environment): no traceback needed."""
    from agent.recording.writer import RecordingError
    from agent.tasks.loader import TaskFileError

    return isinstance(exc, (DeskpilotError, TaskFileError, RecordingError))


def describe_error(exc: BaseException) -> str:
    """A message for the window: deskpilot's own errors as they are, others with their type."""
    from agent.tasks.loader import TaskFileError

    if isinstance(exc, TaskFileError):
        return f"invalid task file:\n{exc}"
    if expected_error(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class DeskpilotApp:
    """The deskpilot window on `root`. `model` replaces Claude (tests inject a scripted model)."""

    def __init__(self, root: tk.Tk, *, options: RunOptions | None = None, model: Any = None) -> None:
        self.root, self.options, self.model = root, options or RunOptions(), model
        self.events: queue.Queue[tuple] = queue.Queue()
        self.steps: list[dict] = []
        self.status, self.status_is_error = "Ready.", False
        self._budget = self.options.loop.limits.max_cost_usd
        self.cost_text = self._cost_text(0.0)
        self.running = self.paused = False
        self.job: str | None = None  # "run" | "task" | "replay" | "record" while running
        self.last_error: str | None = None
        self.pending_confirmation: dict | None = None
        self.answers: list[str] = []  # the confirmation dialogs' answers in this job, in order
        self.recording: Path | None = None  # the last job's recording folder
        self.report: Path | None = None  # the last report written
        self.view_frames = 0
        self._stop, self._pause = threading.Event(), threading.Event()
        self._always: set[str] = set()
        self._worker: threading.Thread | None = None
        self._sandbox: Any = None
        self._sandbox_lock = threading.Lock()
        self._dialog: ConfirmDialog | None = None
        self._bar: HostBar | None = None
        self._hidden = self._closing = False
        self.feed = ScreenFeed(VIEW_FPS).start()
        self._build()
        self._show_target()
        self._refresh()
        root.after(POLL_MS, self._drain)

    # ------------------------------------------------------------------------------ the window
    def _build(self) -> None:
        root = self.root
        root.title("deskpilot")
        root.geometry("1120x700")
        root.minsize(760, 460)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        root.report_callback_exception = self._tk_error
        self._build_menu()

        row = ttk.Frame(root, padding=(8, 8, 8, 0))
        row.pack(fill="x")
        ttk.Label(row, text="Goal or task file:").pack(side="left")
        self.goal_var = tk.StringVar()
        self.goal_entry = ttk.Entry(row, textvariable=self.goal_var)
        self.goal_entry.pack(side="left", fill="x", expand=True, padx=6)
        self.goal_entry.bind("<Return>", lambda _e: self.start())
        ttk.Button(row, text="Open task\u2026", command=self.open_task_file).pack(side="left")

        row = ttk.Frame(root, padding=8)
        row.pack(fill="x")
        ttk.Label(row, text="Model:").pack(side="left")
        self.model_var = tk.StringVar(value=self.options.model.model)
        self.model_box = ttk.Combobox(row, textvariable=self.model_var, values=model_choices(), width=20)
        self.model_box.pack(side="left", padx=(4, 12))
        ttk.Label(row, text="Target:").pack(side="left")
        targets, initial = self._targets()
        self.target_var = tk.StringVar(value=initial)
        self.target_box = ttk.Combobox(row, textvariable=self.target_var, values=targets, state="readonly", width=24)
        self.target_box.pack(side="left", padx=(4, 12))
        self.target_box.bind("<<ComboboxSelected>>", lambda _e: self._show_target())
        self.buttons = {name: ttk.Button(row, text=name.capitalize(), command=getattr(self, name), width=8)
                        for name in ("start", "pause", "resume", "stop")}
        for button in self.buttons.values():
            button.pack(side="left", padx=2)
        self.cost_label = ttk.Label(row, text="")
        self.cost_label.pack(side="right")

        panes = ttk.PanedWindow(root, orient="horizontal")
        panes.pack(fill="both", expand=True, padx=8)
        self.view = LiveView(panes)
        self.step_list = StepList(panes)
        panes.add(self.view, weight=3)
        panes.add(self.step_list, weight=2)

        self.status_label = tk.Label(root, anchor="w", justify="left", padx=10, pady=6)
        self.status_label.pack(fill="x")
        self.status_label.bind("<Configure>", lambda e: self.status_label.configure(wraplength=max(200, e.width - 20)))
        self._normal_color = self.status_label.cget("foreground")

    def _build_menu(self) -> None:
        menu = tk.Menu(self.root)
        file = tk.Menu(menu, tearoff=False)
        file.add_command(label="Open task file\u2026", accelerator="Ctrl+O", command=self.open_task_file)
        file.add_command(label="Replay a recording\u2026", command=self.replay_recording)
        file.add_command(label="Record a demonstration", command=self.toggle_recording)
        file.add_command(label="Open a run's report\u2026", command=self.open_report)
        file.add_separator()
        file.add_command(label="Set API key\u2026", command=self.set_api_key)
        file.add_separator()
        file.add_command(label="Quit", accelerator="Ctrl+Q", command=self.quit)
        menu.add_cascade(label="File", menu=file)
        self.file_menu = file
        self.root.configure(menu=menu)
        self.root.bind_all("<Control-o>", lambda _e: self.open_task_file())
        self.root.bind_all("<Control-q>", lambda _e: self.quit())

    def _targets(self) -> tuple[list[str], str]:
        display = self.options.display
        targets = [HOST_TARGET, SANDBOX_TARGET]
        if _DISPLAY_RE.match(display):
            targets.append(f"Display {display}")
            return targets, targets[-1]
        return targets, SANDBOX_TARGET if display == "virtual" else HOST_TARGET

    def _target_spec(self) -> str:
        """The chosen target as a --display value."""
        target = self.target_var.get()
        if target == SANDBOX_TARGET:
            return "virtual"
        if target.startswith("Display "):
            return target.split(" ", 1)[1]
        return "host"

    def _own_display(self) -> str | None:
        return os.environ.get("DISPLAY") or None

    def _acts_on_own_desktop(self) -> bool:
        spec = self._target_spec()
        return spec == "host" or _same_display(spec, self._own_display())

    def _show_target(self) -> None:
        """Point the live view at the chosen target (the sandbox once it has started)."""
        spec = self._target_spec()
        if spec == "virtual":
            sandbox = self._sandbox
            display = sandbox.display if sandbox is not None and sandbox.server and sandbox.server.poll() is None \
                else None
        else:
            display = self._own_display() if spec == "host" else spec
        self.feed.watch(display)
        if display is None:
            self.view.placeholder("The sandbox (a private virtual display) starts with the first run."
                                  if spec == "virtual" else "No display to show.")

    def _refresh(self) -> None:
        """Buttons, cost and status as the state says."""
        pausable = self.running and self.job in ("run", "task")
        for name, enabled in (("start", not self.running), ("pause", pausable and not self.paused),
                              ("resume", pausable and self.paused), ("stop", self.running)):
            self.buttons[name].state(["!disabled"] if enabled else ["disabled"])
        for widget in (self.model_box, self.target_box, self.goal_entry):
            widget.state(["disabled"] if self.running else ["!disabled"])
        if not self.running:
            self.target_box.state(["readonly"])
        self.file_menu.entryconfigure(1, state="disabled" if self.running else "normal")
        self.file_menu.entryconfigure(2, label="Stop recording" if self.job == "record" else "Record a demonstration",
                                      state="normal" if self.job in (None, "record") else "disabled")
        self.cost_label.configure(text=f"Cost {self.cost_text}")
        self.status_label.configure(text=self.status,
                                    foreground=ERROR_COLOR if self.status_is_error else self._normal_color)
        if self._bar is not None:
            self._bar.set_paused(self.paused)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status, self.status_is_error = text, error
        if error:
            self.last_error = text
        self._refresh()

    def _cost_text(self, cost: float) -> str:
        budget = self._budget
        return f"${cost:.4f} of ${budget:.2f}" if budget is not None else f"${cost:.4f} (no budget)"

    # ------------------------------------------------------------------------------ the event queue
    def _post(self, kind: str, *args: Any) -> None:
        """From any thread: hand an event to the Tk thread."""
        self.events.put((kind, *args))

    def _drain(self) -> None:
        try:
            while True:
                try:
                    kind, *args = self.events.get_nowait()
                except queue.Empty:
                    break
                try:
                    getattr(self, "_on_" + kind)(*args)
                except Exception:
                    self._tk_error(*sys.exc_info())
            latest = self.feed.take()
            if latest is not None and not self._closing:
                self.view.show(latest[0], latest[1])
                self.view_frames += 1
            self.feed.box = self.view.box
            self.feed.active = not self._hidden
        finally:
            if not self._closing:
                self.root.after(POLL_MS, self._drain)

    def _tk_error(self, exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        """Errors in Tk callbacks go to the status line (and the traceback to stderr), never only to stderr."""
        if issubclass(exc_type, KeyboardInterrupt):
            self.quit()
            return
        traceback.print_exception(exc_type, exc, tb)
        self._set_status(f"error: {describe_error(exc)}", error=True)

    def _on_error(self, message: str) -> None:
        self._set_status(f"error: {message}", error=True)

    def _on_note(self, message: str) -> None:
        self._set_status(message)

    def _on_report(self, path: Path) -> None:
        self.report = path
        self._set_status(f"report: {path}")

    def _on_target(self, display: str) -> None:
        self._show_target()
        self._set_status(f"{self.job or 'job'} on {display}\u2026")

    def _on_budget(self, budget: float | None) -> None:
        self._budget = budget
        self.cost_text = self._cost_text(0.0)
        self._refresh()

    def _on_step(self, line: dict, usage: Any) -> None:
        row = step_row(line)
        self.steps.append(row)
        self.step_list.add(row)
        if row["point"] is not None:
            self.view.mark(row["point"])
        self.cost_text = self._cost_text(float(getattr(usage, "cost_usd", 0.0) or 0.0))
        if self._bar is not None:
            self._bar.set_action(row["action"])
        state = "paused before the next step" if self.paused else "running"
        self._set_status(f"{self.job} {state}: step {row['i']}: {row['action']}")

    def _on_confirm(self, request: dict, answers: queue.Queue) -> None:
        def answer(value: str) -> None:
            self._dialog, self.pending_confirmation = None, None
            self.answers.append(value)
            answers.put(value)
            self._set_status(f"{'denied' if value == 'deny' else 'allowed'}: {request['action']}")

        self.pending_confirmation = request
        self._dialog = ConfirmDialog(self.root, request, answer, over_root=not self._hidden)
        self._set_status(f"waiting for your answer: {request['action']}")

    def _on_confirm_closed(self) -> None:
        if self._dialog is not None:
            self._dialog.close()
        self._dialog, self.pending_confirmation = None, None

    def _on_finished(self, result: Any, recording: Path | None) -> None:
        self.recording = recording
        self.cost_text = self._cost_text(result.usage.cost_usd)
        spent = f", ${result.usage.cost_usd:.4f}" if self.job in ("run", "task") else ""
        text = f"{result.status}: {result.message} ({result.steps} steps{spent})"
        self._set_status(text, error=result.status == "error")

    def _on_done(self) -> None:
        self._on_confirm_closed()
        self.running, self.paused, self.job = False, False, None
        if self._bar is not None:
            self._bar.destroy()
            self._bar = None
        if self._hidden:
            self._hidden = False
            self.root.deiconify()
            self.root.lift()
        self._show_target()
        self._refresh()

    # ------------------------------------------------------------------------------ jobs
    def _begin(self, job: str) -> bool:
        """Prepare the window for a job; False (with the reason shown) when one is already running."""
        if self.running:
            self._set_status(f"a {self.job} is still going: stop it first", error=True)
            return False
        self.running, self.paused, self.job = True, False, job
        self.steps, self.last_error, self.pending_confirmation, self.answers = [], None, None, []
        self._stop, self._pause, self._always = threading.Event(), threading.Event(), set()
        self._budget = self.options.loop.limits.max_cost_usd if job in ("run", "task") else None
        self.cost_text = self._cost_text(0.0)
        self.step_list.clear()
        self.view.mark(None)
        if self._acts_on_own_desktop():  # get out of the agent's way
            self._hidden = True
            self._bar = HostBar(self.root, on_pause=self.pause, on_resume=self.resume, on_stop=self.stop,
                                can_pause=job in ("run", "task"))
            self.root.iconify()
        self._set_status(f"starting the {job}\u2026")
        return True

    def _launch(self, work: Any, *args: Any) -> None:
        """Run `work(*args)` in the job's worker thread; its errors are posted to the window."""
        host = self._hidden

        def body() -> None:
            try:
                if host:
                    time.sleep(HOST_SETTLE_S)
                work(*args)
            except BaseException as exc:  # shown in the window, never only on stderr
                if not expected_error(exc):
                    traceback.print_exc()
                self._post("error", describe_error(exc))
            finally:
                self._post("done")

        self._worker = threading.Thread(target=body, daemon=True, name=f"deskpilot-{self.job}")
        self._worker.start()

    def _background(self, work: Any, *args: Any) -> None:
        """Run a short task (a report, storing the key) off the Tk thread; errors are posted."""
        def body() -> None:
            try:
                work(*args)
            except BaseException as exc:
                self._post("error", describe_error(exc))

        threading.Thread(target=body, daemon=True, name="deskpilot-task").start()

    def _run_options(self) -> RunOptions:
        model = self.model_var.get().strip() or DEFAULT_MODEL
        return replace(self.options, model=replace(self.options.model, model=model), display=self._target_spec())

    def _callbacks(self, policy_overrides: Any = None) -> Callbacks:
        return Callbacks(on_step=lambda line, usage: self._post("step", line, usage), stop=self._stop,
                         pause=self._pause, confirm_mode="ask", asker=self._ask, policy_overrides=policy_overrides)

    def _open_target(self, options: RunOptions, size: Any = None) -> Any:
        """Worker thread: the job's desktop. The sandbox is kept between jobs (restarted for another size)."""
        from actions.platform import DEFAULT_SIZE, DesktopError, virtual_desktop
        from agent.errors import EnvironmentProblem
        from agent.session import open_display

        try:
            if options.display != "virtual":
                desktop = open_display(options.display)
            else:
                with self._sandbox_lock:
                    old = self._sandbox
                    size = size or options.size or DEFAULT_SIZE
                    alive = old is not None and old.server is not None and old.server.poll() is None
                    if alive and old.requested_size == size:
                        desktop = old
                    else:
                        if old is not None:
                            self.feed.release(old.display)
                            old.stop()
                            self._sandbox = None
                        desktop = self._sandbox = virtual_desktop(size).start()
        except DesktopError as exc:
            raise EnvironmentProblem(str(exc)) from None
        self._post("target", desktop.display)
        return desktop

    def _ask(self, verdict: Any, call: Any, action: Any) -> str:
        """Worker thread: the policy asks; the dialog answers "allow", "deny" or "always"."""
        from agent.safety.policy import describe_call

        if verdict.rule and verdict.rule in self._always:  # also across a task's agent steps
            return "always"
        if self._stop.is_set():
            return "deny"
        request = {"action": describe_call(call, action), "tool": call.name, "rule": verdict.rule,
                   "reason": verdict.reason, "matched": verdict.matched}
        answers: queue.Queue[str] = queue.Queue(maxsize=1)
        self._post("confirm", request, answers)
        while True:
            try:
                answer = answers.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    self._post("confirm_closed")
                    return "deny"
                continue
            if answer == "always" and verdict.rule:
                self._always.add(verdict.rule)
            return answer

    # ------------------------------------------------------------------------------ public actions
    def start(self, goal_or_task: str | None = None) -> bool:
        """Run the goal (or the task file, by its .yaml/.yml name) in the field, or `goal_or_task`."""
        if goal_or_task is not None and not self.running:
            self.goal_var.set(goal_or_task)
        text = (goal_or_task if goal_or_task is not None else self.goal_var.get()).strip()
        if not text:
            self._set_status("Type a goal, or open a task file (File \u2192 Open task file\u2026).", error=True)
            return False
        is_task = text.lower().endswith((".yaml", ".yml"))
        options = self._run_options()
        if not self._begin("task" if is_task else "run"):
            return False
        self._launch(self._task_worker if is_task else self._goal_worker, text, options)
        return True

    def pause(self) -> None:
        """Hold the run before its next step."""
        if self.running and self.job in ("run", "task") and not self.paused:
            self._pause.set()
            self.paused = True
            self._set_status(f"{self.job} paused: it holds before the next step (Resume to go on)")

    def resume(self) -> None:
        """Let a paused run go on."""
        if self.running and self.paused:
            self._pause.clear()
            self.paused = False
            self._set_status(f"{self.job} resumed")

    def stop(self) -> None:
        """Stop the running job: before its next step, cancelling the running action."""
        if not self.running:
            return
        self._stop.reason = "stopped from the app"  # type: ignore[attr-defined]
        self._stop.set()
        self._pause.clear()
        self._set_status(f"stopping the {self.job}\u2026")

    def open_task_file(self, path: str | None = None) -> None:
        """Put a task file in the goal field (a file dialog when `path` is None); Start runs it."""
        if path is None:
            path = filedialog.askopenfilename(parent=self.root, title="Open a task file",
                                              filetypes=[("Task files", "*.yaml *.yml"), ("All files", "*")])
            if not path:
                return
        self.goal_var.set(str(path))
        self._set_status(f"task file {Path(path).name}: press Start to run it")

    def replay_recording(self, path: str | Path | None = None) -> None:
        """Replay a recording folder on the target."""
        if path is None:
            path = filedialog.askdirectory(parent=self.root, title="Replay a recording", mustexist=True,
                                           initialdir=str(self.recording or self.options.out))
            if not path:
                return
        options = self._run_options()
        if self._begin("replay"):
            self._launch(self._replay_worker, Path(path), options)

    def toggle_recording(self) -> None:
        """Record a person's demonstration on the target; again (or Stop) to end it."""
        if self.job == "record":
            self.stop()
            return
        options = self._run_options()
        if self._begin("record"):
            self._launch(self._record_worker, options)

    def open_report(self, path: str | Path | None = None) -> None:
        """Write a recording's report.html and open it in the browser."""
        if path is None:
            path = filedialog.askdirectory(parent=self.root, title="Open a run's report", mustexist=True,
                                           initialdir=str(self.recording or self.options.out))
            if not path:
                return
        self._background(self._report_worker, Path(path))

    def set_api_key(self) -> None:
        """Ask for the Anthropic API key and store it in the system keyring."""
        key = simpledialog.askstring("Anthropic API key", "API key (kept in the system keyring):", show="\u2022",
                                     parent=self.root)
        if key and key.strip():
            self._background(self._store_key, key.strip())

    def quit(self) -> None:
        """Stop any job (its recording is completed), stop the sandbox, close the window."""
        if self._closing:
            return
        self._closing = True
        self._stop.reason = "the app was closed"  # type: ignore[attr-defined]
        self._stop.set()
        self._pause.clear()
        self._on_confirm_closed()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=JOIN_ON_QUIT_S)
        self.feed.close()
        with self._sandbox_lock:
            if self._sandbox is not None:
                self._sandbox.stop()
                self._sandbox = None
        with contextlib.suppress(tk.TclError):
            self.root.destroy()

    def state(self) -> dict:
        """The UI state as one JSON-safe dict (for tests and scripting)."""
        return {"status": self.status, "status_is_error": self.status_is_error, "running": self.running,
                "paused": self.paused, "job": self.job, "cost_text": self.cost_text, "steps": self.steps,
                "last_error": self.last_error, "pending_confirmation": self.pending_confirmation,
                "answers": self.answers,
                "recording": str(self.recording) if self.recording else None,
                "report": str(self.report) if self.report else None, "view_frames": self.view_frames,
                "view_display": self.feed.display, "hidden": self._hidden, "host_bar": self._bar is not None,
                "target": self.target_var.get(), "model": self.model_var.get()}

    def widget_centers(self) -> dict[str, list[int]]:
        """Root-window coordinates of the centres of the main controls (and the dialog's buttons)."""
        widgets: dict[str, Any] = {"goal": self.goal_entry, **self.buttons, "steps": self.step_list, "view": self.view}
        if self._dialog is not None:
            widgets.update(self._dialog.buttons)
        if self._bar is not None:
            widgets.update(self._bar.buttons)
        centers = {}
        for name, widget in widgets.items():
            try:
                if widget.winfo_viewable():
                    centers[name] = [widget.winfo_rootx() + widget.winfo_width() // 2,
                                     widget.winfo_rooty() + widget.winfo_height() // 2]
            except tk.TclError:
                continue
        return centers

    # ------------------------------------------------------------------------------ workers
    def _goal_worker(self, goal: str, options: RunOptions) -> None:
        from agent.errors import EnvironmentProblem
        from agent.models.credentials import api_key
        from agent.session import run_goal

        if self.model is None and not api_key():  # here, not on the Tk thread: a keyring may be slow to answer
            raise EnvironmentProblem("no Anthropic API key: set ANTHROPIC_API_KEY, or use File \u2192 Set API "
                                     "key\u2026")
        desktop = self._open_target(options)
        outcome = run_goal(goal, options, desktop=desktop, callbacks=self._callbacks(), model=self.model)
        self._post("finished", outcome.result, outcome.recording)

    def _task_worker(self, path: str, options: RunOptions) -> None:
        from agent.tasks.loader import load_task
        from agent.tasks.runner import run_task

        task = load_task(path)
        self._post("budget", task.limits.apply(options.loop.limits).max_cost_usd)
        size = task.display.size if task.display is not None and options.size is None else None
        desktop = self._open_target(options, size)
        outcome = run_task(task, options, desktop=desktop, model=self.model,
                           callbacks=self._callbacks(getattr(task, "policy", None)))
        self._post("finished", outcome.result, outcome.recording)

    def _replay_worker(self, path: Path, options: RunOptions) -> None:
        from agent.replay.replayer import replay

        size = None
        if options.display == "virtual" and options.size is None:
            size = _recorded_size(path)
        desktop = self._open_target(options, size)
        outcome = replay(path, options, desktop=desktop, stop=self._stop,
                         on_step=lambda line, usage: self._post("step", line, usage))
        self._post("finished", outcome.result, outcome.recording)

    def _record_worker(self, options: RunOptions) -> None:
        from agent.replay.recorder import STOP_HOTKEY, record

        desktop = self._open_target(options)
        self._post("note", f"recording what you do on {desktop.display}; press Stop (or {STOP_HOTKEY}) to end it")
        outcome = record(options, desktop=desktop, stop=self._stop,
                         on_step=lambda line, usage: self._post("step", line, usage),
                         print_fn=lambda *parts, **_kw: self._post("note", " ".join(map(str, parts))))
        self._post("finished", outcome.result, outcome.recording)

    def _report_worker(self, path: Path) -> None:
        import webbrowser

        from agent.ui.report import write_report

        report = write_report(path)
        self._post("report", report)
        webbrowser.open(report.resolve().as_uri())

    def _store_key(self, key: str) -> None:
        from agent.models.credentials import store_api_key

        store_api_key(key)
        self._post("note", "API key saved in the system keyring")


def _recorded_size(path: Path) -> Any:
    """The logical screen size a recording was made on, or None."""
    from vision.geometry import Size

    try:
        screen = json.loads((path / "meta.json").read_text(encoding="utf-8"))["screen"]
        scale = float(screen.get("scale") or 1.0)
        return Size(round(screen["width"] / scale), round(screen["height"] / scale))
    except Exception:  # the replay itself reports a bad recording
        return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deskpilot app", description="The deskpilot desktop app.")
    parser.add_argument("goal", nargs="?", metavar="GOAL|TASK.yaml", help="fill the goal field (not started)")
    parser.add_argument("--model", default=None, help=f"the model chosen at start (default {DEFAULT_MODEL})")
    parser.add_argument("--display", default="auto",
                        help="the target chosen at start: host, virtual (the sandbox), :N, or auto (host)")
    parser.add_argument("--size", help="the sandbox's size WxH (default 1280x800)")
    parser.add_argument("--out", default="recordings", help="folder for recordings (default recordings/)")
    parser.add_argument("--max-steps", type=int, default=50, help="step budget of a run (default 50)")
    parser.add_argument("--max-seconds", type=float, default=600, help="time budget of a run (default 600)")
    parser.add_argument("--max-cost", type=float, default=5.0, help="cost budget of a run in USD (default 5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`deskpilot app [GOAL] [--model M] [--display D] ...` (argv None: no arguments); 0 when closed, 4 without
    a display for the window."""
    from agent.budget import Limits
    from agent.loop import LoopConfig
    from agent.models.base import ModelConfig
    from vision.geometry import Size

    try:
        args = _parser().parse_args([] if argv is None else list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        size = Size.parse(args.size) if args.size else None
    except ValueError as exc:
        print(f"deskpilot app: {exc}", file=sys.stderr)
        return int(ExitCode.BAD_INPUT)
    if args.display not in ("auto", "host", "virtual") and not _DISPLAY_RE.match(args.display):
        print(f"deskpilot app: invalid display {args.display!r}: use auto, host, virtual or :N", file=sys.stderr)
        return int(ExitCode.BAD_INPUT)
    options = RunOptions(model=ModelConfig(model=args.model or DEFAULT_MODEL),
                         loop=LoopConfig(limits=Limits(args.max_steps, args.max_seconds, args.max_cost)),
                         display=args.display, size=size, out=Path(args.out))
    try:
        root = tk.Tk(className="deskpilot")
    except tk.TclError as exc:
        where = "$DISPLAY is not set" if not os.environ.get("DISPLAY") else f"cannot open {os.environ['DISPLAY']}"
        print(f"deskpilot app: no display for the window ({where}: {exc}). Run it on a desktop session, or use "
              "`deskpilot run GOAL --display virtual` without a window.", file=sys.stderr)
        return int(ExitCode.ENVIRONMENT)
    app = DeskpilotApp(root, options=options)
    if args.goal:
        app.goal_var.set(args.goal)
    try:
        root.mainloop()
    except KeyboardInterrupt:
        app.quit()
    return int(ExitCode.OK)


__all__ = ["HOST_TARGET", "SANDBOX_TARGET", "DeskpilotApp", "main", "model_choices"]
