"""What text and template searches share: boxes, reading order, choosing one match, and the errors.

A box is `(x0, y0, x1, y1)` in screen pixels, x1/y1 exclusive. Both searches number their
matches in reading order (top to bottom, then left to right); `index` picks from that order,
and the errors list candidates with the same numbers, so an ambiguity can be resolved by copying
an index from the message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

Box = tuple[int, int, int, int]


class FindError(LookupError):
    """A search on the screen did not give exactly one answer."""


class NotFound(FindError):
    """Nothing matched well enough; the message names the closest candidates or best score."""

    def __init__(self, message: str, candidates: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


class AmbiguousMatch(FindError):
    """Several places matched equally well and no `index` said which; never a silent pick.

    `candidates` holds every match in reading order, numbered as `index` counts them.
    """

    def __init__(self, message: str, candidates: Sequence[object]) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


class _Boxed(Protocol):
    @property
    def box(self) -> Box: ...


M = TypeVar("M", bound=_Boxed)


def box_center(box: Box) -> tuple[int, int]:
    """The pixel in the middle of `box`."""
    x0, y0, x1, y1 = box
    return (x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2


def box_area(box: Box) -> int:
    """Area in pixels (0 for an empty box)."""
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def intersect(a: Box, b: Box) -> Box | None:
    """The overlap of two boxes, or None when they do not overlap."""
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def union(boxes: Sequence[Box]) -> Box:
    """The smallest box holding all `boxes`."""
    x0s, y0s, x1s, y1s = zip(*boxes, strict=True)
    return min(x0s), min(y0s), max(x1s), max(y1s)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    inter = intersect(a, b)
    if inter is None:
        return 0.0
    i = box_area(inter)
    return i / (box_area(a) + box_area(b) - i)


def inside(box: Box, region: Box) -> bool:
    """True when the centre of `box` lies in `region`."""
    x, y = box_center(box)
    return region[0] <= x < region[2] and region[1] <= y < region[3]


def check_region(region: Box | None) -> Box | None:
    """Validate a region `(x0, y0, x1, y1)`; raise ValueError naming the problem."""
    if region is None:
        return None
    if len(region) != 4:
        raise ValueError(f"region must be (x0, y0, x1, y1), got {region!r}")
    x0, y0, x1, y1 = (int(v) for v in region)
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"region {[x0, y0, x1, y1]} is empty: it needs x0 < x1 and y0 < y1")
    return x0, y0, x1, y1


def reading_order(items: Sequence[M]) -> list[M]:
    """Sort top to bottom, then left to right; items whose vertical middles lie within half a
    box height of a row's first item count as one row."""
    rows: list[list[M]] = []
    for item in sorted(items, key=lambda m: ((m.box[1] + m.box[3]) / 2, m.box[0])):
        mid = (item.box[1] + item.box[3]) / 2
        if rows:
            first = rows[-1][0].box
            tolerance = max(2.0, min(first[3] - first[1], item.box[3] - item.box[1]) / 2)
            if abs(mid - (first[1] + first[3]) / 2) <= tolerance:
                rows[-1].append(item)
                continue
        rows.append([item])
    return [item for row in rows for item in sorted(row, key=lambda m: m.box[0])]


def choose(
    matches: Sequence[M],
    *,
    index: int | None,
    tied: Callable[[M], bool],
    what: str,
    describe: Callable[[M], str],
) -> list[M]:
    """Apply the `index` / ambiguity rule to matches that are already ranked best first.

    With `index`: `[the index-th match in reading order]` (negative counts from the end).
    Without: the ranked list, unless more than one match satisfies `tied` (equal to the best),
    which raises AmbiguousMatch listing every match in reading order.
    """
    ordered = reading_order(matches)
    if index is not None:
        if not -len(ordered) <= index < len(ordered):
            raise NotFound(
                f"{what}: index {index} asked for, but only {len(ordered)} match(es):\n"
                + _listing(ordered, describe),
                ordered,
            )
        return [ordered[index]]
    if sum(1 for m in matches if tied(m)) > 1:
        raise AmbiguousMatch(
            f"{what} matches several places equally well (* = tied for best); "
            "add `index` (numbered below, in reading order) or `region` to pick one:\n"
            + _listing(ordered, describe, tied),
            ordered,
        )
    return list(matches)


def _listing(
    ordered: Sequence[M], describe: Callable[[M], str], best: Callable[[M], bool] | None = None
) -> str:
    """One line per match, numbered as `index` counts; `*` marks those tied for best."""
    return "\n".join(
        f"  [{i}]{'*' if best is not None and best(m) else ''} {describe(m)}" for i, m in enumerate(ordered)
    )
