"""The recording format "deskpilot.recording/1": its names, and typed models of meta.json and a step line.

Every run (model, task, human recording, replay, rollouts) writes one folder:

```
<run-id>/
  meta.json     what ran, on which screen, how it ended (replaced atomically, never edited in place)
  steps.jsonl   one JSON object per executed action (appended, flushed and fsynced per line)
  model.jsonl   one JSON object per model call (same); images are referenced, never inlined
  frames/       the screenshot before each step (NNNNNN.png, N = step index) and final.png
  anchors/      for pointer steps, a crop around the target (NNNNNN.png), for replay
```

`Meta` (meta.json) and `Step` (a line of steps.jsonl) are the typed models. The format is open
for extensions: keys a model does not declare are kept as they are (pydantic extras), and a
declared key may be missing (it reads as None), but a key that is there must have its declared
type (strict: no "1" for 1, no 1 for true). Both are read-only mappings of the JSON as recorded,
so `meta["screen"]` is the recorded dict while `meta.screen` is a typed `Screen`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

if TYPE_CHECKING:
    from typing_extensions import Self

FORMAT = "deskpilot.recording/1"
Kind = Literal["run", "task", "human", "replay", "rollouts", "act", "mcp"]
Status = Literal["running", "succeeded", "failed", "stopped", "error"]
Source = Literal["model", "script", "human", "replay"]
KINDS: tuple[str, ...] = get_args(Kind)
STATUSES: tuple[str, ...] = get_args(Status)
FINAL_STATUSES: tuple[str, ...] = STATUSES[1:]
SOURCES: tuple[str, ...] = get_args(Source)
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

# meta.json keys the writer manages itself (never set through extra_meta or set_meta)
RESERVED_META = frozenset({"format", "kind", "created", "ended", "status", "summary", "final_frame"})
# the step source a kind of run writes when the caller names none
DEFAULT_SOURCE: dict[str, str] = {"run": "model", "task": "script", "human": "human", "replay": "replay",
                                  "rollouts": "model", "act": "script", "mcp": "model"}


class RecordingError(ValueError):
    """An invalid or corrupt recording; the message names the file, the line and the problem."""


def is_inside(relative: str) -> bool:
    """True when `relative` is a plain relative path that stays inside the recording folder."""
    if not relative or "\\" in relative or relative.startswith("/"):
        return False
    parts = relative.split("/")
    return all(part not in ("", ".", "..") for part in parts) and not re.match(r"^[A-Za-z]:", relative)


# ---------------------------------------------------------------------------------------------
# models


class Part(BaseModel):
    """A nested object of the format (screen, summary, anchor, timing, usage): strict, open, read-only."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, protected_namespaces=())


class Record(Part, Mapping):
    """A top-level JSON object of the format: typed attributes plus read-only dict access to the JSON.

    `from_json(data)` validates `data` and keeps it as the mapping view (unchanged, key order
    included); a model built in Python maps its own JSON dump.
    """

    _json: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Validate a decoded JSON object (pydantic's ValidationError names the bad fields)."""
        record = cls.model_validate(data)
        record._json = data
        return record

    def to_json(self) -> dict[str, Any]:
        """The JSON object: as recorded when read, else the model's dump (unset keys left out)."""
        if self._json is None:
            self._json = self.model_dump(mode="json", exclude_unset=True)
        return self._json

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # keys, as a mapping's
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.to_json() == dict(other)
        return NotImplemented



class Screen(Part):
    """The screen the run saw: its size in pixels and the scale of logical to physical pixels."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    scale: float = 1.0


class ImageSize(Part):
    """The size of the image the model was sent."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)


class Summary(Part):
    """The totals of a run: steps, wall time, tokens and cost."""

    steps: int = Field(ge=0)
    duration_s: float
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0


class Meta(Record):
    """meta.json: what ran, on which screen, and how it ended.

    Besides the declared keys, runs add their own (e.g. display, hotkeys, replay, diverged,
    attempts, chosen, attempt, n, parallel): they are kept as extras.
    """

    format: Literal["deskpilot.recording/1"]
    kind: Kind
    goal: str | None = None
    task: str | None = None
    model: str | None = None
    screen: Screen | None = None
    model_image: ImageSize | None = None
    platform: str | None = None
    version: str | None = None
    created: str | None = None
    ended: str | None = None
    status: Status
    summary: Summary | None = None
    checks: list[dict[str, Any]] | None = None
    error: str | None = None
    final_frame: str | None = None
    # extensions written today
    result: str | None = None
    secrets: list[str] | None = None
    replay_of: str | None = None
    apply_of: str | None = None

    @property
    def complete(self) -> bool:
        """True once the run ended with a final status (not "running")."""
        return self.status != "running"


class Anchor(Part):
    """The crop around a pointer step's target: its image, its box [x0, y0, x1, y1) and the point, in screen pixels."""

    image: str
    box: list[int] = Field(min_length=4, max_length=4)
    point: list[int] = Field(min_length=2, max_length=2)


class Timing(Part):
    """How long a step's phases took, in milliseconds (null when a phase did not happen)."""

    capture_ms: float | None = None
    model_ms: float | None = None
    exec_ms: float | None = None
    settle_ms: float | None = None
    find_ms: float | None = None  # a task step: finding its target
    locate_ms: float | None = None  # a replayed step: locating its anchor


class StepUsage(Part):
    """The tokens and cost of the model call that produced a step."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None


class Step(Record):
    """A line of steps.jsonl: one executed action, what led to it and how it went."""

    i: int = Field(ge=0)
    t: float | None = None
    source: Source | None = None
    action: dict[str, Any]
    model_action: Any = None  # as the model sent it: an object, or the raw text of a text family
    frame: str | None = None
    anchor: Anchor | None = None
    ok: bool | None = None
    error: str | None = None
    timing: Timing | None = None
    usage: StepUsage | None = None
    thought: str | None = None
    # extensions written today
    tool: str | None = None
    output: str | None = None
    target: dict[str, Any] | None = None
    start_target: dict[str, Any] | None = None
    describe: str | None = None
    step: int | None = None
    line: int | None = None
    condition: dict[str, Any] | None = None
    replayed_step: int | None = None
    recorded_action: dict[str, Any] | None = None
    skipped: str | None = None
    at: float | None = None


# ---------------------------------------------------------------------------------------------
# validation

R = TypeVar("R", bound=Record)


def problem(exc: ValidationError, limit: int = 3) -> str:
    """The first problems of a failed validation, each naming its field: "ok: Input should be ... (got 'yes')"."""
    parts = []
    for error in exc.errors()[:limit]:
        field = ".".join(str(part) for part in error["loc"]) or "(the object)"
        got = repr(error.get("input"))
        got = got if len(got) <= 80 else got[:77] + "..."
        parts.append(f"{field}: {error['msg']} (got {got})" if error["type"] != "missing" else f"{field}: missing")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validated(model: type[R], data: dict[str, Any], where: str, error: type[Exception] = ValueError) -> R:
    """`data` as a `model` (see Record.from_json); `error` naming `where` and the bad fields when it is not one."""
    try:
        return model.from_json(data)
    except ValidationError as exc:
        raise error(f"{where}: {problem(exc)}") from None
