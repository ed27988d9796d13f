"""Matching a word or phrase against the words OCR read: normalising, scoring, choosing.

A query of one or more words matches a run of consecutive OCR words on one visual line, which
may span several OCR boxes (two labels side by side). By default case is ignored and OCR slips
are tolerated: punctuation is dropped, look-alikes (0/O, 1/l/I, 5/S, rn/m) are folded, and the
score is `1 - edit distance / length`. `exact=True` means exact: the query's words must be the
whole text of one OCR word box, or for several words of a run of consecutive boxes on one line,
case and punctuation included, nothing stripped (`1` does not match a key read as `+1-`); only
the spaces between words are not compared (`"Save  as"` is `"Save as"`). A run that covers only
part of an OCR line (the "Save" of "Save as") scores 0.01 lower than a whole one, so the whole
one wins.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from vision.locate.find import Box, NotFound, box_center, check_region, choose, inside, union
from vision.locate.ocr_engine import TextBox

DEFAULT_MIN_SCORE = 0.8
PARTIAL_PENALTY = 0.01  # a run that is only part of its OCR line ranks below a whole line


@dataclass(frozen=True)
class TextMatch:
    """A word or phrase found on the screen.

    `box` is the union of the words it spans (screen pixels); `score` is the text similarity
    (1.0 for a perfect, whole-line match); `confidence` the OCR's mean confidence of its words.
    """

    text: str
    box: Box
    score: float
    confidence: float
    words: tuple[TextBox, ...] = ()

    @property
    def center(self) -> tuple[int, int]:
        """The pixel in the middle of the box: where to click."""
        return box_center(self.box)

    def describe(self) -> str:
        """`'text' at [x0, y0, x1, y1] score S confidence C`, for error messages."""
        return f"{self.text!r} at {list(self.box)} score {self.score:.2f} confidence {self.confidence:.2f}"


_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "8": "b"})


def normalize(text: str) -> str:
    """The comparison form of text for fuzzy matching: case-folded, punctuation and spaces
    removed, OCR look-alikes folded (0/o, 1/l/i, 5/s, 8/b, rn/m, vv/w)."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("rn", "m").replace("vv", "w")
    return "".join(ch for ch in folded.translate(_FOLD) if ch.isalnum())


def similarity(a: str, b: str, floor: float = 0.0) -> float:
    """`1 - edit distance / longer length` (1.0 for equal strings); 0.0 when below `floor`."""
    from rapidfuzz.distance import Levenshtein

    if a == b:
        return 1.0
    longest = max(len(a), len(b))
    if longest == 0:
        return 0.0
    budget = int((1.0 - floor) * longest + 1e-9)  # the most edits that still reach `floor`
    distance = Levenshtein.distance(a, b, score_cutoff=budget)  # budget + 1 when over budget
    return 1.0 - distance / longest if distance <= budget else 0.0


def _chains(words: Sequence[TextBox]) -> list[list[TextBox]]:
    """Words in visual lines: same baseline, left to right, split where the gap exceeds two
    text heights (a phrase never jumps across a column)."""
    rows: list[list[TextBox]] = []
    for word in sorted(words, key=lambda w: ((w.box[1] + w.box[3]) / 2, w.box[0])):
        h = word.box[3] - word.box[1]
        for row in rows[-3:]:
            ref = row[0].box
            rh = ref[3] - ref[1]
            if abs(word.box[3] - ref[3]) <= 0.35 * min(h, rh) and max(h, rh) <= 1.6 * min(h, rh):
                row.append(word)
                break
        else:
            rows.append([word])
    chains: list[list[TextBox]] = []
    for row in rows:
        row.sort(key=lambda w: w.box[0])
        chain = [row[0]]
        for word in row[1:]:
            prev = chain[-1]
            if word.box[0] - prev.box[2] > 2 * min(word.box[3] - word.box[1], prev.box[3] - prev.box[1]):
                chains.append(chain)
                chain = [word]
            else:
                chain.append(word)
        chains.append(chain)
    return chains


def match_text(
    words: Sequence[TextBox],
    query: str,
    *,
    exact: bool = False,
    region: Box | None = None,
    index: int | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[TextMatch]:
    """Match `query` (a word or phrase) against OCR words; matches ranked best first.

    `region` (x0, y0, x1, y1, screen pixels) keeps only the words whose centre lies in it.
    `index` picks the n-th match in reading order and returns just it. Without `index`, several
    matches of equal best score raise AmbiguousMatch listing each; none raises NotFound naming
    the closest text seen.
    """
    region = check_region(region)
    q_words = query.split()
    if not q_words:
        raise ValueError("the text to find is empty")
    what = f"text {query!r}" + (" (exact)" if exact else "")
    pool = [w for w in words if w.text.strip() and (region is None or inside(w.box, region))]
    scored = _score_runs(pool, query, exact=exact, floor=min_score)
    matches: list[TextMatch] = []
    used: set[int] = set()
    for m in scored:
        ids = {id(w) for w in m.words}
        if ids & used:
            continue  # overlaps a better match
        used |= ids
        matches.append(m)
    if not matches:
        # Again, loosely, only to name the closest text in the error.
        near = _score_runs(pool, query, exact=False, floor=min(min_score, 0.5))
        raise NotFound(_not_found_message(what, near, pool, region, min_score), _closest(near))
    best = matches[0].score
    return choose(matches, index=index, tied=lambda m: m.score >= best - 1e-9, what=what,
                  describe=TextMatch.describe)


def _score_runs(pool: Sequence[TextBox], query: str, *, exact: bool, floor: float) -> list[TextMatch]:
    """Every run of consecutive words (one to two words more or fewer than the query) that
    scores at least `floor`, ranked best first."""
    q_words = query.split()
    q_text, q_norm = " ".join(q_words), normalize(query)
    line_sizes: dict[int, int] = {}
    for w in pool:
        line_sizes[w.line] = line_sizes.get(w.line, 0) + 1
    norms = {id(w): normalize(w.text) for w in pool}
    scored: list[TextMatch] = []
    for chain in _chains(pool):
        for start in range(len(chain)):
            for length in range(max(1, len(q_words) - 2), len(q_words) + 3):
                run = chain[start:start + length]
                if len(run) < length:
                    break
                if exact:
                    if len(run) != len(q_words) or " ".join(w.text for w in run) != q_text:
                        continue
                    likeness = 1.0
                elif q_norm:
                    joined = "".join(norms[id(w)] for w in run)
                    if min(len(joined), len(q_norm)) < floor * max(len(joined), len(q_norm)):
                        continue  # the lengths alone rule it out
                    likeness = similarity(joined, q_norm, floor=floor)
                else:  # a query of symbols only ("+", "..."): compare the symbols themselves
                    likeness = float("".join(w.text for w in run) == "".join(q_words))
                whole = sum(line_sizes[n] for n in {w.line for w in run}) == len(run)
                score = round(max(0.0, likeness - (0.0 if whole else PARTIAL_PENALTY)), 4)
                if likeness > 0.0 and score >= floor:
                    confidence = round(sum(w.confidence for w in run) / len(run), 4)
                    text = " ".join(w.text for w in run)
                    scored.append(TextMatch(text, union([w.box for w in run]), score, confidence, tuple(run)))
    scored.sort(key=lambda m: (-m.score, -m.confidence, len(m.words)))
    return scored


def loose_lines(words: Sequence[TextBox], query: str, floor: float) -> dict[int, float]:
    """Line id -> the best fuzzy score of any run of words through that line (runs scoring at
    least `floor` only): which lines could hold `query`, judged on a rough reading."""
    best: dict[int, float] = {}
    for m in _score_runs([w for w in words if w.text.strip()], query, exact=False, floor=floor):
        for w in m.words:
            best[w.line] = max(best.get(w.line, 0.0), m.score)
    return best


def _closest(scored: Sequence[TextMatch], limit: int = 5) -> list[TextMatch]:
    out: list[TextMatch] = []
    for m in scored:
        if all(m.text != o.text for o in out):
            out.append(m)
        if len(out) == limit:
            break
    return out


def _not_found_message(
    what: str, scored: Sequence[TextMatch], pool: Sequence[TextBox], region: Box | None, min_score: float
) -> str:
    where = f" in region {list(region)}" if region else ""
    if not pool:
        return f"{what} not found{where}: no text was read there"
    head = f"{what} not found{where} (needs score >= {min_score:.2f}; {len(pool)} words read)"
    closest = _closest(scored)
    if not closest:
        sample = ", ".join(repr(w.text) for w in pool[:12])
        return f"{head}; nothing similar. Some words seen: {sample}"
    return head + "; closest:\n" + "\n".join(f"  {m.describe()}" for m in closest)
