"""Elements of the accessibility tree: roles, names, boxes; finding one by role and name, or under a point.

Pure facts over a `TreeSource` (agnostic of how the tree is read; `vision.locate.atspi` reads it
on Linux through AT-SPI):

- `nodes()` is every object of every application as the toolkit reports it (role, name, states,
  parent and children), read afresh; `boxes(keys)` gives the screen boxes of some of them, so
  only the boxes a question needs are fetched.
- Roles are written with ARIA's names, as Playwright's `get_by_role` does (`button` matches push
  and toggle buttons, `textbox` text fields, `menuitem` menu items ...); the toolkit's own role
  names (AT-SPI's "push button", "label", "panel") are accepted too. `ROLES` is the table.
- An element is *showing* when it and its ancestors say so (states `showing` and `visible`) and
  its box, clipped by the windows, viewports and scroll panes around it and by the screen, is
  not empty. Only showing elements are targets; one that exists but does not show is named in
  the error, never clicked.
- `name` matches as a case-insensitive substring; a name equal to the query (case aside) ranks
  above a mere substring, so `{role: button, name: "+"}` is the "+" key, not "M+"; `exact`
  asks for the whole name, case included. Several equally good matches without `index` are an
  error listing them (reading order, numbered as `index` counts), never a silent pick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vision.locate.find import AmbiguousMatch, Box, FindError, NotFound, box_area, choose, intersect
from vision.locate.roles import ATSPI_ROLES, INTERACTIVE, ROLES, aria_role, known_role_names, normalize_role, roles_for

Key = tuple[str, str]  # how a source names an object (AT-SPI: bus name, object path)

# containers that clip what they hold (a box outside them does not show)
_CLIPPING = frozenset({"frame", "window", "dialog", "alert", "file chooser", "color chooser", "font chooser",
                       "viewport", "scroll pane", "internal frame", "popup menu", "tool tip", "notification"})
_TOP_LEVEL = frozenset({"frame", "window", "dialog", "alert", "file chooser", "color chooser", "font chooser",
                        "popup menu", "tool tip", "notification", "menu"})
_POPUPS = frozenset({"menu", "popup menu", "combo box"})  # what opens its items in a window of their own
MAX_LISTED = 8  # candidates named in an error


class NoTree(FindError):
    """No accessibility tree can be read here (no bus, no toolkit support, a missing library): never a guess."""


@dataclass(frozen=True)
class Node:
    """One object of an application's tree, as read (no box yet)."""

    key: Key
    role: str  # the toolkit's (AT-SPI) role name, e.g. "push button"
    name: str
    states: frozenset[str]
    parent: Key | None
    children: tuple[Key, ...] = ()
    index: int = 0  # among its parent's children
    app: str = ""  # the application's name
    component: bool = True  # it has a box on the screen


class TreeSource(Protocol):
    """Where a tree comes from (e.g. `vision.locate.atspi.AtspiTree`)."""

    def nodes(self) -> list[Node]:
        """Every object of every application, read now. NoTree when there is no tree to read."""

    def boxes(self, keys: Sequence[Key]) -> dict[Key, Box | None]:
        """The screen boxes (x0, y0, x1, y1, x1/y1 exclusive) of `keys`; None for one without a box.

        A source may also offer `child_at(key, point) -> Key | None`, the toolkit's own hit test,
        which `Snapshot.at` uses in containers with many children."""


@dataclass(frozen=True)
class Element:
    """An element on the screen: its role (ARIA name), name, visible box, states and where it sits in its tree.

    `path` runs from the top-level window down to the element: (role, name, index among its
    parent's children) per level. `box` is the part that shows (clipped by what holds it).
    """

    role: str
    name: str
    box: Box
    states: tuple[str, ...] = ()
    path: tuple[tuple[str, str, int], ...] = ()
    atspi_role: str = ""
    app: str = ""
    key: Key | None = field(default=None, compare=False, repr=False)
    twins: int = 1  # elements a target of this role and name matches (see `Snapshot.at`)
    nth: int = 0  # this one's `index` among them

    @property
    def center(self) -> tuple[int, int]:
        """The pixel in the middle of the visible box: where to click."""
        return (self.box[0] + self.box[2] - 1) // 2, (self.box[1] + self.box[3] - 1) // 2

    def describe(self) -> str:
        """`button '7' at [x0, y0, x1, y1]`, for messages."""
        return f"{self.role} {self.name!r} at {list(self.box)}"

    def as_dict(self) -> dict[str, Any]:
        """For recordings and `inspect --json`: role, name, box, states, path, app (and twins, nth when a target of
        its role and name matches others too)."""
        out = {"role": self.role, "name": self.name, "box": list(self.box), "states": list(self.states),
               "path": [list(p) for p in self.path], "atspi_role": self.atspi_role, "app": self.app}
        if self.twins > 1:
            out["twins"], out["nth"] = self.twins, self.nth
        return out


def _name_score(name: str, wanted: str | None, exact: bool) -> float:
    """1.0 for the whole name, 0.5 for a substring, 0.0 for no match (`wanted` None: any name)."""
    if wanted is None:
        return 1.0
    if exact:
        return 1.0 if name == wanted else 0.0
    have, want = " ".join(name.casefold().split()), " ".join(wanted.casefold().split())
    if have == want:
        return 1.0
    return 0.5 if want in have else 0.0


class Snapshot:
    """The tree of one moment: every node read once, boxes fetched as questions need them."""

    def __init__(self, source: TreeSource, screen: Box | None = None) -> None:
        self.source, self.screen = source, screen
        self.nodes = {node.key: node for node in source.nodes()}
        self._boxes: dict[Key, Box | None] = {}

    # --- boxes and visibility ---------------------------------------------------------------
    def fetch(self, keys: Iterable[Key]) -> None:
        """Fetch the boxes of `keys` not fetched yet (one batch)."""
        missing = [k for k in dict.fromkeys(keys) if k not in self._boxes and k in self.nodes]
        if missing:
            got = self.source.boxes(missing)
            for key in missing:
                box = got.get(key)
                self._boxes[key] = box if box is not None and box[0] < box[2] and box[1] < box[3] else None

    def ancestors(self, key: Key) -> list[Node]:
        """The node's ancestors, nearest first (applications included)."""
        out, seen = [], {key}
        parent = self.nodes[key].parent
        while parent is not None and parent in self.nodes and parent not in seen:
            seen.add(parent)
            out.append(self.nodes[parent])
            parent = self.nodes[parent].parent
        return out

    def flagged_showing(self, key: Key) -> bool:
        """The node and every ancestor below its application say they are showing and visible."""
        for node in [self.nodes[key], *self.ancestors(key)]:
            if node.role == "application":
                return True
            if not {"showing", "visible"} <= node.states:
                return False
        return True

    def visible_box(self, key: Key) -> Box | None:
        """The part of the node's box that shows: clipped by its windows, viewports and the screen (the items of
        an open menu are a window of their own: what holds the menu does not clip them)."""
        clips = []
        for ancestor in self.ancestors(key):
            if ancestor.role in _POPUPS:
                break
            if ancestor.role in _CLIPPING:
                clips.append(ancestor.key)
        self.fetch([key, *clips])
        box = self._boxes.get(key)
        for clip in [*(self._boxes.get(c) for c in clips), self.screen]:
            if box is not None and clip is not None:
                box = intersect(box, clip)
        return box

    def element(self, key: Key, box: Box | None = None) -> Element:
        """The node as an Element (its box: the visible one unless given)."""
        node = self.nodes[key]
        box = box if box is not None else (self.visible_box(key) or (0, 0, 0, 0))
        chain = [n for n in reversed([node, *self.ancestors(key)]) if n.role != "application"]
        path = tuple((aria_role(n.role), n.name, n.index) for n in chain)
        states = tuple(sorted(s for s in node.states if s in _SHOWN_STATES))
        return Element(aria_role(node.role), node.name, box, states, path, node.role, node.app, key)

    # --- questions ----------------------------------------------------------------------------
    def find(self, role: str | None, name: str | None = None, *, exact: bool = False, region: Box | None = None,
             index: int | None = None) -> list[Element]:
        """The showing elements of `role` whose name matches, best first (see the module docstring).

        NotFound names what was searched and what came closest (the same name with another
        role, or an element that exists but does not show); AmbiguousMatch lists the ties.
        """
        roles = roles_for(role) if role else None
        what = _what(role, name, exact)
        scored = [(n, s) for n in self.nodes.values()
                  if (roles is None or n.role in roles) and n.role != "application"
                  and (s := _name_score(n.name, name, exact)) > 0]
        shown: list[tuple[Element, float]] = []
        hidden: list[Node] = []
        for node, score in scored:
            box = self.visible_box(node.key) if self.flagged_showing(node.key) else None
            if box is None or (region is not None and intersect(box, region) is None):
                hidden.append(node)
                continue
            if region is not None:
                box = intersect(box, region) or box
            shown.append((self.element(node.key, box), score))
        if not shown:
            raise NotFound(self._not_found(what, roles, name, hidden, region), [])
        shown.sort(key=lambda pair: -pair[1])
        best = shown[0][1]
        ranked = [e for e, _ in shown]
        scores = {id(e): s for e, s in shown}
        return choose(ranked, index=index, tied=lambda e: scores[id(e)] >= best, what=what,
                      describe=Element.describe)

    def _not_found(self, what: str, roles: frozenset[str] | None, name: str | None, hidden: list[Node],
                   region: Box | None) -> str:
        apps = sorted({n.app or "?" for n in self.nodes.values() if n.role == "application"})
        if not self.nodes:
            return (f"{what} not found: no application on this display exposes an accessibility tree "
                    "(GTK and Qt programs do once the accessibility bus runs; Tk programs never do)")
        where = f" in region {list(region)}" if region else ""
        message = f"{what} not found{where} among {len(self.nodes)} accessible objects of {', '.join(apps)}"
        if hidden:
            listing = "; ".join(f"{aria_role(n.role)} {n.name!r}" for n in hidden[:MAX_LISTED])
            message += f"; exists but does not show{where}: {listing}"
        if name is not None:
            other = [n for n in self.nodes.values() if _name_score(n.name, name, False) > 0
                     and (roles is None or n.role not in roles) and n.role != "application"]
            if other:
                listing = "; ".join(f"{aria_role(n.role)} {n.name!r}" for n in other[:MAX_LISTED])
                message += f"; the name matches other roles: {listing}"
        return message

    def in_order(self) -> list[Key]:
        """Every node, depth first from the applications, children in order."""
        out: list[Key] = []
        stack = [k for k, n in reversed(self.nodes.items()) if n.parent is None or n.parent not in self.nodes]
        seen: set[Key] = set()
        while stack:
            key = stack.pop()
            if key in seen or key not in self.nodes:
                continue
            seen.add(key)
            out.append(key)
            stack += reversed(self.nodes[key].children)
        return out

    def showing(self, roles: frozenset[str] | None = None) -> list[Element]:
        """Every showing element (of `roles`, AT-SPI names, when given), in tree order."""
        keys = [k for k in self.in_order() if (n := self.nodes[k]).role != "application" and n.component
                and (roles is None or n.role in roles) and self.flagged_showing(k)]
        self.fetch(keys + [a.key for k in keys for a in self.ancestors(k) if a.role in _CLIPPING])
        out = []
        for key in keys:
            box = self.visible_box(key)
            if box is not None:
                out.append(self.element(key, box))
        return out

    def at(self, point: tuple[int, int]) -> Element | None:
        """The element a click at `point` lands on: the deepest showing object there, or the nearest ancestor
        a person acts on (a button, not the label inside it). None when nothing (or no single window) is there.
        """
        x, y = point

        def holds(key: Key) -> bool:
            box = self._boxes.get(key)
            return box is not None and box[0] <= x < box[2] and box[1] <= y < box[3]

        popped = [k for k, n in self.nodes.items() if n.parent in self.nodes and self.nodes[n.parent].role in _POPUPS
                  and {"showing", "visible"} <= n.states and n.component and self.flagged_showing(k)]
        self.fetch(popped)
        over = [k for k in popped if holds(k)]  # an open menu lies over the windows
        if over:
            return self.counted(self.element(min(over, key=lambda k: box_area(self._boxes[k] or (0, 0, 0, 0)))))
        tops = [k for k, n in self.nodes.items() if n.role in _TOP_LEVEL and n.parent in self.nodes
                and self.nodes[n.parent].role == "application" and self.flagged_showing(k)]
        self.fetch(tops)
        windows = [k for k in tops if holds(k)]
        if len(windows) > 1:  # the one on top: the active window, else a popup
            windows = [k for k in windows if "active" in self.nodes[k].states] or \
                      [k for k in windows if self.nodes[k].role in ("popup menu", "menu", "tool tip")] or windows
        if len(windows) != 1:
            return None
        current = windows[0]
        child_at = getattr(self.source, "child_at", None)
        while True:
            kids = [k for k in self.nodes[current].children if k in self.nodes
                    and {"showing", "visible"} <= self.nodes[k].states and self.nodes[k].component]
            if not kids:
                break
            hit = child_at(current, point) if child_at is not None and len(kids) > 8 else None
            if hit in kids:  # the toolkit's own hit test: one call instead of every child's box
                self.fetch([hit])
                inner = [hit] if holds(hit) else []
            else:
                self.fetch(kids)
                inner = [k for k in kids if holds(k)]
            if not inner:
                break
            current = min(inner, key=lambda k: box_area(self._boxes[k] or (0, 0, 0, 0)))
        chain = [self.nodes[current], *self.ancestors(current)]
        chosen = next((n for n in chain[:4] if n.role in INTERACTIVE), None) or \
            next((n for n in chain[:2] if n.name.strip()), chain[0])
        return self.counted(self.element(chosen.key))

    def counted(self, element: Element) -> Element:
        """`element` with `twins` and `nth`: how many elements `{role, name}` (as a target writes them) matches
        equally well, and which of them, in reading order, this one is (as `index` counts)."""
        from dataclasses import replace

        if not element.name.strip():
            return element
        try:
            self.find(element.role, element.name)
        except AmbiguousMatch as several:
            keys = [c.key for c in several.candidates]
            if element.key in keys:
                return replace(element, twins=len(keys), nth=keys.index(element.key))
        except (NotFound, ValueError):
            pass
        return element


_SHOWN_STATES = frozenset({"active", "checked", "editable", "enabled", "expanded", "focused", "pressed", "selected",
                           "sensitive", "multi-line", "single-line", "indeterminate", "read-only", "modal",
                           "is-default", "collapsed", "focusable"})


def _what(role: str | None, name: str | None, exact: bool) -> str:
    parts = [f"role {role!r}" if role else "any role"]
    if name is not None:
        parts.append(f"name {name!r}" + (" (exact)" if exact else ""))
    return "element with " + " and ".join(parts)


def find_element(source: TreeSource, role: str | None, name: str | None = None, *, exact: bool = False,
                 region: Box | None = None, index: int | None = None, screen: Box | None = None) -> Element:
    """One look for the one showing element of `role` and `name` (see `Snapshot.find`)."""
    return Snapshot(source, screen).find(role, name, exact=exact, region=region, index=index)[0]


def element_at(source: TreeSource, point: tuple[int, int], screen: Box | None = None) -> Element | None:
    """The element under `point` (see `Snapshot.at`); None when none is (or no tree can be read)."""
    try:
        return Snapshot(source, screen).at(point)
    except NoTree:
        return None


def format_tree(elements: Sequence[Element]) -> str:
    """An indented listing, one element per line (role, name, box, states), under a line per application,
    as `deskpilot inspect` prints it."""
    lines, app = [], None
    for e in elements:
        if e.app != app:
            app = e.app
            lines.append(f"application {app!r}")
        states = [s for s in e.states if s not in ("enabled", "sensitive", "focusable")]
        shown = f"  [{', '.join(states)}]" if states else ""
        name = f" {e.name!r}" if e.name else ""
        lines.append(f"{'  ' * len(e.path)}{e.role}{name} {list(e.box)}{shown}")
    return "\n".join(lines)


OBSERVATION_HEADER = "Interactive elements on the screen (role \"name\" at x,y in screenshot pixels):"
MAX_OBSERVED = 150  # elements listed in one observation


def observation(elements: Sequence[Element], to_model: Callable[[int, int], tuple[int, int]],
                limit: int = MAX_OBSERVED) -> str:
    """The compact list a model gets beside a screenshot: one line per element, `role "name" at x,y` (its centre
    in the model's image pixels), with the states that change what a click does (focused, checked, disabled...)."""
    lines = [OBSERVATION_HEADER]
    for e in elements[:limit]:
        x, y = to_model(*e.center)
        flags = [s for s in ("focused", "checked", "selected", "expanded", "pressed") if s in e.states]
        if "enabled" not in e.states and "sensitive" not in e.states:
            flags.append("disabled")
        name = json.dumps(e.name, ensure_ascii=False) if e.name else '""'
        lines.append(f"{e.role} {name} at {x},{y}" + (f" [{', '.join(flags)}]" if flags else ""))
    if len(elements) > limit:
        lines.append(f"... and {len(elements) - limit} more")
    return "\n".join(lines)


def describe_path(path: Sequence[Sequence[Any]]) -> str:
    """A path as `window 'galculator' > button '7'`, for messages."""
    return " > ".join(f"{p[0]} {p[1]!r}" if p[1] else str(p[0]) for p in path)


def path_similarity(a: Sequence[Sequence[Any]], b: Sequence[Sequence[Any]]) -> float:
    """How alike two paths are, 0..1: the share of levels (from the element up) with the same role and name."""
    if not a or not b:
        return 0.0
    same = sum(1 for x, y in zip(reversed(a), reversed(b), strict=False) if x[0] == y[0] and x[1] == y[1])
    return same / max(len(a), len(b))


__all__ = ["ATSPI_ROLES", "INTERACTIVE", "ROLES", "AmbiguousMatch", "Element", "Key", "NoTree", "Node", "NotFound",
           "Snapshot", "TreeSource", "aria_role", "describe_path", "element_at", "find_element", "format_tree",
           "known_role_names", "normalize_role", "path_similarity", "roles_for"]

