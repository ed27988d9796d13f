"""Text line detection: the PP-OCR DB detector in onnxruntime, with a post-processing for screens.

The image is shrunk (`DetectConfig.scale_for`), padded to a multiple of 32, normalised and run
through the detector; its probability map is thresholded, each connected region scored, and the
region's bounding box grown as DB does (by `area * unclip / perimeter`) and mapped back to image
pixels. Screen text is upright, so boxes are axis-aligned rectangles (no rotated quads, no
polygon clipping library).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vision.locate.find import Box
from vision.locate.ocr_models import open_session

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DetectConfig:
    """How the detector sees an image.

    The image is shrunk so that its long side is at most `max_side`, but never below
    `min_scale`: a 1280x800 screen is seen at 0.6, 1920x1080 at 0.5. Measured on a 1280x800
    editor: at 0.6 every line that full size finds is found in about a third of the time;
    at 0.5 its white-on-blue window title is lost; on a 1920x1080 Tk form 0.5 finds all 91
    lines. Lone glyphs (galculator's 1, 3, 5, 7 keys) are lost at 0.6 but found at `fine_scale`
    0.8 (about 55 % of full size's cost): a short query asks for a fine detection
    (`TextDetector.detect(fine=True)`). `thresh`,
    `box_thresh` and `unclip` are DB's pixel threshold, minimum region score and growth ratio.
    """

    max_side: int = 768
    min_scale: float = 0.5
    fine_scale: float = 0.8
    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip: float = 1.6

    def scale_for(self, height: int, width: int) -> float:
        """The factor the detector shrinks an image of this size by (at most 1)."""
        return min(1.0, max(self.min_scale, self.max_side / max(height, width)))


class TextDetector:
    """Finds text lines in a BGR image; thread-safe (onnxruntime sessions run concurrently)."""

    def __init__(self, model: Path, config: DetectConfig | None = None, threads: int = -1) -> None:
        self.config = config or DetectConfig()
        self._session = open_session(model, threads)
        self._input = self._session.get_inputs()[0].name

    def detect(self, pixels: np.ndarray, *, fine: bool = False) -> list[Box]:
        """Boxes (image pixels, x1/y1 exclusive) of the text lines in a BGR image, top to bottom.

        `fine`: detect on the image shrunk no further than `fine_scale`: slower, but finds lone
        small glyphs (a calculator's "1" key) that the usual scale loses.
        """
        import cv2
        import numpy as np

        h, w = pixels.shape[:2]
        if h < 4 or w < 4:
            return []
        scale = self.config.scale_for(h, w)
        scale = max(scale, min(1.0, self.config.fine_scale)) if fine else scale
        small = pixels if scale >= 1.0 else cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        ph, pw = max(32, -(-sh // 32) * 32), max(32, -(-sw // 32) * 32)
        batch = np.zeros((1, 3, ph, pw), np.float32)
        # (x / 255 - 0.5) / 0.5, channels first; the padding is 0 (mid grey), as in training.
        batch[0, :, :sh, :sw] = small.transpose(2, 0, 1) * np.float32(2.0 / 255.0) - np.float32(1.0)
        prob = self._session.run(None, {self._input: batch})[0][0, 0, :sh, :sw]
        return self._boxes(prob, 1.0 / scale, (w, h))

    def _boxes(self, prob: np.ndarray, back: float, size: tuple[int, int]) -> list[Box]:
        """DB post-processing on the probability map; boxes scaled by `back` into image pixels."""
        import cv2
        import numpy as np

        cfg = self.config
        mask = cv2.dilate((prob > cfg.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        width, height = size
        boxes: list[Box] = []
        for k in range(1, count):
            x, y, bw, bh, _ = (int(v) for v in stats[k])
            if min(bw, bh) < 3:
                continue
            region = labels[y:y + bh, x:x + bw] == k
            if float(prob[y:y + bh, x:x + bw][region].mean()) < cfg.box_thresh:
                continue
            # The rectangle of the region's own pixels (the dilation only joins them), grown by
            # DB's offset `area * unclip / perimeter`.
            ys, xs = np.nonzero(region & (prob[y:y + bh, x:x + bw] > cfg.thresh))
            if len(xs) == 0:
                continue
            x, y = x + int(xs.min()), y + int(ys.min())
            bw, bh = int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1
            grow = bw * bh * cfg.unclip / (2 * (bw + bh))
            x0, y0 = max(0, int((x - grow) * back)), max(0, int((y - grow) * back))
            x1 = min(width, int(np.ceil((x + bw + grow) * back)))
            y1 = min(height, int(np.ceil((y + bh + grow) * back)))
            if x1 - x0 >= 3 and y1 - y0 >= 5:
                boxes.append((x0, y0, x1, y1))
        boxes.sort(key=lambda b: (b[1], b[0]))
        return boxes
