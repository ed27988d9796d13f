"""Query-led reading: which detected lines a look-up must read, and which it must read accurately.

A look-up for a query reads, in order:
1. with the fast recogniser, every unread line whose row is wide enough to hold the query
   (`could_hold`); narrower rows are left for later (a background read, for the cache);
2. with the accurate recogniser, every line whose rough reading comes near the query
   (`LOOSE_SCORE`) and near enough the best match to compete with it (`to_confirm`), unless the
   rough reading already matches perfectly (and the query is not `exact`, which always trusts
   only the accurate reading). The final match is judged on those readings, so a rough
   misreading of a few characters can neither invent nor hide a competing match.
A query of up to SHORT_GLYPHS characters first has the frame detected again at a finer scale: the
shrunk image the detector normally sees loses lone small glyphs (a calculator's keys).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vision.locate.ocr_engine import Line
from vision.locate.text_match import PARTIAL_PENALTY, loose_lines, normalize

SHORT_GLYPHS = 3  # a query this short may be a lone glyph or two, which only a fine detection finds
LOOSE_SCORE = 0.6  # a rough reading this close to the query gets read accurately
MIN_GLYPH_WIDTH = 0.12  # of a line box's height: narrower than any glyph of a UI font (an "i" is ~0.2)


def needed_glyphs(query: str, *, exact: bool, min_score: float) -> int:
    """The fewest glyphs a run of text can have and still match `query`."""
    if exact:
        return len("".join(query.split()))
    letters = len(normalize(query))
    if letters == 0:  # symbols only: compared as they are
        return len("".join(query.split()))
    return max(1, math.ceil(min_score * letters))


def needs_fine_detection(query: str, *, exact: bool, min_score: float) -> bool:
    """True for a query short enough to be a lone small label (a key, an "OK")."""
    return len("".join(query.split())) <= SHORT_GLYPHS


def rows(lines: Sequence[Line]) -> list[list[Line]]:
    """Lines in chains along one text row, split where the gap exceeds two line heights: the
    boxes a phrase may span (as `text_match` chains words)."""
    chains: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: ((ln.box[1] + ln.box[3]) / 2, ln.box[0])):
        h = line.box[3] - line.box[1]
        for chain in reversed(chains[-4:]):
            last = chain[-1].box
            lh = last[3] - last[1]
            same_row = abs((line.box[1] + line.box[3]) - (last[1] + last[3])) / 2 <= 0.35 * min(h, lh)
            if same_row and -min(h, lh) <= line.box[0] - last[2] <= 2 * min(h, lh):
                chain.append(line)
                break
        else:
            chains.append([line])
    return chains


def could_hold(lines: Sequence[Line], query: str, *, exact: bool, min_score: float) -> list[Line]:
    """The lines whose row (with its neighbours) is wide enough for the query's glyphs."""
    glyphs = needed_glyphs(query, exact=exact, min_score=min_score)
    keep: list[Line] = []
    for chain in rows(lines):
        width = sum(ln.box[2] - ln.box[0] for ln in chain)
        height = min(ln.box[3] - ln.box[1] for ln in chain)
        if width >= glyphs * MIN_GLYPH_WIDTH * height:
            keep.extend(chain)
    return keep


def to_confirm(lines: Sequence[Line], query: str, *, exact: bool, min_score: float) -> list[Line]:
    """Lines to read accurately: those not read accurately yet whose rough reading could, read
    again, decide the look-up: near the query (>= LOOSE_SCORE) and within `slack` of the best score
    seen (or of `min_score` while nothing reaches it), except a fuzzy query's perfect rough matches;
    and those the fast model could not read at all.

    `slack` is what a rough misreading of two characters can cost: max(0.1, 2 / letters) (the fast
    model misreads about 1 character in 200 on screen text).
    """
    pending = [ln for ln in lines if ln.read and ln.accurate is None]
    if not pending:
        return []
    letters = len(normalize(query))
    if not letters:  # symbols only: a rough reading cannot be trusted to rule them out
        return pending
    words = [w for ln in lines for w in ln.words]
    near = loose_lines(words, query, LOOSE_SCORE)
    best = max(near.values(), default=0.0)
    slack = max(0.1, 2 / letters)
    floor = max(LOOSE_SCORE, (best if best >= min_score else min_score) - slack)
    perfect = 1.0 - PARTIAL_PENALTY - 1e-9
    return [ln for ln in pending if not ln.words  # illegible to the fast model: only the accurate one can tell
            or (near.get(ln.id, 0.0) >= floor and (exact or near[ln.id] < perfect))]
