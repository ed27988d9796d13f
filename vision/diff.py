"""Where two frames differ: the changed pixels, and two ways of grouping them into boxes.

`changed_pixels` is the one pixel-difference step. On top of it, `changed_boxes` reports
noise-free changed areas (a blinking text cursor or a glint is ignored; the rollouts compare
screens with it), and `changed_tiles` reports small padded boxes around every changed pixel
(the OCR cache re-reads just those).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

Box = tuple[int, int, int, int]

DIFF_LEVEL = 32  # a pixel changed when one of its channels moved by more than this
MIN_CHANGE_SIDE = 4  # a changed area narrower or shorter than this (px) is noise: a text cursor, a glint
MERGE_PX = 24  # changed areas closer than this are reported as one region


def changed_pixels(before: np.ndarray, after: np.ndarray, level: int = 0) -> np.ndarray:
    """A mask (H x W, uint8, 1 = changed) of the pixels where some channel moved by more than `level`.

    `level=0` marks every pixel that differs at all. Both images must have the same shape
    (H x W, or H x W x channels).
    """
    import cv2
    import numpy as np

    if before.shape != after.shape:
        raise ValueError(f"cannot compare images of shapes {before.shape} and {after.shape}")
    diff = cv2.absdiff(before, after)
    if diff.ndim == 3:
        h, w, channels = diff.shape
        if channels > 1:
            # The largest change of each pixel's channels: a max over each run of `channels` bytes
            # of a row (cv2.dilate does it in a few ms where numpy's max over the last axis is slow).
            rows = cv2.dilate(diff.reshape(h, w * channels), np.ones((1, channels), np.uint8), anchor=(0, 0))
            diff = rows[:, ::channels]
        diff = np.ascontiguousarray(diff.reshape(h, w))
    return cv2.threshold(diff, level, 1, cv2.THRESH_BINARY)[1]


def changed_boxes(before: np.ndarray, after: np.ndarray) -> list[Box]:
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
    mask = changed_pixels(before, after, DIFF_LEVEL)
    if not mask.any():
        return []
    grown = cv2.dilate(mask, np.ones((5, 5), np.uint8))  # 2 px on each side: one glyph's strokes join
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for x, y, bw, bh, _ in stats[1:count]:
        if bw - 4 >= MIN_CHANGE_SIDE and bh - 4 >= MIN_CHANGE_SIDE:
            boxes.append((int(x) + 2, int(y) + 2, int(x + bw) - 2, int(y + bh) - 2))
    return _merge(boxes)


def _merge(boxes: list[Box]) -> list[Box]:
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


def changed_tiles(mask: np.ndarray, *, tile: int = 16, pad: tuple[int, int] = (0, 0)) -> list[Box]:
    """Boxes (x0, y0, x1, y1, image pixels) around the changed pixels of a `changed_pixels` mask.

    Changed pixels whose `tile` x `tile` tiles touch (8-connected) form one group, however few
    they are (no noise is dropped); its box bounds those pixels, grows by `pad` (x, y) pixels on
    each side and is clipped to the image. No changed pixel: no box.
    """
    import cv2
    import numpy as np

    points = cv2.findNonZero(mask)
    if points is None:
        return []
    points = points.reshape(-1, 2)
    xs, ys = points[:, 0], points[:, 1]
    h, w = mask.shape[:2]
    tiles = np.zeros((-(-h // tile), -(-w // tile)), np.uint8)
    tiles[ys // tile, xs // tile] = 1
    count, labels = cv2.connectedComponents(tiles, connectivity=8)
    component = labels[ys // tile, xs // tile]
    px, py = pad
    boxes = []
    for i in range(1, count):
        selected = component == i
        gx, gy = xs[selected], ys[selected]
        boxes.append((max(0, int(gx.min()) - px), max(0, int(gy.min()) - py),
                      min(w, int(gx.max()) + 1 + px), min(h, int(gy.max()) + 1 + py)))
    return boxes
