"""Points, regions and offsets of a task checked against a display size, at load or before acting.

`outside_display(task, size)` lists every point (`click: {x, y}`, drag ends, scroll targets),
region (`region: [x0, y0, x1, y1]`, x1/y1 exclusive) and offset (`[dx, dy]`) of a task that
cannot fit on a display of `size`: a point outside it, a region that extends past it, an offset
at least as large as the display. The loader uses it when the task names its `display`;
`region_problem` and `point_problem` are the same checks for one value, before acting on a
screen whose size only the run knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vision.geometry import Size

FieldPath = tuple[str | int, ...]


def point_problem(x: int, y: int, size: Size) -> tuple[str, str] | None:
    """(field, message) when the point (x, y) is not on a `size` display, else None."""
    if x < size.width and y < size.height:
        return None
    field = "x" if x >= size.width else "y"
    return field, (f"({x}, {y}) is outside the {size} display (x must be 0..{size.width - 1}, "
                   f"y 0..{size.height - 1})")


def region_problem(region: tuple[int, int, int, int] | None, size: Size) -> str | None:
    """A message when `region` extends past a `size` display, else None."""
    if region is None or (region[2] <= size.width and region[3] <= size.height):
        return None
    return f"region {list(region)} extends past the {size} display ([x0, y0, x1, y1], x1 <= {size.width}, " \
           f"y1 <= {size.height})"


def _offset_problem(offset: tuple[int, int], size: Size) -> str | None:
    dx, dy = offset
    if abs(dx) < size.width and abs(dy) < size.height:
        return None
    return f"offset {list(offset)} is larger than the {size} display: the point would always be off it"


def _target(value: Any, path: FieldPath, size: Size) -> Iterator[tuple[FieldPath, Any, str]]:
    """Problems of one target or query at `path`."""
    from agent.tasks.targets import PointTarget

    if isinstance(value, PointTarget):
        problem = point_problem(value.x, value.y, size)
        if problem:
            yield (*path, problem[0]), getattr(value, problem[0]), problem[1]
        return
    region = getattr(value, "region", None)
    message = region_problem(region, size)
    if message:
        yield (*path, "region"), list(region), message
    offset = getattr(value, "offset", None)
    if offset is not None:
        message = _offset_problem(offset, size)
        if message:
            yield (*path, "offset"), list(offset), message


def outside_display(task: Any, size: Size) -> Iterator[tuple[FieldPath, Any, str]]:
    """(path, value, message) of every point, region or offset of `task` that cannot fit on `size`."""
    for section in ("setup", "steps", "checks"):
        for i, item in enumerate(getattr(task, section)):
            kind, value = item.kind, item.value
            if kind == "drag":
                yield from _target(value.from_, (section, i, kind, "from"), size)
                yield from _target(value.to, (section, i, kind, "to"), size)
            elif kind == "scroll":
                if value.target is not None:
                    yield from _target(value.target, (section, i, kind, "target"), size)
            elif hasattr(value, "region") or hasattr(value, "x"):
                yield from _target(value, (section, i, kind), size)
