"""Capture + resize to model size + encode at 1920x1080: deskpilot vs Anthropic's demo pipeline.

The reference is what Anthropic's computer-use demo does per screenshot: `scrot` writes a PNG
file, then ImageMagick's `convert -resize` writes the model-size PNG, which is read back.
Prints one JSON object.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._screens import median_ms, text_desktop
from vision.capture import Screen
from vision.encode import encode, encode_for_model, resize
from vision.geometry import Size, fit_image_size

RUNS = 50


def main() -> None:
    """Measure both pipelines on the same display in one run and print the figures."""
    size = Size(1920, 1080)
    model = fit_image_size(size)
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
    }))


if __name__ == "__main__":
    main()
