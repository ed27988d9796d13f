"""Hostile inputs for deskpilot's command line: bad task files, bad recordings and bad `act` calls.

Every generator takes a `random.Random` and returns one input, so the same code feeds the
property test (tests/test_hostile_property.py, through hypothesis's `randoms()`) and the
`hostile_inputs` benchmark (a seeded corpus). Inputs start from real material (the project's
task files, a real recording written by `RecordingWriter`, the action vocabulary) and are then
broken the way a hostile user would: bytes inserted, cut or repeated, control characters, deep
nesting, huge or negative numbers, wrong types, links out of the recording, truncated lines.
Nothing here runs deskpilot; `ARGS_*` say how the inputs are given to it.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NO_DISPLAY = ":4093"  # an X display that does not exist: valid inputs end with exit 4 before acting

_SEED_FILES = sorted((ROOT / "tests" / "tasks").rglob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
_KEYS = ["name", "goal", "display", "setup", "steps", "checks", "limits", "secrets", "policy", "click", "type",
         "key", "wait", "wait_for", "expect", "scroll", "drag", "from", "to", "text", "image", "x", "y", "region",
         "offset", "index", "exact", "timeout", "launch", "run", "command", "screen", "file", "path", "contains",
         "width", "height", "max_steps", "secret", "agent", "move", "double_click", "direction", "amount"]
_ODD_TEXT = ["\x00", "\x07", "\x1b[2J", "\ud800", "\ufeff", "\u202e", "\r", "\t", "'", '"', "{", "[", "&a", "*a",
             "!!python/object:os.system", "!custom", "<<: *a", "---", "...", "%YAML 1.1", "\\", "${HOME}", "$(id)",
             "`id`", "~", "../../etc/passwd", "/dev/zero", "1e999", "-1", "9" * 40, "nan", ".inf", "null", "yes"]
ACTIONS = ["screenshot", "cursor_position", "mouse_move", "left_click", "right_click", "middle_click",
           "double_click", "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up", "scroll", "type",
           "key", "hold_key", "wait", "zoom"]


def seed_texts() -> list[str]:
    """The project's task files (valid and invalid examples), as text."""
    return [p.read_bytes().decode("utf-8", errors="replace") for p in _SEED_FILES]


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON/YAML-able value chosen to break things: odd numbers, strings, nesting."""
    pick = rng.randrange(12 if depth < 4 else 8)
    if pick == 0:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 5000, 65536])
    if pick == 1:
        return rng.choice([0.0, -0.5, 1e308, 1e-308, 3.5, 1e9])
    if pick == 2:
        return rng.choice(_ODD_TEXT)
    if pick == 3:
        return "".join(chr(rng.choice([rng.randrange(0, 0x20), rng.randrange(0x20, 0x7F), rng.randrange(0x80, 0x3000)]))
                       for _ in range(rng.randrange(0, 40)))
    if pick == 4:
        return rng.choice([True, False, None])
    if pick == 5:
        return "x" * rng.choice([0, 1, 10_001, 200_000])
    if pick == 6:
        return rng.choice(_KEYS)
    if pick == 7:
        return []
    if pick in (8, 9):
        return [odd_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(_KEYS): odd_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def mutate_bytes(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    """`data` broken a few times: bytes or odd text inserted, slices cut, repeated or swapped."""
    for _ in range(rounds if rounds is not None else rng.randrange(1, 5)):
        at = rng.randrange(len(data) + 1)
        end = min(len(data), at + rng.randrange(0, 40))
        op = rng.randrange(7)
        if op == 0:
            data = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8))) + data[at:]
        elif op == 1:
            data = data[:at] + data[end:]
        elif op == 2:
            data = data[:at] + data[at:end] * rng.randrange(2, 50) + data[end:]
        elif op == 3:
            data = data[:at] + rng.choice(_ODD_TEXT).encode("utf-8", "surrogatepass") + data[at:]
        elif op == 4:
            n = rng.choice([10, 100, 1000, 5000])
            data = data[:at] + (b"[" * n + b"]" * n if rng.random() < 0.5 else b"{a: " * n + b"}" * n) + data[at:]
        elif op == 5:
            data = data[:at] + data[end:at + 2 * (end - at)] + data[at:end] + data[at + 2 * (end - at):]
        else:
            data = data[:at]
    return data


def _pathological(rng: random.Random) -> bytes:
    kind = rng.randrange(14)
    if kind == 0:
        return b"name: x\ngoal: \"a" + bytes([rng.choice([0, 7, 8, 0x1b, 0x7f])]) + b"b\"\n"
    if kind == 1:
        n = rng.choice([100, 1000, 50_000])
        return b"goal: " + b"[" * n + b"]" * n + b"\n"
    if kind == 2:
        return b"".join(b"  " * i + f"k{i}:\n".encode() for i in range(rng.choice([70, 300, 1000])))
    if kind == 3:  # an alias bomb
        lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
        return ("\n".join(lines) + "\ngoal: *a8\n").encode()
    if kind == 4:
        return b"steps:\n" + b"  - wait: 0\n" * rng.choice([1000, 120_000])
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))
    if kind == 6:
        return "goal: héllo\n".encode("utf-16")
    if kind == 7:
        return b"steps:\n  - click: {x: " + str(rng.choice([-5, 10**20, 5000])).encode() + b", y: 1}\n"
    if kind == 8:
        return b"display: {width: 640, height: 480}\nsteps:\n  - click: {text: OK, region: [0, 0, 9000, 10]}\n"
    if kind == 9:
        return b"steps:\n  - wait: .nan\nchecks:\n  - command: {run: 'true', timeout: .inf}\n"
    if kind == 10:
        return b"goal: " + b"x" * rng.choice([10, 2_000_000]) + b"\n"
    if kind == 11:
        return b"steps:\n  - type: !!python/object/apply:os.system ['touch /tmp/pwned']\n"
    if kind == 12:
        return b"steps: [type: \"a\\x00b\", key: \"ctrl+\\x07\"]\n"
    return b"setup:\n  - launch: [/nonexistent/program]\nsteps:\n  - wait: 0\n"


def task_file(rng: random.Random) -> bytes:
    """One bad (or at least suspicious) task file's bytes."""
    pick = rng.random()
    if pick < 0.45:
        return mutate_bytes(rng, rng.choice(seed_texts()).encode("utf-8"))
    if pick < 0.75:
        import yaml

        data = odd_value(rng) if rng.random() < 0.2 else {rng.choice(_KEYS): odd_value(rng) for _ in range(4)}
        try:
            text = yaml.safe_dump(data, allow_unicode=rng.random() < 0.5, default_flow_style=rng.random() < 0.5)
        except (yaml.YAMLError, UnicodeError):  # e.g. a lone surrogate: the same data as JSON (valid YAML)
            text = json.dumps(data)
        return text.encode("utf-8", "surrogatepass")
    return _pathological(rng)


# ------------------------------------------------------------------------------------------- act


def _good_action(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(ACTIONS)
    action: dict[str, Any] = {"action": name}
    if name in ("mouse_move", "left_click", "right_click", "double_click", "scroll", "left_click_drag"):
        action["coordinate"] = [rng.randrange(0, 2000), rng.randrange(0, 2000)]
    if name == "left_click_drag":
        action["start_coordinate"] = [rng.randrange(0, 100), rng.randrange(0, 100)]
    if name == "scroll":
        action.update(scroll_direction=rng.choice(["up", "down", "sideways"]), scroll_amount=rng.randrange(-2, 60))
    if name in ("type", "key", "hold_key"):
        action["text"] = rng.choice(["hello", "ctrl+s", "a\x00b", "\x07", "Return", "ctrl+alt+Delete", "é日本", ""])
    if name in ("wait", "hold_key"):
        action["duration"] = rng.choice([0, 0.01, -1, 1e9, "1", None])
    if name == "zoom":
        action["region"] = [rng.randrange(-5, 50) for _ in range(rng.choice([3, 4, 5]))]
    return action


def act_args(rng: random.Random) -> list[str]:
    """One `deskpilot act` call's action arguments (never a NUL byte: a real argv cannot hold one)."""
    args = []
    for _ in range(rng.randrange(1, 4)):
        pick = rng.random()
        if pick < 0.5:
            action = _good_action(rng)
            for _ in range(rng.randrange(0, 3)):
                action[rng.choice([*action, "text", "coordinate", "extra"])] = odd_value(rng)
            arg = json.dumps(action, ensure_ascii=rng.random() < 0.5)
        elif pick < 0.7:
            arg = mutate_bytes(rng, json.dumps(_good_action(rng)).encode()).decode("utf-8", "replace")
        elif pick < 0.85:
            arg = json.dumps(odd_value(rng))
        else:
            arg = rng.choice(["{", "", "[]", "null", "--display", "-x", '{"action":"type","text":"a\\u0000b"}',
                              '{"action": "left_click", "coordinate": [1e400, 5]}', "{" * 5000 + "}" * 5000])
        # a real argv holds no NUL and no lone surrogate: those become their escapes
        args.append(arg.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8"))
    return args


# ------------------------------------------------------------------------------------ recordings


def base_recording(folder: Path) -> Path:
    """A small, valid task recording (3 steps with frames and anchors, a model call), finished."""
    import numpy as np

    from agent.recording.writer import RecordingWriter

    writer = RecordingWriter(folder, "task", task="t.yaml", screen={"width": 64, "height": 48, "scale": 1.0})
    for i, action in enumerate([{"action": "left_click", "coordinate": [10, 10]}, {"action": "type", "text": "hi"},
                                {"action": "wait", "duration": 0.1}]):
        pixels = np.full((48, 64, 3), 30 * i, np.uint8)
        frame = writer.save_frame(pixels)
        anchor = writer.save_anchor(pixels, (10, 10), i) if i == 0 else None
        writer.add_step(action=action, frame=frame, anchor=anchor, thought=f"step {i}",
                        target={"method": "ocr", "point": [10, 10], "text": "OK"} if i == 0 else None)
    writer.add_model_call({"response": [{"type": "text", "text": "ok"}], "usage": {"input_tokens": 1}})
    writer.finish("succeeded", final_frame=np.zeros((48, 64, 3), np.uint8))
    return writer.path


def _json_mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """`value` with one random place replaced, removed or nested."""
    if isinstance(value, dict) and value and depth < 6 and rng.random() < 0.7:
        key = rng.choice(list(value))
        value = dict(value)
        if rng.random() < 0.15:
            del value[key]
        else:
            value[key] = _json_mutate(rng, value[key], depth + 1)
        return value
    if isinstance(value, list) and value and depth < 6 and rng.random() < 0.7:
        value = list(value)
        i = rng.randrange(len(value))
        value[i] = _json_mutate(rng, value[i], depth + 1)
        return value
    if rng.random() < 0.1:
        n = rng.choice([100, 2000, 100_000])
        return json.loads("[" * min(n, 500) + "]" * min(n, 500)) if n <= 500 else {"__deep__": n}
    return odd_value(rng)


def _dump(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    while '{"__deep__": ' in text:  # nesting too deep for json.dumps, spliced in as text
        start = text.index('{"__deep__": ')
        end = text.index("}", start) + 1
        n = int(text[start + 13:end - 1])
        text = text[:start] + "[" * n + "]" * n + text[end:]
    return text


def mutate_recording(rng: random.Random, base: Path, dest: Path) -> Path:
    """A copy of the recording `base` at `dest`, broken in one to three places."""
    shutil.copytree(base, dest, symlinks=True)
    for _ in range(rng.randrange(1, 4)):
        target = rng.choice(["meta.json", "steps.jsonl", "steps.jsonl", "model.jsonl", "frame", "anchor", "link"])
        if target in ("frame", "anchor"):
            files = [f for f in sorted((dest / ("frames" if target == "frame" else "anchors")).glob("*.png"))
                     if f.is_file() and not f.is_symlink()]
            if not files:
                continue
            victim = rng.choice(files)
            pick = rng.randrange(4)
            if pick == 0:
                victim.unlink()
            elif pick == 1:
                victim.write_bytes(mutate_bytes(rng, victim.read_bytes()))
            elif pick == 2:  # a PNG header claiming a huge image
                victim.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x00\x00\x00\x01\x00\x00\x08\x02")
            else:
                victim.unlink()
                victim.mkdir()
        elif target == "link":
            victim = dest / rng.choice(["frames/000000.png", "anchors/000000.png", "steps.jsonl", "meta.json",
                                        "frames/final.png"])
            if victim.is_dir() and not victim.is_symlink():
                shutil.rmtree(victim)
            elif victim.exists() or victim.is_symlink():
                victim.unlink()
            victim.symlink_to(rng.choice(["/etc/passwd", "/dev/zero", "/proc/self/environ", "../../../..", "/"]))
        elif (dest / target).is_file() and not (dest / target).is_symlink():
            path = dest / target
            if rng.random() < 0.4 or not _json_mutate_file(rng, path, target):
                path.write_bytes(mutate_bytes(rng, path.read_bytes()))
    return dest


def _json_mutate_file(rng: random.Random, path: Path, target: str) -> bool:
    """Break one JSON value of meta.json or of one JSONL line; False when the file is no longer JSON."""
    try:
        if target == "meta.json":
            data = _json_mutate(rng, json.loads(path.read_text(encoding="utf-8")))
            path.write_bytes(_dump(data).encode("utf-8", "surrogatepass"))
            return True
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines:
            i = rng.randrange(len(lines))
            lines[i] = _dump(_json_mutate(rng, json.loads(lines[i])))
        text = "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        return True
    except (ValueError, RecursionError):  # not JSON (any more), or nested too deep: the caller breaks its bytes
        return False


def recording_args(rng: random.Random, recording: Path, out: Path) -> list[str]:
    """A command over a recording: report (maybe --embed), or a replay onto a display that does not exist."""
    pick = rng.randrange(3)
    if pick == 0:
        return ["report", str(recording)]
    if pick == 1:
        return ["report", str(recording), "--embed"]
    return ["replay", str(recording), "--display", NO_DISPLAY, "--out", str(out)]


Generator = Callable[[random.Random], Any]
