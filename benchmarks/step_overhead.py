"""Capture + resize to model size + encode at 1920x1080: deskpilot vs Anthropic's demo pipeline.

The reference is what Anthropic's computer-use demo does per screenshot: `scrot` writes a PNG
file, then ImageMagick's `convert -resize` writes the model-size PNG, which is read back.
Legibility of the model image as PNG, JPEG and WebP is measured by OCR: the words read from each
format, and how many of the lossless PNG's words each one still yields. Prints one JSON object.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from agent.models.anthropic import image_size as claude_image_size
from benchmarks._screens import median_ms, text_desktop
from vision.capture import Screen
from vision.encode import encode, encode_for_model, resize
from vision.geometry import Size

RUNS = 50


def main() -> None:
    """Measure both pipelines on the same display in one run and print the figures."""
    size = Size(1920, 1080)
    model = claude_image_size(size)
    desktop = text_desktop(size)
    try:
        with Screen(desktop.display) as screen:
            screen.grab()  # warm-up: connection and shared memory
            ours, capture = [], []
            for _ in range(RUNS):
                started = time.perf_counter()
                frame = screen.grab()
                grabbed = time.perf_counter()
                image = encode_for_model(frame.pixels, model)
                ours.append(time.perf_counter() - started)
                capture.append(grabbed - started)
            small = resize(frame.pixels, model)
            formats = {fmt: len(encode(small, fmt).data) for fmt in ("png", "jpeg", "webp")}
            legibility = _legibility(small)
        reference = []
        with tempfile.TemporaryDirectory() as tmp:
            shot, scaled = Path(tmp) / "shot.png", Path(tmp) / "scaled.png"
            env = desktop.env()
            for _ in range(RUNS):
                started = time.perf_counter()
                subprocess.run(["scrot", "-o", str(shot)], env=env, check=True, capture_output=True)
                subprocess.run(["/usr/bin/convert", str(shot), "-resize", f"{model.width}x{model.height}!",
                                str(scaled)], env=env, check=True, capture_output=True)
                scaled.read_bytes()
                reference.append(time.perf_counter() - started)
    finally:
        desktop.stop()
    ours_ms, ref_ms = median_ms(ours), median_ms(reference)
    print(json.dumps({
        "benchmark": "step_overhead",
        "screen": str(size), "model_image": str(model), "runs": RUNS,
        "deskpilot_median_ms": ours_ms, "deskpilot_capture_median_ms": median_ms(capture),
        "reference_scrot_convert_median_ms": ref_ms,
        "speedup": round(ref_ms / ours_ms, 1),
        "png_bytes": len(image.data), "model_image_bytes_by_format": formats,
        "legibility_by_format": legibility,
    }))


def _legibility(pixels) -> dict:
    """OCR words read from the model image in each format, against the lossless PNG's words."""
    from collections import Counter

    from vision.encode import decode
    from vision.locate.ocr import ocr

    words = {fmt: Counter(w.text for w in ocr(decode(encode(pixels, fmt).data))) for fmt in ("png", "jpeg", "webp")}
    reference = words["png"]
    return {fmt: {"words": sum(found.values()),
                  "png_words_kept": round(sum((found & reference).values()) / max(1, sum(reference.values())), 3)}
            for fmt, found in words.items()}


if __name__ == "__main__":
    main()
