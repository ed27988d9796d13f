"""Reading a recording folder back, validated, for replay and reports (the format: agent.recording.format).

A crash leaves complete lines plus at most one partial last line in steps.jsonl and model.jsonl:
the partial line is dropped and the recording is `truncated`; a broken line anywhere else is
corruption. Every complete step is validated as a `Step` and meta.json as a `Meta`; the errors
name the file, the line and the field.

Nothing outside the recording folder is ever read: every file the recording names (meta.json,
the JSONL files, frames, anchors) must, once links are followed, be a regular file inside the
folder's real path (a link that stays inside is fine, one that leaves it is refused), and no
bigger than its limit (MAX_JSONL_BYTES, MAX_META_BYTES, MAX_IMAGE_BYTES). JSON nested more than
MAX_JSON_DEPTH levels deep is refused naming its line (no RecursionError), and a PNG larger than
MAX_IMAGE_SIDE pixels on a side is never decoded.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.recording.format import (
    FORMAT,
    KINDS,
    META_FILE,
    MODEL_FILE,
    STATUSES,
    STEPS_FILE,
    Meta,
    RecordingError,
    Step,
    is_inside,
    validated,
)

if TYPE_CHECKING:
    import numpy as np

MAX_JSONL_BYTES = 256 << 20  # steps.jsonl or model.jsonl: about 100,000 steps
MAX_META_BYTES = 16 << 20
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_SIDE = 16384  # pixels, as the largest display a task may ask for
MAX_JSON_DEPTH = 64  # a step line nests about 5 levels


def contained(root: Path, relative: str | Path, where: str, max_bytes: int) -> Path:
    """The regular file `relative` names inside the recording folder `root`, checked on its real path.

    RecordingError naming `where` when, links followed, it is not inside the folder, is not a
    regular file (a device, a pipe, a folder) or is bigger than `max_bytes`. Returns the path as
    `root / relative` (not resolved: links inside the folder stay as they are).
    """
    if "\0" in str(relative):
        raise RecordingError(f"{where}: {str(relative)!r} is not a file name (it holds a NUL character)")
    path = root / relative
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise RecordingError(f"{where}: {relative} is a link to {real}, outside the recording {root}; "
                             "nothing outside a recording is read")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise RecordingError(f"{where}: {relative} is missing from {root}") from None
    except OSError as exc:
        raise RecordingError(f"{where}: {relative} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise RecordingError(f"{where}: {relative} is not a regular file")
    if info.st_size > max_bytes:
        raise RecordingError(f"{where}: {relative} is too large ({info.st_size} bytes, the limit is {max_bytes})")
    return path


def _read_contained(root: Path, relative: str, max_bytes: int) -> bytes:
    """The bytes of the recording file `relative` in `root`, checked by `contained` first."""
    path = contained(root, relative, str(root / relative), max_bytes)
    try:
        with open(path, "rb") as f:  # noqa: PTH123 - bounded read
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise RecordingError(f"{path}: too large (more than {max_bytes} bytes)")
    return data


def _too_deep(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when lists and objects in `obj` nest more than `limit` levels (checked without recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json(text: str | bytes, where: str) -> Any:
    """JSON text decoded, or RecordingError naming `where` when it nests more than MAX_JSON_DEPTH levels.

    json.JSONDecodeError and UnicodeDecodeError pass through for the caller to word.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise RecordingError(f"{where}: nested more than {MAX_JSON_DEPTH} levels deep") from None
    if _too_deep(value):
        raise RecordingError(f"{where}: nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def read_jsonl(path: Path, *, required: bool) -> tuple[list[tuple[int, dict]], bool]:
    """Parse a JSONL file: ([(line number, record)], truncated). Only an unterminated last line may be broken."""
    if not path.exists() and not path.is_symlink():
        if required:
            raise RecordingError(f"{path}: missing")
        return [], False
    data = _read_contained(path.parent, path.name, MAX_JSONL_BYTES)
    lines = data.split(b"\n")
    last = len(lines) - 1  # lines[last] is what follows the final newline ("" when complete)
    records: list[tuple[int, dict]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = parse_json(raw.decode("utf-8"), f"{path}: line {number}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if number - 1 == last:  # no newline after it: a write cut short by a crash
                return records, True
            raise RecordingError(f"{path}: line {number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise RecordingError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        records.append((number, record))
    return records, False


def _meta_json(meta_path: Path) -> dict[str, Any]:
    """meta.json decoded, with a format, status and kind this deskpilot reads (not yet typed)."""
    if not meta_path.exists() and not meta_path.is_symlink():
        raise RecordingError(f"{meta_path}: missing; {meta_path.parent} is not a deskpilot recording")
    try:
        data = _read_contained(meta_path.parent, meta_path.name, MAX_META_BYTES)
        meta = parse_json(data.decode("utf-8"), str(meta_path))
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{meta_path}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise RecordingError(f"{meta_path}: cannot be read: {exc}") from None
    if not isinstance(meta, dict):
        raise RecordingError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    found = meta.get("format")
    if found != FORMAT:
        what = "has no format field" if found is None else f"has format {found!r}"
        raise RecordingError(f"{meta_path}: {what}; this deskpilot reads {FORMAT!r}")
    if meta.get("status") not in STATUSES:
        raise RecordingError(f"{meta_path}: status {meta.get('status')!r} is not one of {', '.join(STATUSES)}")
    if meta.get("kind") not in KINDS:
        raise RecordingError(f"{meta_path}: kind {meta.get('kind')!r} is not one of {', '.join(KINDS)}")
    return meta


def read_meta(meta_path: Path) -> Meta:
    """Read and validate a meta.json; RecordingError naming the file, the line or field and the problem."""
    return validated(Meta, _meta_json(meta_path), str(meta_path), RecordingError)


def check_ref(root: Path, relative: Any, where: str) -> None:
    """RecordingError unless `relative` names a file inside the recording folder `root`."""
    if not isinstance(relative, str) or not is_inside(relative):
        raise RecordingError(f"{where}: {relative!r} is not a path inside the recording")
    contained(root, relative, where, MAX_IMAGE_BYTES)


def _check_step(root: Path, expected: int, step: dict, where: str) -> None:
    """The checks of a step line that come before its types: its index, its action, its files."""
    if step.get("i") != expected:
        raise RecordingError(f"{where}: step index i is {step.get('i')!r}, expected {expected}")
    if not isinstance(step.get("action"), dict):
        raise RecordingError(f"{where}: step {expected} has no action object")
    frame = step.get("frame")
    if frame is not None:
        check_ref(root, frame, f"{where}: frame")
    anchor = step.get("anchor")
    if anchor is not None:
        if not isinstance(anchor, dict) or "image" not in anchor:
            raise RecordingError(f"{where}: anchor must be {{image, box, point}} or null")
        check_ref(root, anchor["image"], f"{where}: anchor image")


class Recording:
    """A recording folder, read and validated (for replay and reports).

    `meta` is a `Meta` (typed attributes; indexing it reads the JSON as recorded, as a dict
    would). `steps` and `model_calls` hold every complete line as a dict; `typed_steps` the same
    steps as `Step`s. `truncated` is True when the last line of steps.jsonl (or model.jsonl) was
    cut short by a crash. `complete` is False while the status is still "running" (a crashed or
    live run).
    """

    def __init__(self, path: Path, meta: Meta, steps: list[Step], model_calls: list[dict], truncated: bool) -> None:
        self.path = path
        self.meta = meta
        self.typed_steps = steps
        self.steps: list[dict] = [step.to_json() for step in steps]
        self.model_calls = model_calls
        self.truncated = truncated

    @classmethod
    def load(cls, path: Path | str, *, partial_ok: bool = True) -> Recording:
        """Read and validate a recording folder; raise RecordingError naming file, line and problem.

        With `partial_ok=False`, a recording that is still "running" or has a truncated last
        line is rejected too.
        """
        path = Path(path)
        if not path.exists():
            raise RecordingError(f"{path}: no such recording folder")
        if not path.is_dir():
            raise RecordingError(f"{path}: not a folder (a recording is a folder with {META_FILE})")
        meta_path = path / META_FILE
        raw_meta = _meta_json(meta_path)
        steps_path = path / STEPS_FILE
        lines, truncated = read_jsonl(steps_path, required=True)
        calls, model_truncated = read_jsonl(path / MODEL_FILE, required=False)
        for expected, (number, step) in enumerate(lines):
            _check_step(path, expected, step, f"{steps_path}: line {number}")
        if raw_meta.get("final_frame") is not None:
            check_ref(path, raw_meta["final_frame"], f"{meta_path}: final_frame")
        # the files are all there: now the types of every field
        meta = validated(Meta, raw_meta, str(meta_path), RecordingError)
        steps = [validated(Step, step, f"{steps_path}: line {number}: step {i}", RecordingError)
                 for i, (number, step) in enumerate(lines)]

        recording = cls(path, meta, steps, [call for _, call in calls], truncated or model_truncated)
        if not partial_ok:
            if not recording.complete:
                raise RecordingError(f"{meta_path}: status is 'running': the recording is incomplete")
            if recording.truncated:
                broken = steps_path if truncated else path / MODEL_FILE
                raise RecordingError(f"{broken}: the last line is truncated")
        return recording

    @property
    def complete(self) -> bool:
        """True when the run ended with a final status (not "running")."""
        return self.meta.status != "running"

    @property
    def status(self) -> str:
        """The recorded status."""
        return self.meta.status

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.steps)

    def _step(self, step: dict | int) -> dict:
        if isinstance(step, int) and not isinstance(step, bool):
            try:
                return self.steps[step]
            except IndexError:
                raise IndexError(f"step {step} is not in {self.path} ({len(self.steps)} steps)") from None
        return step

    def frame_path(self, step: dict | int) -> Path | None:
        """The screenshot taken before `step` (a step dict or index), or None."""
        frame = self._step(step).get("frame")
        return None if frame is None else self.path / frame

    def anchor_path(self, step: dict | int) -> Path | None:
        """The anchor crop of `step` (a step dict or index), or None."""
        anchor = self._step(step).get("anchor")
        return None if not anchor else self.path / anchor["image"]

    @property
    def final_frame_path(self) -> Path | None:
        """frames/final.png when the run saved one."""
        final = self.meta.final_frame
        return None if final is None else self.path / final

    def load_image(self, relative: str) -> np.ndarray:
        """Decode an image of the recording (e.g. "frames/000003.png") into BGR pixels."""
        from vision.encode import decode

        if not isinstance(relative, str) or not is_inside(relative):
            raise RecordingError(f"{self.path}: {relative!r} is not a path inside the recording")
        data = _read_contained(self.path, relative, MAX_IMAGE_BYTES)
        if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
                raise RecordingError(f"{self.path / relative}: {width}x{height} pixels, more than "
                                     f"{MAX_IMAGE_SIDE} on a side")
        try:
            return decode(data)
        except ValueError as exc:
            raise RecordingError(f"{self.path / relative}: {exc}") from None
