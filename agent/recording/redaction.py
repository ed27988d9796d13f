"""What may be written: JSON-safe values, with every secret value masked and no inline image data.

Secrets: every registered secret *value* is replaced by `"•••"` in every string (and dict key)
of every record and of meta.json before anything is written. A `type` action whose text held a
secret also carries `"secret": NAME` (and `"secrets": [...]` when several), so a replay can put
the value back from the environment by substituting `"•••"`. Register secrets before they can
appear: lines already written are not rewritten. Empty secret values are ignored (there is
nothing to hide).

JSON: values are made JSON-safe before writing: pydantic models are dumped, tuples become lists,
numpy scalars/arrays become numbers/lists, paths become strings, raw bytes become a placeholder,
non-finite floats become null (the files never contain NaN/Infinity). Base64 image sources
(`{"type": "base64", "data": ...}`) become `{"type": "ref", "frame": <their "frame" or
"omitted">}` and `data:...;base64,` URIs lose their payload, in every file.
"""

from __future__ import annotations

import math
import os
import re
import threading
from typing import Any

MASK = "•••"
_DATA_URI_RE = re.compile(r"^(data:[^;,]*(?:;[^;,]*)*;base64,).+", re.DOTALL)


def jsonable(obj: Any) -> Any:
    """A JSON-safe deep copy of `obj` (see the module docstring for the conversions)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else str(jsonable(k))): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [jsonable(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(obj))} bytes omitted>"
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    dump = getattr(obj, "model_dump", None)  # pydantic models (actions, SDK responses)
    if callable(dump):
        try:
            return jsonable(dump(mode="json", exclude_none=True))
        except TypeError:
            return jsonable(dump())
    item = getattr(obj, "item", None)  # numpy scalars
    tolist = getattr(obj, "tolist", None)  # numpy arrays
    if callable(tolist) and hasattr(obj, "shape"):
        return jsonable(tolist()) if getattr(obj, "shape", None) != () else jsonable(item())
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return jsonable(dataclasses.asdict(obj))
    return str(obj)


class Secrets:
    """The secret values of one recording, and the masking of them in everything written (thread-safe)."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        for name, value in (secrets or {}).items():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Register a secret: its value is never written in clear from now on."""
        if not isinstance(name, str) or not name:
            raise ValueError("a secret needs a non-empty name")
        if not isinstance(value, str):
            raise TypeError(f"secret {name}: the value must be a string, got {type(value).__name__}")
        if not value:
            return
        with self._lock:
            self._values[name] = value

    def redact(self, obj: Any) -> Any:
        """A JSON-safe deep copy of `obj` with every secret value replaced by "•••".

        A `type` action (`{"action": "type", "text": ...}`) whose text held a secret gets
        `"secret": NAME` (the first one in the text) and, with several, `"secrets": [...]`.
        Base64 image data is replaced by a reference (see the module docstring).
        """
        with self._lock:
            ordered = sorted(self._values.items(), key=lambda kv: -len(kv[1]))
        return _masked(jsonable(obj), ordered)


def _masked(obj: Any, ordered: list[tuple[str, str]]) -> Any:
    """`obj` (JSON-safe) with the secret values of `ordered` (longest first) masked, and no image data."""
    if isinstance(obj, str):
        match = _DATA_URI_RE.match(obj)
        if match:
            return match.group(1) + "<omitted>"
        for _, value in ordered:
            if value in obj:
                obj = obj.replace(value, MASK)
        return obj
    if isinstance(obj, list):
        return [_masked(v, ordered) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if obj.get("type") == "base64" and "data" in obj:
        frame = obj.get("frame")
        return {"type": "ref", "frame": _masked(frame, ordered) if isinstance(frame, str) else "omitted"}
    out = {_masked(k, ordered): _masked(v, ordered) for k, v in obj.items()}
    text = obj.get("text")
    if obj.get("action") == "type" and isinstance(text, str):
        found = sorted((text.find(v), n) for n, v in ordered if v in text)
        if found:
            names = list(dict.fromkeys(n for _, n in found))
            out["secret"] = names[0]
            if len(names) > 1:
                out["secrets"] = names
    return out
