"""`deskpilot replay`: plays a recording back on the live screen, finding every target again.

Any recording replays (task, model run, human, act, and replays themselves). The source is read
with `Recording.load(partial_ok=True)`, so a run cut short by a crash replays up to its last
complete step. Everything is checked before the first action: the folder, the `--from/--to` range
(step indices, inclusive), every action in the range, its anchor images, and the environment
variables its secret `type` steps need. A problem there is bad input (exit 2; nothing was done).

What each source step becomes:

- Skipped, and logged as skipped (a step line with `ok: false`, `skipped: REASON` and no frame):
  non-computer steps (bash/editor tool calls), steps that were never executed (`ok: false`), steps
  a replay skipped, and read-only actions (screenshot, cursor_position, zoom).
- A `wait` with a recorded `condition` (a task's wait_for/expect) is waited for again, with OCR
  (or, for an image condition, the image cut from the recording's next frame), up to TIMEOUT_S;
  its recorded duration is never slept. A plain `wait` sleeps its duration divided by `speed`;
  `speed` changes nothing else. Replay never sleeps the recorded gaps between steps: it waits for
  the screen to settle after every action.
- A pointer action with coordinates is aimed again (below). Its first point with material (the
  step's anchor, or a crop of the step's frame around the point) is located on the live screen;
  the action's other points (the end of a drag, a move or button release while the left button
  is held) move by the same shift, because they are where something is dropped and often look
  like nothing (an empty slider trough).
- Everything else (type, key, hold_key, a click without coordinates) is performed as recorded. A
  secret typed in a task shows in the recording as "•••" with `"secret": NAME`; a model's
  `{{secret:NAME}}` placeholder likewise: the value comes from the environment variable NAME.

Locating a target (verify mode, the default), on a settled screen:

0. The accessibility tree first, when the step recorded the element under its point and the
   display has a tree: the element of that role and exact name (the recorded path decides among
   several), the point at the same place inside it; method `a11y` (agent.replay.locate).
1. Template: the anchor crop is matched (OpenCV, normalised cross-correlation) over the whole
   screen in one pass, at scale 1.0 and at the ratio of the live screen's HiDPI scale to the
   recorded one. It is found when exactly one place scores at least MATCH_MIN and no other place
   scores RIVAL_MIN or more; the method is `anchor_near` when that place is within NEAR_PX of the
   recorded one, else `anchor_global`. The click point keeps its offset inside the anchor
   (scaled by the ratio).
2. OCR, when the template gives no single answer (no match, a rival, or a crop with no detail):
   the step's `target.text` where the recording has one (tasks), else the text line nearest the
   point in the anchor crop (or, when the crop holds no whole word, in the recorded frame around
   it). The text is searched on the whole screen; the action moves by as much as the text did.
3. Ambiguous (two places, from OCR or, when there was no text to read, from the template): the
   replay stops at once. Not found: looked for again until TIMEOUT_S has passed, then, with a
   `model`, re-grounded (below), else the replay stops.

A stop is exit 1 (status "failed"): the error names the step and its description, the recorded
screenshot (in the source) and the live one (saved into the replay's recording as
frames/lost-NNNNNN.png), and the best candidates; the replay's recording ends with a step line
for the step that was not done (`ok: false`, `candidates`, `recorded_frame`, `live_frame`) and
meta `diverged`. Nothing is clicked at a coordinate that was not found again.

`verify=False` (`--no-verify`) replays the recorded coordinates on purpose, with method `raw`;
conditions are not checked either (their recorded duration is waited instead): nothing is seen.

Self-healing: with `model` (anything with `.query(system, messages, tools)` returning a Reply),
a target still lost after TIMEOUT_S is asked for once: the live screenshot (model size) and
"click on <the step's thought, else its target text, else its description>"; the first computer
`left_click` coordinate of the reply, mapped to the screen with `ScreenMap`, is used (method
`healed`; when the recorded point lay beside its target text, as `click: {text: "Name:", offset:
[180, 0]}`, the same offset is added to the text the model found), and the call is logged in
model.jsonl. Ambiguity is never healed.

The replay writes its own recording (kind "replay", meta `replay_of` = the source folder): one
line per source step in the range, with `replayed_step` (the source's `i`), `target` (`method`:
a11y | anchor_near | anchor_global | ocr | healed | raw, `point`, `box`, `confidence`, `text`, `shift`,
`scale`) and `timing.locate_ms`. Replays are replayable.

Every action goes through the safety policy before it is performed (`confirm_mode`, `asker`: as
for `run`'s `--confirm`), with the defaults and the user's policy file: a recording is input like
any other, so `type: "rm -rf ~\n"` into a terminal is refused with `--confirm deny` like the
model's own. A refused step is logged (`refused`: the rule) and stops the replay: status
"failed", exit 1, nothing of that step done.

Replay does not run a task's setup: start the application before replaying.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actions.result import ToolResult
from actions.vocabulary import ActionError, parse_action
from agent.errors import BadInput, ExitCode, RunEnded, Stopped
from agent.recording.writer import Recording, RecordingError
from agent.replay.heal import Healer
from agent.replay.locate import MAX_CANDIDATES, Located, Locator, Lost, candidate, describe_candidate
from agent.replay.plan import (
    InvalidRecording,
    Planned,
    check_range,
    check_raw_bounds,
    condition_template,
    make_plan,
    put_secrets_back,
    secrets_for,
)
from agent.session import RunOptions, RunOutcome, Session
from agent.stepping import Stepper, ending, final_frame, finish_run
from agent.types import RunResult, Usage, stop_reason
from vision.locate.find import NotFound

if TYPE_CHECKING:
    from vision.capture import Frame

TIMEOUT_S = 10.0  # how long a target (or a condition) is looked for before the replay stops
POLL_S = 0.2  # between two looks


class Refused(RunEnded):
    """The policy refused a replayed action; the replay stops (exit 1) before performing it."""


class Diverged(RunEnded):
    """The live screen no longer matches the recording at some step; the replay stops (exit 1).

    `record` is what the replay's meta.json keeps as `diverged` (step, reason, screenshots, candidates).
    """

    def __init__(self, message: str, record: dict | None = None) -> None:
        super().__init__(message)
        self.record = record


def replay(recording: Path, options: RunOptions, *, start: int | None = None, end: int | None = None,
           speed: float = 1.0, verify: bool = True, model: Any = None, desktop: Any = None,
           on_step: Callable[[dict, Usage], None] | None = None, stop: threading.Event | None = None,
           confirm_mode: str | None = None, asker: Callable[..., str] | None = None) -> RunOutcome:
    """Replay `recording` (steps `start`..`end`, inclusive) on the options' display.

    `stop` (or the session's kill switch) ends the replay before its next step, and cancels the
    running action: status "stopped", exit 3.

    Raises InvalidRecording (a RecordingError and a BadInput, exit 2) for a recording that cannot
    be read, and BadInput for a bad range, speed or a missing secret variable, all before anything
    is done. A replay that diverges returns a RunResult with status "failed" and exit code 1.
    """
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed <= 0:
        raise BadInput(f"--speed must be a positive number, got {speed!r}")
    path = Path(recording)
    try:
        source = Recording.load(path, partial_ok=True)
    except RecordingError as exc:
        raise InvalidRecording(str(exc)) from None
    first, last = check_range(source, start, end)
    plan = make_plan(source, first, last, verify)
    secrets = secrets_for(plan)
    put_secrets_back(plan, secrets)
    if options.display == "virtual" and options.size is None and isinstance(source.meta.get("screen"), dict):
        from vision.geometry import Size

        screen = source.meta["screen"]
        scale = float(screen.get("scale") or 1.0)
        options = replace(options, size=Size(round(screen["width"] / scale), round(screen["height"] / scale)))
    with Session(options, desktop=desktop, secrets=secrets, stop=stop) as session:
        if not verify:
            check_raw_bounds(plan, session.screen.size)
        meta = {"replay_of": str(source.path.resolve()), "replay_range": [first, last], "verify": verify,
                "speed": speed, "source_kind": source.meta.get("kind"), "source_status": source.meta.get("status")}
        recorder = session.recorder("replay", secrets, goal=source.meta.get("goal"), extra_meta=meta)
        recorder.set_meta(model=getattr(model, "name", None) or (session.options.model.model if model else None))
        from agent.session import Callbacks

        guard = session.policy_confirm(Callbacks(confirm_mode=confirm_mode, asker=asker))
        replayer = Replayer(source, plan, session, recorder, speed=speed, verify=verify, model=model,
                            on_step=on_step, guard=guard)
        result = replayer.run()
        return RunOutcome(result, recorder.path)


class Replayer:
    """Replays a validated plan on a session, writing one recording."""

    def __init__(self, source: Recording, plan: list[Planned], session: Session, recorder: Any, *,
                 speed: float = 1.0, verify: bool = True, model: Any = None,
                 on_step: Callable[[dict, Usage], None] | None = None, guard: Callable[..., Any] | None = None) -> None:
        self.source, self.plan, self.session, self.recorder = source, plan, session, recorder
        self.guard = guard  # the policy's check before each action
        self.speed, self.verify = speed, verify
        self.stop_event: threading.Event = getattr(session, "stop_event", None) or threading.Event()
        self.stepper = Stepper(recorder, session.screen.grab, session.options.loop.settle, source="replay",
                               stop=self.stop_event, on_step=on_step, usage=lambda: self.usage)
        self.settled = False  # the stepper's frame is a settled one (not after a plain wait)
        self.performed = self.skipped = 0
        self.methods: dict[str, int] = {}
        recorded = source.meta.get("screen") if isinstance(source.meta.get("screen"), dict) else {}
        ratio = float(session.screen.scale) / float(recorded.get("scale") or 1.0)
        size = session.screen.size
        self.locator = Locator(ratio, getattr(session, "tree", None), (0, 0, size.width, size.height))
        self.healer = None if model is None else Healer(model, session.mapping, session.computer.spec, recorder, ratio)

    @property
    def usage(self) -> Usage:
        """What healing cost so far."""
        return self.healer.usage if self.healer else Usage()

    # --- the run ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Every planned step in order; the recording gets the final status."""
        diverged: dict | None = None
        try:
            self.settle()
            for item in self.plan:
                self.check_stop()
                if item.kind == "skip":
                    self.skip(item)
                elif item.kind == "wait":
                    self.wait(item)
                elif item.kind == "condition":
                    self.condition(item)
                else:
                    self.act(item)
            status, code = "succeeded", int(ExitCode.OK)
            message = (f"replayed steps {self.plan[0].i}..{self.plan[-1].i} of {self.source.path}: "
                       f"{self.performed} performed, {self.skipped} skipped")
        except (RunEnded, KeyboardInterrupt) as end:
            status, code, message = ending(end)
            diverged = end.record if isinstance(end, Diverged) else None
        finally:
            self.session.executor.release()
        return finish_run(self.recorder, status, code, message, steps=self.performed, usage=self.usage,
                          final=final_frame(self.session.screen.grab, self.stepper.frame),
                          replay={"performed": self.performed, "skipped": self.skipped, "methods": self.methods},
                          diverged=diverged)

    def check_stop(self) -> None:
        """End the replay (status stopped) once the user, the app or the kill switch asked."""
        if self.stop_event.is_set():
            raise Stopped(stop_reason(self.stop_event))

    def sleep(self, seconds: float) -> None:
        """Sleep, unless a stop comes first."""
        if self.stop_event.wait(max(0.0, seconds)):
            self.check_stop()

    def settle(self, before: Frame | None = None) -> Any:
        """Wait until the screen is still; keep the frame."""
        settled = self.stepper.settle(before)
        self.settled = True
        return settled

    # --- kinds of steps ----------------------------------------------------------------------
    def skip(self, item: Planned) -> None:
        """Log a step that is not replayed (a line with no frame)."""
        self.skipped += 1
        line = self.recorder.add_step(source="replay", action=item.step["action"], ok=False,
                                      error=f"skipped: {item.reason}", skipped=item.reason,
                                      tool=item.step.get("tool"), replayed_step=item.i, target=None,
                                      describe=f"skip {item.describe()}: {item.reason}")
        if self.stepper.on_step:
            self.stepper.on_step(line, self.usage)

    def wait(self, item: Planned) -> None:
        """An explicit wait, scaled by the speed."""
        assert item.action is not None
        duration = round(float(item.action["duration"]) / self.speed, 3)
        before, started = self.stepper.look(), time.monotonic()
        self.sleep(duration)
        self.settled = False
        self.performed += 1
        self.stepper.log(before, action={"action": "wait", "duration": duration}, result=ToolResult(),
                         timing={"exec_ms": round((time.monotonic() - started) * 1000, 1)}, replayed_step=item.i,
                         describe=item.describe(), target=None)

    def condition(self, item: Planned) -> None:
        """A recorded wait_for/expect: wait until it holds again (or, raw, its recorded time)."""
        condition = dict(item.step["condition"])
        before, started = self.stepper.look(), time.monotonic()
        if not self.verify:
            self.sleep(float(item.step["action"].get("duration") or 0.0) / self.speed)
            live = {**condition, "checked": False}
        else:
            live = self.wait_for(item, condition)
        self.settle()
        self.performed += 1
        self.stepper.log(before, action={"action": "wait", "duration": round(time.monotonic() - started, 3)},
                         result=ToolResult(), timing={}, replayed_step=item.i, describe=item.describe(),
                         target=None, condition=live)

    def wait_for(self, item: Planned, condition: dict) -> dict:
        """Look for a condition's element, text (or image) until TIMEOUT_S; Diverged when it never shows."""
        template = None
        tree = self.locator.tree
        by_element = condition.get("method") == "a11y" and tree is not None and tree.available is not False
        if not by_element and (condition.get("method") != "ocr" or not condition.get("text")):
            template = condition_template(self.source, item)
            if template is None:
                return {**condition, "checked": False}
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            frame = self.session.screen.grab()
            try:
                box, confidence = self.locator.look_for_condition(frame, condition, template)
            except NotFound as exc:
                if time.monotonic() >= deadline:
                    what = repr(condition.get("text")) if template is None else "the recorded image"
                    what = f"{condition.get('role')} {condition.get('name')!r}" if by_element else what
                    lost = Lost("not found", f"{condition.get('kind', 'condition')} {what} not seen within "
                                f"{TIMEOUT_S:g} s: {exc}", [candidate(c, "ocr" if template is None else "image")
                                                             for c in exc.candidates[:MAX_CANDIDATES]])
                    self.stop(item, frame, lost)
                self.sleep(POLL_S)
                continue
            x0, y0, x1, y1 = box
            return {**condition, "point": [(x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2], "box": list(box),
                    "confidence": round(float(confidence), 3), "checked": True}

    def act(self, item: Planned) -> None:
        """Aim (verify) or not (raw), perform, settle, record."""
        assert item.action is not None
        action = dict(item.action)
        located: Located | None = None
        locate_ms = None
        if item.primary is not None:
            if not self.settled:
                self.settle()
            started = time.monotonic()
            located = self.locate(item)
            locate_ms = round((time.monotonic() - started) * 1000, 1)
            self.locator.shift = located.shift
        points = {k: action[k] for k in ("start_coordinate", "coordinate") if action.get(k) is not None}
        if located is not None and item.anchor is not None:  # every point keeps its place relative to the primary
            (ax, ay), (lx, ly), s = item.anchor.point, located.point, located.scale
            for key, (x, y) in points.items():
                action[key] = [round(lx + (x - ax) * s), round(ly + (y - ay) * s)]
        elif item.follows_hold:  # a move or release while the button is held moves with the press
            for key, (x, y) in points.items():
                action[key] = [x + self.locator.shift[0], y + self.locator.shift[1]]
        elif points and not self.verify:
            located = Located(tuple(points.get("start_coordinate") or points["coordinate"]), "raw")
        before = self.stepper.look()
        try:
            parsed = parse_action(action, self.session.screen.size, "screen")
        except ActionError as exc:
            lost = Lost("off screen", f"the target was found, but the shifted action does not fit the screen: {exc}",
                        [located.as_dict()] if located else [])
            self.stop(item, before, lost)
        self.allowed(item, action, parsed, before)
        result, timing = self.stepper.perform(lambda: self.session.executor.perform(parsed))
        self.settled = timing["settle_ms"] is not None
        self.performed += 1
        if located is not None:
            self.methods[located.method] = self.methods.get(located.method, 0) + 1
        anchor_point = action.get(item.primary or "") or action.get("coordinate") or action.get("start_coordinate")
        target = None if located is None else located.as_dict()
        if target is not None and located is not None and item.hint is not None:  # keeps the replay replayable
            text, (x0, y0, x1, y1) = item.hint
            dx, dy = located.shift
            target["text"] = located.text if located.method == "ocr" else text
            target["text_box"] = target["box"] if located.method == "ocr" else [x0 + dx, y0 + dy, x1 + dx, y1 + dy]
        element = located.element.as_dict() if located is not None and located.element is not None else None
        self.stepper.log(before, action=action, result=result, timing={**timing, "locate_ms": locate_ms},
                         point=anchor_point, target=target, replayed_step=item.i, describe=item.describe(),
                         recorded_action=item.step["action"] if action != item.action else None,
                         **({"element": element} if element else {}))
        if not result.ok:
            self.check_stop()  # an action cancelled by a stop is no divergence
            raise Diverged(f"step {item.i} ({item.describe()}): the action failed: {result.error}")

    def allowed(self, item: Planned, action: dict, parsed: Any, before: Frame) -> None:
        """The policy's check of an action about to be replayed; Refused (logged, naming the rule) if refused."""
        from agent.safety.guard import Denied
        from agent.types import ToolCall

        if self.guard is None:
            return
        try:
            self.guard(ToolCall(f"replay-{item.i}", "computer", dict(action)), parsed)
        except Denied as exc:
            message = f"step {item.i} ({item.describe()}): {exc.why}"
            self.stepper.log(before, action=action, result=ToolResult(error=message), timing={}, replayed_step=item.i,
                             describe=item.describe(), target=None, refused=exc.verdict.rule if exc.verdict else None)
            raise Refused(message) from None

    # --- locating ------------------------------------------------------------------------------
    def locate(self, item: Planned) -> Located:
        """Find the primary point of a step on the live screen, within TIMEOUT_S; Diverged if not."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            frame = self.stepper.look()
            assert item.anchor is not None
            found = self.locator.look(item.anchor, item.hint, frame, item.element)
            if isinstance(found, Located):
                return found
            if found.reason == "ambiguous":
                self.stop(item, frame, found)
            if time.monotonic() >= deadline:
                break
            self.sleep(POLL_S)
            self.stepper.frame = self.session.screen.grab()
        if self.healer is not None:
            healed = self.healer.heal(item, frame, found)
            if healed is not None:
                return healed
        self.stop(item, frame, found)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- recording --------------------------------------------------------------------------
    def stop(self, item: Planned, frame: Frame, lost: Lost) -> None:
        """Record the step that could not be done, with both screenshots and the candidates; raise."""
        live = self.recorder.save_frame(frame, f"lost-{item.i:06d}")
        recorded = self.source.frame_path(item.step)
        listing = "\n".join(f"  {describe_candidate(c)}" for c in lost.candidates[:MAX_CANDIDATES])
        if not self.methods and lost.reason == "not found":
            lost.message += " (no target was found yet: is the application open? replay does not run a task's setup)"
        message = (f"step {item.i} ({item.describe()}): {lost.reason}: {lost.message}"
                   + (f"\ncandidates:\n{listing}" if listing else "")
                   + f"\nrecorded screenshot: {recorded if recorded else 'none'}"
                   + f"\nlive screenshot: {self.recorder.path / live}")
        record = {"step": item.i, "reason": lost.reason, "recorded_frame": str(recorded) if recorded else None,
                  "live_frame": live, "candidates": lost.candidates}
        self.stepper.log(frame, action=item.step["action"], result=ToolResult(error=message), timing={}, frame=live,
                         replayed_step=item.i, describe=item.describe(), target=None, candidates=lost.candidates,
                         recorded_frame=record["recorded_frame"], live_frame=live, lost=lost.reason)
        raise Diverged(message, record)


def print_step(line: dict, usage: Usage) -> None:
    """One line of live progress per replayed step: the source step, what was done, how it was found."""
    target = line.get("target") or {}
    how = ""
    if target:
        confidence = f" {target['confidence']:.2f}" if target.get("confidence") is not None else ""
        locate = (line.get("timing") or {}).get("locate_ms")
        how = f"  <- {target['method']}{confidence}" + (f" in {locate:.0f} ms" if locate else "")
    status = "" if line["ok"] or line.get("skipped") else f"  ERROR {str(line.get('error'))[:100]}"
    what = line.get("describe") or line["action"].get("action") or line["action"].get("tool")
    spent = f"  ${usage.cost_usd:.4f}" if usage.total_tokens else ""
    print(f"[{line['replayed_step']}] {what}{how}{status}{spent}", flush=True)


__all__ = ["TIMEOUT_S", "Diverged", "InvalidRecording", "Refused", "print_step", "replay"]
