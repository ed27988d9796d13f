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

Verification and selection (meta `selection` says which rule decided, `chosen_reason` why):

1. "checks": the task has checks, so an attempt passes only if its run succeeded with every check
   holding. Among passing attempts the cheapest wins: fewest steps, then fewest tokens, then the
   lower index. When another passing attempt ended on a different screen than that cheapest one
   ("different": `screens_differ`, some changed area at least MIN_CHANGE_SIDE pixels wide and tall
   after ignoring changes smaller than that, such as a blinking text cursor), the checks did not
   decide between them, and the judge (3) compares the passing attempts. When no attempt passes,
   the checks have decided that none did: an honest IMPOSSIBLE report is preferred, then the attempt
   with the most checks holding, then the cheapest.
2. With no checks (a plain goal, or a task without checks) the candidates are the attempts whose
   model finished (status succeeded) and those that reported the task impossible (status failed,
   message starting "IMPOSSIBLE", also inside a task's "the model did not finish: ..." message).
   No candidate: the fallback rule over all attempts ("fallback"). One candidate: it wins ("only").
   All candidates succeeded on the same final screen: the cheapest ("identical"). Else the judge.
3. "judge": one call to the judge model compares the candidates from a short factual narrative of
   each (`narrate`: per step, the action and what changed on screen after it, as the changed
   regions' boxes and the OCR text that appeared or disappeared there) plus each attempt's first
   and last screenshots; it is told that an honest IMPOSSIBLE report beats a wrong completion. It
   answers with the `choose_attempt` tool or a JSON object {"reasoning": ..., "choice": i}. Its
   reasoning, choice and raw reply are kept in meta `judge`. A reply that cannot be parsed, names
   an attempt that is not a candidate, or a judge call that fails, falls back ("fallback").

The fallback rule: the cheapest attempt that succeeded (fewest steps, then tokens); if none, the
cheapest honest IMPOSSIBLE report; if none, the cheapest attempt that did not crash; if every
attempt crashed, none is chosen (status "error"; exit code: the attempts' common one, else 1).
A stopped run (Ctrl-C) never asks the judge; it uses the fallback rule.

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

The parent's result is the chosen attempt's (status, exit code, message; steps of that attempt),
with the usage of every attempt plus the judge's. `RolloutsOutcome.summary()` is what the CLI
prints: per-attempt lines, pass@N, the mean success, the chosen attempt and why, its result, the
total cost, and the wall time against the sequential time (the sum of the attempts' own durations,
each measured from its display starting to its display stopped).

Apply (`apply=True`, `--apply`): when the chosen attempt succeeded, its winning path is replayed
onto the target display (`target=`, else `options.display`: host or `:N`) with agent.replay.replayer's
`replay` (verify mode: every target found again on the live screen). A task's `setup` runs on the
target first (so the application is there, with DESKPILOT_ATTEMPT=apply and DESKPILOT_ATTEMPT_DIR=
<parent>/apply/files), then the replay, then the task's checks, evaluated on the target; as in any
task run the programs the setup launched are stopped at the end. Only computer actions are
replayed (replay skips bash and editor calls). An attempt that did not succeed is never applied.
A failed apply makes the parent's result "failed" (exit 1). Meta `applied` has the details.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput, DeskpilotError, ExitCode, RunEnded
from agent.models.base import ModelConfig
from agent.recording.writer import Recording, RecordingError, RecordingWriter
from agent.session import Callbacks, RunOptions, RunOutcome, Session, run_goal
from agent.tasks.items import AgentStep
from agent.tasks.runner import TaskRunner, run_task
from agent.tasks.schema import Task
from agent.types import RunResult, ToolSpec, Usage, UserTurn
from vision.capture import Frame
from vision.diff import changed_boxes, screens_differ

if TYPE_CHECKING:
    import numpy as np

    from vision.geometry import Size

ATTEMPT_HEADER = "x-deskpilot-attempt"
JUDGE_HEADER = "x-deskpilot-judge"
ENV_ATTEMPT = "DESKPILOT_ATTEMPT"
ENV_ATTEMPT_DIR = "DESKPILOT_ATTEMPT_DIR"
WATCHDOG_GRACE_S = 30.0  # an attempt this far over its time budget is stopped from outside
POLL_S = 0.1
MAX_REGIONS = 3  # per step in a narrative; the rest are counted
OCR_MAX_FRACTION = 0.5  # regions larger than this part of the screen are not read (the screenshot shows them)
MAX_NARRATIVE_STEPS = 40  # longer attempts: the first and last 20 steps
MAX_TEXT = 80
JUDGE_IMAGE_EDGE = 800  # screenshots for the judge are shrunk to this long edge
JUDGE_MAX_TOKENS = 2048
_IMPOSSIBLE = re.compile(r"(?:^|the model did not finish: )IMPOSSIBLE\b")

JUDGE_SYSTEM = (
    "You review attempts by a computer-use agent at one task on a Linux desktop and choose the best one. "
    "Judge by what the screens and the step narratives show, not by what the agent claims. The best attempt "
    "achieved the goal correctly and completely, without unwanted side effects; among equally good ones, the "
    "shorter one. An attempt that honestly reported the task impossible (its final message starts with "
    "IMPOSSIBLE) is better than one that claims success but did not achieve the goal or did something else. "
    'Answer by calling the choose_attempt tool once, or with one JSON object {"reasoning": "...", "choice": N}.'
)
CHOOSE_TOOL = ToolSpec("choose_attempt", "Name the best attempt and say why.", {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string", "description": "A few sentences: what each attempt achieved."},
        "choice": {"type": "integer", "description": "The number of the best attempt."},
    },
    "required": ["reasoning", "choice"],
})

ModelFactory = Callable[[int, ModelConfig], Any]


# ----------------------------------------------------------------------------- results


@dataclass
class Attempt:
    """One attempt: how it was sampled, how it ended, where its recording is."""

    index: int
    model: str
    temperature: float | None
    status: str = "stopped"  # succeeded | failed | stopped | error
    exit_code: int = int(ExitCode.STOPPED)
    message: str = "not started"
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    recording: Path | None = None
    duration_s: float = 0.0
    checks: list[dict] = field(default_factory=list)
    passed: bool = False
    crashed: str | None = None  # the traceback, when an exception ended the attempt
    started: bool = False
    final_frame: Path | None = None
    first_frame: Path | None = None

    @property
    def impossible(self) -> bool:
        """The model reported the task impossible (honestly or not: the judge decides)."""
        return self.status == "failed" and bool(_IMPOSSIBLE.search(self.message or ""))

    @property
    def cost_key(self) -> tuple[int, int, float, int]:
        """Cheapest first: fewest steps, then fewest tokens, then lowest cost, then lowest index."""
        return self.steps, self.usage.total_tokens, self.usage.cost_usd, self.index

    def as_meta(self, parent: Path) -> dict[str, Any]:
        """The parent meta's `attempts` entry (path relative to the parent folder)."""
        path = None
        if self.recording is not None:
            try:
                path = self.recording.relative_to(parent).as_posix()
            except ValueError:
                path = str(self.recording)
        return {"path": path, "status": self.status, "passed": self.passed, "steps": self.steps,
                "cost_usd": round(self.usage.cost_usd, 6), "index": self.index, "model": self.model,
                "temperature": self.temperature, "tokens": self.usage.total_tokens,
                "duration_s": round(self.duration_s, 3), "message": self.message, "impossible": self.impossible,
                "checks_ok": sum(1 for c in self.checks if c.get("ok")), "checks_total": len(self.checks),
                "crashed": self.crashed is not None}


@dataclass
class Selection:
    """Which attempt was chosen, by which rule, and why."""

    chosen: int | None
    rule: str  # checks | only | identical | judge | fallback | none
    reason: str
    judge: dict | None = None


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
                         f"({a.model}, temperature {temp}): {_short(a.message, 100)}")
        passed = sum(a.passed for a in self.attempts)
        note = "" if self.verified else " (self-reported: no checks)"
        lines.append(f"pass@{self.n}: {self.pass_at_n}  mean success {self.mean_success:.2f} "
                     f"({passed} of {self.n} passed){note}")
        if self.chosen is None:
            lines.append(f"chosen: none ({self.reason})")
        else:
            chosen = self.attempts[self.chosen]
            lines.append(f"chosen: attempt {self.chosen} by {self.selection}: {self.reason}")
            lines.append(f"chosen result: {chosen.status}: {_short(chosen.message, 200)}")
        if self.applied is not None:
            lines.append(f"applied on {self.applied.get('display')}: {self.applied.get('status')}: "
                         f"{_short(str(self.applied.get('message')), 200)}")
        usage = self.result.usage
        lines.append(f"total cost ${usage.cost_usd:.4f} ({usage.total_tokens} tokens, judge included)")
        speedup = self.sequential_s / self.wall_s if self.wall_s > 0 else 0.0
        lines.append(f"wall time {self.wall_s:.1f} s, sequential time {self.sequential_s:.1f} s "
                     f"({speedup:.1f}x)")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- sampling


def temperatures(n: int, default: float | None = None) -> list[float | None]:
    """Evenly from 0.0 to 1.0 for n >= 2 (attempt i: i / (n - 1)); one attempt keeps `default`."""
    if n == 1:
        return [default]
    return [round(i / (n - 1), 4) for i in range(n)]


@functools.lru_cache(maxsize=1)
def temperature_supported() -> bool:
    """Whether the installed anthropic SDK can send a temperature at all (an SDK before 2.0).

    The SDK's 2.x releases speak API version 2026-10-21, which removed temperature, top_p and top_k
    (a request with any of them is refused, even at the default value), and their
    `messages.create` has no such parameter. With such an SDK, attempts keep the API's own
    sampling: they still differ, by its randomness (and by model with several `--model`s).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = version("anthropic").split(".")[0]
    except PackageNotFoundError:
        return False
    return major.isdigit() and int(major) < 2


def models_for(n: int, models: Sequence[str] | None, default: str) -> list[str]:
    """The model of each attempt: `models` in turn, else `default` for all."""
    pool = [m for m in (models or []) if m] or [default]
    return [pool[i % len(pool)] for i in range(n)]


# ----------------------------------------------------------------------------- screens


def _load(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    from vision.encode import decode

    try:
        return decode(path.read_bytes())
    except (OSError, ValueError):
        return None


def _words(pixels: np.ndarray, box: tuple[int, int, int, int]) -> Counter:
    """The words OCR reads in `box` (padded by 6 px)."""
    from vision.locate.ocr import OcrUnavailable, ocr

    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = max(0, box[0] - 6), max(0, box[1] - 6), min(w, box[2] + 6), min(h, box[3] + 6)
    try:
        return Counter(word.text for word in ocr(pixels[y0:y1, x0:x1], origin=(x0, y0)))
    except OcrUnavailable:
        return Counter()


def _short(text: str, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _text_of(words: Counter) -> str:
    return _short(" ".join(words.elements()))


def describe_change(before: np.ndarray, after: np.ndarray, read_text: bool = True) -> str:
    """What changed from `before` to `after`: regions, and the text that appeared or disappeared there."""
    boxes = changed_boxes(before, after)
    if not boxes:
        return "no visible change"
    h, w = after.shape[:2]
    parts = []
    for box in boxes[:MAX_REGIONS]:
        part = f"changed {list(box)}"
        area = (box[2] - box[0]) * (box[3] - box[1])
        if read_text and area <= OCR_MAX_FRACTION * w * h and before.shape == after.shape:
            old, new = _words(before, box), _words(after, box)
            appeared, gone = new - old, old - new
            if appeared:
                part += f" appeared {_text_of(appeared)!r}"
            if gone:
                part += f" disappeared {_text_of(gone)!r}"
        elif area > OCR_MAX_FRACTION * w * h:
            part += " (most of the screen)"
        parts.append(part)
    if len(boxes) > MAX_REGIONS:
        parts.append(f"and {len(boxes) - MAX_REGIONS} smaller changes")
    return "; ".join(parts)


def narrate(recording: Path | str, *, max_steps: int = MAX_NARRATIVE_STEPS, read_text: bool = True) -> list[str]:
    """A short factual narrative of a recording: one line per step, the action and what changed on screen.

    The change after step i is measured between the frame saved before it and the next saved frame
    (the next step's, else final.png): the changed regions' boxes (screen pixels) and the OCR text
    that appeared or disappeared in each. Longer recordings keep their first and last
    `max_steps // 2` steps.
    """
    from agent.recording.describe import describe

    try:
        rec = Recording.load(recording)
    except RecordingError as exc:
        return [f"(the recording cannot be read: {exc})"]
    steps = rec.steps
    final = rec.meta.get("final_frame")
    keep = set(range(len(steps)))
    if len(steps) > max_steps:
        keep = set(range(max_steps // 2)) | set(range(len(steps) - max_steps // 2, len(steps)))
    cache: dict[str, np.ndarray | None] = {}

    def pixels(relative: str | None) -> np.ndarray | None:
        if relative is None:
            return None
        if relative not in cache:
            if len(cache) > 4:
                cache.pop(next(iter(cache)))
            cache[relative] = _load(rec.path / relative)
        return cache[relative]

    lines: list[str] = []
    skipped = False
    for k, step in enumerate(steps):
        if k not in keep:
            if not skipped:
                lines.append(f"... ({len(steps) - len(keep)} steps omitted) ...")
                skipped = True
            continue
        action = step.get("action") or {}
        text = f"{k + 1}. {_short(describe(action), 120)}"
        if step.get("error"):
            text += f" (error: {_short(step['error'])})"
        if step.get("skipped"):
            text += f" (skipped: {_short(step['skipped'])})"
        if action.get("tool") not in (None, "computer"):
            output = step.get("output")
            lines.append(text + (f" -> output {_short(output)!r}" if output else ""))
            continue
        before_path = step.get("frame")
        after_path = next((s.get("frame") for s in steps[k + 1:] if s.get("frame")), final)
        before, after = pixels(before_path), pixels(after_path)
        if before is None or after is None:
            lines.append(text + " -> (no screenshot)")
            continue
        change = "no visible change" if before_path == after_path else describe_change(before, after, read_text)
        lines.append(f"{text} -> {change}")
    return lines


# ----------------------------------------------------------------------------- the judge


def _judge_image(path: Path | None) -> Frame | None:
    pixels = _load(path)
    if pixels is None:
        return None
    from vision.encode import resize
    from vision.geometry import Size

    h, w = pixels.shape[:2]
    scale = min(1.0, JUDGE_IMAGE_EDGE / max(w, h))
    return Frame(resize(pixels, Size(max(1, round(w * scale)), max(1, round(h * scale)))))


def judge_request(goal: str, candidates: Sequence[Attempt], narratives: dict[int, list[str]]) -> list[UserTurn]:
    """The judge's one user turn: the goal, then per candidate its outcome, narrative and screenshots."""
    parts: list[str | Frame] = [(
        f"Goal: {goal}\n\nThe attempts below ran independently from the same starting state. For each you get "
        "its outcome, a factual narrative of its steps (after each action: what changed on the screen, as "
        "regions [x0, y0, x1, y1] in screen pixels, and the text OCR read appearing or disappearing there) "
        "and its first and last screenshots.")]
    for a in candidates:
        narrative = "\n".join(narratives.get(a.index) or ["(no steps)"])
        parts.append(f"\n## Attempt {a.index}\noutcome: {a.status}; {a.steps} steps; final message: "
                     f"{_short(a.message, 400)!r}\nsteps:\n{narrative}")
        for label, path in (("first", a.first_frame), ("last", a.final_frame)):
            image = _judge_image(path)
            if image is not None:
                parts += [f"{label} screen of attempt {a.index}:", image]
    names = ", ".join(str(a.index) for a in candidates)
    parts.append(f"\nWhich attempt is best? Choose one of: {names}.")
    return [UserTurn(tuple(parts))]


def parse_judge_reply(reply: Any, allowed: Sequence[int]) -> tuple[int | None, str | None]:
    """(choice, reasoning) from a judge reply: a choose_attempt tool call, a JSON object with "choice",
    or `choice: N` in the text; (None, reasoning-or-None) when no allowed attempt is named."""
    found: list[dict] = []
    for call in getattr(reply, "tool_calls", None) or []:
        if isinstance(call.input, dict) and "choice" in call.input:
            found.append(call.input)
    text = getattr(reply, "text", "") or ""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and "choice" in value:
            found.append(value)
    if not found:
        plain = re.search(r"\bchoice\W{0,4}(\d+)", text, re.IGNORECASE)
        if plain:
            found.append({"choice": plain.group(1), "reasoning": text.strip()})
    for data in found:
        raw = data.get("choice")
        try:
            choice = int(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            choice = None
        reasoning = data.get("reasoning")
        reasoning = str(reasoning) if reasoning is not None else None
        if choice is not None and choice in allowed:
            return choice, reasoning
    return None, (str(found[0].get("reasoning")) if found and found[0].get("reasoning") is not None else None)


def fallback_choice(attempts: Sequence[Attempt]) -> Attempt | None:
    """The documented fallback: the cheapest success, else the cheapest IMPOSSIBLE report, else the
    cheapest attempt that did not crash; None when every attempt crashed (or none ran)."""
    def rank(a: Attempt) -> int:
        return 0 if a.status == "succeeded" else 1 if a.impossible else 2
    pool = [a for a in attempts if a.crashed is None and a.started]
    return min(pool, key=lambda a: (rank(a), *a.cost_key)) if pool else None


# ----------------------------------------------------------------------------- the sandbox


class _EnvDesktop:
    """A desktop whose environment for task commands has extra variables; everything else is the desktop's."""

    def __init__(self, desktop: Any, extra: dict[str, str]) -> None:
        self._desktop, self.extra = desktop, dict(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._desktop, name)

    def env(self) -> dict[str, str]:
        """The desktop's environment plus the extra variables."""
        return {**self._desktop.env(), **self.extra}

    def launch(self, command: str | list[str], cwd: str | Path | None = None, env: dict | None = None) -> Any:
        """Start a program on the desktop with the extra variables."""
        return self._desktop.launch(command, cwd=cwd, env={**self.extra, **(env or {})})


def _run_one(target: Task | str, options: RunOptions, desktop: Any, callbacks: Callbacks, model: Any,
             env: dict[str, str], meta: dict[str, Any]) -> RunOutcome:
    """One attempt on its desktop: the task through run_task, or the goal through run_goal.

    Its session has no kill switch of its own: the rollouts have one for all attempts (a session's
    kill switch sets $DISPLAY process-wide while it starts, which races with other sessions starting).
    """
    run = run_task if isinstance(target, Task) else run_goal
    return run(target, options, desktop=desktop, callbacks=callbacks, model=model, kill_switch=False,
               bash_env=env, meta=meta)


def _check_credentials(config: ModelConfig) -> None:
    """ModelUnavailable (exit 4) when the model has no way to authenticate, before any attempt starts."""
    from agent.models import registry

    registry.create(config).preflight()


def _mark_crashed(folder: Path, kind: str, goal: str | None, task: str | None, message: str) -> Path:
    """The attempt's recording after a crash: a "running" one is marked "error"; none: a stub is written."""
    found = sorted(p for p in folder.iterdir() if (p / "meta.json").is_file()) if folder.is_dir() else []
    if found:
        path = found[-1]
        meta_path = path / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("status") == "running":
                meta.update(status="error", error=message,
                            ended=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
                tmp = meta_path.with_name(f".meta.json.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
                os.replace(tmp, meta_path)
        except (OSError, ValueError):
            pass
        return path
    writer = RecordingWriter(folder, kind, goal=goal, task=task)
    writer.finish("error", error=message)
    return writer.path


# ----------------------------------------------------------------------------- the run


def run_rollouts(task: Task | str, options: RunOptions, *, n: int, parallel: int, models: list[str] | None = None,
                 apply: bool = False, judge_model: Any = None, model_factory: ModelFactory | None = None,
                 callbacks: Callbacks | None = None, target: Any = None) -> RolloutsOutcome:
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
    the chosen attempt onto `target` (a Desktop) or else `options.display`. Raises BadInput (n,
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
                     target=target).run()


class _Rollouts:
    """The state of one run_rollouts call."""

    def __init__(self, task: Task | str, options: RunOptions, *, n: int, parallel: int, models: list[str] | None,
                 apply: bool, judge_model: Any, model_factory: ModelFactory | None, callbacks: Callbacks,
                 target: Any) -> None:
        from agent.models import registry

        self.task = task if isinstance(task, Task) else None
        self.goal = task.goal if isinstance(task, Task) else task
        self.target_work = task
        self.options, self.n, self.parallel = options, n, parallel
        self.models = models_for(n, models, options.model.model)
        for model in dict.fromkeys(self.models):
            registry.create(replace(options.model, model=model))  # BadInput for an unknown model, before any work
        self.temps = temperatures(n, options.model.temperature) if temperature_supported() else [None] * n
        uses_model = not isinstance(task, Task) or bool(task.goal and not task.steps) or any(
            isinstance(s, AgentStep) for s in task.steps)
        if uses_model and model_factory is None:  # a missing API key fails now (exit 4), not N times later
            _check_credentials(options.model)
        self.apply, self.judge_model, self.model_factory = apply, judge_model, model_factory
        self.callbacks = callbacks
        self.verified = bool(self.task and self.task.checks)
        self.stops = [threading.Event() for _ in range(n)]
        self.begun: dict[int, float] = {}
        self.cancel = threading.Event()
        self.interrupted: str | None = None
        self.ctrl_c = False
        self.lock = threading.Lock()  # state shared with the attempt threads
        self.io_lock = threading.Lock()  # one callback (progress line, question) at a time
        self.desktops: list[Any] = []
        self.target, self.own_target = target, False
        self.usage = Usage()
        self.limit_s = (self.task.limits.apply(options.loop.limits) if self.task else options.loop.limits).max_seconds

    # --- the whole run -------------------------------------------------------------------
    def run(self) -> RolloutsOutcome:
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
            self.cancel.set()
            for stop in self.stops:
                stop.set()
            self._stop_desktops()
            if self.own_target and self.target is not None:
                self.target.stop()

    def _run(self, started: float) -> RolloutsOutcome:
        attempts = self.attempts = self._attempts()
        wall_attempts = time.monotonic() - started
        if self.interrupted is None and self.callbacks.stop.is_set():
            self.interrupted = getattr(self.callbacks.stop, "reason", None) or "stopped by the user"
        selection = self._select(attempts)
        chosen = attempts[selection.chosen] if selection.chosen is not None else None
        applied = None
        if self.apply and self.interrupted is None:
            applied = self._apply(chosen)
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
        final = _load(chosen.final_frame) if chosen else None
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
            meta = json.loads((attempt.recording / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
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

    def _stop_desktops(self) -> None:
        with self.lock:
            desktops = list(self.desktops)
        for desktop in desktops:
            try:
                desktop.stop()
            except Exception as exc:  # keep stopping the others
                print(f"deskpilot: stopping {desktop} failed: {exc}", flush=True)

    # --- attempts ----------------------------------------------------------------------------
    def _attempts(self) -> list[Attempt]:
        """Run every attempt; Ctrl-C or the caller's stop stops them all; each crash stays in its attempt."""
        results: list[Attempt | None] = [None] * self.n
        switch = self._kill_switch()
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="rollout")
        futures: dict[Future, int] = {pool.submit(self._attempt, i): i for i in range(self.n)}
        pending = set(futures)
        give_up = False
        try:
            while pending:
                try:
                    done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        results[futures[future]] = self._collect(future, futures[future])
                    if self.callbacks.stop.is_set() and self.interrupted is None:
                        self._stop_all(getattr(self.callbacks.stop, "reason", None) or "stopped by the user")
                    self._watchdog()
                except KeyboardInterrupt:
                    if self.ctrl_c:  # a second Ctrl-C: stop waiting for the attempts to end
                        give_up = True
                        break
                    self.ctrl_c = True
                    self._stop_all("interrupted by the user (Ctrl-C)")
        finally:
            pool.shutdown(wait=not give_up, cancel_futures=True)
            if switch is not None:
                with contextlib.suppress(Exception):
                    switch.stop()
        for future, i in futures.items():
            if results[i] is None and future.done() and not future.cancelled():
                results[i] = self._collect(future, i)
        return [a if a is not None else self._not_started(i) for i, a in enumerate(results)]

    def _kill_switch(self) -> Any:
        """One kill switch for every attempt: the hotkey on the user's display ($DISPLAY) stops them all.

        Without $DISPLAY there is no keyboard to listen to (the attempts' displays are private): Ctrl-C.
        """
        display = os.environ.get("DISPLAY")
        if not display:
            return None
        from agent.safety.killswitch import KillSwitch

        try:
            return KillSwitch(self._stop_all, display).start()
        except Exception as exc:  # e.g. no RECORD extension
            print(f"deskpilot: the kill switch is unavailable ({exc}); use Ctrl-C to stop", file=sys.stderr)
            return None

    def _collect(self, future: Future, i: int) -> Attempt:
        try:
            return future.result()
        except BaseException as exc:  # _attempt catches Exception; this is anything else
            attempt = Attempt(i, self.models[i], self.temps[i], status="error", exit_code=int(ExitCode.FAILED),
                              message=f"crashed: {type(exc).__name__}: {exc}", started=True)
            attempt.crashed = "".join(traceback.format_exception(exc))
            return attempt

    def _not_started(self, i: int) -> Attempt:
        attempt = Attempt(i, self.models[i], self.temps[i], message="not started: the rollouts were stopped")
        return attempt

    def _stop_all(self, reason: str) -> None:
        self.interrupted = reason
        self.cancel.set()
        for stop in self.stops:
            stop.reason = reason  # type: ignore[attr-defined]
            stop.set()

    def _watchdog(self) -> None:
        if self.limit_s is None:
            return
        now = time.monotonic()
        with self.lock:
            running = list(self.begun.items())
        for i, begun in running:
            if not self.stops[i].is_set() and now - begun > self.limit_s + WATCHDOG_GRACE_S:
                self.stops[i].reason = (f"time budget of {self.limit_s:g} s overrun by "  # type: ignore[attr-defined]
                                        f"{WATCHDOG_GRACE_S:g} s; stopped by the rollouts watchdog")
                self.stops[i].set()

    def _callbacks(self, i: int) -> Callbacks:
        parent = self.callbacks
        on_step = None
        if parent.on_step is not None:
            def on_step(line: dict, usage: Usage, _i: int = i) -> None:
                with self.io_lock:
                    parent.on_step({**line, "attempt": _i}, usage)
        confirm = None
        if parent.confirm is not None:
            def confirm(call: Any, action: Any) -> None:
                with self.io_lock:  # one question at a time
                    parent.confirm(call, action)
        return Callbacks(on_step=on_step, confirm=confirm, stop=self.stops[i], pause=parent.pause,
                         confirm_mode=parent.confirm_mode, asker=parent.asker,
                         policy_overrides=parent.policy_overrides)

    def _attempt(self, i: int) -> Attempt:
        """Attempt i from start to end, on its own display; an exception ends only this attempt."""
        from actions.platform import virtual_desktop

        attempt = Attempt(i, self.models[i], self.temps[i])
        if self.cancel.is_set() or self.stops[i].is_set():
            attempt.message = "not started: the rollouts were stopped"
            return attempt
        attempt.started = True
        begun = time.monotonic()
        with self.lock:
            self.begun[i] = begun
        out = self.folder / "attempts" / str(i)
        workdir = Path(tempfile.mkdtemp(prefix=f"deskpilot-attempt-{i}-"))
        env = {ENV_ATTEMPT: str(i), ENV_ATTEMPT_DIR: str(workdir)}
        desktop = None
        kind = "task" if self.task else "run"
        try:
            desktop = virtual_desktop(self.size)
            with self.lock:
                self.desktops.append(desktop)
            desktop.start()
            claude = replace(self.options.model, model=self.models[i], temperature=self.temps[i],
                             extra_headers={**self.options.model.extra_headers, ATTEMPT_HEADER: str(i)})
            options = replace(self.options, model=claude, display=desktop.display, size=self.size, out=out,
                              workdir=workdir)
            model = self.model_factory(i, claude) if self.model_factory is not None else None
            meta = {"attempt": {"index": i, "of": self.n, "temperature": self.temps[i], "parent": "../../.."}}
            outcome = _run_one(self.target_work, options, _EnvDesktop(desktop, env), self._callbacks(i), model,
                               env, meta)
            result = outcome.result
            attempt.status, attempt.exit_code, attempt.message = result.status, int(result.exit_code), result.message
            attempt.steps, attempt.usage, attempt.recording = result.steps, result.usage, outcome.recording
        except Exception as exc:
            attempt.status = "error"
            attempt.exit_code = int(exc.exit_code if isinstance(exc, DeskpilotError) else ExitCode.FAILED)
            attempt.message = f"crashed: {type(exc).__name__}: {exc}"
            attempt.crashed = traceback.format_exc()
            try:
                label = str(self.task.path or self.task.name) if self.task else None
                attempt.recording = _mark_crashed(out, kind, self.goal, label, attempt.message)
            except Exception:  # the recording is only a courtesy here
                attempt.recording = None
        finally:
            if desktop is not None:
                with contextlib.suppress(Exception):  # else it is stopped again at the end
                    desktop.stop()
            shutil.rmtree(workdir, ignore_errors=True)
            attempt.duration_s = time.monotonic() - begun
            with self.lock:
                self.begun.pop(i, None)
        self._read_recording(attempt)
        with self.lock:
            self.usage += attempt.usage
        u = attempt.usage
        self.parent.add_usage(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cost_usd)
        return attempt

    def _read_recording(self, attempt: Attempt) -> None:
        """Checks, frames and the verdict from the attempt's recording."""
        if attempt.recording is not None:
            try:
                rec = Recording.load(attempt.recording)
            except RecordingError:
                rec = None
            if rec is not None:
                attempt.checks = [c for c in rec.meta.get("checks") or [] if isinstance(c, dict)]
                attempt.final_frame = rec.final_frame_path
                first = next((s.get("frame") for s in rec.steps if s.get("frame")), None)
                attempt.first_frame = rec.path / first if first else attempt.final_frame
                if attempt.final_frame is None and first:
                    last = next(s.get("frame") for s in reversed(rec.steps) if s.get("frame"))
                    attempt.final_frame = rec.path / last
        if self.verified:
            attempt.passed = (attempt.status == "succeeded" and len(attempt.checks) == len(self.task.checks)
                              and all(c.get("ok") for c in attempt.checks))
        else:
            attempt.passed = attempt.status == "succeeded"

    # --- selection ---------------------------------------------------------------------------
    def _differs(self, a: Attempt, b: Attempt) -> bool:
        pa, pb = _load(a.final_frame), _load(b.final_frame)
        return pa is not None and pb is not None and screens_differ(pa, pb)

    def _select(self, attempts: list[Attempt]) -> Selection:
        if self.verified:
            passing = [a for a in attempts if a.passed]
            if passing:
                best = min(passing, key=lambda a: a.cost_key)
                others = [a for a in passing if a is not best and self._differs(a, best)]
                if not others:
                    return Selection(best.index, "checks",
                                     f"the cheapest of {len(passing)} passing attempts ({best.steps} steps, "
                                     f"{best.usage.total_tokens} tokens)")
                return self._judge(passing, f"{len(passing)} attempts passed the checks but ended on different "
                                            f"screens (attempts {', '.join(str(a.index) for a in others)} differ "
                                            f"from the cheapest, {best.index})")
            pool = [a for a in attempts if a.crashed is None and a.started]
            if not pool:
                return Selection(None, "none", "every attempt crashed" if any(a.started for a in attempts)
                                 else "no attempt ran")
            best = min(pool, key=lambda a: (not a.impossible, -sum(1 for c in a.checks if c.get("ok")), *a.cost_key))
            why = ("it reported the task impossible" if best.impossible else
                   f"most checks held ({sum(1 for c in best.checks if c.get('ok'))} of {len(self.task.checks)})")
            return Selection(best.index, "checks", f"no attempt passed the checks; {why}")
        candidates = [a for a in attempts if a.crashed is None and (a.status == "succeeded" or a.impossible)]
        if not candidates:
            return self._fallback(attempts, "no attempt finished or reported the task impossible")
        if len(candidates) == 1:
            only = candidates[0]
            what = "finished" if only.status == "succeeded" else "reported the task impossible"
            return Selection(only.index, "only", f"the only attempt that {what}")
        best = min(candidates, key=lambda a: a.cost_key)
        if all(a.status == "succeeded" for a in candidates) and not any(
                self._differs(a, best) for a in candidates if a is not best):
            return Selection(best.index, "identical", f"the cheapest of {len(candidates)} finished attempts that "
                                                      "ended on the same screen")
        return self._judge(candidates, f"no checks decide between {len(candidates)} attempts")

    def _fallback(self, pool: Sequence[Attempt], why: str, judge: dict | None = None) -> Selection:
        best = fallback_choice(pool)
        if best is None:
            return Selection(None, "none", f"{why}; every attempt crashed", judge)
        what = ("the cheapest that succeeded" if best.status == "succeeded" else
                "the cheapest IMPOSSIBLE report" if best.impossible else "the cheapest that did not crash")
        return Selection(best.index, "fallback", f"{why}; fallback rule: {what}", judge)

    def _judge(self, candidates: list[Attempt], why: str) -> Selection:
        allowed = [a.index for a in candidates]
        record: dict[str, Any] = {"reasoning": None, "choice": None, "raw": None, "candidates": allowed, "why": why}
        if self.interrupted is not None:  # a stopped run asks nobody, and pays for nothing more
            record["error"] = "not asked: the rollouts were stopped"
            return self._fallback(candidates, f"{why}; stopped, so no judge was asked", record)
        try:
            narratives = {a.index: narrate(a.recording) if a.recording else [] for a in candidates}
            messages = judge_request(self.goal or "", candidates, narratives)
            model = self._judge_model()
            record["model"] = getattr(getattr(model, "config", None), "model", None) or getattr(model, "name", None)
            reply = model.query(JUDGE_SYSTEM, messages, [CHOOSE_TOOL])
            raw = reply.text or ""
            for call in reply.tool_calls or []:
                raw += ("\n" if raw else "") + json.dumps({"tool": call.name, "input": call.input}, ensure_ascii=False)
            record["raw"] = raw
            usage = getattr(reply, "usage", None)
            if isinstance(usage, Usage):
                record["usage"] = usage.as_dict()
                with self.lock:
                    self.usage += usage
                self.parent.add_usage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
                                      usage.cache_write_tokens, usage.cost_usd)
            choice, reasoning = parse_judge_reply(reply, allowed)
            record["reasoning"], record["choice"] = reasoning, choice
        except KeyboardInterrupt:
            self.interrupted = self.interrupted or "interrupted by the user (Ctrl-C) while the judge decided"
            record["error"] = "interrupted"
            return self._fallback(candidates, f"{why}; the judge was interrupted", record)
        except Exception as exc:  # the judge never ends the run
            record["error"] = f"{type(exc).__name__}: {exc}"
            return self._fallback(candidates, f"{why}; the judge failed ({record['error']})", record)
        if record["choice"] is None:
            record["error"] = "the reply names no candidate attempt"
            return self._fallback(candidates, f"{why}; the judge's reply could not be parsed", record)
        return Selection(record["choice"], "judge", f"{why}; the judge chose attempt {record['choice']}"
                         + (f": {_short(record['reasoning'], 300)}" if record["reasoning"] else ""), record)

    def _judge_model(self) -> Any:
        if self.judge_model is not None and not isinstance(self.judge_model, str):
            return self.judge_model
        from agent.models import registry

        name = self.judge_model if isinstance(self.judge_model, str) else self.models[0]
        config = replace(self.options.model, model=name, temperature=0.0 if temperature_supported() else None,
                         thinking_budget=None,
                         max_tokens=JUDGE_MAX_TOKENS,
                         extra_headers={**self.options.model.extra_headers, JUDGE_HEADER: "1"})
        return registry.create(config)

    # --- apply ---------------------------------------------------------------------------
    def _apply(self, chosen: Attempt | None) -> dict:
        """Replay the chosen attempt onto the target (after the task's setup there), then check it there."""
        info: dict[str, Any] = {"display": getattr(self.target, "display", None), "status": "skipped",
                                "message": "", "replay": None, "recording": None, "checks": [], "dir": None}
        if chosen is None or chosen.status != "succeeded" or chosen.recording is None:
            info["message"] = "nothing to apply: no attempt succeeded"
            return info
        files = self.folder / "apply" / "files"
        files.mkdir(parents=True, exist_ok=True)
        info["dir"] = str(files)
        env = {ENV_ATTEMPT: "apply", ENV_ATTEMPT_DIR: str(files)}
        desktop = _EnvDesktop(self.target, env)
        options = replace(self.options, out=self.folder / "apply")
        try:
            if self.task is None:
                replayed = self._replay(chosen, options, desktop)
                info["replay"] = self._rel(replayed.recording)
                info["status"], info["message"] = replayed.result.status, replayed.result.message
                return info
            self._apply_task(chosen, options, desktop, env, info)
        except KeyboardInterrupt:
            self.interrupted = self.interrupted or "interrupted by the user (Ctrl-C) while applying"
            info["status"], info["message"] = "stopped", "interrupted by the user"
        except Exception as exc:  # BadInput from replay, a display problem...
            info["status"], info["message"] = "error", f"{type(exc).__name__}: {exc}"
        return info

    def _apply_task(self, chosen: Attempt, options: RunOptions, desktop: Any, env: dict[str, str],
                    info: dict[str, Any]) -> None:
        task = self.task
        assert task is not None
        secrets = {name: os.environ[name] for name in task.secret_names if name in os.environ}
        stop = self.callbacks.stop
        with Session(options, desktop=desktop, secrets=secrets, stop=stop) as session:
            session.tools["bash"].env.update(env)
            recorder = session.recorder("task", secrets, task=str(task.path or task.name), goal=task.goal, model=None,
                                        extra_meta={"apply_of": self._rel(chosen.recording)})
            info["recording"] = self._rel(recorder.path)
            runner = TaskRunner(task, session, recorder, Callbacks(stop=stop))
            checks: list[dict] = []
            final = None
            try:
                for number, item in enumerate(task.setup, 1):
                    runner.setup(number, item)
                replayed = self._replay(chosen, options, desktop)
                info["replay"] = self._rel(replayed.recording)
                if replayed.result.status != "succeeded":
                    status, message = replayed.result.status, f"the replay did not finish: {replayed.result.message}"
                else:
                    checks = [runner.check(item) for item in task.checks]
                    failed = [c for c in checks if not c["ok"]]
                    status = "failed" if failed else "succeeded"
                    message = ("checks failed on the target: " + "; ".join(f"{c['check']}: {c['detail']}"
                                                                           for c in failed) if failed else
                               f"replayed attempt {chosen.index}; {len(checks)} checks passed on the target")
            except RunEnded as end:
                status, message = end.status, str(end)
            except KeyboardInterrupt:
                self.interrupted = self.interrupted or "interrupted by the user (Ctrl-C) while applying"
                status, message = "stopped", "interrupted by the user"
            except Exception as exc:  # BadInput from replay (an unreadable recording), a display problem
                status, message = "error", f"{type(exc).__name__}: {exc}"
            finally:
                try:
                    final = session.screen.grab()
                except Exception:
                    final = None
                runner.stop_launched()
            recorder.set_meta(result=message)
            recorder.finish(status, error=None if status == "succeeded" else message, checks=checks,
                            final_frame=final)
            info.update(status=status, message=message, checks=checks)

    def _replay(self, chosen: Attempt, options: RunOptions, desktop: Any) -> RunOutcome:
        from agent.replay.replayer import replay

        on_step = None
        if self.callbacks.on_step is not None:
            def on_step(line: dict, usage: Usage) -> None:
                self.callbacks.on_step({**line, "attempt": "apply"}, usage)
        return replay(chosen.recording, options, desktop=desktop, on_step=on_step, stop=self.callbacks.stop)

    def _rel(self, path: Path | None) -> str | None:
        if path is None:
            return None
        try:
            return Path(path).relative_to(self.folder).as_posix()
        except ValueError:
            return str(path)


__all__ = [
    "ATTEMPT_HEADER", "CHOOSE_TOOL", "ENV_ATTEMPT", "ENV_ATTEMPT_DIR", "JUDGE_HEADER", "Attempt", "RolloutsOutcome",
    "Selection", "changed_boxes", "describe_change", "fallback_choice", "judge_request", "models_for", "narrate",
    "parse_judge_reply", "run_rollouts", "screens_differ", "temperature_supported", "temperatures",
]
