"""A recording checked and turned into a replay plan, before anything is done on the screen.

The source is read with `Recording.load(partial_ok=True)` by the caller. Everything is checked
here: the `--from/--to` range (step indices, inclusive), every action in the range, its anchor
images, and the environment variables its secret `type` steps need. A problem is bad input
(InvalidRecording or BadInput, exit 2; nothing was done).

What each source step becomes (`Planned.kind`): "skip" (non-computer steps, steps never executed or
skipped in the source, read-only actions), "condition" (a `wait` with a recorded `condition`, a
task's wait_for/expect), "wait" (a plain wait), or "act" (everything else). An act with coordinates
gets, in verify mode, the material to find its first point again: the step's anchor, else a crop of
the step's frame around the point (`Anchor`), and the recorded target text when there is one
(`hint`), and the accessible element recorded under it (`element`). A move or release while the left
button is held follows the press.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actions.vocabulary import ActionError, parse_action
from agent.errors import BadInput
from agent.recording.writer import MASK, Recording, RecordingError
from agent.replay.locate import Anchor
from agent.tools.computer import SECRET_PLACEHOLDER
from vision.locate.find import Box

if TYPE_CHECKING:
    import numpy as np

READ_ONLY = frozenset({"screenshot", "cursor_position", "zoom"})
ANCHOR_HALF = (60, 40)  # half size of a crop cut from a recorded frame (as RecordingWriter.save_anchor)


class InvalidRecording(RecordingError, BadInput):
    """The recording cannot be replayed as it is (a RecordingError that exits 2)."""


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
    element: dict | None = None  # the accessible element recorded under the primary point (role, name, box, path)
    follows_hold: bool = False  # a move/release while the left button is held: moves with the press

    @property
    def i(self) -> int:
        """The source step's index."""
        return int(self.step["i"])

    def describe(self) -> str:
        """The source's description, or one made from the action."""
        if self.step.get("describe"):
            return str(self.step["describe"])
        action = self.step["action"]
        what = action.get("action") or f"{action.get('tool')} tool"
        where = action.get("coordinate") or action.get("text") or action.get("command") or ""
        return f"{what} {where}".strip()


def check_range(source: Recording, start: int | None, end: int | None) -> tuple[int, int]:
    """The first and last step to replay (`--from`/`--to`, inclusive); BadInput for a bad range."""
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


def make_plan(source: Recording, first: int, last: int, verify: bool) -> list[Planned]:
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
            item.element = _element(step, item.primary)
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


def _element(step: dict, primary: str | None) -> dict | None:
    """The accessible element recorded under the step's first point, when it is usable (a role, a name, a box)."""
    element = step.get("element")
    first = "start_coordinate" if step["action"].get("start_coordinate") is not None else "coordinate"
    if primary != first or not isinstance(element, dict):
        return None
    box = element.get("box")
    if not isinstance(element.get("role"), str) or not isinstance(element.get("name"), str) \
            or not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)):
        return None
    return element


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


def secrets_for(plan: list[Planned]) -> dict[str, str]:
    """The secret values the range types, from the environment; BadInput naming what is unset."""
    wanted: dict[str, list[int]] = {}
    for item in plan:
        if item.action is not None:
            for name in _secret_names(item.action, item.step):
                wanted.setdefault(name, []).append(item.i)
    from agent.vault import getenv

    missing = [n for n in wanted if not getenv(n)]
    if missing:
        listing = "; ".join(f"{n} (step {', '.join(map(str, wanted[n]))})" for n in missing)
        raise BadInput(f"the recording types secrets from environment variables that are not set: {listing}; "
                       f"set {' and '.join(missing)} and replay again")
    return {n: getenv(n) or "" for n in wanted}


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


def check_raw_bounds(plan: list[Planned], size: Any) -> None:
    """BadInput when a recorded action does not fit the live screen (replayed raw, it would be refused)."""
    for item in plan:
        if item.kind == "act" and item.action is not None:
            try:
                parse_action(item.action, size, "screen")
            except ActionError as exc:
                raise BadInput(f"step {item.i}: {exc} (the live screen is {size}; "
                               "the recorded coordinates do not fit)") from None


def put_secrets_back(plan: list[Planned], secrets: dict[str, str]) -> None:
    """Put the secret values back into the plan's `type` actions (secrets_for made sure they are all set)."""
    for item in plan:
        if item.action is not None and item.action.get("action") == "type":
            item.action["text"] = _unmask(item.action, item.step, secrets)


def condition_template(source: Recording, item: Planned) -> np.ndarray | None:
    """For an image condition: its box cut from the recording's next frame (where it was seen), if it has detail."""
    box = item.step["condition"].get("box")
    if not isinstance(box, list) or len(box) != 4:
        return None
    later = [s for s in source.steps[item.i + 1:] if s.get("frame")]
    relative = later[0]["frame"] if later else source.meta.get("final_frame")
    if not relative:
        return None
    try:
        pixels = source.load_image(relative)
    except RecordingError:
        return None
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = pixels[max(0, y0):y1, max(0, x0):x1]
    return crop if crop.size and float(crop.std()) >= 2.0 else None
