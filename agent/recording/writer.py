"""The one recording writer of deskpilot, and its reader.

Every run (model, task, human recording, replay, rollouts) writes one folder:

```
<run-id>/
  meta.json     what ran, on which screen, how it ended (replaced atomically, never edited in place)
  steps.jsonl   one JSON object per executed action (appended, flushed and fsynced per line)
  model.jsonl   one JSON object per model call (same); images are referenced, never inlined
  frames/       the screenshot before each step (NNNNNN.png, N = step index) and final.png
  anchors/      for pointer steps, a crop around the target (NNNNNN.png), for replay
```

The run id is `YYYYmmdd-HHMMSS-<kind>-<4 hex>` (UTC); the folder is created exclusively, so
writers started in the same second (parallel rollouts) never share one.

Crash safety: each JSONL record is written with a single `os.write` on an `O_APPEND` descriptor
and then fsynced, so a SIGKILL leaves complete lines plus at most one partial last line, which
`Recording.load` tolerates (`truncated`). Images are written to a temporary name, fsynced and
renamed before any line refers to them. `meta.json` is only ever replaced with `os.replace`.

Secrets: every registered secret *value* is replaced by `"•••"` in every string (and dict key)
of every record and of meta.json before anything is written. A `type` action whose text held a
secret also carries `"secret": NAME` (and `"secrets": [...]` when several), so a replay can put
the value back from the environment by substituting `"•••"`. Register secrets before they can
appear (the constructor's `secrets=` or `add_secret`): lines already written are not rewritten.
Empty secret values are ignored (there is nothing to hide).

JSON: UTF-8, `ensure_ascii=False`, one compact line per JSONL record. Values are made JSON-safe
before writing: pydantic models are dumped, tuples become lists, numpy scalars/arrays become
numbers/lists, paths become strings, raw bytes become a placeholder, non-finite floats become
null (the files never contain NaN/Infinity). Base64 image sources (`{"type": "base64", "data":
...}`) become `{"type": "ref", "frame": <their "frame" or "omitted">}` and `data:...;base64,`
URIs lose their payload, in every file.

Token usage is only counted through `add_usage` (never inferred from step or model-call
records, so nothing is counted twice). The writer is thread-safe (one lock).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import secrets as _secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

FORMAT = "deskpilot.recording/1"
KINDS: tuple[str, ...] = ("run", "task", "human", "replay", "rollouts", "act")
STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "stopped", "error")
FINAL_STATUSES: tuple[str, ...] = STATUSES[1:]
SOURCES: tuple[str, ...] = ("model", "script", "human", "replay")
MASK = "•••"
TIMING_KEYS: tuple[str, ...] = ("capture_ms", "model_ms", "exec_ms", "settle_ms")
STEP_KEYS: tuple[str, ...] = (
    "i", "t", "source", "action", "model_action", "frame", "anchor", "ok", "error", "timing",
    "usage", "thought",
)
USAGE_KEYS: tuple[str, ...] = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")

META_FILE = "meta.json"
STEPS_FILE = "steps.jsonl"
MODEL_FILE = "model.jsonl"
FRAMES_DIR = "frames"
ANCHORS_DIR = "anchors"

_RESERVED_META = frozenset({"format", "kind", "created", "ended", "status", "summary", "final_frame"})
_DEFAULT_SOURCE = {"run": "model", "task": "script", "human": "human", "replay": "replay", "rollouts": "model",
                   "act": "script"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_DATA_URI_RE = re.compile(r"^(data:[^;,]*(?:;[^;,]*)*;base64,).+", re.DOTALL)


class RecordingError(ValueError):
    """An invalid or corrupt recording; the message names the file, the line and the problem."""


# ---------------------------------------------------------------------------------------------
# helpers


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _iso(moment: _dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "unknown"
    try:
        return version("deskpilot")
    except PackageNotFoundError:
        return "unknown"


def _dumps_line(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")


def _fsync_dir(path: Path) -> None:
    """Make a rename or creation in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, fsync it and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _pixels(frame: Any) -> tuple[np.ndarray, tuple[int, int]]:
    """The BGR pixels and screen origin of a Frame (or of a bare ndarray, origin (0, 0))."""
    import numpy as np

    pixels = getattr(frame, "pixels", frame)
    origin = getattr(frame, "origin", (0, 0))
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"expected a Frame or a numpy array, got {type(frame).__name__}")
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"expected BGR pixels (H x W x 3, uint8), got shape {pixels.shape} {pixels.dtype}")
    return pixels, (int(origin[0]), int(origin[1]))


def _jsonable(obj: Any) -> Any:
    """A JSON-safe deep copy of `obj` (see the module docstring for the conversions)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else str(_jsonable(k))): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [_jsonable(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(obj))} bytes omitted>"
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    dump = getattr(obj, "model_dump", None)  # pydantic models (actions, SDK responses)
    if callable(dump):
        try:
            return _jsonable(dump(mode="json", exclude_none=True))
        except TypeError:
            return _jsonable(dump())
    item = getattr(obj, "item", None)  # numpy scalars
    tolist = getattr(obj, "tolist", None)  # numpy arrays
    if callable(tolist) and hasattr(obj, "shape"):
        return _jsonable(tolist()) if getattr(obj, "shape", None) != () else _jsonable(item())
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(obj))
    return str(obj)


def _is_inside(relative: str) -> bool:
    """True when `relative` is a plain relative path that stays inside the recording folder."""
    if not relative or "\\" in relative or relative.startswith("/"):
        return False
    parts = relative.split("/")
    return all(part not in ("", ".", "..") for part in parts) and not re.match(r"^[A-Za-z]:", relative)


# ---------------------------------------------------------------------------------------------
# writer


class RecordingWriter:
    """Writes one recording folder `out_dir/<run-id>/` (see the module docstring).

    Create it at the start of a run; `add_step` after each executed action (with `save_frame`
    and, for pointer steps, `save_anchor` first), `add_model_call`/`add_usage` per model call,
    and `finish` at the end. As a context manager, leaving with an exception before `finish`
    ends the recording with status "error" (KeyboardInterrupt: "stopped") and the exception's
    message; leaving normally without `finish` ends it with status "error" too, since nobody
    declared how the run ended.
    """

    def __init__(
        self,
        out_dir: Path | str,
        kind: str,
        *,
        goal: str | None = None,
        task: str | None = None,
        model: str | None = None,
        screen: dict | None = None,
        model_image: dict | None = None,
        extra_meta: dict | None = None,
        secrets: dict[str, str] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        self._lock = threading.RLock()
        self._secrets: dict[str, str] = {}
        for name, value in (secrets or {}).items():
            self.add_secret(name, value)
        extra = dict(extra_meta or {})
        clash = sorted(_RESERVED_META.intersection(extra))
        if clash:
            raise ValueError(f"extra_meta may not set {', '.join(clash)}")

        screen_meta = self._screen(screen)
        model_image_meta = self._size_dict(model_image, "model_image")
        created = _utc_now()
        self._start = time.monotonic()
        self.path = self._make_folder(Path(out_dir), created)
        self._steps = 0
        self._model_calls = 0
        self._usage: dict[str, float] = {k: 0 for k in USAGE_KEYS}
        self._usage["cost_usd"] = 0.0
        self._finished = False
        self._closed = False
        self._steps_fd = os.open(self.path / STEPS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._model_fd = os.open(self.path / MODEL_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fsync_dir(self.path)
        self._meta: dict[str, Any] = {
            "format": FORMAT,
            "kind": kind,
            "goal": goal,
            "task": task,
            "model": model,
            "screen": screen_meta,
            "model_image": model_image_meta,
            "platform": platform.platform(),
            "version": _version(),
            "created": _iso(created),
            "ended": None,
            "status": "running",
            "summary": None,
            "checks": None,
            "error": None,
            "final_frame": None,
            **extra,
        }
        self._write_meta()

    # -- setup ---------------------------------------------------------------------------------

    def _make_folder(self, out_dir: Path, created: _dt.datetime) -> Path:
        """Create `out_dir/<stamp>-<kind>-<hex>/` exclusively, with frames/ and anchors/."""
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = created.strftime("%Y%m%d-%H%M%S")
        for attempt in range(1000):
            suffix = _secrets.token_hex(2 if attempt < 100 else 4)
            path = out_dir / f"{stamp}-{self.kind}-{suffix}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            (path / FRAMES_DIR).mkdir()
            (path / ANCHORS_DIR).mkdir()
            return path
        raise RuntimeError(f"could not create a unique recording folder in {out_dir}")  # pragma: no cover

    def _screen(self, screen: Any) -> dict | None:
        if screen is None:
            return None
        data = self._size_dict(screen, "screen")
        assert data is not None
        scale = screen.get("scale", 1.0) if isinstance(screen, dict) else getattr(screen, "scale", 1.0)
        data["scale"] = float(scale)
        return data

    @staticmethod
    def _size_dict(size: Any, what: str) -> dict | None:
        if size is None:
            return None
        try:
            if isinstance(size, dict):
                width, height = size["width"], size["height"]
            else:
                width, height = size.width, size.height
            width, height = int(width), int(height)
        except (KeyError, AttributeError, TypeError, ValueError):
            raise ValueError(f"{what} must have integer width and height, got {size!r}") from None
        if width <= 0 or height <= 0:
            raise ValueError(f"{what} must have a positive width and height, got {width}x{height}")
        return {"width": width, "height": height}

    # -- secrets -------------------------------------------------------------------------------

    def add_secret(self, name: str, value: str) -> None:
        """Register a secret: its value is never written in clear from now on."""
        if not isinstance(name, str) or not name:
            raise ValueError("a secret needs a non-empty name")
        if not isinstance(value, str):
            raise TypeError(f"secret {name}: the value must be a string, got {type(value).__name__}")
        if not value:
            return
        with self._lock:
            self._secrets[name] = value

    def redact(self, obj: Any) -> Any:
        """A JSON-safe deep copy of `obj` with every secret value replaced by "•••".

        A `type` action (`{"action": "type", "text": ...}`) whose text held a secret gets
        `"secret": NAME` (the first one in the text) and, with several, `"secrets": [...]`.
        Base64 image data is replaced by a reference (see the module docstring).
        """
        with self._lock:
            ordered = sorted(self._secrets.items(), key=lambda kv: -len(kv[1]))
        return self._redact(_jsonable(obj), ordered)

    def _redact(self, obj: Any, ordered: list[tuple[str, str]]) -> Any:
        if isinstance(obj, str):
            match = _DATA_URI_RE.match(obj)
            if match:
                return match.group(1) + "<omitted>"
            for _, value in ordered:
                if value in obj:
                    obj = obj.replace(value, MASK)
            return obj
        if isinstance(obj, list):
            return [self._redact(v, ordered) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if obj.get("type") == "base64" and "data" in obj:
            frame = obj.get("frame")
            return {"type": "ref", "frame": self._redact(frame, ordered) if isinstance(frame, str) else "omitted"}
        out = {self._redact(k, ordered): self._redact(v, ordered) for k, v in obj.items()}
        text = obj.get("text")
        if obj.get("action") == "type" and isinstance(text, str):
            found = sorted((text.find(v), n) for n, v in ordered if v in text)
            if found:
                names = list(dict.fromkeys(n for _, n in found))
                out["secret"] = names[0]
                if len(names) > 1:
                    out["secrets"] = names
        return out

    # -- images --------------------------------------------------------------------------------

    def _write_image(self, relative: str, pixels: np.ndarray) -> None:
        from vision.encode import encode

        data = encode(pixels, "png").data
        _atomic_write(self.path / relative, data)

    def save_frame(self, frame: Any, name: str | int | None = None) -> str:
        """Save a Frame (or BGR ndarray) as a PNG under frames/ and return its relative path.

        `name` None: the index of the next step (`frames/000007.png`); an int: that index;
        "final": `frames/final.png`; another plain name: `frames/<name>.png`.
        """
        pixels, _ = _pixels(frame)
        with self._lock:
            if name is None:
                name = self._steps
        if isinstance(name, int) and not isinstance(name, bool):
            if name < 0:
                raise ValueError(f"a frame index must be >= 0, got {name}")
            stem = f"{name:06d}"
        elif isinstance(name, str) and _NAME_RE.match(name) and ".." not in name:
            stem = name
        else:
            raise ValueError(f"invalid frame name {name!r} (letters, digits, '_', '-', '.')")
        relative = f"{FRAMES_DIR}/{stem}.png"
        self._write_image(relative, pixels)
        return relative

    def save_anchor(
        self, frame: Any, point: tuple[int, int], index: int, half: tuple[int, int] = (60, 40)
    ) -> dict:
        """Save the crop around `point` (screen pixels) as anchors/NNNNNN.png, for replay.

        The box is `point ± half`, clipped to the frame (which may be a region of the screen:
        its `.origin` maps screen to frame coordinates). Returns `{"image": ..., "box": [x0, y0,
        x1, y1], "point": [x, y]}` with the box in screen pixels, x1/y1 exclusive.
        """
        pixels, (ox, oy) = _pixels(frame)
        h, w = pixels.shape[:2]
        px, py = int(point[0]), int(point[1])
        hx, hy = int(half[0]), int(half[1])
        if hx <= 0 or hy <= 0:
            raise ValueError(f"half must be positive, got {list(half)}")
        if not (ox <= px < ox + w and oy <= py < oy + h):
            raise ValueError(
                f"anchor point ({px}, {py}) is outside the frame [{ox}, {oy}, {ox + w}, {oy + h}]"
            )
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"an anchor index must be an int >= 0, got {index!r}")
        x0, y0 = max(ox, px - hx), max(oy, py - hy)
        x1, y1 = min(ox + w, px + hx), min(oy + h, py + hy)
        crop = pixels[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        relative = f"{ANCHORS_DIR}/{index:06d}.png"
        self._write_image(relative, crop)
        return {"image": relative, "box": [x0, y0, x1, y1], "point": [px, py]}

    # -- records -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"recording {self.path.name} is finished; nothing more can be appended")

    def _check_file(self, relative: Any, key: str) -> None:
        if not isinstance(relative, str) or not _is_inside(relative):
            raise ValueError(f"{key} must be a path relative to the recording folder, got {relative!r}")
        if not (self.path / relative).is_file():
            raise ValueError(f"{key}: {relative} does not exist in {self.path}")

    def add_step(self, **fields: Any) -> dict:
        """Append one executed action to steps.jsonl (flushed and fsynced) and return the line.

        `i` and `t` are set here. Defaults: `source` from the kind (run/rollouts: model, task:
        script, human: human, replay: replay), `model_action`/`frame`/`anchor`/`error`/`usage`/
        `thought` null, `ok` true unless an error is given, missing timing keys null. `action`
        is required. `frame` and `anchor.image` must already exist in the folder. Extra keys are
        kept. The line is redacted before it is written.
        """
        for key in ("i", "t"):
            if key in fields:
                raise ValueError(f"{key!r} is set by the recording writer")
        if fields.get("action") is None:
            raise ValueError("a step needs an action")
        source = fields.get("source", _DEFAULT_SOURCE[self.kind])
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        frame = fields.get("frame")
        if isinstance(frame, os.PathLike):
            frame = Path(frame).as_posix()
        if frame is not None:
            self._check_file(frame, "frame")
        anchor = fields.get("anchor")
        if anchor is not None:
            if not isinstance(anchor, dict) or not {"image", "box", "point"} <= set(anchor):
                raise ValueError(f"anchor must be {{image, box, point}} or None, got {anchor!r}")
            self._check_file(anchor["image"], "anchor.image")
        timing = fields.get("timing") or {}
        if not isinstance(timing, dict):
            raise ValueError(f"timing must be a dict, got {timing!r}")
        error = fields.get("error")
        with self._lock:
            self._check_open()
            line: dict[str, Any] = {
                "i": self._steps,
                "t": round(time.monotonic() - self._start, 3),
                "source": source,
                "action": fields["action"],
                "model_action": fields.get("model_action"),
                "frame": frame,
                "anchor": anchor,
                "ok": bool(fields.get("ok", error is None)),
                "error": None if error is None else str(error),
                "timing": {**{k: None for k in TIMING_KEYS}, **timing},
                "usage": fields.get("usage"),
                "thought": fields.get("thought"),
            }
            for key, value in fields.items():
                if key not in line:
                    line[key] = value
            line = self.redact(line)
            if not isinstance(line["action"], dict):
                raise ValueError(f"a step's action must be an object, got {fields['action']!r}")
            _write_all(self._steps_fd, _dumps_line(line))
            os.fsync(self._steps_fd)
            self._steps += 1
            return line

    def add_model_call(self, record: dict) -> None:
        """Append one model call (response blocks, usage, latency, stop reason) to model.jsonl.

        `call` (0, 1, 2...) and `t` are added when missing. The record is redacted, and base64
        image sources become `{"type": "ref", "frame": <the source's "frame" or "omitted">}`.
        """
        if not isinstance(record, dict):
            raise TypeError(f"a model call record must be a dict, got {type(record).__name__}")
        with self._lock:
            self._check_open()
            line = {"call": self._model_calls, "t": round(time.monotonic() - self._start, 3), **record}
            line = self.redact(line)
            _write_all(self._model_fd, _dumps_line(line))
            os.fsync(self._model_fd)
            self._model_calls += 1

    def add_usage(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """Add to the run's token and cost totals (and refresh meta.json's summary)."""
        values = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_tokens": cache_read_tokens,
            "cache_write_tokens": cache_write_tokens,
        }
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be an int >= 0, got {value!r}")
        if isinstance(cost_usd, bool) or not isinstance(cost_usd, (int, float)) or not math.isfinite(
            cost_usd
        ) or cost_usd < 0:
            raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
        with self._lock:
            for key, value in values.items():
                self._usage[key] += value
            self._usage["cost_usd"] += float(cost_usd)
            if not self._finished:
                self._write_meta()

    # -- meta ----------------------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        return {
            "steps": self._steps,
            "duration_s": round(time.monotonic() - self._start, 3),
            **{k: int(self._usage[k]) for k in USAGE_KEYS},
            "cost_usd": round(self._usage["cost_usd"], 6),
        }

    def _write_meta(self) -> None:
        with self._lock:
            if self._meta["status"] == "running":
                self._meta["summary"] = self._summary()
            data = json.dumps(self.redact(self._meta), ensure_ascii=False, allow_nan=False, indent=2) + "\n"
            _atomic_write(self.path / META_FILE, data.encode("utf-8"))

    @property
    def meta(self) -> dict:
        """A redacted copy of the metadata as last written."""
        with self._lock:
            return self.redact(self._meta)

    @property
    def status(self) -> str:
        """The status: "running" until `finish`."""
        return self._meta["status"]

    @property
    def steps(self) -> int:
        """The number of steps written so far."""
        return self._steps

    def set_meta(self, **fields: Any) -> None:
        """Set metadata fields (e.g. checks, error, screen, or any extra key); rewrites meta.json.

        format, kind, created, ended, status, summary and final_frame are managed here and may
        not be set.
        """
        clash = sorted(_RESERVED_META.intersection(fields))
        if clash:
            raise ValueError(f"set_meta may not set {', '.join(clash)} (use finish for status)")
        with self._lock:
            if "screen" in fields:
                fields["screen"] = self._screen(fields["screen"])
            if "model_image" in fields:
                fields["model_image"] = self._size_dict(fields["model_image"], "model_image")
            self._meta.update(fields)
            self._write_meta()

    def finish(
        self,
        status: str,
        *,
        error: str | None = None,
        checks: list | None = None,
        final_frame: Any = None,
    ) -> None:
        """End the recording: status, ended, summary, checks, error and frames/final.png.

        `status` is one of succeeded, failed, stopped, error. The first call decides; later calls
        do nothing. Both JSONL files are closed; meta.json is replaced atomically.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}, got {status!r}")
        if checks is not None and not isinstance(checks, list):
            raise ValueError(f"checks must be a list, got {type(checks).__name__}")
        with self._lock:
            if self._finished:
                return
            final = self.save_frame(final_frame, "final") if final_frame is not None else None
            self._meta["summary"] = self._summary()
            self._meta["ended"] = _iso(_utc_now())
            self._meta["status"] = status
            if error is not None:
                self._meta["error"] = str(error)
            if checks is not None:
                self._meta["checks"] = checks
            if final is not None:
                self._meta["final_frame"] = final
            self._finished = True
            self._write_meta()
            self._close()

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._steps_fd, self._model_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)

    @property
    def finished(self) -> bool:
        """True once `finish` has run."""
        return self._finished

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._finished:
            return
        if exc is None:
            self.finish("error", error="the recording was closed without a final status")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("stopped", error=str(exc) or "interrupted")
        else:
            self.finish("error", error=str(exc) or type(exc).__name__)


# ---------------------------------------------------------------------------------------------
# reader


def _read_jsonl(path: Path, *, required: bool) -> tuple[list[dict], bool]:
    """Parse a JSONL file: (records, truncated). Only an unterminated last line may be broken."""
    if not path.exists():
        if required:
            raise RecordingError(f"{path}: missing")
        return [], False
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot be read: {exc}") from None
    lines = data.split(b"\n")
    last = len(lines) - 1  # lines[last] is what follows the final newline ("" when complete)
    records: list[dict] = []
    truncated = False
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if number - 1 == last:  # no newline after it: a write cut short by a crash
                truncated = True
                break
            raise RecordingError(f"{path}: line {number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise RecordingError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        record["__line__"] = number
        records.append(record)
    return records, truncated


class Recording:
    """A recording folder, read and validated (for replay and reports).

    `steps` and `model_calls` hold every complete line; `truncated` is True when the last line
    of steps.jsonl (or model.jsonl) was cut short by a crash. `complete` is False while the
    status is still "running" (a crashed or live run).
    """

    def __init__(
        self, path: Path, meta: dict, steps: list[dict], model_calls: list[dict], truncated: bool
    ) -> None:
        self.path = path
        self.meta = meta
        self.steps = steps
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
        if not meta_path.is_file():
            raise RecordingError(f"{meta_path}: missing; {path} is not a deskpilot recording")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RecordingError(
                f"{meta_path}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})"
            ) from None
        except (UnicodeDecodeError, OSError) as exc:
            raise RecordingError(f"{meta_path}: cannot be read: {exc}") from None
        if not isinstance(meta, dict):
            raise RecordingError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
        found = meta.get("format")
        if found != FORMAT:
            what = "has no format field" if found is None else f"has format {found!r}"
            raise RecordingError(f"{meta_path}: {what}; this deskpilot reads {FORMAT!r}")
        if meta.get("status") not in STATUSES:
            raise RecordingError(
                f"{meta_path}: status {meta.get('status')!r} is not one of {', '.join(STATUSES)}"
            )
        if meta.get("kind") not in KINDS:
            raise RecordingError(f"{meta_path}: kind {meta.get('kind')!r} is not one of {', '.join(KINDS)}")

        steps_path = path / STEPS_FILE
        steps, truncated = _read_jsonl(steps_path, required=True)
        model_calls, model_truncated = _read_jsonl(path / MODEL_FILE, required=False)
        for expected, step in enumerate(steps):
            number = step.pop("__line__")
            where = f"{steps_path}: line {number}"
            if step.get("i") != expected:
                raise RecordingError(f"{where}: step index i is {step.get('i')!r}, expected {expected}")
            if not isinstance(step.get("action"), dict):
                raise RecordingError(f"{where}: step {expected} has no action object")
            frame = step.get("frame")
            if frame is not None:
                cls._check_ref(path, frame, f"{where}: frame")
            anchor = step.get("anchor")
            if anchor is not None:
                if not isinstance(anchor, dict) or "image" not in anchor:
                    raise RecordingError(f"{where}: anchor must be {{image, box, point}} or null")
                cls._check_ref(path, anchor["image"], f"{where}: anchor image")
        for call in model_calls:
            call.pop("__line__")
        final = meta.get("final_frame")
        if final is not None:
            cls._check_ref(path, final, f"{meta_path}: final_frame")

        recording = cls(path, meta, steps, model_calls, truncated or model_truncated)
        if not partial_ok:
            if not recording.complete:
                raise RecordingError(f"{meta_path}: status is 'running': the recording is incomplete")
            if recording.truncated:
                broken = steps_path if truncated else path / MODEL_FILE
                raise RecordingError(f"{broken}: the last line is truncated")
        return recording

    @staticmethod
    def _check_ref(root: Path, relative: Any, where: str) -> None:
        if not isinstance(relative, str) or not _is_inside(relative):
            raise RecordingError(f"{where}: {relative!r} is not a path inside the recording")
        if not (root / relative).is_file():
            raise RecordingError(f"{where}: {relative} is missing from {root}")

    @property
    def complete(self) -> bool:
        """True when the run ended with a final status (not "running")."""
        return self.meta.get("status") != "running"

    @property
    def status(self) -> str:
        """The recorded status."""
        return self.meta["status"]

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
        final = self.meta.get("final_frame")
        return None if final is None else self.path / final

    def load_image(self, relative: str) -> np.ndarray:
        """Decode an image of the recording (e.g. "frames/000003.png") into BGR pixels."""
        from vision.encode import decode

        self._check_ref(self.path, relative, str(self.path))
        try:
            return decode((self.path / relative).read_bytes())
        except ValueError as exc:
            raise RecordingError(f"{self.path / relative}: {exc}") from None


__all__ = ["FORMAT", "Recording", "RecordingError", "RecordingWriter"]
