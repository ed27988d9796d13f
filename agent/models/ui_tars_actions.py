"""Reading UI-TARS-1.5 replies: `Thought: ...` / `Action: name(key='value', ...)` into canonical actions.

A reply has an optional thought (`Thought:`, or the `Reflection:` / `Action_Summary:` forms) and an
action part after the last `Action:`: one call, or several separated by blank lines. Points come in
the three spellings the model family writes: `start_box='(x,y)'`,
`start_box='<|box_start|>(x,y)<|box_end|>'` and `point='<point>x y</point>'` (also
`start_point=`/`end_point=`), as absolute pixels of the image the model was sent. Strings take the
escapes `\\'`, `\\"`, `\\n`, `\\t` and `\\\\`; in `type(content=...)` and `finished(content=...)` a
quote not followed by the call's closing parenthesis belongs to the text (the model often leaves
apostrophes unescaped).

Nothing is guessed: a reply without `Action:`, a call without its parentheses, a box of four
numbers where a point is expected, an unknown action or a missing argument raises UnreadableReply
with a message naming the problem; the backend then asks the model once more, and a second failure
becomes an error result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("click", "left_single", "left_double", "right_single", "hover", "drag", "hotkey", "type", "scroll",
           "wait", "finished", "call_user")
WAIT_S = 5.0  # wait(): "sleep for 5 s and take a screenshot", as the model was taught
SCROLL_CLICKS = 5  # wheel clicks of one scroll, as UI-TARS's own executor scrolls
KEY_NAMES = {"arrowleft": "Left", "arrowright": "Right", "arrowup": "Up", "arrowdown": "Down",
             "left": "Left", "right": "Right", "up": "Up", "down": "Down"}
CLICKS = {"click": "left_click", "left_single": "left_click", "left_double": "double_click",
          "right_single": "right_click", "hover": "mouse_move"}
_THOUGHT = re.compile(r"^\s*(?:Thought|Reflection|Action_Summary):\s*(.*?)(?=\s*(?<!\S)Action:|\Z)", re.S)
_POINT = re.compile(r"^\s*(?:<\|box_start\|>)?\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*(?:<\|box_end\|>)?\s*$"
                    r"|^\s*<point>\s*(\d+)\s+(\d+)\s*</point>\s*$")
_NUMBERS = re.compile(r"-?\d+(?:\.\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", "'": "'", '"': '"', "\\": "\\"}
_ANY_POINT = re.compile(r"<\|box_start\|>\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*<\|box_end\|>|\(\s*(\d+)\s*,\s*(\d+)\s*\)"
                        r"|<point>\s*(\d+)\s+(\d+)\s*</point>")


class UnreadableReply(ValueError):
    """A reply that is not a well-formed UI-TARS action; the message names the problem."""


@dataclass(frozen=True)
class Parsed:
    """A reply read: the thought, the canonical actions with the text of each call, and how it ends.

    `finished` is the content of `finished(...)` (the run succeeded), `call_user` is True when the
    model asked for the user (the task cannot be done without them).
    """

    thought: str
    actions: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    finished: str | None = None
    call_user: bool = False


def parse_reply(text: str) -> Parsed:
    """Read one reply; UnreadableReply naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise UnreadableReply("the reply is empty")
    text = text.strip()
    match = _THOUGHT.match(text)
    thought = match.group(1).strip() if match else ""
    lines = re.findall(r"(?:^|(?<=\s))Action:", text)
    if not lines:
        raise UnreadableReply("the reply has no `Action:` line")
    if len(lines) > 1:
        raise UnreadableReply(f"the reply has {len(lines)} `Action:` lines; write one, with several calls "
                              "separated by blank lines")
    calls = split_calls(text.rsplit("Action:", 1)[1])
    if not calls:
        raise UnreadableReply("the `Action:` line is empty")
    parsed = [read_call(call) for call in calls]
    ends = [p for p in parsed if p[0] in ("finished", "call_user")]
    if ends and len(parsed) > 1:
        raise UnreadableReply(f"{ends[0][0]}() must be the only action of its reply")
    if ends:
        name, args, _ = ends[0]
        return Parsed(thought, finished=args.get("content", "") if name == "finished" else None,
                      call_user=name == "call_user")
    return Parsed(thought, [(to_canonical(name, args), source) for name, args, source in parsed])


def split_calls(part: str) -> list[str]:
    """The calls of an action part: separated by blank lines after a call's closing parenthesis."""
    chunks: list[str] = []
    current: list[str] = []
    for line in part.strip().split("\n"):
        if not line.strip() and current and current[-1].rstrip().endswith(")"):
            chunks.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    if "\n".join(current).strip():
        chunks.append("\n".join(current).strip())
    return chunks


def read_call(source: str) -> tuple[str, dict[str, str], str]:
    """(name, arguments, the call's text) of `name(key='value', ...)`; UnreadableReply if malformed."""
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*", source)
    if not match:
        raise UnreadableReply(f"{source[:60]!r} is not an action call like click(start_box='(x,y)')")
    name, at = match.group(1), match.end()
    if name not in ACTIONS:
        raise UnreadableReply(f"unknown action {name!r}; the actions are {', '.join(ACTIONS)}")
    if at >= len(source) or source[at] != "(":
        raise UnreadableReply(f"{name}: missing '(' after the action's name")
    if not source.rstrip().endswith(")"):
        raise UnreadableReply(f"{name}: missing ')' at the end of the call")
    body = source.rstrip()[at + 1:-1]
    return name, _arguments(name, body), source


def _arguments(name: str, body: str) -> dict[str, str]:
    args: dict[str, str] = {}
    i = 0
    while True:
        while i < len(body) and body[i] in " \t\n,":
            i += 1
        if i >= len(body):
            return args
        key = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*", body[i:])
        if not key:
            raise UnreadableReply(f"{name}: expected key='value' at {body[i:i + 30]!r}")
        i += key.end()
        if i >= len(body) or body[i] not in "'\"":
            raise UnreadableReply(f"{name}: the value of {key.group(1)} must be quoted")
        value, i = _string(name, key.group(1), body, i)
        args[key.group(1)] = value
        rest = body[i:].lstrip(" \t\n")
        if rest and not rest.startswith(","):
            raise UnreadableReply(f"{name}: unexpected {rest[:20]!r} after {key.group(1)}")


def _string(name: str, key: str, body: str, start: int) -> tuple[str, int]:
    quote, out, i = body[start], [], start + 1
    free_text = key == "content"  # a stray quote inside typed text belongs to the text
    last = body.rstrip().rfind(quote) if free_text else -1
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
            continue
        if char == quote and (not free_text or i >= last):
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise UnreadableReply(f"{name}: the value of {key} has no closing quote")


def read_point(name: str, key: str, value: str) -> list[int]:
    """A point argument in any of the three spellings; UnreadableReply for a box or anything else."""
    match = _POINT.match(value)
    if match:
        x, y = (match.group(1), match.group(2)) if match.group(1) is not None else (match.group(3), match.group(4))
        return [int(x), int(y)]
    numbers = _NUMBERS.findall(value)
    if len(numbers) == 4:
        raise UnreadableReply(f"{name}: {key} {value!r} is a box of four numbers; give one point (x,y)")
    raise UnreadableReply(f"{name}: {key} {value!r} is not a point like '(x,y)' or '<point>x y</point>'")


def _point(name: str, args: dict[str, str], *keys: str) -> list[int] | None:
    for key in keys:
        if key in args:
            return read_point(name, key, args[key])
    return None


def keys_of(text: str) -> str:
    """UI-TARS's `hotkey(key='ctrl c')` as an xdotool combination, `ctrl+c`."""
    names = text.split()
    if not names:
        raise UnreadableReply("hotkey: key is empty")
    return "+".join(KEY_NAMES.get(n.lower(), n) for n in names)


def to_canonical(name: str, args: dict[str, str]) -> dict[str, Any]:
    """One UI-TARS call as a canonical computer action (coordinates in the image sent)."""
    point = _point(name, args, "start_box", "point", "start_point")
    if name in CLICKS:
        if point is None:
            raise UnreadableReply(f"{name}: start_box is missing")
        return {"action": CLICKS[name], "coordinate": point}
    if name == "drag":
        end = _point(name, args, "end_box", "end_point")
        if point is None or end is None:
            raise UnreadableReply("drag: start_box and end_box are both needed")
        return {"action": "left_click_drag", "start_coordinate": point, "coordinate": end}
    if name == "hotkey":
        return {"action": "key", "text": keys_of(args.get("key", args.get("hotkey", "")))}
    if name == "type":
        if "content" not in args:
            raise UnreadableReply("type: content is missing")
        return {"action": "type", "text": args["content"]}
    if name == "scroll":
        direction = args.get("direction", "").strip().lower()
        if direction not in ("up", "down", "left", "right"):
            raise UnreadableReply(f"scroll: direction {direction!r} is not up, down, left or right")
        action: dict[str, Any] = {"action": "scroll", "scroll_direction": direction, "scroll_amount": SCROLL_CLICKS}
        if point is not None:
            action["coordinate"] = point
        return action
    return {"action": "wait", "duration": WAIT_S}  # wait()


def find_point(text: str) -> list[int]:
    """The first point written anywhere in a grounding answer, in any spelling; UnreadableReply if none."""
    match = _ANY_POINT.search(text or "")
    if not match:
        raise UnreadableReply(f"no point (x,y) in the answer {(text or '')[:80]!r}")
    x, y = next((match.group(i), match.group(i + 1)) for i in (1, 3, 5) if match.group(i) is not None)
    return [int(x), int(y)]
