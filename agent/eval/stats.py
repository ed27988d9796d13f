"""The numbers of suite.json: success rates with their 95% Wilson score interval, medians, totals.

The Wilson interval (rather than the normal approximation, p ± 1.96·sqrt(p(1-p)/n)) stays inside
[0, 1] and is not degenerate at 0 or n successes, which is where small suites mostly are: 3 of 3
gives [0.44, 1.0], not [1.0, 1.0].
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of `passed` successes in `n` trials (None when n is 0)."""
    if n <= 0:
        return None
    p = passed / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, round(centre - half, 4)), min(1.0, round(centre + half, 4))


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def summarise(attempts: Sequence[Any]) -> dict[str, Any]:
    """attempts, passed, errors, success rate and its interval, medians and totals of a group of attempts."""
    n = len(attempts)
    passed = sum(1 for a in attempts if a.passed)
    ran = [a for a in attempts if a.started]
    cost = sum(a.usage.cost_usd for a in attempts)
    return {
        "attempts": n,
        "passed": passed,
        "failed": sum(1 for a in attempts if a.started and not a.passed and a.status != "error"),
        "errors": sum(1 for a in attempts if a.status == "error"),
        "not_started": n - len(ran),
        "success_rate": round(passed / n, 4) if n else None,
        "interval95": list(wilson(passed, n) or ()) or None,
        "median_steps": median([a.steps for a in ran]),
        "median_seconds": _round(median([a.duration_s for a in ran])),
        "median_cost_usd": _round(median([a.usage.cost_usd for a in ran]), 6),
        "cost_usd": round(cost, 6),
        "tokens": sum(a.usage.total_tokens for a in attempts),
        "seconds": round(sum(a.duration_s for a in attempts), 3),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
