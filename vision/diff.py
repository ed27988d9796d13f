"""Where two screens differ: changed areas as boxes, beyond the noise of a text cursor or a glint."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DIFF_LEVEL = 32  # a pixel changed when one of its channels moved by more than this
MIN_CHANGE_SIDE = 4  # a changed area narrower or shorter than this (px) is noise: a text cursor, a glint
MERGE_PX = 24  # changed areas closer than this are reported as one region


def changed_boxes(before: np.ndarray, after: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Where two screens differ, as boxes (x0, y0, x1, y1, x1/y1 exclusive), largest first.

    A pixel changed when a channel moved by more than DIFF_LEVEL; changed pixels within 2 px of
    each other form one area, and an area narrower or shorter than MIN_CHANGE_SIDE is ignored (a
    blinking text cursor, antialiasing). Areas closer than MERGE_PX become one box. Screens of
    different sizes differ everywhere.
    """
    import cv2
    import numpy as np

    h, w = after.shape[:2]
    if before.shape != after.shape:
        return [(0, 0, w, h)]
    mask = (cv2.absdiff(before, after).max(axis=2) > DIFF_LEVEL).astype(np.uint8)
    if not mask.any():
        return []
    grown = cv2.dilate(mask, np.ones((5, 5), np.uint8))  # 2 px on each side: one glyph's strokes join
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for x, y, bw, bh, _ in stats[1:count]:
        if bw - 4 >= MIN_CHANGE_SIDE and bh - 4 >= MIN_CHANGE_SIDE:
            boxes.append((int(x) + 2, int(y) + 2, int(x + bw) - 2, int(y + bh) - 2))
    return _merge(boxes)


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    if len(boxes) > 200:  # a busy change: one region
        return [(min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                 max(b[3] for b in boxes))]
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if a[0] - MERGE_PX <= b[2] and b[0] - MERGE_PX <= a[2] and a[1] - MERGE_PX <= b[3] \
                        and b[1] - MERGE_PX <= a[3]:
                    merged[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return sorted(merged, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def screens_differ(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two screens differ beyond noise (see `changed_boxes`)."""
    return bool(changed_boxes(a, b))
