"""Comparing text for `output` checks: a command's standard output or a file's text against what is expected.

`ignore_case` compares case-insensitively; `ignore_blanks` turns every run of spaces, tabs and
newlines into one space and strips both ends (OSWorld's compare_text_file does the same). The
detail says what was compared and, on a mismatch, where the texts part.
"""

from __future__ import annotations

import re
from typing import Any

_BLANKS = re.compile(r"\s+")
_SHOWN = 80


def normalise(text: str, *, ignore_case: bool, ignore_blanks: bool) -> str:
    """`text` as the comparison sees it."""
    if ignore_blanks:
        text = _BLANKS.sub(" ", text).strip()
    return text.casefold() if ignore_case else text


def compare(actual: str, check: Any, expected: str | None, what: str) -> tuple[bool, str]:
    """(ok, detail) for an OutputCheck `check` on `actual`; `expected`: equals or equals_file's text."""
    opts = {"ignore_case": check.ignore_case, "ignore_blanks": check.ignore_blanks}
    text = normalise(actual, **opts)
    if expected is not None:
        want = normalise(expected, **opts)
        if text != want:
            return False, f"{what} is {_short(actual)}, expected {_short(expected)}{_where(text, want)}"
    missing = [c for c in check.contains if normalise(c, **opts) not in text]
    if missing:
        return False, f"{what} ({_short(actual)}) lacks {missing}"
    present = [e for e in check.excludes if normalise(e, **opts) in text]
    if present:
        return False, f"{what} ({_short(actual)}) has {present}"
    return True, f"{what} is {_short(actual)}"


def _short(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "...")


def _where(a: str, b: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f" (they differ from character {at})"
