"""The files of a recording, written so that a crash leaves a readable folder.

The run id is `YYYYmmdd-HHMMSS-<kind>-<4 hex>` (UTC); the folder is created exclusively, so
writers started in the same second (parallel rollouts) never share one.

Crash safety: each JSONL record is written with a single `os.write` on an `O_APPEND` descriptor
and then fsynced, so a SIGKILL leaves complete lines plus at most one partial last line, which
the reader tolerates. Images are written to a temporary name, fsynced and renamed before any line
refers to them. `meta.json` is only ever replaced with `os.replace`. JSON is UTF-8 with
`ensure_ascii=False`, one compact line per JSONL record. A JSONL append that fails half-way (a
full disk) is cut back, so the file never holds a broken line before a good one.

A full disk or a vanished folder: `check_out_dir` refuses an output folder that is a file, cannot
be created or written, or has less than MIN_FREE_BYTES free, before a run starts. During a run,
`WriteGuard` keeps RESERVE_BYTES aside in the folder (`.reserve`) and turns a failed write into
`RecordingFailed` (exit 4), after releasing the reserve and trying once more for the writes that
matter most (the step line of an action already done, and meta.json's final status).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import EnvironmentProblem, RecordingFailed
from agent.recording.format import ANCHORS_DIR, FRAMES_DIR

if TYPE_CHECKING:
    import numpy as np

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def make_folder(out_dir: Path, kind: str, created: dt.datetime) -> Path:
    """Create `out_dir/<stamp>-<kind>-<hex>/` exclusively, with frames/ and anchors/."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = created.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        suffix = secrets.token_hex(2 if attempt < 100 else 4)
        path = out_dir / f"{stamp}-{kind}-{suffix}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / FRAMES_DIR).mkdir()
        (path / ANCHORS_DIR).mkdir()
        return path
    raise RuntimeError(f"could not create a unique recording folder in {out_dir}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# durable writes


def fsync_dir(path: Path) -> None:
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


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to the descriptor (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, fsync it and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        write_all(fd, data)
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
    fsync_dir(path.parent)


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """Replace the meta.json at `path` atomically with `meta` (indented UTF-8 JSON, no NaN)."""
    data = json.dumps(meta, ensure_ascii=False, allow_nan=False, indent=2) + "\n"
    atomic_write(path, data.encode("utf-8"))


class JsonlLog:
    """A JSONL file opened for appending: one line per record, each written at once and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, record: dict[str, Any]) -> None:
        """Append `record` (already JSON-safe) as one compact line and fsync it."""
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            write_all(self._fd, line.encode("utf-8"))
            os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):  # no half line may stay before the next one
                os.ftruncate(self._fd, end)
            raise

    def close(self) -> None:
        """Close the file (again: nothing)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


# ---------------------------------------------------------------------------------------------
# full disks

MIN_FREE_BYTES = 4 << 20
RESERVE_BYTES = 64 << 10
RESERVE_FILE = ".reserve"


def check_out_dir(out: Path) -> None:
    """EnvironmentProblem unless recordings can be written into `out`: not a file, writable (or creatable
    in a writable folder), at least MIN_FREE_BYTES free. Checked before a command acts; creates nothing."""
    if out.exists() and not out.is_dir():
        raise EnvironmentProblem(f"--out {out}: is a file, not a folder; recordings are written into a folder")
    existing = out.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a folder")
        probe = existing / f".deskpilot-write-test-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
        free = os.statvfs(existing)
    except OSError as exc:
        raise EnvironmentProblem(f"--out {out}: recordings cannot be written there: {exc.strerror or exc}") from None
    available = free.f_bavail * free.f_frsize
    if available < MIN_FREE_BYTES:
        raise EnvironmentProblem(f"--out {out}: only {available // 1024} KiB free; a recording needs at least "
                                 f"{MIN_FREE_BYTES >> 20} MiB")


class WriteGuard:
    """The writes of one recording folder: failures become RecordingFailed; a reserve is kept for the last ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.failure: str | None = None  # the first write that failed
        self._reserve = folder / RESERVE_FILE
        with contextlib.suppress(OSError):
            self._reserve.write_bytes(b"\0" * RESERVE_BYTES)

    def release(self) -> None:
        """Give the reserved space back (before the final writes, or when the disk is full)."""
        with contextlib.suppress(OSError):
            self._reserve.unlink()

    def __call__(self, what: str, write: Any, retry: bool = False) -> Any:
        """`write()`, or RecordingFailed naming `what`; with `retry`, once more after releasing the reserve."""
        try:
            return write()
        except OSError as exc:
            error = exc
        if retry:
            self.release()
            try:
                return write()
            except OSError as exc:
                error = exc
        self.failure = self.failure or f"cannot write {what} into {self.folder}: {error.strerror or error}"
        raise RecordingFailed(f"{self.failure}; the run stopped before acting again") from None


# ---------------------------------------------------------------------------------------------
# images


def pixels_of(frame: Any) -> tuple[np.ndarray, tuple[int, int]]:
    """The BGR pixels and screen origin of a Frame (or of a bare ndarray, origin (0, 0))."""
    import numpy as np

    pixels = getattr(frame, "pixels", frame)
    origin = getattr(frame, "origin", (0, 0))
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"expected a Frame or a numpy array, got {type(frame).__name__}")
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"expected BGR pixels (H x W x 3, uint8), got shape {pixels.shape} {pixels.dtype}")
    return pixels, (int(origin[0]), int(origin[1]))


def frame_file(name: str | int) -> str:
    """The relative path of a frame: an index gives frames/NNNNNN.png, a plain name frames/<name>.png."""
    if isinstance(name, int) and not isinstance(name, bool):
        if name < 0:
            raise ValueError(f"a frame index must be >= 0, got {name}")
        stem = f"{name:06d}"
    elif isinstance(name, str) and _NAME_RE.match(name) and ".." not in name:
        stem = name
    else:
        raise ValueError(f"invalid frame name {name!r} (letters, digits, '_', '-', '.')")
    return f"{FRAMES_DIR}/{stem}.png"


def anchor_crop(
    frame: Any, point: tuple[int, int], half: tuple[int, int]
) -> tuple[np.ndarray, list[int], list[int]]:
    """The crop of `frame` around `point` (screen pixels): (pixels, box [x0, y0, x1, y1), point [x, y]).

    The box is `point ± half`, clipped to the frame (which may be a region of the screen: its
    `.origin` maps screen to frame coordinates); x1/y1 are exclusive.
    """
    pixels, (ox, oy) = pixels_of(frame)
    h, w = pixels.shape[:2]
    px, py = int(point[0]), int(point[1])
    hx, hy = int(half[0]), int(half[1])
    if hx <= 0 or hy <= 0:
        raise ValueError(f"half must be positive, got {list(half)}")
    if not (ox <= px < ox + w and oy <= py < oy + h):
        raise ValueError(f"anchor point ({px}, {py}) is outside the frame [{ox}, {oy}, {ox + w}, {oy + h}]")
    x0, y0 = max(ox, px - hx), max(oy, py - hy)
    x1, y1 = min(ox + w, px + hx), min(oy + h, py + hy)
    return pixels[y0 - oy:y1 - oy, x0 - ox:x1 - ox], [x0, y0, x1, y1], [px, py]


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Encode BGR pixels as PNG and write them atomically to `path`."""
    from vision.encode import encode

    atomic_write(path, encode(pixels, "png").data)
