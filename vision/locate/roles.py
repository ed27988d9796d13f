"""Roles of accessible elements: AT-SPI's names, the ARIA names targets are written with, and how they map.

Targets name roles as ARIA does (and Playwright's `get_by_role`): `button` matches AT-SPI's push
and toggle buttons, `textbox` its text fields, `menuitem` its menu items (`ROLES`). The toolkit's
own role names ("push button", "label", "panel") are accepted as well, for what ARIA has no name
for. Elements are shown with the ARIA name of their role where there is one (`aria_role`).
"""

from __future__ import annotations

import difflib

# AT-SPI's role names, numbered as the protocol numbers them (AtspiRole)
ATSPI_ROLES: tuple[str, ...] = (
    "invalid", "accelerator label", "alert", "animation", "arrow", "calendar", "canvas", "check box",
    "check menu item", "color chooser", "column header", "combo box", "date editor", "desktop icon", "desktop frame",
    "dial", "dialog", "directory pane", "drawing area", "file chooser", "filler", "focus traversable",
    "font chooser", "frame", "glass pane", "html container", "icon", "image", "internal frame", "label",
    "layered pane", "list", "list item", "menu", "menu bar", "menu item", "option pane", "page tab", "page tab list",
    "panel", "password text", "popup menu", "progress bar", "push button", "radio button", "radio menu item",
    "root pane", "row header", "scroll bar", "scroll pane", "separator", "slider", "spin button", "split pane",
    "status bar", "table", "table cell", "table column header", "table row header", "tearoff menu item", "terminal",
    "text", "toggle button", "tool bar", "tool tip", "tree", "tree table", "unknown", "viewport", "window",
    "extended", "header", "footer", "paragraph", "ruler", "application", "autocomplete", "editbar", "embedded",
    "entry", "chart", "caption", "document frame", "heading", "page", "section", "redundant object", "form", "link",
    "input method window", "table row", "tree item", "document spreadsheet", "document presentation",
    "document text", "document web", "document email", "comment", "list box", "grouping", "image map",
    "notification", "info bar", "level bar", "title bar", "block quote", "audio", "video", "definition", "article",
    "landmark", "log", "marquee", "math", "rating", "timer", "static", "math fraction", "math root", "subscript",
    "superscript", "description list", "description term", "description value", "footnote", "content deletion",
    "content insertion", "mark", "suggestion", "push button menu",
)

# ARIA role -> the AT-SPI role names it matches
ROLES: dict[str, frozenset[str]] = {name: frozenset(atspi) for name, atspi in {
    "button": ("push button", "toggle button", "push button menu"),
    "checkbox": ("check box",),
    "radio": ("radio button",),
    "switch": ("toggle button", "switch"),
    "textbox": ("text", "entry", "password text", "editbar"),
    "searchbox": ("entry", "text"),
    "combobox": ("combo box", "autocomplete"),
    "listbox": ("list box", "list"),
    "option": ("list item",),
    "menu": ("menu", "popup menu"),
    "menubar": ("menu bar",),
    "menuitem": ("menu item", "check menu item", "radio menu item", "tearoff menu item"),
    "menuitemcheckbox": ("check menu item",),
    "menuitemradio": ("radio menu item",),
    "link": ("link",),
    "tab": ("page tab",),
    "tablist": ("page tab list",),
    "slider": ("slider",),
    "spinbutton": ("spin button",),
    "scrollbar": ("scroll bar",),
    "progressbar": ("progress bar", "level bar"),
    "heading": ("heading",),
    "img": ("image", "icon"),
    "dialog": ("dialog", "file chooser", "color chooser", "font chooser"),
    "alertdialog": ("alert",),
    "alert": ("alert", "notification"),
    "window": ("frame", "window"),
    "tree": ("tree", "tree table"),
    "treeitem": ("tree item",),
    "treegrid": ("tree table",),
    "table": ("table",),
    "grid": ("table", "tree table"),
    "row": ("table row",),
    "cell": ("table cell",),
    "gridcell": ("table cell",),
    "columnheader": ("column header", "table column header"),
    "rowheader": ("row header", "table row header"),
    "toolbar": ("tool bar",),
    "tooltip": ("tool tip",),
    "status": ("status bar",),
    "separator": ("separator",),
    "group": ("grouping", "panel"),
    "paragraph": ("paragraph",),
    "document": ("document frame", "document text", "document web"),
}.items()}

# the ARIA name an AT-SPI role is shown with (the first ARIA role listing it); others keep their own name
_ARIA_OF: dict[str, str] = {}
for _aria, _atspi in ROLES.items():
    for _name in sorted(_atspi):
        _ARIA_OF.setdefault(_name, _aria)

# roles a person acts on: what `at` climbs to from the deepest object, and what an observation lists
INTERACTIVE = frozenset({
    "push button", "toggle button", "push button menu", "check box", "radio button", "switch", "text", "entry",
    "password text", "editbar", "combo box", "autocomplete", "list item", "menu", "menu item", "check menu item",
    "radio menu item", "link", "page tab", "slider", "spin button", "tree item", "table cell", "terminal",
})


def normalize_role(role: str) -> str:
    """A role as written by a person (`button`, `Push-Button`, `push_button`) in the table's spelling."""
    return " ".join(role.strip().lower().replace("-", " ").replace("_", " ").split())


def known_role_names() -> list[str]:
    """Every role a target may name: the ARIA names, then the toolkit's (AT-SPI's)."""
    return [*ROLES, *sorted(set(ATSPI_ROLES[1:]) - set(ROLES))]


def roles_for(role: str) -> frozenset[str]:
    """The AT-SPI role names `role` matches: an ARIA role's, or the toolkit role itself.

    ValueError naming the role (and the closest known one) when it is neither.
    """
    wanted = normalize_role(role)
    compact = wanted.replace(" ", "")
    if compact in ROLES:
        return ROLES[compact]
    if wanted in ATSPI_ROLES[1:]:
        return frozenset({wanted})
    close = difflib.get_close_matches(wanted, known_role_names(), n=1, cutoff=0.7)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown role {role!r}{hint}; use an ARIA role such as {', '.join(list(ROLES)[:12])}, ... "
                     "or a toolkit role such as 'push button' or 'label'")


def aria_role(atspi_role: str) -> str:
    """The ARIA name of an AT-SPI role ("push button" -> "button"); the AT-SPI name when ARIA has none."""
    return _ARIA_OF.get(atspi_role, atspi_role)
