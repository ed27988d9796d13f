"""Test-time compute: N independent attempts at one task, verified, the best one chosen (and applied).

`run_rollouts(task, options, n=N, parallel=K)` (`deskpilot run TASK.yaml --rollouts N --parallel K`)
runs N attempts, at most K at a time, each in a sandbox of its own:

- its own private virtual display (Xvfb, always: `--display` names where `--apply` goes, never where
  attempts run), sized like the task's `display`, else `--size`, else the apply target's screen,
  else 1280x800; the task's `setup` runs afresh on it;
- its own model sampling: with several `--model`s, the models taken in turn (attempt i gets
  models[i % len(models)]), and temperatures spread evenly from 0.0 to 1.0 (attempt i of N gets
  i / (N - 1); a single attempt keeps the options' temperature) where the API still takes a
  temperature. The anthropic SDK 2.x speaks API version 2026-10-21, which removed temperature
  (`temperature_supported()` is False): attempts then keep the API's default sampling, so they
  still differ by its randomness, and the recorded temperature is null (what was sent). With
  extended thinking the API fixes the temperature too. Every request carries the header
  `x-deskpilot-attempt: i` (proxies and test servers route on it);
- its own files: task commands (`launch`, `run`, `command` checks) and the model's bash tool see
  `DESKPILOT_ATTEMPT` (0..N-1) and `DESKPILOT_ATTEMPT_DIR` (a private temporary folder, also the
  attempt's working folder for the bash and editor tools, removed when the attempt ends), e.g.
  `launch: python3 demo_app.py $DESKPILOT_ATTEMPT_DIR/out.json`;
- its own recording, inside the parent's folder:

```
<out>/<stamp>-rollouts-<hex>/     the parent recording (kind "rollouts"), no steps of its own
  meta.json                       attempts, chosen, selection, chosen_reason, judge, pass_at_n, ...
  frames/final.png                the chosen attempt's last screen
  attempts/<i>/<run-id>/          attempt i's own recording (kind "task", or "run" for a plain goal)
  apply/<run-id>/                 with apply: the target's setup and checks (kind "task") ...
  apply/<run-id>/                 ... and the replay of the chosen attempt (kind "replay")
  apply/files/                    with apply: DESKPILOT_ATTEMPT_DIR on the target (kept)
```

Budgets: every attempt has the full budgets of the options and the task (steps, seconds, cost,
tokens), enforced by the loop as in any run (a budget that runs out stops that attempt, status
"stopped"); a watchdog also stops an attempt that overruns its time budget by WATCHDOG_GRACE_S (a
hung model call). The total cost is at most N times one attempt's budget, plus the judge's call.

Failures: an exception inside one attempt (the model factory, a crash in the loop, a display that
does not start) ends only that attempt, as status "error" with the traceback kept in its result
and its recording (a recording left "running" by the crash is marked "error"; one is created when
there was none). Ctrl-C (KeyboardInterrupt in the main thread) or the caller's `callbacks.stop`
sets every attempt's stop event, attempts not yet started are not started (status "stopped"), and
the call returns normally with status "stopped" (exit 3) once the running ones have ended; a second
Ctrl-C stops waiting. Every attempt's virtual display, and with it every program started on it,
is stopped when the attempt ends, and again (idempotently) before `run_rollouts` returns.

Verification and selection (agent.rollouts.select; meta `selection` says which rule decided,
`chosen_reason` why): with checks, the cheapest attempt that passed them ("checks"); without, the
only one that finished or reported the task impossible ("only"), the cheapest of those that ended
on the same screen ("identical"), else the judge (agent.rollouts.judge: one model call over a
factual narrative and the screenshots of each candidate, "judge"); when nothing decides, the
fallback rule ("fallback"). If every attempt crashed, none is chosen (status "error"; exit code:
the attempts' common one, else 1). A stopped run (Ctrl-C) never asks the judge.

Screens compared and shown: an attempt's last screen is its recording's frames/final.png, which for
a task attempt is taken before the programs its setup launched are stopped (a plain task run takes
it after, on an empty screen); its first screen is the frame before its first step.

pass@N: 1 when at least one attempt passed, else 0; the mean success is the fraction that passed.
Without checks "passed" means the model said it finished (self-reported; meta `verified` false).
The sequential time is the sum of the attempts' own durations; attempts that share too few cores
each run slower, so it overstates what running them one by one would take (see
benchmarks/rollouts_scaling.py: with a zero-latency model on 2 cores, parallel attempts barely beat
one by one, while with a real model most of an attempt is waiting for the API).

Kill switch: the attempts' sessions have none of their own; the rollouts start one hotkey listener
on $DISPLAY (the user's keyboard, when there is one) that stops every attempt.

Engines (agent.eval.engines, `engine=`): "local" runs the attempts in threads of this process (a
model factory, live step lines and terminal questions work); "ray" runs each as a Ray task on
`ray_address` or a local Ray started for the run, its recording returned through the object store
into `<parent>/attempts/<i>/` (step lines are relayed; policy questions are refused there).

The parent's result is the chosen attempt's (status, exit code, message; steps of that attempt),
with the usage of every attempt plus the judge's. `RolloutsOutcome.summary()` is what the CLI
prints: per-attempt lines, pass@N, the mean success, the chosen attempt and why, its result, the
total cost, and the wall time against the sequential time (the sum of the attempts' own durations,
each measured from its display starting to its display stopped).

Apply (`apply=True`, `--apply`; agent.rollouts.apply): when the chosen attempt succeeded, the task's
setup runs on the target display (`target=`, else `options.display`), then the chosen attempt is
replayed there (verify mode), then the task's checks run there. An attempt that did not succeed is
never applied. A failed apply makes the parent's result "failed" (exit 1). Meta `applied` has the
details.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput, ExitCode
from agent.models.base import ModelConfig
from agent.recording.format import RecordingError
from agent.recording.reader import Recording
from agent.recording.writer import RecordingWriter
from agent.rollouts.apply import Applier
from agent.rollouts.attempts import (
    Attempt,
    Attempts,
    ModelFactory,
    models_for,
    temperature_supported,
    temperatures,
)
from agent.rollouts.judge import Judge
from agent.rollouts.narrative import load_pixels, short
from agent.rollouts.select import Selection, select
from agent.session import Callbacks, RunOptions
from agent.tasks.items import AgentStep
from agent.tasks.schema import Task
from agent.types import RunResult, Usage, stop_reason

if TYPE_CHECKING:
    from vision.geometry import Size


@dataclass
class RolloutsOutcome:
    """A finished rollouts run: the parent's result and recording, every attempt, the choice."""

    result: RunResult
    recording: Path
    attempts: list[Attempt]
    chosen: int | None
    selection: str
    reason: str
    judge: dict | None
    verified: bool
    pass_at_n: int
    mean_success: float
    wall_s: float
    sequential_s: float
    applied: dict | None = None

    @property
    def n(self) -> int:
        """How many attempts were asked for."""
        return len(self.attempts)

    def summary(self) -> str:
        """What `deskpilot run --rollouts` prints (before the `recording: PATH` line)."""
        lines = []
        for a in self.attempts:
            temp = "default" if a.temperature is None else f"{a.temperature:.2f}"
            mark = "*" if a.index == self.chosen else " "
            verdict = "passed" if a.passed else "not passed"
            lines.append(f"{mark} attempt {a.index}: {a.status}, {verdict}, {a.steps} steps, "
                         f"{a.usage.total_tokens} tokens, ${a.usage.cost_usd:.4f}, {a.duration_s:.1f} s "
                         f"({a.model}, temperature {temp}): {short(a.message, 100)}")
        passed = sum(a.passed for a in self.attempts)
        note = "" if self.verified else " (self-reported: no checks)"
        lines.append(f"pass@{self.n}: {self.pass_at_n}  mean success {self.mean_success:.2f} "
                     f"({passed} of {self.n} passed){note}")
        if self.chosen is None:
            lines.append(f"chosen: none ({self.reason})")
        else:
            chosen = self.attempts[self.chosen]
            lines.append(f"chosen: attempt {self.chosen} by {self.selection}: {self.reason}")
            lines.append(f"chosen result: {chosen.status}: {short(chosen.message, 200)}")
        if self.applied is not None:
            lines.append(f"applied on {self.applied.get('display')}: {self.applied.get('status')}: "
                         f"{short(str(self.applied.get('message')), 200)}")
        usage = self.result.usage
        lines.append(f"total cost ${usage.cost_usd:.4f} ({usage.total_tokens} tokens, judge included)")
        speedup = self.sequential_s / self.wall_s if self.wall_s > 0 else 0.0
        lines.append(f"wall time {self.wall_s:.1f} s, sequential time {self.sequential_s:.1f} s "
                     f"({speedup:.1f}x)")
        return "\n".join(lines)


def run_rollouts(task: Task | str, options: RunOptions, *, n: int, parallel: int, models: list[str] | None = None,
                 apply: bool = False, judge_model: Any = None, model_factory: ModelFactory | None = None,
                 callbacks: Callbacks | None = None, target: Any = None, engine: str = "local",
                 ray_address: str | None = None, num_cpus: float = 1.0) -> RolloutsOutcome:
    """Run `n` independent attempts at `task` (a loaded task file, or a plain goal), `parallel` at a time.

    Each attempt runs on its own virtual display with its own recording under the parent's folder,
    its own model (`models` in turn; default `options.model.model`) and, where the API takes one, its
    own temperature (0.0..1.0). `model_factory(i, claude_config)` makes attempt i's model (default:
    agent.models.anthropic.Claude, created when first needed; the credentials are checked up front, so a missing
    API key fails before any work, exit 4). `judge_model`: a model object (anything with
    `.query(system, messages, tools)` returning a Reply), a model name, or None for the first
    attempt's model (temperature 0 where the API takes one). `callbacks`: the run's (on_step gets
    every attempt's steps, each line with an "attempt" key; stop stops them all; confirm_mode, asker,
    confirm and policy_overrides apply to every attempt, one question at a time). `apply`: replay
    the chosen attempt onto `target` (a Desktop) or else `options.display`. `engine`: "local" (threads
    of this process) or "ray" (Ray tasks with `num_cpus` each, on `ray_address` or a local Ray; a
    model factory cannot travel there). Raises BadInput (n,
    parallel, an empty goal, a model the tool table lacks) or EnvironmentProblem (no credentials, an
    apply target that cannot be opened) before anything runs. See the module docstring for the rules.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInput(f"--rollouts must be a positive number of attempts, got {n!r}")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise BadInput(f"--parallel must be a positive number, got {parallel!r}")
    if isinstance(task, str) and not task.strip():
        raise BadInput("the goal is empty")
    return _Rollouts(task, options, n=n, parallel=min(parallel, n), models=models, apply=apply,
                     judge_model=judge_model, model_factory=model_factory, callbacks=callbacks or Callbacks(),
                     target=target, engine=engine, ray_address=ray_address, num_cpus=num_cpus).run()


def _check_credentials(config: ModelConfig) -> None:
    """ModelUnavailable (exit 4) when the model has no way to authenticate, before any attempt starts."""
    from agent.models import registry

    registry.create(config).preflight()


class _Rollouts:
    """The state of one run_rollouts call: the parent recording, the attempts, the choice, the apply."""

    def __init__(self, task: Task | str, options: RunOptions, *, n: int, parallel: int, models: list[str] | None,
                 apply: bool, judge_model: Any, model_factory: ModelFactory | None, callbacks: Callbacks,
                 target: Any, engine: str = "local", ray_address: str | None = None, num_cpus: float = 1.0) -> None:
        from agent.models import registry

        self.task = task if isinstance(task, Task) else None
        self.goal = task.goal if isinstance(task, Task) else task
        self.options, self.n, self.parallel = options, n, parallel
        self.models = models_for(n, models, options.model.model)
        for model in dict.fromkeys(self.models):
            registry.create(replace(options.model, model=model))  # BadInput for an unknown model, before any work
        self.temps = temperatures(n, options.model.temperature) if temperature_supported() else [None] * n
        uses_model = not isinstance(task, Task) or bool(task.goal and not task.steps) or any(
            isinstance(s, AgentStep) for s in task.steps)
        if uses_model and model_factory is None:  # a missing API key fails now (exit 4), not N times later
            _check_credentials(options.model)
        self.apply, self.callbacks = apply, callbacks
        self.verified = bool(self.task and self.task.checks)
        self.runner = Attempts(task, options, n=n, parallel=parallel, models=self.models, temps=self.temps,
                               model_factory=model_factory, callbacks=callbacks, engine=engine,
                               ray_address=ray_address, num_cpus=num_cpus)
        self.judge = Judge(judge_model, options.model, self.models[0], self.goal or "", self.add_usage)
        self.interrupted: str | None = None
        self.lock = threading.Lock()  # the usage, added to from the attempt threads
        self.target, self.own_target = target, False
        self.usage = Usage()

    def add_usage(self, usage: Usage) -> None:
        """Count what an attempt or the judge cost, in the result and in the parent recording."""
        with self.lock:
            self.usage += usage
        self.parent.add_usage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
                              usage.cache_write_tokens, usage.cost_usd)

    def attempt_done(self, attempt: Attempt) -> None:
        """An attempt ended: count its cost."""
        self.add_usage(attempt.usage)

    # --- the whole run -------------------------------------------------------------------
    def run(self) -> RolloutsOutcome:
        """Open the target (apply), write the parent recording, run the attempts, choose, apply, finish."""
        started = time.monotonic()
        if self.apply and self.target is None:
            self.target, self.own_target = self._open_target(), True
        try:
            self.size = self._size()
            label = str(self.task.path or self.task.name) if self.task else None
            self.parent = RecordingWriter(
                self.options.out, "rollouts", goal=self.goal, task=label,
                model=", ".join(dict.fromkeys(self.models)),
                extra_meta={"n": self.n, "parallel": self.parallel, "verified": self.verified,
                            "temperatures": self.temps, "models": self.models, "apply": self.apply})
            self.folder = self.parent.path
            try:
                return self._run(started)
            except BaseException as exc:
                if not self.parent.finished:
                    status = "stopped" if isinstance(exc, KeyboardInterrupt) else "error"
                    self.parent.finish(status, error=f"{type(exc).__name__}: {exc}")
                raise
        finally:
            self.runner.close()
            if self.own_target and self.target is not None:
                self.target.stop()

    def _run(self, started: float) -> RolloutsOutcome:
        attempts = self.attempts = self.runner.run(self.folder, self.size, self.attempt_done)
        wall_attempts = time.monotonic() - started
        self.interrupted = self.runner.interrupted
        if self.interrupted is None and self.callbacks.stop.is_set():
            self.interrupted = stop_reason(self.callbacks.stop)
        selection = self._select(attempts)
        chosen = attempts[selection.chosen] if selection.chosen is not None else None
        applied = None
        if self.apply and self.interrupted is None:
            applier = Applier(self.task, self.options, self.target, self.folder, self.callbacks)
            applied = applier.apply(chosen)
            self.interrupted = self.interrupted or applier.interrupted
        passed = sum(a.passed for a in attempts)
        result = self._result(chosen, applied, selection)
        wall = time.monotonic() - started
        sequential = sum(a.duration_s for a in attempts)
        meta = {
            "attempts": [a.as_meta(self.folder) for a in attempts], "chosen": selection.chosen,
            "selection": selection.rule, "chosen_reason": selection.reason, "judge": selection.judge,
            "pass_at_n": int(passed > 0), "mean_success": round(passed / self.n, 4), "applied": applied,
            "wall_s": round(wall, 3), "attempts_wall_s": round(wall_attempts, 3),
            "sequential_s": round(sequential, 3), "result": result.message,
        }
        screen = self._screen_meta(chosen or next((a for a in attempts if a.recording), None))
        self.parent.set_meta(**meta, **screen)
        final = load_pixels(chosen.final_frame) if chosen else None
        self.parent.finish(result.status, error=None if result.status == "succeeded" else result.message,
                           final_frame=final)
        return RolloutsOutcome(result, self.folder, attempts, selection.chosen, selection.rule, selection.reason,
                               selection.judge, self.verified, int(passed > 0), passed / self.n, wall, sequential,
                               applied)

    def _result(self, chosen: Attempt | None, applied: dict | None, selection: Selection) -> RunResult:
        if self.interrupted is not None:
            steps = chosen.steps if chosen else 0
            return RunResult("stopped", int(ExitCode.STOPPED), f"rollouts stopped: {self.interrupted}", steps,
                             self.usage)
        if chosen is None:  # every attempt crashed: their common exit code (4 for a missing API key...), else 1
            codes = {a.exit_code for a in self.attempts if a.started}
            code = codes.pop() if len(codes) == 1 else int(ExitCode.FAILED)
            return RunResult("error", code, f"no attempt to choose: {selection.reason}", 0, self.usage)
        status, code = chosen.status, chosen.exit_code
        message = f"attempt {chosen.index}: {chosen.message}"
        if self.verified and chosen.status == "succeeded" and not chosen.passed:  # pragma: no cover - defensive
            status, code = "failed", int(ExitCode.FAILED)
        if applied is not None and applied.get("status") != "succeeded" and status == "succeeded":
            status, code = "failed", int(ExitCode.FAILED)
            message += f"; applying it on {applied.get('display')} failed: {applied.get('message')}"
        elif applied is not None and applied.get("status") == "succeeded":
            message += f"; applied on {applied.get('display')}"
        return RunResult(status, int(code), message, chosen.steps, self.usage)

    def _screen_meta(self, attempt: Attempt | None) -> dict[str, Any]:
        if attempt is None or attempt.recording is None:
            return {}
        try:
            meta = Recording.load(attempt.recording).meta
        except (OSError, RecordingError):
            return {}
        return {k: meta[k] for k in ("screen", "model_image") if isinstance(meta.get(k), dict)}

    # --- displays ----------------------------------------------------------------------------
    def _open_target(self) -> Any:
        from agent.session import open_display

        return open_display(self.options.display, self.options.size)

    def _size(self) -> Size:
        from actions.platform import DEFAULT_SIZE

        if self.task is not None and self.task.display is not None:
            return self.task.display.size
        if self.options.size is not None:
            return self.options.size
        if self.target is not None:
            try:
                return self.target.size()
            except Exception:  # the target's size is only a preference
                pass
        return DEFAULT_SIZE

    # --- selection ---------------------------------------------------------------------------
    def _select(self, attempts: list[Attempt]) -> Selection:
        checks = len(self.task.checks) if self.verified and self.task is not None else None
        return select(attempts, checks, self._judge)

    def _judge(self, candidates: list[Attempt], why: str) -> Selection:
        selection = self.judge.choose(candidates, why, stopped=self.interrupted is not None)
        self.interrupted = self.interrupted or self.judge.interrupted
        return selection
