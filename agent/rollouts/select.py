"""Choosing one attempt: verification by checks, the cheapest, the judge, and the fallback rule.

Meta `selection` says which rule decided, `chosen_reason` why:

1. "checks": the task has checks, so an attempt passes only if its run succeeded with every check
   holding. Among passing attempts the cheapest wins: fewest steps, then fewest tokens, then the
   lower index. When another passing attempt ended on a different screen than that cheapest one
   ("different": `screens_differ`, some changed area at least MIN_CHANGE_SIDE pixels wide and tall
   after ignoring changes smaller than that, such as a blinking text cursor), the checks did not
   decide between them, and the judge (3) compares the passing attempts. When no attempt passes,
   the checks have decided that none did: an honest IMPOSSIBLE report is preferred, then the attempt
   with the most checks holding, then the cheapest.
2. With no checks (a plain goal, or a task without checks) the candidates are the attempts whose
   model finished (status succeeded) and those that reported the task impossible (status failed,
   message starting "IMPOSSIBLE", also inside a task's "the model did not finish: ..." message).
   No candidate: the fallback rule over all attempts ("fallback"). One candidate: it wins ("only").
   All candidates succeeded on the same final screen: the cheapest ("identical"). Else the judge.
3. "judge": see agent.rollouts.judge; a judge that cannot decide falls back ("fallback").

The fallback rule: the cheapest attempt that succeeded (fewest steps, then tokens); if none, the
cheapest honest IMPOSSIBLE report; if none, the cheapest attempt that did not crash; if every
attempt crashed, none is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.rollouts.attempts import Attempt
from agent.rollouts.narrative import load_pixels
from vision.diff import screens_differ


@dataclass
class Selection:
    """Which attempt was chosen, by which rule, and why."""

    chosen: int | None
    rule: str  # checks | only | identical | judge | fallback | none
    reason: str
    judge: dict | None = None


def fallback_choice(attempts: Sequence[Attempt]) -> Attempt | None:
    """The documented fallback: the cheapest success, else the cheapest IMPOSSIBLE report, else the
    cheapest attempt that did not crash; None when every attempt crashed (or none ran)."""
    def rank(a: Attempt) -> int:
        return 0 if a.status == "succeeded" else 1 if a.impossible else 2
    pool = [a for a in attempts if a.crashed is None and a.started]
    return min(pool, key=lambda a: (rank(a), *a.cost_key)) if pool else None


Judging = Callable[[list[Attempt], str], Selection]


def select(attempts: list[Attempt], checks: int | None, judge: Judging) -> Selection:
    """Choose one of `attempts` by the rules of the module docstring.

    `checks`: how many checks the task has when they decide (a verified run), else None. `judge(candidates,
    why)` asks the judge among candidates the rules could not tell apart.
    """
    if checks is not None:
        passing = [a for a in attempts if a.passed]
        if passing:
            best = min(passing, key=lambda a: a.cost_key)
            others = [a for a in passing if a is not best and differs(a, best)]
            if not others:
                return Selection(best.index, "checks",
                                 f"the cheapest of {len(passing)} passing attempts ({best.steps} steps, "
                                 f"{best.usage.total_tokens} tokens)")
            return judge(passing, f"{len(passing)} attempts passed the checks but ended on different "
                                  f"screens (attempts {', '.join(str(a.index) for a in others)} differ "
                                  f"from the cheapest, {best.index})")
        pool = [a for a in attempts if a.crashed is None and a.started]
        if not pool:
            return Selection(None, "none", "every attempt crashed" if any(a.started for a in attempts)
                             else "no attempt ran")
        best = min(pool, key=lambda a: (not a.impossible, -sum(1 for c in a.checks if c.get("ok")), *a.cost_key))
        why = ("it reported the task impossible" if best.impossible else
               f"most checks held ({sum(1 for c in best.checks if c.get('ok'))} of {checks})")
        return Selection(best.index, "checks", f"no attempt passed the checks; {why}")
    candidates = [a for a in attempts if a.crashed is None and (a.status == "succeeded" or a.impossible)]
    if not candidates:
        return fallback(attempts, "no attempt finished or reported the task impossible")
    if len(candidates) == 1:
        only = candidates[0]
        what = "finished" if only.status == "succeeded" else "reported the task impossible"
        return Selection(only.index, "only", f"the only attempt that {what}")
    best = min(candidates, key=lambda a: a.cost_key)
    if all(a.status == "succeeded" for a in candidates) and not any(
            differs(a, best) for a in candidates if a is not best):
        return Selection(best.index, "identical", f"the cheapest of {len(candidates)} finished attempts that "
                                                  "ended on the same screen")
    return judge(candidates, f"no checks decide between {len(candidates)} attempts")


def fallback(pool: Sequence[Attempt], why: str, judge: dict | None = None) -> Selection:
    """The fallback rule's choice among `pool`, saying `why` it came to that (`judge`: its record, if asked)."""
    best = fallback_choice(pool)
    if best is None:
        return Selection(None, "none", f"{why}; every attempt crashed", judge)
    what = ("the cheapest that succeeded" if best.status == "succeeded" else
            "the cheapest IMPOSSIBLE report" if best.impossible else "the cheapest that did not crash")
    return Selection(best.index, "fallback", f"{why}; fallback rule: {what}", judge)


def differs(a: Attempt, b: Attempt) -> bool:
    """Whether two attempts ended on different screens (both final screens readable)."""
    pa, pb = load_pixels(a.final_frame), load_pixels(b.final_frame)
    return pa is not None and pb is not None and screens_differ(pa, pb)
