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
anchor_near | anchor_global | ocr | healed | raw, `point`, `box`, `confidence`, `text`, `shift`,
`scale`) and `timing.locate_ms`. Replays are replayable.

Replay does not run a task's setup: start the application before replaying.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actions.vocabulary import ActionError, parse_action
from agent.errors import BadInput, ExitCode, RunEnded, Stopped
from agent.recording.writer import MASK, Recording, RecordingError
from agent.session import RunOptions, RunOutcome, Session
from agent.tools.computer import SECRET_PLACEHOLDER
from agent.types import RunResult, Usage
from vision.locate.find import AmbiguousMatch, Box, NotFound
from vision.settle import wait_until_settled

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame

TIMEOUT_S = 10.0  # how long a target (or a condition) is looked for before the replay stops
POLL_S = 0.2  # between two looks
MATCH_MIN = 0.85  # a template match this good is the target...
RIVAL_MIN = 0.8  # ... unless another place scores this much too
NEAR_PX = 32  # a match this close to the recorded place is "anchor_near"
TEXT_MIN_SCORE = 0.9  # OCR similarity a landmark text needs (stricter than a task's 0.8)
ANCHOR_HALF = (60, 40)  # half size of a crop cut from a recorded frame (as RecordingWriter.save_anchor)
LANDMARK_HALF = (240, 100)  # where to look for a text landmark when the anchor crop holds none
TEXT_NEAR = (160, 80)  # text is first read only this far around where it is expected
MAX_CANDIDATES = 5
READ_ONLY = frozenset({"screenshot", "cursor_position", "zoom"})
METHODS = ("anchor_near", "anchor_global", "ocr", "healed", "raw")
HEAL_SYSTEM = ("You locate things on a screenshot of a {width}x{height} screen. Answer with exactly one computer "
               "tool call: a left_click at the centre of what the user names.")


class InvalidRecording(RecordingError, BadInput):
    """The recording cannot be replayed as it is (a RecordingError that exits 2)."""


class Diverged(RunEnded):
    """The live screen no longer matches the recording at some step; the replay stops (exit 1).

    `record` is what the replay's meta.json keeps as `diverged` (step, reason, screenshots, candidates).
    """

    def __init__(self, message: str, record: dict | None = None) -> None:
        super().__init__(message)
        self.record = record


# ----------------------------------------------------------------------------- data


@dataclass
class Anchor:
    """What a recorded point looked like: a crop (BGR) with its screen box, and the point in it."""

    pixels: np.ndarray
    box: Box
    point: tuple[int, int]
    frame_path: Path | None = None  # the recorded frame, to look for a text landmark around the point
    _gray: Any = None
    _landmark: Any = field(default=False)  # False: not computed yet; None: there is none

    @property
    def gray(self) -> np.ndarray | None:
        """The crop in gray levels, or None when it has no detail to match (a flat area)."""
        if self._gray is None:
            from vision.locate.template import FLAT_STD, load_template

            gray = load_template(self.pixels)
            self._gray = gray if float(gray.std()) >= FLAT_STD and min(gray.shape) >= 3 else False
        return self._gray if self._gray is not False else None

    def landmark(self) -> tuple[str, Box] | None:
        """The text line nearest the point (in the crop, else in the recorded frame around it)."""
        if self._landmark is False:
            self._landmark = _nearest_line(self.pixels, self.box[:2], self.point)
            if self._landmark is None and self.frame_path is not None:
                try:
                    from vision.encode import decode

                    pixels = decode(self.frame_path.read_bytes())
                except (OSError, ValueError):
                    pixels = None
                if pixels is not None:
                    x, y = self.point
                    (hx, hy), (h, w) = LANDMARK_HALF, pixels.shape[:2]
                    x0, y0, x1, y1 = max(0, x - hx), max(0, y - hy), min(w, x + hx), min(h, y + hy)
                    if x0 < x1 and y0 < y1:
                        self._landmark = _nearest_line(pixels[y0:y1, x0:x1], (x0, y0), self.point)
        return self._landmark


@dataclass
class Planned:
    """One source step and what the replay does with it."""

    step: dict
    kind: str  # "skip" | "wait" | "condition" | "act"
    reason: str | None = None
    action: dict | None = None  # the action to perform, secrets put back
    primary: str | None = None  # the coordinate field that is located ("start_coordinate" | "coordinate")
    anchor: Anchor | None = None  # the material of the primary point
    hint: tuple[str, Box] | None = None  # a recorded text landmark (text, box) for the primary point
    follows_hold: bool = False  # a move/release while the left button is held: moves with the press

    @property
    def i(self) -> int:
        return int(self.step["i"])

    def describe(self) -> str:
        """The source's description, or one made from the action."""
        if self.step.get("describe"):
            return str(self.step["describe"])
        action = self.step["action"]
        what = action.get("action") or f"{action.get('tool')} tool"
        where = action.get("coordinate") or action.get("text") or action.get("command") or ""
        return f"{what} {where}".strip()


@dataclass
class Located:
    """Where a point was found on the live screen."""

    point: tuple[int, int]
    method: str
    shift: tuple[int, int]
    scale: float = 1.0
    box: Box | None = None
    confidence: float | None = None
    text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the replay step's `target` field."""
        return {"method": self.method, "point": list(self.point), "box": list(self.box) if self.box else None,
                "confidence": None if self.confidence is None else round(float(self.confidence), 3),
                "text": self.text, "shift": list(self.shift), "scale": round(self.scale, 4)}


@dataclass
class Lost:
    """Why a point was not found: "ambiguous" or "not found", a message and the best candidates."""

    reason: str
    message: str
    candidates: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------- entry point


def replay(recording: Path, options: RunOptions, *, start: int | None = None, end: int | None = None,
           speed: float = 1.0, verify: bool = True, model: Any = None, desktop: Any = None,
           on_step: Callable[[dict, Usage], None] | None = None, stop: threading.Event | None = None
           ) -> RunOutcome:
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
    first, last = _check_range(source, start, end)
    plan = _plan(source, first, last, verify)
    secrets = _secrets(plan)
    for item in plan:  # put the secret values back (the check above made sure they are all set)
        if item.action is not None and item.action.get("action") == "type":
            item.action["text"] = _unmask(item.action, item.step, secrets)
    if options.display == "virtual" and options.size is None and isinstance(source.meta.get("screen"), dict):
        from vision.geometry import Size

        screen = source.meta["screen"]
        scale = float(screen.get("scale") or 1.0)
        options = replace(options, size=Size(round(screen["width"] / scale), round(screen["height"] / scale)))
    with Session(options, desktop=desktop, secrets=secrets, stop=stop) as session:
        if not verify:
            _check_raw_bounds(plan, session.screen.size)
        meta = {"replay_of": str(source.path.resolve()), "replay_range": [first, last], "verify": verify,
                "speed": speed, "source_kind": source.meta.get("kind"), "source_status": source.meta.get("status")}
        recorder = session.recorder("replay", secrets, goal=source.meta.get("goal"), extra_meta=meta)
        recorder.set_meta(model=getattr(model, "name", None) or (session.options.model.model if model else None))
        replayer = Replayer(source, plan, session, recorder, speed=speed, verify=verify, model=model,
                            on_step=on_step)
        result = replayer.run()
        return RunOutcome(result, recorder.path)


# ----------------------------------------------------------------------------- validation


def _check_range(source: Recording, start: int | None, end: int | None) -> tuple[int, int]:
    count = len(source.steps)
    where = f"{source.path} has {count} complete step(s)" + (" (cut short)" if source.truncated else "")
    for name, value in (("--from", start), ("--to", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadInput(f"{name} must be a step index (an integer), got {value!r}")
    if count == 0:
        raise BadInput(f"nothing to replay: {where}")
    first = 0 if start is None else start
    last = count - 1 if end is None else end
    if not 0 <= first < count:
        raise BadInput(f"--from {first} is out of range: {where}, numbered 0..{count - 1}")
    if not 0 <= last < count:
        raise BadInput(f"--to {last} is out of range: {where}, numbered 0..{count - 1}")
    if first > last:
        raise BadInput(f"--from {first} is after --to {last}")
    return first, last


def _plan(source: Recording, first: int, last: int, verify: bool) -> list[Planned]:
    """Decide what every step in the range becomes; InvalidRecording for anything unreplayable."""
    plan: list[Planned] = []
    held = False  # the left button is held by a left_mouse_down of the source
    for step in source.steps[first:last + 1]:
        i, action = step["i"], step["action"]
        where = f"{source.path / 'steps.jsonl'}: step {i}"
        name = action.get("action")
        if step.get("skipped"):
            plan.append(Planned(step, "skip", f"skipped in the source ({step['skipped']})"))
            continue
        if step.get("ok") is False:
            plan.append(Planned(step, "skip", "never executed in the source (ok: false)"))
            continue
        if step.get("tool") not in (None, "computer") or name is None:
            tool = step.get("tool") or action.get("tool") or "unknown"
            plan.append(Planned(step, "skip", f"{tool} tool step: not replayed"))
            continue
        if name in READ_ONLY:
            plan.append(Planned(step, "skip", f"{name}: read-only, nothing to replay"))
            continue
        data = {k: v for k, v in action.items() if k not in ("secret", "secrets")}
        try:
            parse_action(data)
        except ActionError as exc:
            raise InvalidRecording(f"{where}: invalid action: {exc}") from None
        if name == "wait" and isinstance(step.get("condition"), dict):
            plan.append(Planned(step, "condition", action=data))
            continue
        if name == "wait":
            plan.append(Planned(step, "wait", action=data))
            continue
        item = Planned(step, "act", action=data)
        points = [k for k in ("start_coordinate", "coordinate") if data.get(k) is not None]
        item.follows_hold = held and name in ("mouse_move", "left_mouse_up")
        if name == "left_mouse_down":
            held = True
        elif name in ("left_mouse_up", "left_click_drag"):
            held = False
        if points and verify and not item.follows_hold:
            for key in points:
                anchor = _anchor_for(source, step, tuple(data[key]), where)
                if anchor is not None:
                    item.primary, item.anchor = key, anchor
                    break
            else:
                raise InvalidRecording(
                    f"{where} ({item.describe()}): no anchor and no frame to find its target with; "
                    "replay it with --no-verify to use the recorded coordinates")
            item.hint = _hint(step, item.primary)
        plan.append(item)
    return plan


def _anchor_for(source: Recording, step: dict, point: tuple[int, int], where: str) -> Anchor | None:
    """The step's anchor for `point`, else a crop of the step's frame around it, else None."""
    frame = source.frame_path(step)
    anchor = step.get("anchor")
    try:
        if anchor and list(anchor.get("point") or []) == list(point) and anchor.get("box"):
            pixels = source.load_image(anchor["image"])
            x0, y0 = (int(v) for v in anchor["box"][:2])
            box = (x0, y0, x0 + pixels.shape[1], y0 + pixels.shape[0])
            return Anchor(pixels, box, (int(point[0]), int(point[1])), frame)
        if frame is not None:
            pixels = source.load_image(step["frame"])
            h, w = pixels.shape[:2]
            x, y = int(point[0]), int(point[1])
            if not (0 <= x < w and 0 <= y < h):
                raise InvalidRecording(f"{where}: the point {[x, y]} lies outside its {w}x{h} frame")
            (hx, hy) = ANCHOR_HALF
            x0, y0, x1, y1 = max(0, x - hx), max(0, y - hy), min(w, x + hx), min(h, y + hy)
            return Anchor(pixels[y0:y1, x0:x1].copy(), (x0, y0, x1, y1), (x, y), frame)
    except RecordingError as exc:
        raise InvalidRecording(f"{where}: {exc}") from None
    return None


def _hint(step: dict, primary: str | None) -> tuple[str, Box] | None:
    """A text the recording found the point by (a task's OCR target), with its recorded box."""
    target = step.get("start_target") if primary == "start_coordinate" else step.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("text"), str) or not target["text"].strip():
        return None
    box = target.get("text_box") or (target.get("box") if target.get("method") == "ocr" else None)
    if not isinstance(box, list) or len(box) != 4:
        return None
    return target["text"], tuple(int(v) for v in box)  # type: ignore[return-value]


def _secret_names(action: dict, step: dict) -> list[str]:
    names = []
    if action.get("action") == "type":
        raw = step["action"]
        if isinstance(raw.get("secrets"), list):
            names += [str(n) for n in raw["secrets"]]
        elif raw.get("secret"):
            names.append(str(raw["secret"]))
        names += SECRET_PLACEHOLDER.findall(action.get("text", ""))
    return list(dict.fromkeys(names))


def _secrets(plan: list[Planned]) -> dict[str, str]:
    """The secret values the range types, from the environment; BadInput naming what is unset."""
    wanted: dict[str, list[int]] = {}
    for item in plan:
        if item.action is not None:
            for name in _secret_names(item.action, item.step):
                wanted.setdefault(name, []).append(item.i)
    missing = [n for n in wanted if not os.environ.get(n)]
    if missing:
        listing = "; ".join(f"{n} (step {', '.join(map(str, wanted[n]))})" for n in missing)
        raise BadInput(f"the recording types secrets from environment variables that are not set: {listing}; "
                       f"set {' and '.join(missing)} and replay again")
    return {n: os.environ[n] for n in wanted}


def _unmask(action: dict, step: dict, secrets: dict[str, str]) -> str:
    """The text to type: "•••" and {{secret:NAME}} replaced by the values."""
    text = SECRET_PLACEHOLDER.sub(lambda m: secrets[m.group(1)], action["text"])
    raw = step["action"]
    names = [str(n) for n in raw["secrets"]] if isinstance(raw.get("secrets"), list) else (
        [str(raw["secret"])] if raw.get("secret") else [])
    if not names or MASK not in text:
        return text
    if len(names) == 1:
        return text.replace(MASK, secrets[names[0]])
    parts = text.split(MASK)
    if len(parts) - 1 != len(names):
        raise BadInput(f"step {step['i']}: its text holds {len(parts) - 1} hidden values for the secrets "
                       f"{', '.join(names)}; which is which cannot be told")
    return parts[0] + "".join(secrets[n] + rest for n, rest in zip(names, parts[1:], strict=True))


def _check_raw_bounds(plan: list[Planned], size: Any) -> None:
    for item in plan:
        if item.kind == "act" and item.action is not None:
            try:
                parse_action(item.action, size, "screen")
            except ActionError as exc:
                raise BadInput(f"step {item.i}: {exc} (the live screen is {size}; "
                               "the recorded coordinates do not fit)") from None


# ----------------------------------------------------------------------------- the replay


class Replayer:
    """Replays a validated plan on a session, writing one recording."""

    def __init__(self, source: Recording, plan: list[Planned], session: Session, recorder: Any, *,
                 speed: float = 1.0, verify: bool = True, model: Any = None,
                 on_step: Callable[[dict, Usage], None] | None = None) -> None:
        from vision.locate.ocr import TextFinder

        self.source, self.plan, self.session, self.recorder = source, plan, session, recorder
        self.speed, self.verify, self.model, self.on_step = speed, verify, model, on_step
        self.finder = TextFinder()
        self.usage = Usage()
        self.frame: Frame | None = None
        self.settled = False
        self.shift: tuple[int, int] = (0, 0)  # of the last located point: what held-button moves follow
        self.performed = self.skipped = 0
        self.methods: dict[str, int] = {}
        self.stop_event: threading.Event = getattr(session, "stop_event", None) or threading.Event()
        recorded = source.meta.get("screen") if isinstance(source.meta.get("screen"), dict) else {}
        self.ratio = float(session.screen.scale) / float(recorded.get("scale") or 1.0)
        self.scales = (1.0,) if abs(self.ratio - 1.0) < 0.01 else (1.0, round(self.ratio, 4))

    # --- the run ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Every planned step in order; the recording gets the final status."""
        status, code = "succeeded", ExitCode.OK
        message = ""
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
            message = (f"replayed steps {self.plan[0].i}..{self.plan[-1].i} of {self.source.path}: "
                       f"{self.performed} performed, {self.skipped} skipped")
        except Diverged as exc:
            status, code, message = "failed", ExitCode.FAILED, str(exc)
            diverged = exc.record
        except RunEnded as exc:
            status, code, message = exc.status, exc.exit_code, str(exc)
        except KeyboardInterrupt:
            status, code, message = "stopped", ExitCode.STOPPED, "interrupted by the user"
        finally:
            self.session.executor.release()
        self.recorder.set_meta(result=message, replay={"performed": self.performed, "skipped": self.skipped,
                                                       "methods": self.methods}, diverged=diverged)
        try:
            final = self.session.screen.grab()
        except Exception:  # the display may be gone; the recording still gets its status
            final = self.frame
        self.recorder.finish(status, error=None if status == "succeeded" else message, final_frame=final)
        return RunResult(status, int(code), message, self.performed, self.usage)

    def check_stop(self) -> None:
        """End the replay (status stopped) once the user, the app or the kill switch asked."""
        if self.stop_event.is_set():
            raise Stopped(getattr(self.stop_event, "reason", None) or "stopped by the user")

    def sleep(self, seconds: float) -> None:
        """Sleep, unless a stop comes first."""
        if self.stop_event.wait(max(0.0, seconds)):
            self.check_stop()

    def settle(self, before: Frame | None = None) -> Any:
        """Wait until the screen is still; keep the frame."""
        settled = wait_until_settled(self.session.screen.grab, self.session.options.loop.settle, before)
        self.frame, self.settled = settled.frame, True
        return settled

    def log(self, **fields: Any) -> dict:
        """Append a replay step line and tell the callback."""
        line = self.recorder.add_step(source="replay", **fields)
        if self.on_step:
            self.on_step(line, self.usage)
        return line

    # --- kinds of steps ----------------------------------------------------------------------
    def skip(self, item: Planned) -> None:
        """Log a step that is not replayed."""
        self.skipped += 1
        self.log(action=item.step["action"], ok=False, error=f"skipped: {item.reason}", skipped=item.reason,
                 tool=item.step.get("tool"), replayed_step=item.i, target=None,
                 describe=f"skip {item.describe()}: {item.reason}")

    def wait(self, item: Planned) -> None:
        """An explicit wait, scaled by the speed."""
        assert item.action is not None
        duration = round(float(item.action["duration"]) / self.speed, 3)
        before, started = self.frame, time.monotonic()
        self.sleep(duration)
        self.settled = False
        self.performed += 1
        self.log(action={"action": "wait", "duration": duration}, frame=self.save(before), replayed_step=item.i,
                 describe=item.describe(), target=None,
                 timing={"exec_ms": round((time.monotonic() - started) * 1000, 1)})

    def condition(self, item: Planned) -> None:
        """A recorded wait_for/expect: wait until it holds again (or, raw, its recorded time)."""
        condition = dict(item.step["condition"])
        before, started = self.frame, time.monotonic()
        if not self.verify:
            self.sleep(float(item.step["action"].get("duration") or 0.0) / self.speed)
            live = {**condition, "checked": False}
        else:
            live = self.wait_for(item, condition)
        self.settle()
        self.performed += 1
        self.log(action={"action": "wait", "duration": round(time.monotonic() - started, 3)},
                 frame=self.save(before), replayed_step=item.i, describe=item.describe(), target=None,
                 condition=live)

    def wait_for(self, item: Planned, condition: dict) -> dict:
        """Look for a condition's text (or image) until TIMEOUT_S; Diverged when it never shows."""
        template = None
        if condition.get("method") != "ocr" or not condition.get("text"):
            template = self.condition_image(item, condition)
            if template is None:
                return {**condition, "checked": False}
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            frame = self.session.screen.grab()
            try:
                if template is None:
                    match = self.find_text(frame, condition["text"], condition.get("box"), min_score=None)
                    box, confidence = match.box, match.score
                else:
                    from vision.locate.template import find_image

                    found = find_image(frame, template, threshold=MATCH_MIN, scales=self.scales)[0]
                    box, confidence = found.box, found.score
            except AmbiguousMatch as exc:  # seen, in several places: the condition holds
                box, confidence = exc.candidates[0].box, exc.candidates[0].score
            except NotFound as exc:
                if time.monotonic() >= deadline:
                    what = repr(condition.get("text")) if template is None else "the recorded image"
                    lost = Lost("not found", f"{condition.get('kind', 'condition')} {what} not seen within "
                                f"{TIMEOUT_S:g} s: {exc}", [_candidate(c, "ocr" if template is None else "image")
                                                             for c in exc.candidates[:MAX_CANDIDATES]])
                    self.stop(item, frame, lost)
                self.sleep(POLL_S)
                continue
            x0, y0, x1, y1 = box
            return {**condition, "point": [(x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2], "box": list(box),
                    "confidence": round(float(confidence), 3), "checked": True}

    def condition_image(self, item: Planned, condition: dict) -> np.ndarray | None:
        """For an image condition: its box cut from the recording's next frame (where it was seen)."""
        box = condition.get("box")
        if not isinstance(box, list) or len(box) != 4:
            return None
        later = [s for s in self.source.steps[item.i + 1:] if s.get("frame")]
        relative = later[0]["frame"] if later else self.source.meta.get("final_frame")
        if not relative:
            return None
        try:
            pixels = self.source.load_image(relative)
        except RecordingError:
            return None
        x0, y0, x1, y1 = (int(v) for v in box)
        crop = pixels[max(0, y0):y1, max(0, x0):x1]
        return crop if crop.size and float(crop.std()) >= 2.0 else None

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
            self.shift = located.shift
        points = {k: action[k] for k in ("start_coordinate", "coordinate") if action.get(k) is not None}
        if located is not None and item.anchor is not None:  # every point keeps its place relative to the primary
            (ax, ay), (lx, ly), s = item.anchor.point, located.point, located.scale
            for key, (x, y) in points.items():
                action[key] = [round(lx + (x - ax) * s), round(ly + (y - ay) * s)]
        elif item.follows_hold:  # a move or release while the button is held moves with the press
            for key, (x, y) in points.items():
                action[key] = [x + self.shift[0], y + self.shift[1]]
        elif points and not self.verify:
            located = Located(tuple(points.get("start_coordinate") or points["coordinate"]), "raw", (0, 0))
        before = self.frame if self.frame is not None else self.session.screen.grab()
        try:
            parsed = parse_action(action, self.session.screen.size, "screen")
        except ActionError as exc:
            lost = Lost("off screen", f"the target was found, but the shifted action does not fit the screen: {exc}",
                        [located.as_dict()] if located else [])
            self.stop(item, before, lost)
        started = time.monotonic()
        result = self.session.executor.perform(parsed)
        exec_ms = (time.monotonic() - started) * 1000
        settled = self.settle(before)
        self.performed += 1
        if located is not None:
            self.methods[located.method] = self.methods.get(located.method, 0) + 1
        anchor_point = action.get(item.primary or "") or action.get("coordinate") or action.get("start_coordinate")
        anchor = self.recorder.save_anchor(before, anchor_point, self.recorder.steps) if anchor_point else None
        target = None if located is None else located.as_dict()
        if target is not None and located is not None and item.hint is not None:  # keeps the replay replayable
            text, (x0, y0, x1, y1) = item.hint
            dx, dy = located.shift
            target["text"] = located.text if located.method == "ocr" else text
            target["text_box"] = target["box"] if located.method == "ocr" else [x0 + dx, y0 + dy, x1 + dx, y1 + dy]
        self.log(action=action, frame=self.save(before), anchor=anchor, ok=result.ok, error=result.error,
                 timing={"exec_ms": round(exec_ms, 1), "settle_ms": round(settled.elapsed_s * 1000, 1),
                         "capture_ms": round(settled.capture_s * 1000, 1), "locate_ms": locate_ms},
                 target=target, replayed_step=item.i, describe=item.describe(),
                 recorded_action=item.step["action"] if action != item.action else None)
        if not result.ok:
            self.check_stop()  # an action cancelled by a stop is no divergence
            raise Diverged(f"step {item.i} ({item.describe()}): the action failed: {result.error}")

    # --- locating ------------------------------------------------------------------------------
    def locate(self, item: Planned) -> Located:
        """Find the primary point of a step on the live screen, within TIMEOUT_S; Diverged if not."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            frame = self.frame
            assert frame is not None
            found = self.look(item, frame)
            if isinstance(found, Located):
                return found
            if found.reason == "ambiguous":
                self.stop(item, frame, found)
            if time.monotonic() >= deadline:
                break
            self.sleep(POLL_S)
            self.frame = self.session.screen.grab()
        if self.model is not None:
            healed = self.heal(item, frame, found)
            if healed is not None:
                return healed
        self.stop(item, frame, found)
        raise AssertionError("unreachable")  # pragma: no cover

    def look(self, item: Planned, frame: Frame) -> Located | Lost:
        """One look on one frame: template, then OCR (see the module docstring)."""
        from vision.locate.template import find_image

        anchor = item.anchor
        assert anchor is not None
        candidates: list[dict] = []
        verdict = Lost("not found", "the anchor has no detail to match (a flat crop)")
        gray = anchor.gray
        if gray is not None:
            try:
                matches = find_image(frame, gray, threshold=RIVAL_MIN, scales=self.scales)
            except AmbiguousMatch as exc:
                matches = list(exc.candidates)
            except NotFound as exc:
                matches = list(exc.candidates)
            matches.sort(key=lambda m: -m.score)
            candidates = [_candidate(m, "anchor") for m in matches[:MAX_CANDIDATES] if m.score > 0]
            strong = [m for m in matches if m.score >= MATCH_MIN]
            rivals = [m for m in matches if m.score >= RIVAL_MIN]
            if strong and len(rivals) == 1:
                return self.from_template(anchor, strong[0])
            if strong:
                verdict = Lost("ambiguous", f"the anchor matches {len(rivals)} places", candidates)
            else:
                best = f"best score {matches[0].score:.3f}" if matches else "no match"
                verdict = Lost("not found", f"the anchor is not on the screen ({best}, needs {MATCH_MIN})",
                               candidates)
        landmark = item.hint or anchor.landmark()
        if landmark is None:
            return verdict
        text, box = landmark
        try:
            match = self.find_text(frame, text, box)
        except AmbiguousMatch as exc:
            return Lost("ambiguous", f"{verdict.message}; its text {text!r} is in {len(exc.candidates)} places",
                        candidates + [_candidate(m, "ocr") for m in exc.candidates[:MAX_CANDIDATES]])
        except NotFound as exc:
            return Lost("not found", f"{verdict.message}; its text {text!r} is not on the screen either",
                        candidates + [_candidate(m, "ocr") for m in exc.candidates[:MAX_CANDIDATES]])
        return self.from_text(anchor, box, match)

    def find_text(self, frame: Frame, text: str, box: Any, min_score: float | None = TEXT_MIN_SCORE) -> Any:
        """The one place `text` is on the screen (AmbiguousMatch, NotFound otherwise).

        Only the area around where it is expected (its recorded box moved by the last shift, then
        its recorded box) is read first; a match there is unique when its rendering is nowhere
        else on the screen (a template match of the live text). Otherwise the whole screen is
        read (incrementally, by one TextFinder). `min_score` None: a condition, where any match
        will do (no uniqueness check, the task runner's default score).
        """
        from vision.locate.ocr import DEFAULT_MIN_SCORE, find_text

        score = DEFAULT_MIN_SCORE if min_score is None else min_score
        regions: list[Box] = []
        if isinstance(box, (list, tuple)) and len(box) == 4:
            (mx, my), (sx, sy) = TEXT_NEAR, self.shift
            for dx, dy in dict.fromkeys([(sx, sy), (0, 0)]):
                regions.append((int(box[0]) + dx - mx, int(box[1]) + dy - my, int(box[2]) + dx + mx,
                                int(box[3]) + dy + my))
        for region in regions:
            try:
                match = find_text(frame, text, region=region, min_score=score)[0]
            except AmbiguousMatch as exc:
                if min_score is None:
                    return exc.candidates[0]
                raise
            except NotFound:
                continue
            if min_score is None:
                return match
            rivals = self.rendered_elsewhere(frame, match.box)
            if rivals:
                raise AmbiguousMatch(f"text {text!r} is drawn in {len(rivals) + 1} places", [match, *rivals])
            return match
        try:
            return self.finder.find_text(frame, text, min_score=score)[0]
        except AmbiguousMatch as exc:
            if min_score is None:
                return exc.candidates[0]
            raise

    def rendered_elsewhere(self, frame: Frame, box: Box) -> list[Any]:
        """Other places where the pixels of `box` are drawn the same (template score >= MATCH_MIN)."""
        from vision.locate.find import intersect
        from vision.locate.template import FLAT_STD, find_image

        x0, y0, x1, y1 = box
        crop = frame.pixels[max(0, y0):y1, max(0, x0):x1]
        if crop.size == 0 or float(crop.std()) < FLAT_STD:
            return []
        try:
            find_image(frame, crop, threshold=MATCH_MIN, scales=(1.0,))
        except AmbiguousMatch as exc:
            return [m for m in exc.candidates if intersect(m.box, box) is None]
        except (NotFound, ValueError):
            return []
        return []

    def from_template(self, anchor: Anchor, match: Any) -> Located:
        x0, y0 = anchor.box[:2]
        s = float(match.scale)  # 1.0, or the ratio of the screens' HiDPI scales
        px = round(match.box[0] + (anchor.point[0] - x0) * s)
        py = round(match.box[1] + (anchor.point[1] - y0) * s)
        shift = (px - anchor.point[0], py - anchor.point[1])
        method = "anchor_near" if math.hypot(match.box[0] - x0, match.box[1] - y0) <= NEAR_PX else "anchor_global"
        return Located((px, py), method, shift, s, tuple(match.box), float(match.score))

    def from_text(self, anchor: Anchor, box: Box, match: Any) -> Located:
        cx, cy = (box[0] + box[2] - 1) / 2, (box[1] + box[3] - 1) / 2
        lx, ly = match.center
        s = self.ratio
        px, py = round(lx + (anchor.point[0] - cx) * s), round(ly + (anchor.point[1] - cy) * s)
        return Located((px, py), "ocr", (px - anchor.point[0], py - anchor.point[1]), s, tuple(match.box),
                       float(match.score), match.text)

    def heal(self, item: Planned, frame: Frame, lost: Lost) -> Located | None:
        """Ask the model once where the lost target is; None when it gives no usable click."""
        from agent.types import UserTurn
        from vision.capture import Frame
        from vision.encode import resize

        assert item.anchor is not None
        step = item.step
        target = step.get("start_target") if item.primary == "start_coordinate" else step.get("target")
        text = (target or {}).get("text") if isinstance(target, dict) else None
        description = (step.get("thought") or "").strip() or (f'"{text}"' if text else "") or item.describe()
        mapping = self.session.mapping
        system = HEAL_SYSTEM.format(width=mapping.model.width, height=mapping.model.height)
        view = Frame(resize(frame.pixels, mapping.model), frame.origin, frame.scale, frame.time)
        request = [UserTurn((view, f"click on {description[:500]}"))]
        try:
            reply = self.model.query(system, request, [self.session.computer.spec])
        except Exception as exc:  # the replay stops as lost; the reason is kept
            lost.message += f"; healing failed: {exc}"
            return None
        self.usage += reply.usage
        self.recorder.add_usage(**reply.usage.as_dict())
        self.recorder.add_model_call({"purpose": "heal", "replayed_step": item.i, "model": reply.model,
                                      "stop_reason": reply.stop_reason, "latency_ms": round(reply.latency_s * 1000),
                                      "usage": reply.usage.as_dict(), "response": reply.raw})
        for call in reply.tool_calls:
            coordinate = call.input.get("coordinate")
            if call.name == "computer" and call.input.get("action") == "left_click" and coordinate:
                try:
                    px, py = mapping.to_screen(int(coordinate[0]), int(coordinate[1]))
                except (ValueError, TypeError, IndexError) as exc:
                    lost.message += f"; the model's click {coordinate} is unusable: {exc}"
                    return None
                (ax, ay), hint = item.anchor.point, item.hint
                if not step.get("thought") and hint is not None:  # the model found the text: keep the offset
                    x0, y0, x1, y1 = hint[1]
                    if not (x0 <= ax < x1 and y0 <= ay < y1):
                        px = round(px + (ax - (x0 + x1 - 1) / 2) * self.ratio)
                        py = round(py + (ay - (y0 + y1 - 1) / 2) * self.ratio)
                return Located((px, py), "healed", (px - ax, py - ay), self.ratio, None, None, description[:200])
        lost.message += f"; the model gave no left_click for {description[:80]!r}"
        return None

    # --- recording --------------------------------------------------------------------------
    def save(self, frame: Frame | None) -> str | None:
        return None if frame is None else self.recorder.save_frame(frame)

    def stop(self, item: Planned, frame: Frame, lost: Lost) -> None:
        """Record the step that could not be done, with both screenshots and the candidates; raise."""
        live = self.recorder.save_frame(frame, f"lost-{item.i:06d}")
        recorded = self.source.frame_path(item.step)
        listing = "\n".join(f"  {_describe_candidate(c)}" for c in lost.candidates[:MAX_CANDIDATES])
        if not self.methods and lost.reason == "not found":
            lost.message += " (no target was found yet: is the application open? replay does not run a task's setup)"
        message = (f"step {item.i} ({item.describe()}): {lost.reason}: {lost.message}"
                   + (f"\ncandidates:\n{listing}" if listing else "")
                   + f"\nrecorded screenshot: {recorded if recorded else 'none'}"
                   + f"\nlive screenshot: {self.recorder.path / live}")
        record = {"step": item.i, "reason": lost.reason, "recorded_frame": str(recorded) if recorded else None,
                  "live_frame": live, "candidates": lost.candidates}
        self.log(action=item.step["action"], frame=live, ok=False, error=message, replayed_step=item.i,
                 describe=item.describe(), target=None, candidates=lost.candidates,
                 recorded_frame=record["recorded_frame"], live_frame=live, lost=lost.reason)
        raise Diverged(message, record)


# ----------------------------------------------------------------------------- helpers


def _nearest_line(pixels: np.ndarray, origin: tuple[int, int], point: tuple[int, int]) -> tuple[str, Box] | None:
    """The words (not cut by the image's edge) of the text line nearest `point`, and their box."""
    from vision.locate.find import union
    from vision.locate.ocr import OcrUnavailable, ocr

    if pixels.ndim != 3 or min(pixels.shape[:2]) < 8:
        return None
    try:
        words = ocr(pixels, origin=origin)
    except OcrUnavailable:
        return None
    ox, oy = origin
    h, w = pixels.shape[:2]
    whole = [wd for wd in words if wd.box[0] > ox and wd.box[2] < ox + w and wd.text.strip()]
    lines: dict[int, list] = {}
    for word in whole:
        lines.setdefault(word.line, []).append(word)
    best: tuple[float, str, Box] | None = None
    for line in lines.values():
        line.sort(key=lambda wd: wd.box[0])
        box = union([wd.box for wd in line])
        dx = max(box[0] - point[0], 0, point[0] - box[2] + 1)
        dy = max(box[1] - point[1], 0, point[1] - box[3] + 1)
        text = " ".join(wd.text for wd in line)
        if len(text.strip()) >= 2 and (best is None or math.hypot(dx, dy) < best[0]):
            best = (math.hypot(dx, dy), text, box)
    return None if best is None else (best[1], best[2])


def _candidate(match: Any, method: str) -> dict:
    """A candidate for the error and the recording; a text found by its drawing is "text_image"."""
    if method == "ocr" and getattr(match, "text", None) is None:
        method = "text_image"
    out = {"method": method, "box": list(match.box), "score": round(float(match.score), 3)}
    if getattr(match, "text", None) is not None:
        out["text"] = match.text
    return out


def _describe_candidate(c: dict) -> str:
    text = f" {c['text']!r}" if c.get("text") is not None else ""
    return f"{c['method']}{text} at {c.get('box')} score {c.get('score')}"


# ----------------------------------------------------------------------------- command line


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


__all__ = ["TIMEOUT_S", "Diverged", "InvalidRecording", "print_step", "replay"]
