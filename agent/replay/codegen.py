"""`deskpilot codegen`: a recording becomes an editable, valid task file (DESIGN.md, "Code generation").

Any recording (a person's, a model's, a task's, a replay's) gives one step per action, in order:

- pointer steps (`click`, `double_click`, `triple_click`, `right_click`, `move`, `drag`, and
  `scroll` at a point) name their target as agent.replay.codegen_targets does: by accessibility
  role and name, else the OCR text under the point, else the nearest label on the same row with
  an offset, else an anchor image saved beside the task file (`<stem>_images/`), else the
  coordinates. A drag ends at its start target plus the distance dragged, so it moves with it.
- typed text carries over; consecutive `type` steps and single-character keys merge into one
  `type`; secrets stay `{secret: NAME}` (a person's `RECORDED_SECRET_n`, a task's or a model's
  names); `key` steps carry over (a repeated key is written once per press: `key: Down Down`);
  plain waits carry over; a task's `wait_for`/`expect` carry over as the same step, by role and
  name or by text.
- what a task file cannot say (a middle click, a click with a modifier held, `hold_key`, a bare
  button press or release, bash and editor calls) is left out, with a comment in its place and a
  note; read-only actions (screenshots, zoom) and steps never executed are left out silently.

The file starts with comments saying where it came from and that the application must be
started first (a commented `setup:` to fill in). It is validated before it is written; an
existing file or image folder is never overwritten (bad input, exit 2).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import BadInput
from agent.replay.codegen_targets import TargetNamer

POINTER_KINDS = {"left_click": "click", "double_click": "double_click", "triple_click": "triple_click",
                 "right_click": "right_click", "mouse_move": "move"}
READ_ONLY = frozenset({"screenshot", "cursor_position", "zoom"})
MASK = "•••"
_PLAIN = re.compile(r"^[a-z][a-z ]*[a-z]$")


@dataclass
class Generated:
    """A written task file: its path, steps, how its pointer targets were named, what was left out and images."""

    path: Path
    steps: int = 0
    ways: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        """`12 steps; targets: a11y 5, text 2` in one line."""
        ways = ", ".join(f"{k} {v}" for k, v in sorted(self.ways.items(), key=lambda kv: -kv[1]))
        return f"{self.steps} steps" + (f"; targets: {ways}" if ways else "") + (
            f"; {len(self.notes)} left out" if self.notes else "")


def check_out(out: Path) -> Path:
    """The task file to write, checked before anything is done: BadInput when it exists or cannot be written."""
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise BadInput(f"{out}: a task file ends in .yaml or .yml")
    if out.exists():
        raise BadInput(f"{out} already exists; remove it or choose another file (nothing was overwritten)")
    if not out.parent.is_dir():
        raise BadInput(f"{out}: folder {out.parent} does not exist")
    images = images_of(out)
    if images.exists() and any(images.iterdir()):
        raise BadInput(f"{images} already holds files; remove it or choose another task file name")
    return out


def images_of(out: Path) -> Path:
    """The folder beside the task file that its image targets are saved in."""
    return out.parent / f"{out.stem}_images"


def generate(recording: Path | str, out: Path | str | None = None) -> Generated:
    """Write the task file for `recording` to `out` (default: task.yaml in the recording's folder)."""
    from agent.recording.writer import Recording, RecordingError
    from agent.tasks.loader import TaskFileError, parse_task

    try:
        source = Recording.load(recording, partial_ok=True)
    except RecordingError as exc:
        raise BadInput(str(exc)) from None
    out = check_out(Path(out) if out is not None else source.path / "task.yaml")
    images = images_of(out)
    namer = TargetNamer(source, images, images.name)
    writer = _Steps(namer)
    try:
        for step in source.steps:
            writer.add(step)
        body = writer.finish()
        if not writer.lines:
            raise BadInput(f"{source.path}: nothing to turn into steps (no executed actions)")
        text = _header(source, writer) + body
        environ = {**os.environ, **{name: os.environ.get(name, "set") for name in writer.secrets}}
        try:
            parse_task(text, out, environ=environ)
        except TaskFileError as exc:  # a bug here, never the user's: say so plainly
            raise RuntimeError(f"codegen wrote a task file that does not validate:\n{exc}\n---\n{text}") from None
        partial = out.with_name(f".{out.name}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out)
    except BaseException:
        if images.exists():  # check_out found it absent or empty: nothing of the user's is in it
            shutil.rmtree(images, ignore_errors=True)
        raise
    return Generated(out, len(writer.lines), writer.ways, writer.notes, namer.saved)


def _header(source: Any, writer: _Steps) -> str:
    meta = source.meta
    lines = [f"# Generated by `deskpilot codegen` from {source.path} ({meta.get('kind')} recording, "
             f"{len(source.steps)} steps).",
             "# Targets are named by accessibility role and name, else by on-screen text, a label beside them or an",
             "# image; `# step N` is the recorded step each line comes from. Start the application first, or say how:",
             "# setup:",
             "#   - launch: <the command that starts the application>",
             "#   - wait_for: <something it shows when ready>"]
    if writer.secrets:
        lines.append(f"# Secrets come from the environment: {', '.join(writer.secrets)}")
    goal = meta.get("goal")
    if isinstance(goal, str) and goal.strip():
        lines.append(f"goal: {json.dumps(goal, ensure_ascii=False)}")
    return "\n".join(lines) + "\nsteps:\n"


def flow(value: Any) -> str:
    """A value in YAML flow style (strings double-quoted as JSON, which YAML reads alike)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain_or_quoted(v) if k == 'role' else flow(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if "." in f"{value:g}" or "e" in f"{value:g}" else f"{value:g}.0"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _plain_or_quoted(value: Any) -> str:
    return value if isinstance(value, str) and _PLAIN.match(value) else flow(value)


class _Steps:
    """The task file's steps, written one source step at a time; typing is merged across steps."""

    def __init__(self, namer: TargetNamer) -> None:
        self.namer = namer
        self.lines: list[str] = []
        self.ways: dict[str, int] = {}
        self.notes: list[str] = []
        self.secrets: list[str] = []
        self._typing: tuple[str, int] | None = None  # text typed so far, and the step it began at

    def emit(self, kind: str, value: Any, i: int) -> None:
        self.flush()
        self.lines.append(f"  - {kind}: {flow(value)}  # step {i}")

    def leave_out(self, i: int, why: str) -> None:
        self.flush()
        self.notes.append(f"step {i}: {why}")
        self.lines.append(f"  # step {i} left out: {why}")

    def type(self, text: str, i: int) -> None:
        from actions.vocabulary import MAX_TYPE_CHARS

        if self._typing is not None and len(self._typing[0]) + len(text) <= MAX_TYPE_CHARS:
            self._typing = (self._typing[0] + text, self._typing[1])
            return
        self.flush()
        self._typing = (text, i)

    def flush(self) -> None:
        if self._typing is not None:
            text, i = self._typing
            self._typing = None
            self.lines.append(f"  - type: {flow(text)}  # step {i}")

    def finish(self) -> str:
        self.flush()
        return "".join(line + "\n" for line in self.lines)

    def secret(self, name: str, i: int) -> None:
        if name not in self.secrets:
            self.secrets.append(name)
        self.emit("type", {"secret": name}, i)

    def target(self, step: dict, point: Any, **kwargs: Any) -> dict:
        named = self.namer.name(step, (int(point[0]), int(point[1])), **kwargs)
        self.ways[named.how] = self.ways.get(named.how, 0) + 1
        return named.target

    # --- one source step --------------------------------------------------------------------
    def add(self, step: dict) -> None:
        i, action = int(step["i"]), step.get("action") or {}
        name = action.get("action")
        if step.get("skipped") or step.get("ok") is False or name in READ_ONLY:
            return
        if step.get("tool") not in (None, "computer") or name is None:
            tool = step.get("tool") or action.get("tool") or "a tool"
            what = action.get("command") or action.get("path") or ""
            self.leave_out(i, f"{tool} call{f' ({str(what)[:60]})' if what else ''}: a task file has no such step")
            return
        if name in POINTER_KINDS or name == "left_click_drag" or name == "scroll":
            self.pointer(step, i, name, action)
        elif name == "type":
            self.typed(step, i, action)
        elif name == "key":
            text, repeat = str(action.get("text") or ""), int(action.get("repeat") or 1)
            if repeat == 1 and (len(text) == 1 and text.isprintable() or text == "space"):
                self.type(" " if text == "space" else text, i)
            elif text.strip():
                self.emit("key", " ".join([text] * repeat), i)
        elif name == "wait":
            self.wait(step, i, action)
        else:
            self.leave_out(i, f"{name}: a task file has no such step")

    def pointer(self, step: dict, i: int, name: str, action: dict) -> None:
        if action.get("text"):
            self.leave_out(i, f"{name} with {action['text']} held: a task file cannot hold keys while clicking")
            return
        if name == "left_click_drag":
            (sx, sy), (ex, ey) = action["start_coordinate"], action["coordinate"]
            start = self.target(step, (sx, sy))
            end = dict(start)
            if "x" in end:
                end.update(x=int(ex), y=int(ey))
            else:
                dx, dy = end.pop("offset", (0, 0))
                end["offset"] = [int(dx) + ex - sx, int(dy) + ey - sy]
            self.emit("drag", {"from": start, "to": end}, i)
            return
        if action.get("coordinate") is None:
            self.leave_out(i, f"{name} without coordinates (where the pointer was): give it a target")
            return
        target = self.target(step, action["coordinate"])
        if name == "scroll":
            self.emit("scroll", {"direction": action["scroll_direction"], "amount": int(action.get("scroll_amount")
                                                                                        or 3), "target": target}, i)
        else:
            self.emit(POINTER_KINDS[name], target, i)

    def typed(self, step: dict, i: int, action: dict) -> None:
        from agent.tools.computer import SECRET_PLACEHOLDER

        text = str(action.get("text") or "")
        names = [str(n) for n in action["secrets"]] if isinstance(action.get("secrets"), list) else (
            [str(action["secret"])] if action.get("secret") else [])
        if names and MASK in text and len(text.split(MASK)) - 1 == len(names):
            parts = text.split(MASK)
            for n, name in enumerate(names):
                if parts[n]:
                    self.type(parts[n], i)
                self.secret(name, i)
            if parts[-1]:
                self.type(parts[-1], i)
            return
        if names and MASK in text:
            self.leave_out(i, f"typed text holding secrets {', '.join(names)} that cannot be told apart")
            return
        pieces = SECRET_PLACEHOLDER.split(text)  # text, NAME, text, NAME, ... text
        for n, piece in enumerate(pieces):
            if n % 2:
                self.secret(piece, i)
            elif piece:
                self.type(piece, i)

    def wait(self, step: dict, i: int, action: dict) -> None:
        condition = step.get("condition")
        if isinstance(condition, dict) and condition.get("kind") in ("wait_for", "expect"):
            if condition.get("method") == "a11y" and condition.get("role"):
                query = {"role": condition["role"], "name": condition.get("name") or ""}
                if not query["name"]:
                    query.pop("name")
            elif condition.get("text"):
                query = {"text": condition["text"]}
            else:
                self.leave_out(i, f"{condition['kind']} an image: write the image target by hand")
                return
            self.emit(condition["kind"], query, i)
            return
        duration = float(action.get("duration") or 0)
        if duration > 0:
            self.emit("wait", round(duration, 2), i)
