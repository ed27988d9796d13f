"""Runs a task file: setup, scripted steps (targets found by OCR or template), agent steps, checks.

Every step is logged as a recording step with `source: script`, its resolved target and the
task file's line. Before it acts, every step (and every `run`, `launch` and `command`) goes
through the run's policy guard, like the model's actions: a refused one is logged with the rule
and ends the task as failed (exit 1), nothing typed or run. A step that fails (target not found
or ambiguous, a setup command that fails, an `expect` not met) ends the task as failed, naming the
step; the screenshot it searched is saved beside the recording. Programs started by `launch` are stopped at the end.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import replace
from typing import Any

from actions.vocabulary import ActionError, parse_action
from agent import vault
from agent.budget import Budget, Limits
from agent.errors import DeskpilotError, ExitCode, RunEnded, Stopped
from agent.recording.writer import RecordingWriter
from agent.session import Callbacks, RunOptions, RunOutcome, Session
from agent.stepping import Stepper, ending, final_frame, finish_run
from agent.tasks.bounds import region_problem
from agent.tasks.commands import DEFAULT_TIMEOUT_S, CommandFailed, Programs, run_command
from agent.tasks.fields import SecretText
from agent.tasks.items import (
    AgentStep,
    DragStep,
    ExpectStep,
    KeyStep,
    LaunchStep,
    RunStep,
    ScrollStep,
    TaskItem,
    TypeStep,
    WaitForStep,
    WaitStep,
)
from agent.tasks.locate import Found, locate
from agent.tasks.schema import Task, has_outcome_check
from agent.tasks.targets import PointTarget
from agent.types import RunResult, stop_reason
from vision.capture import Frame
from vision.locate.accessibility import NoTree
from vision.locate.find import AmbiguousMatch, NotFound
from vision.locate.ocr_engine import preload as preload_ocr

POINTER_ACTIONS = {"click": "left_click", "double_click": "double_click", "triple_click": "triple_click",
                   "right_click": "right_click", "move": "mouse_move"}
POLL_S = 0.2


class StepFailed(RunEnded):
    """A scripted step could not be done; the task fails."""


class TaskRunner:
    """Runs one loaded task on a session, writing one recording."""

    def __init__(self, task: Task, session: Session, recorder: RecordingWriter, callbacks: Callbacks) -> None:
        from vision.locate.ocr import TextFinder

        self.task, self.session, self.recorder, self.callbacks = task, session, recorder, callbacks
        self.limits: Limits = task.limits.apply(session.options.loop.limits)
        # scripted steps count against the step and time budgets; model steps check cost and tokens in their loop
        self.budget = Budget(replace(self.limits, max_cost_usd=None, max_tokens=None), callbacks.stop)
        self.stepper = Stepper(recorder, session.screen.grab, session.options.loop.settle, source="script",
                               stop=callbacks.stop, on_step=callbacks.on_step, usage=lambda: session.usage)
        self.finder = TextFinder()
        self.programs = Programs(session.desktop, task.folder, session.command_env())
        self.setting_up = False
        self.guard = session.policy_confirm(callbacks)
        self.outcome: str | None = None  # how the model ended: finished | impossible | failed | ...
        self.judged = any(has_outcome_check(c) for c in task.checks)  # an IMPOSSIBLE answer goes to the checks

    # --- the run ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Setup, steps, the goal (when there are no steps), then checks; the recording gets the status."""
        checks: list[dict] = []
        try:
            self.setting_up = True
            for n, item in enumerate(self.task.setup, 1):
                self.setup(n, item)
            self.stepper.settle()  # after setup
            self.check_launched()
            self.setting_up = False
            for n, item in enumerate(self.task.steps, 1):
                self.budget.check()
                self.step(n, item)
            if self.task.goal and not self.task.steps:
                self.sub_goal(self.task.goal, "goal")
            checks = [self.check(item) for item in self.task.checks]
            failed = [c for c in checks if not c["ok"]]
            if failed:
                raise StepFailed("checks failed: " + "; ".join(f"{c['check']}: {c['detail']}" for c in failed))
            status, code = "succeeded", int(ExitCode.OK)
            message = f"{len(self.task.steps)} steps, {len(checks)} checks passed"
        except (RunEnded, KeyboardInterrupt) as end:
            status, code, message = ending(end)
            if status == "failed" and self.callbacks.stop.is_set():  # e.g. a setup command cut short by Ctrl-C
                status, code = "stopped", int(ExitCode.STOPPED)
                message = f"{stop_reason(self.callbacks.stop)}: {message}"
        except DeskpilotError as exc:  # e.g. the model API unreachable: the recording still ends
            status, code, message = "error", int(exc.exit_code), str(exc)
        finally:
            self.session.executor.release()
            final = final_frame(self.grab, self.stepper.frame)  # before the launched programs are stopped
            self.stop_launched()
        return finish_run(self.recorder, status, code, message, steps=self.budget.steps, usage=self.session.usage,
                          final=final, checks=checks)

    def setup(self, n: int, item: TaskItem) -> None:
        """launch, run or wait_for, before the steps."""
        where = f"setup {n} (line {item.line}): {item.describe()}"
        if isinstance(item, LaunchStep | RunStep):
            self.allowed(where, command=item.launch if isinstance(item, LaunchStep) else item.run)
        if isinstance(item, LaunchStep):
            try:
                self.programs.launch(item.launch, where)
            except CommandFailed as exc:
                raise StepFailed(str(exc)) from None
        elif isinstance(item, RunStep):
            code, output = self.run_command(item.run, item.timeout)
            if code != 0:
                raise StepFailed(f"{where}: exited with code {code}: {output[-500:]}")
        elif isinstance(item, WaitForStep):
            self.find(item.wait_for, where, n)

    def step(self, n: int, item: TaskItem) -> None:
        """One scripted step: resolve its target, act, settle, record."""
        where = f"step {n} (line {item.line}): {item.describe()}"
        before, started, found, extra = self.stepper.look(), time.monotonic(), None, {}
        if item.kind in POINTER_ACTIONS:
            found = self.find(item.value, where, n)
            action = {"action": POINTER_ACTIONS[item.kind], "coordinate": list(found.point)}
        elif isinstance(item, DragStep):
            start = self.find(item.drag.from_, where, n)
            found = self.find(item.drag.to, where, n)
            action = {"action": "left_click_drag", "start_coordinate": list(start.point),
                      "coordinate": list(found.point)}
            extra["start_target"] = start.as_dict()
        elif isinstance(item, TypeStep):
            text = (vault.getenv(item.type.secret) or "") if isinstance(item.type, SecretText) else item.type
            if isinstance(item.type, SecretText):
                self.recorder.add_secret(item.type.secret, text)
            action = {"action": "type", "text": text}
        elif isinstance(item, KeyStep):
            action = {"action": "key", "text": item.key}
        elif isinstance(item, ScrollStep):
            action = {"action": "scroll", "scroll_direction": item.scroll.direction,
                      "scroll_amount": item.scroll.amount}
            if item.scroll.target is not None:
                found = self.find(item.scroll.target, where, n)
                action["coordinate"] = list(found.point)
        elif isinstance(item, WaitStep):
            action = {"action": "wait", "duration": float(item.wait)}
        elif isinstance(item, WaitForStep | ExpectStep):
            found = self.find(item.value, where, n)
            action = {"action": "wait", "duration": round(time.monotonic() - started, 3)}
            extra["condition"] = {"kind": item.kind, **found.as_dict()}
        elif isinstance(item, AgentStep):
            self.sub_goal(item.agent, where)
            return
        else:  # pragma: no cover - the schema admits no other kind
            raise StepFailed(f"{where}: unknown step kind {item.kind}")
        find_ms = round((time.monotonic() - started) * 1000, 1)
        try:  # a point off this screen (whose size only the run knows) fails the step before anything acts
            checked = parse_action(action, self.session.screen.size)
        except ActionError as exc:
            raise StepFailed(f"{where}: {exc}") from None
        if found is not None and "coordinate" in action and not extra.get("condition"):
            extra.update(self.element_under(start if isinstance(item, DragStep) else found))
        self.allowed(where, action=action, before=before, n=n, line=item.line)
        result, timing = self.stepper.perform(lambda: self.session.executor.perform(checked))
        point = found.point if found is not None and "coordinate" in action and not extra.get("condition") else None
        self.stepper.log(before, action=action, result=result, timing={**timing, "find_ms": find_ms}, point=point,
                         target=found.as_dict() if found else None, step=n, line=item.line, describe=item.describe(),
                         **extra)
        self.budget.steps += 1
        if not result.ok:
            self.budget.check()  # an action cancelled by a stop ends the task as stopped, not failed
            raise StepFailed(f"{where}: {result.error}")

    def sub_goal(self, goal: str, where: str) -> None:
        """A goal for the model, through the loop, with its own step budget, in this recording."""
        loop = replace(self.session.options.loop, limits=self.limits)
        agent = self.session.agent(self.recorder, self.callbacks, loop, owns_recording=False)
        result = agent.run(goal)
        self.session.usage += agent.usage
        self.budget.steps += agent.steps
        self.stepper.frame = agent.frame
        impossible = result.status == "failed" and result.message.startswith("IMPOSSIBLE")
        self.outcome = "finished" if result.status == "succeeded" else "impossible" if impossible else result.status
        if impossible and self.judged:  # the outcome check decides whether that was the right answer
            return
        if result.status != "succeeded":
            error = {"stopped": Stopped, "error": RunEnded}.get(result.status, StepFailed)
            ended = error(f"{where}: the model did not finish: {result.message}")
            if result.status in ("stopped", "error"):
                ended.status, ended.exit_code = result.status, result.exit_code
            raise ended

    def check(self, item: TaskItem) -> dict[str, Any]:
        """Evaluate one check at the end: {check, kind, line, ok, detail} (see agent.tasks.checks)."""
        from agent.tasks.checks import evaluate

        return evaluate(self, item)

    # --- helpers ---------------------------------------------------------------------------
    def allowed(self, where: str, *, action: dict | None = None, command: Any = None, **logged: Any) -> None:
        """The policy's check of an action or a command; StepFailed naming the rule when it is refused."""
        from actions.result import ToolResult
        from agent.safety.guard import Denied
        from agent.types import ToolCall

        call = (ToolCall("script", "computer", dict(action)) if action is not None else
                ToolCall("script", "bash", {"command": command if isinstance(command, str) else shlex.join(command)}))
        try:
            self.guard(call, None)
        except Denied as exc:
            if action is not None and "before" in logged:
                before = logged.pop("before")
                self.stepper.log(before, action=action, result=ToolResult(error=exc.why), timing={}, step=logged["n"],
                                 line=logged["line"], describe=where, refused=exc.verdict.rule if exc.verdict else None)
            raise StepFailed(f"{where}: {exc.why}") from None

    def find(self, query: Any, where: str, n: int, save: bool = True) -> Found:
        """Look for a target or query until its timeout; StepFailed naming the step if it is not there."""
        if isinstance(query, PointTarget):
            return Found((query.x, query.y), "point")
        off = region_problem(query.region, self.session.screen.size)
        if off:
            raise StepFailed(f"{where}: {off}")
        deadline = time.monotonic() + query.timeout
        while True:
            frame = self.grab()
            try:
                return locate(query, frame, self.finder, self.session.screen.size, self.session.tree)
            except AmbiguousMatch as exc:
                raise StepFailed(f"{where}: {exc}") from None
            except NoTree as exc:  # no fallback text, and no tree to wait for: the environment lacks it
                ended = StepFailed(f"{where}: {exc}")
                ended.status, ended.exit_code = "error", ExitCode.ENVIRONMENT
                raise ended from None
            except NotFound as exc:
                if time.monotonic() >= deadline:
                    shot = self.recorder.save_frame(frame, f"notfound-{n}") if save else None
                    saved = f"; the searched screenshot is {self.recorder.path / shot}" if shot else ""
                    raise StepFailed(f"{where}: not found within {query.timeout:g} s: {exc}{saved}") from None
            except ValueError as exc:  # e.g. a uniform template
                raise StepFailed(str(exc)) from None
            self.budget.check()
            if self.setting_up:
                self.check_launched()
            time.sleep(POLL_S)

    def element_under(self, found: Found) -> dict[str, Any]:
        """`{"element": ...}`: the accessible element at a pointer step's point, for replay and codegen ({} if none)."""
        element = found.element.as_dict() if found.element is not None else self.session.element_at(found.point)
        return {"element": element} if element is not None else {}

    def grab(self) -> Frame:
        """The screen now."""
        return self.session.screen.grab()

    def run_command(self, command: str | list[str], timeout: float = DEFAULT_TIMEOUT_S, split: bool = False) -> Any:
        """Run a setup command or check to completion in the task's folder: (exit code, output), or with
        `split` (exit code, standard output as it is, standard error); see agent.tasks.commands (timeout,
        process group killed on timeout and on stop)."""
        result = run_command(self.session.desktop, command, cwd=self.task.folder, environ=self.session.command_env(),
                             timeout=timeout, stop=self.callbacks.stop, split=split)
        self.budget.check()  # a stop while it ran ends the task as stopped
        return result

    def check_launched(self) -> None:
        """StepFailed naming the launch step of a launched program that exited with a non-zero code."""
        try:
            self.programs.check()
        except CommandFailed as exc:
            raise StepFailed(str(exc)) from None

    def stop_launched(self) -> None:
        """Stop every program the task launched (its whole process group)."""
        self.programs.stop()


def run_task(task: Task, options: RunOptions, *, desktop: Any = None, callbacks: Callbacks | None = None,
             model: Any = None, kill_switch: bool = True, bash_env: dict[str, str] | None = None,
             meta: dict | None = None) -> RunOutcome:
    """Run a loaded task file and return how it ended (`kill_switch`, `bash_env`, `meta`: as run_goal)."""
    if task.steps or task.checks or task.setup:  # text targets: the OCR engine loads while the session starts
        preload_ocr()
    if task.display is not None and options.size is None and options.display in ("auto", "virtual"):
        options = replace(options, size=task.display.size, display="virtual")
    secrets = {name: vault.getenv(name) or "" for name in task.secret_names if vault.getenv(name) is not None}
    callbacks = callbacks or Callbacks()
    if callbacks.policy_overrides is None:
        callbacks = replace(callbacks, policy_overrides=task.policy, policy_source=f"{task.path or task.name}: policy")
    uses_model = bool(task.goal and not task.steps) or any(isinstance(s, AgentStep) for s in task.steps)
    if uses_model and model is None:  # credentials first: nothing runs, no recording, for a missing key
        from agent.models import registry

        model = registry.create(options.model)
        model.preflight()
    with Session(options, desktop=desktop, secrets=secrets, model=model, stop=callbacks.stop,
                 kill_switch=kill_switch, bash_env=bash_env) as session:
        session.policy_confirm(callbacks)  # a task policy that would loosen the rules is refused before anything runs
        recorder = session.recorder("task", secrets, task=str(task.path or task.name), goal=task.goal,
                                    model=options.model.model if task.uses_model else None, extra_meta=meta)
        result = TaskRunner(task, session, recorder, callbacks).run()
        return RunOutcome(result, recorder.path)


def check_task(task: Task, options: RunOptions) -> list[dict[str, Any]]:
    """Only the task's checks, against `options.display` as it is now: nothing is set up, acted or recorded.

    Each check as the runner reports it ({check, kind, line, ok, detail}); an `outcome` check never
    holds here (no model worked on the task). Raises BadInput/EnvironmentProblem as opening a session does.
    """
    with Session(options, kill_switch=False) as session:
        runner = TaskRunner(task, session, None, Callbacks())  # type: ignore[arg-type] - no recording: nothing acts
        return [runner.check(item) for item in task.checks]
