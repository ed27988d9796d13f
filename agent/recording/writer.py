"""The one recording writer of deskpilot, and the ending of a recording whose writer died.

The format (folder layout, `Meta`, `Step`) is agent.recording.format, the crash-safe file writes
agent.recording.files, the masking of secrets and image data agent.recording.redaction, and the
reader agent.recording.reader. Everything the writer writes is redacted first and validated
against the format's models, so a recording it wrote always reads back.

Token usage is only counted through `add_usage` (never inferred from step or model-call
records, so nothing is counted twice). The writer is thread-safe (one lock).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from agent.errors import EnvironmentProblem, RecordingFailed
from agent.recording.files import (
    RESERVE_FILE,
    JsonlLog,
    WriteGuard,
    anchor_crop,
    frame_file,
    fsync_dir,
    make_folder,
    pixels_of,
    write_meta,
    write_png,
)
from agent.recording.format import (
    ANCHORS_DIR,
    DEFAULT_SOURCE,
    FINAL_STATUSES,
    FORMAT,
    FRAMES_DIR,
    KINDS,
    META_FILE,
    MODEL_FILE,
    RESERVED_META,
    SOURCES,
    STATUSES,
    STEP_KEYS,
    STEPS_FILE,
    TIMING_KEYS,
    USAGE_KEYS,
    Meta,
    RecordingError,
    Step,
    is_inside,
    validated,
)
from agent.recording.reader import Recording, read_meta
from agent.recording.redaction import MASK, Secrets

__all__ = [
    "ANCHORS_DIR", "FINAL_STATUSES", "FORMAT", "FRAMES_DIR", "KINDS", "MASK", "META_FILE", "MODEL_FILE", "SOURCES",
    "STATUSES", "STEPS_FILE", "STEP_KEYS", "TIMING_KEYS", "USAGE_KEYS", "Recording", "RecordingError",
    "RecordingWriter", "mark_crashed",
]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
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


def size_meta(size: Any, what: str) -> dict | None:
    """`{"width", "height"}` of a size given as a dict or an object with .width/.height (None: None)."""
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


def screen_meta(screen: Any) -> dict | None:
    """`{"width", "height", "scale"}` of a screen given as a dict or an object (scale defaults to 1.0)."""
    if screen is None:
        return None
    data = size_meta(screen, "screen")
    assert data is not None
    scale = screen.get("scale", 1.0) if isinstance(screen, dict) else getattr(screen, "scale", 1.0)
    data["scale"] = float(scale)
    return data


class UsageTotals:
    """The tokens and cost a run has used so far (not thread-safe: the writer holds its lock)."""

    def __init__(self) -> None:
        self.tokens: dict[str, int] = {k: 0 for k in USAGE_KEYS}
        self.cost_usd = 0.0

    def add(self, tokens: dict[str, int], cost_usd: float) -> None:
        """Add one call's tokens (ints >= 0, by USAGE_KEYS name) and cost (finite, >= 0); ValueError otherwise."""
        for key, value in tokens.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be an int >= 0, got {value!r}")
        if isinstance(cost_usd, bool) or not isinstance(cost_usd, (int, float)) or not math.isfinite(
            cost_usd
        ) or cost_usd < 0:
            raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
        for key, value in tokens.items():
            self.tokens[key] += value
        self.cost_usd += float(cost_usd)

    def summary(self, steps: int, duration_s: float) -> dict[str, Any]:
        """meta.json's summary."""
        return {"steps": steps, "duration_s": round(duration_s, 3), **{k: int(self.tokens[k]) for k in USAGE_KEYS},
                "cost_usd": round(self.cost_usd, 6)}


def _check_file(folder: Path, relative: Any, key: str) -> None:
    if not isinstance(relative, str) or not is_inside(relative):
        raise ValueError(f"{key} must be a path relative to the recording folder, got {relative!r}")
    if not (folder / relative).is_file():
        raise ValueError(f"{key}: {relative} does not exist in {folder}")


def step_body(fields: dict[str, Any], folder: Path, default_source: str) -> dict[str, Any]:
    """A step line but for `i` and `t`, from `add_step`'s fields: checked, with the defaults filled in."""
    for key in ("i", "t"):
        if key in fields:
            raise ValueError(f"{key!r} is set by the recording writer")
    if fields.get("action") is None:
        raise ValueError("a step needs an action")
    source = fields.get("source", default_source)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    frame = fields.get("frame")
    if isinstance(frame, os.PathLike):
        frame = Path(frame).as_posix()
    if frame is not None:
        _check_file(folder, frame, "frame")
    anchor = fields.get("anchor")
    if anchor is not None:
        if not isinstance(anchor, dict) or not {"image", "box", "point"} <= set(anchor):
            raise ValueError(f"anchor must be {{image, box, point}} or None, got {anchor!r}")
        _check_file(folder, anchor["image"], "anchor.image")
    timing = fields.get("timing") or {}
    if not isinstance(timing, dict):
        raise ValueError(f"timing must be a dict, got {timing!r}")
    error = fields.get("error")
    body: dict[str, Any] = {
        "source": source, "action": fields["action"], "model_action": fields.get("model_action"), "frame": frame,
        "anchor": anchor, "ok": bool(fields.get("ok", error is None)), "error": None if error is None else str(error),
        "timing": {**{k: None for k in TIMING_KEYS}, **timing}, "usage": fields.get("usage"),
        "thought": fields.get("thought"),
    }
    body.update((key, value) for key, value in fields.items() if key not in body)
    return body


class RecordingWriter:
    """Writes one recording folder `out_dir/<run-id>/` (see agent.recording.format).

    Create it at the start of a run; `add_step` after each executed action (with `save_frame`
    and, for pointer steps, `save_anchor` first), `add_model_call`/`add_usage` per model call,
    and `finish` at the end. As a context manager, leaving with an exception before `finish`
    ends the recording with status "error" (KeyboardInterrupt: "stopped") and the exception's
    message; leaving normally without `finish` ends it with status "error" too, since nobody
    declared how the run ended.
    """

    def __init__(self, out_dir: Path | str, kind: str, *, goal: str | None = None, task: str | None = None,
                 model: str | None = None, screen: dict | None = None, model_image: dict | None = None,
                 extra_meta: dict | None = None, secrets: dict[str, str] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        self._lock = threading.RLock()
        from agent.vault import named_secrets

        self._secrets = Secrets({**named_secrets(), **(secrets or {})})  # API keys are never written either
        extra = dict(extra_meta or {})
        clash = sorted(RESERVED_META.intersection(extra))
        if clash:
            raise ValueError(f"extra_meta may not set {', '.join(clash)}")
        created = _utc_now()
        self._meta: dict[str, Any] = {
            "format": FORMAT, "kind": kind, "goal": goal, "task": task, "model": model, "screen": screen_meta(screen),
            "model_image": size_meta(model_image, "model_image"), "platform": platform.platform(),
            "version": _version(), "created": _iso(created), "ended": None, "status": "running", "summary": None,
            "checks": None, "error": None, "final_frame": None, **extra,
        }
        validated(Meta, self.redact(self._meta), META_FILE)
        self._start = time.monotonic()
        self._steps = self._model_calls = 0
        self._usage = UsageTotals()
        self._finished = self._closed = False
        self.path = _open_folder(self, Path(out_dir), kind, created)

    # -- secrets -------------------------------------------------------------------------------

    def add_secret(self, name: str, value: str) -> None:
        """Register a secret: its value is never written in clear from now on."""
        self._secrets.add(name, value)

    def redact(self, obj: Any) -> Any:
        """A JSON-safe deep copy of `obj` with every secret value replaced by "•••" (see Secrets.redact)."""
        return self._secrets.redact(obj)

    # -- images --------------------------------------------------------------------------------

    def save_frame(self, frame: Any, name: str | int | None = None) -> str:
        """Save a Frame (or BGR ndarray) as a PNG under frames/ and return its relative path.

        `name` None: the index of the next step (`frames/000007.png`); an int: that index;
        "final": `frames/final.png`; another plain name: `frames/<name>.png`.
        """
        pixels, _ = pixels_of(frame)
        with self._lock:
            if name is None:
                name = self._steps
        relative = frame_file(name)
        self._guard(relative, lambda: write_png(self.path / relative, pixels))
        return relative

    def save_anchor(
        self, frame: Any, point: tuple[int, int], index: int, half: tuple[int, int] = (60, 40)
    ) -> dict:
        """Save the crop around `point` (screen pixels) as anchors/NNNNNN.png, for replay.

        The box is `point ± half`, clipped to the frame (which may be a region of the screen:
        its `.origin` maps screen to frame coordinates). Returns `{"image": ..., "box": [x0, y0,
        x1, y1], "point": [x, y]}` with the box in screen pixels, x1/y1 exclusive.
        """
        crop, box, at = anchor_crop(frame, point, half)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"an anchor index must be an int >= 0, got {index!r}")
        relative = f"{ANCHORS_DIR}/{index:06d}.png"
        self._guard(relative, lambda: write_png(self.path / relative, crop))
        return {"image": relative, "box": box, "point": at}

    # -- records -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"recording {self.path.name} is finished; nothing more can be appended")

    def add_step(self, **fields: Any) -> dict:
        """Append one executed action to steps.jsonl (flushed and fsynced) and return the line.

        `i` and `t` are set here. Defaults: `source` from the kind (run/rollouts: model, task:
        script, human: human, replay: replay), `model_action`/`frame`/`anchor`/`error`/`usage`/
        `thought` null, `ok` true unless an error is given, missing timing keys null. `action`
        is required. `frame` and `anchor.image` must already exist in the folder. Extra keys are
        kept. The line is redacted, then validated as a `Step` (ValueError naming the field).
        """
        body = step_body(fields, self.path, DEFAULT_SOURCE[self.kind])
        with self._lock:
            self._check_open()
            line = self.redact({"i": self._steps, "t": round(time.monotonic() - self._start, 3), **body})
            if not isinstance(line["action"], dict):
                raise ValueError(f"a step's action must be an object, got {fields['action']!r}")
            validated(Step, line, f"step {self._steps}")
            self._guard(f"the line of step {self._steps}", lambda: self._steps_log.append(line), retry=True)
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
            self._guard("a model call", lambda: self._model_log.append(self.redact(line)))
            self._model_calls += 1

    def add_usage(self, input_tokens: int = 0, output_tokens: int = 0, cache_read_tokens: int = 0,
                  cache_write_tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Add to the run's token and cost totals (and refresh meta.json's summary)."""
        tokens = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_read_tokens": cache_read_tokens, "cache_write_tokens": cache_write_tokens}
        with self._lock:
            self._usage.add(tokens, cost_usd)
            if not self._finished:
                self._write_meta()

    # -- meta ----------------------------------------------------------------------------------

    def _write_meta(self) -> None:
        with self._lock:
            if self._meta["status"] == "running":
                self._meta["summary"] = self._usage.summary(self._steps, time.monotonic() - self._start)
            meta = self.redact(self._meta)
            validated(Meta, meta, META_FILE)
            self._guard(META_FILE, lambda: write_meta(self.path / META_FILE, meta), retry=True)

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
        not be set. Values of the wrong type for `Meta` are refused (ValueError) and nothing changes.
        """
        clash = sorted(RESERVED_META.intersection(fields))
        if clash:
            raise ValueError(f"set_meta may not set {', '.join(clash)} (use finish for status)")
        with self._lock:
            if "screen" in fields:
                fields["screen"] = screen_meta(fields["screen"])
            if "model_image" in fields:
                fields["model_image"] = size_meta(fields["model_image"], "model_image")
            validated(Meta, self.redact({**self._meta, **fields}), META_FILE)
            self._meta.update(fields)
            self._write_meta()

    def finish(self, status: str, *, error: str | None = None, checks: list | None = None,
               final_frame: Any = None) -> None:
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
            ending: dict[str, Any] = {"status": status}
            if error is not None:
                ending["error"] = str(error)
            if checks is not None:
                ending["checks"] = checks
            validated(Meta, self.redact({**self._meta, **ending}), META_FILE)
            self._guard.release()  # the reserved space is for these last writes
            final = None
            with contextlib.suppress(RecordingFailed):  # a full disk: the status matters more than the picture
                final = self.save_frame(final_frame, "final") if final_frame is not None else None
            self._meta["summary"] = self._usage.summary(self._steps, time.monotonic() - self._start)
            self._meta.update(ending, ended=_iso(_utc_now()))
            if final is not None:
                self._meta["final_frame"] = final
            self._finished = True
            with contextlib.suppress(RecordingFailed):  # nothing more can be saved; the caller has its result
                self._write_meta()
            self._close()

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._steps_log.close()
            self._model_log.close()

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


def _open_folder(writer: RecordingWriter, out_dir: Path, kind: str, created: dt.datetime) -> Path:
    """Create the writer's folder, logs, reserve and first meta.json; EnvironmentProblem (nothing left
    behind) when that cannot be done."""
    try:
        path = make_folder(out_dir, kind, created)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create a recording in {out_dir}: {exc.strerror or exc}") from None
    writer.path = path
    try:
        writer._steps_log = JsonlLog(path / STEPS_FILE)
        writer._model_log = JsonlLog(path / MODEL_FILE)
        writer._guard = WriteGuard(path)
        fsync_dir(path)
        writer._write_meta()
    except (OSError, RecordingFailed) as exc:
        for log in ("_steps_log", "_model_log"):
            if hasattr(writer, log):
                getattr(writer, log).close()
        shutil.rmtree(path, ignore_errors=True)
        raise EnvironmentProblem(f"cannot create a recording in {out_dir}: {exc}") from None
    return path


def mark_crashed(path: Path | str, message: str) -> bool:
    """End the recording at `path` whose writer died while it was "running": status "error".

    meta.json gets status "error", `error` = `message` and `ended` = now, and is replaced
    atomically; every other key is kept. Returns True when it was marked, False when the recording
    had already ended (it is left as it is). Raises RecordingError when meta.json is missing or
    is no valid meta.json of this format.
    """
    meta_path = Path(path) / META_FILE
    meta = read_meta(meta_path)
    if meta.status != "running":
        return False
    data = {**meta.to_json(), "status": "error", "error": message, "ended": _iso(_utc_now())}
    validated(Meta, data, str(meta_path))
    with contextlib.suppress(OSError):  # the space the dead writer kept aside
        (Path(path) / RESERVE_FILE).unlink()
    write_meta(meta_path, data)
    return True
