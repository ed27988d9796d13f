"""Reading the accessibility tree on Linux: AT-SPI's D-Bus API, spoken through GLib's Gio (PyGObject).

`AtspiTree(env)` is a `vision.locate.accessibility.TreeSource` for the desktop session whose
environment is `env`. It finds the accessibility bus as libatspi does: `AT_SPI_BUS_ADDRESS`,
else the `AT_SPI_BUS` property of the display's root window (deskpilot's virtual desktops set
it), else the session bus's `org.a11y.Bus` (`DBUS_SESSION_BUS_ADDRESS`); then it lists the
applications the AT-SPI registry knows. Several desktops, each with its own buses, can
be read from one process; nothing here aborts the process when a bus is missing (libatspi does),
the problem is a `NoTree` that says what is missing.

Speed: an application's whole tree comes in one call (`org.a11y.atspi.Cache.GetItems`: role,
name, states, parent of every object); toolkits activate that cache once some client listens
to AT-SPI events, so the first connection registers for one event. Boxes are asked for only
where a question needs them, all at once (the calls are pipelined, not one round trip each).
Applications without the cache (Qt's returns nothing) are walked level by level instead,
pipelined the same way; so are the children of objects that manage their descendants (GTK tree
views), which no cache holds, and of objects that have more children than the cache holds (GTK's
bridge does not always add widgets made after it filled its cache: galculator's keys after a
change of mode). Names, states and child counts in a GetItems reply are read live.

PyGObject is the optional extra `deskpilot[a11y]`; without it `nodes()` raises NoTree naming it.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from vision.locate.accessibility import Key, Node, NoTree
from vision.locate.find import Box
from vision.locate.roles import ATSPI_ROLES, INTERACTIVE

_GI_LOCK = threading.Lock()


def _gi() -> tuple[Any, Any]:
    """(Gio, GLib) from PyGObject. The first import runs under a lock: PyGObject's overrides are not
    safe to import from several threads at once (GObject's copy GLib's names while GLib's are being
    set up: "'gi.repository.GLib' object has no attribute 'Idle'"), and rollout attempts are threads."""
    with _GI_LOCK:
        from gi.repository import Gio, GLib
    return Gio, GLib


STATE_NAMES = (
    "invalid", "active", "armed", "busy", "checked", "collapsed", "defunct", "editable", "enabled", "expandable",
    "expanded", "focusable", "focused", "has-tooltip", "horizontal", "iconified", "modal", "multi-line",
    "multiselectable", "opaque", "pressed", "resizable", "selectable", "selected", "sensitive", "showing",
    "single-line", "stale", "transient", "vertical", "visible", "manages-descendants", "indeterminate", "required",
    "truncated", "animated", "invalid-entry", "supports-autocompletion", "selectable-text", "is-default", "visited",
    "checkable", "has-popup", "read-only",
)
REGISTRY = "org.a11y.atspi.Registry"
ROOT_PATH = "/org/a11y/atspi/accessible/root"
ACCESSIBLE = "org.a11y.atspi.Accessible"
INSTALL_HINT = ("pip install 'deskpilot[a11y]' (PyGObject; it builds against the system's "
                "libgirepository1.0-dev and libcairo2-dev, which scripts/setup installs)")
MAX_NODES = 20_000  # per application, when walking
_NULL = "/org/a11y/atspi/null"
LABELLED_BY = 2  # AtspiRelationType
MAX_MANAGED = 500  # children read under one object that manages its descendants

Call = tuple[str, str, str, str, Any, str | None]  # bus name, path, interface, method, args, reply type


def _states(bits: Sequence[int]) -> frozenset[str]:
    return _state_names(int(bits[0]) if bits else 0, int(bits[1]) if len(bits) > 1 else 0)


@functools.lru_cache(maxsize=512)
def _state_names(*bits: int) -> frozenset[str]:
    """The names of a state set's bits (a window has few distinct sets: remembered)."""
    names = []
    for word, value in enumerate(bits[:2]):
        for bit in range(32):
            if value >> bit & 1 and word * 32 + bit < len(STATE_NAMES):
                names.append(STATE_NAMES[word * 32 + bit])
    return frozenset(names)


def _role(number: int) -> str:
    return ATSPI_ROLES[number] if 0 <= number < len(ATSPI_ROLES) else "unknown"


class AtspiTree:
    """The accessibility tree of the applications of one desktop session (see the module docstring)."""

    def __init__(self, env: Mapping[str, str] | None = None, *, timeout_s: float = 1.5,
                 problem: str | None = None) -> None:
        """`problem`: why this display has no tree, when the caller already knows (every read raises it)."""
        self.env = dict(os.environ if env is None else env)
        self.timeout_ms = int(timeout_s * 1000)
        self._bus: Any = None
        self._failed: NoTree | None = NoTree(f"no accessibility tree: {problem}") if problem else None
        self._lock = threading.RLock()

    # --- the connection ---------------------------------------------------------------------
    def connect(self) -> Any:
        """The accessibility bus (connected once); NoTree saying what is missing (the same one every time after)."""
        with self._lock:
            if self._failed is not None:
                raise NoTree(str(self._failed))
            if self._bus is None:
                try:
                    self._bus = self._open()
                except NoTree as exc:
                    self._failed = exc
                    raise
            return self._bus

    @property
    def available(self) -> bool | None:
        """False once reading the tree failed for good, True once connected, None before trying."""
        return False if self._failed is not None else True if self._bus is not None else None

    def _open(self) -> Any:
        try:
            Gio, GLib = _gi()
        except ImportError as exc:
            raise NoTree(f"reading the accessibility tree needs PyGObject ({exc}): {INSTALL_HINT}") from None
        flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
        display = self.env.get("DISPLAY") or "this session"
        address = self.env.get("AT_SPI_BUS_ADDRESS") or _root_property(self.env.get("DISPLAY"))
        if address:
            try:
                bus = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
            except GLib.Error:  # a stale property: ask the session bus
                address = None
        if not address:
            session_address = self.env.get("DBUS_SESSION_BUS_ADDRESS")
            if not session_address:
                raise NoTree(f"no accessibility tree on {display}: there is no D-Bus session bus "
                             "(DBUS_SESSION_BUS_ADDRESS is not set)")
            try:
                session = Gio.DBusConnection.new_for_address_sync(session_address, flags, None, None)
                reply = session.call_sync("org.a11y.Bus", "/org/a11y/bus", "org.a11y.Bus", "GetAddress", None,
                                          GLib.VariantType("(s)"), Gio.DBusCallFlags.NONE, self.timeout_ms * 2, None)
                address = reply.unpack()[0]
                session.close_sync(None)
            except GLib.Error as exc:
                raise NoTree(f"no accessibility tree on {display}: the accessibility bus is not running "
                             f"({exc.message}); install at-spi2-core, or use --display virtual, where deskpilot "
                             "starts it") from None
            try:
                bus = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
            except GLib.Error as exc:
                raise NoTree(f"no accessibility tree on {display}: cannot connect to the accessibility bus "
                             f"{address} ({exc.message})") from None
        for args in (GLib.Variant("(s)", ("object:children-changed",)),
                     GLib.Variant("(sass)", ("object:children-changed", [], ""))):
            try:  # toolkits fill their object caches once someone listens (the signature changed over time)
                bus.call_sync(REGISTRY, "/org/a11y/atspi/registry", "org.a11y.atspi.Registry", "RegisterEvent",
                              args, None, Gio.DBusCallFlags.NONE, self.timeout_ms, None)
                break
            except GLib.Error:
                continue
        return bus

    def close(self) -> None:
        """Disconnect (a later call connects again)."""
        with self._lock:
            bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(Exception):  # already closed by the other end
                bus.close_sync(None)

    # --- calls ------------------------------------------------------------------------------
    def batch(self, calls: Sequence[Call], *, raw: bool = False) -> list[Any]:
        """Make every call at once (pipelined) and wait for all; each result is the unpacked reply (with `raw`,
        the GLib.Variant) or the GLib.Error it failed with."""
        Gio, GLib = _gi()

        bus = self.connect()
        results: list[Any] = [None] * len(calls)
        if not calls:
            return results
        context = GLib.MainContext.new()
        pending = [len(calls)]

        def done(connection: Any, outcome: Any, n: int) -> None:
            try:
                reply = connection.call_finish(outcome)
                results[n] = reply if raw else reply.unpack()
            except GLib.Error as exc:
                results[n] = exc
            pending[0] -= 1

        with self._lock:
            context.push_thread_default()
            try:
                for n, (name, path, interface, method, args, reply) in enumerate(calls):
                    bus.call(name, path, interface, method, args, GLib.VariantType(reply) if reply else None,
                             Gio.DBusCallFlags.NO_AUTO_START, self.timeout_ms, None, done, n)
                while pending[0] > 0:
                    context.iteration(True)
            finally:
                context.pop_thread_default()
        return results

    def applications(self) -> list[Key]:
        """The applications registered on the accessibility bus."""
        _, GLib = _gi()

        (reply,) = self.batch([(REGISTRY, ROOT_PATH, ACCESSIBLE, "GetChildren", None, "(a(so))")])
        if isinstance(reply, GLib.Error):
            raise NoTree(f"the accessibility registry does not answer: {reply.message}")
        return [(str(name), str(path)) for name, path in reply[0]]

    # --- the TreeSource API -------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        """Every object of every application (one GetItems call each; a walk where it fails)."""
        _, GLib = _gi()

        apps = self.applications()
        replies = self.batch([(name, "/org/a11y/atspi/cache", "org.a11y.atspi.Cache", "GetItems", None, None)
                              for name, _ in apps], raw=True)
        names = self.batch([(name, path, "org.freedesktop.DBus.Properties", "Get",
                             GLib.Variant("(ss)", (ACCESSIBLE, "Name")), "(v)") for name, path in apps])
        out: list[Node] = []
        for (bus_name, root), reply, app_name in zip(apps, replies, names, strict=True):
            app = app_name[0] if isinstance(app_name, tuple) and isinstance(app_name[0], str) else bus_name
            items, counts = _cache_nodes(bus_name, reply, app) if not isinstance(reply, GLib.Error) else ([], {})
            if items:
                items += self.missing(items, counts, app)
            else:
                items = self.walk([((bus_name, root), None, 0)], app)
            if not any(n.key == (bus_name, root) for n in items):
                items.append(Node((bus_name, root), "application", app, frozenset(), None,
                                  tuple(n.key for n in items if n.parent == (bus_name, root)), 0, app, False))
            out += items
        return self.labelled(_linked(out))

    def labelled(self, nodes: list[Node]) -> list[Node]:
        """Unnamed fields and controls named by the labels that label them (AT-SPI's labelled-by relation), as a
        person reads them: a GTK entry with a "Name:" label is the textbox "Name:"."""
        from dataclasses import replace

        unnamed = [n for n in nodes if not n.name and n.role in INTERACTIVE and {"showing", "visible"} <= n.states]
        if not unnamed:
            return nodes
        by_key = {n.key: n for n in nodes}
        replies = self.batch([(*n.key, ACCESSIBLE, "GetRelationSet", None, "(a(ua(so)))") for n in unnamed])
        names: dict[Key, str] = {}
        for node, reply in zip(unnamed, replies, strict=True):
            if not isinstance(reply, tuple):
                continue
            labels = [by_key[(str(b), str(p))].name for kind, targets in reply[0] if kind == LABELLED_BY
                      for b, p in targets if (str(b), str(p)) in by_key]
            if any(label.strip() for label in labels):
                names[node.key] = " ".join(label.strip() for label in labels if label.strip())
        return [replace(n, name=names[n.key]) if n.key in names else n for n in nodes]

    def boxes(self, keys: Sequence[Key]) -> dict[Key, Box | None]:
        """Screen boxes of `keys` (Component.GetExtents in screen coordinates), all asked at once."""
        replies = self.batch([(name, path, "org.a11y.atspi.Component", "GetExtents", _screen_coords(), "((iiii))")
                              for name, path in keys])
        out: dict[Key, Box | None] = {}
        for key, reply in zip(keys, replies, strict=True):
            if isinstance(reply, tuple) and len(reply) == 1 and len(reply[0]) == 4:
                x, y, w, h = (int(v) for v in reply[0])
                out[key] = (x, y, x + w, y + h) if w > 0 and h > 0 else None
            else:
                out[key] = None
        return out

    def child_at(self, key: Key, point: tuple[int, int]) -> Key | None:
        """The child of `key` under `point` as its toolkit hit-tests it (Component.GetAccessibleAtPoint), or None."""
        _, GLib = _gi()

        (reply,) = self.batch([(*key, "org.a11y.atspi.Component", "GetAccessibleAtPoint",
                                GLib.Variant("(iiu)", (int(point[0]), int(point[1]), 0)), "((so))")])
        if not isinstance(reply, tuple) or not reply[0][1] or reply[0][1] == _NULL:
            return None
        return str(reply[0][0]), str(reply[0][1])

    def missing(self, items: list[Node], counts: dict[Key, int], app: str) -> list[Node]:
        """What an application's cache lacks, read live: the children of showing objects that manage their
        descendants (no cache holds them), and of objects with more children now than the cache holds (widgets
        made after the cache was filled, which GTK's bridge does not always add)."""
        from collections import Counter

        held = Counter(n.parent for n in items)
        known = {n.key for n in items}
        gaps = [n for n in items if (n.role == "application" or {"showing", "visible"} <= n.states)
                and ("manages-descendants" in n.states or counts.get(n.key, 0) > held.get(n.key, 0))]
        if not gaps:
            return []
        replies = self.batch([(*n.key, ACCESSIBLE, "GetChildren", None, "(a(so))") for n in gaps])
        level: list[tuple[Key, Key | None, int]] = []
        for node, reply in zip(gaps, replies, strict=True):
            if isinstance(reply, tuple):
                kids = [(str(b), str(p)) for b, p in reply[0]][:MAX_MANAGED]
                level += [(kid, node.key, i) for i, kid in enumerate(kids) if kid not in known]
        return self.walk(level, app)

    def walk(self, level: list[tuple[Key, Key | None, int]], app: str, limit: int = MAX_NODES) -> list[Node]:
        """Read objects level by level from `level` ((object, parent, index) each; every call of a level at once),
        into applications and showing objects only."""
        _, GLib = _gi()

        found: list[Node] = []
        name_args = GLib.Variant("(ss)", (ACCESSIBLE, "Name"))
        while level and len(found) < limit:
            calls: list[Call] = []
            for (bus_name, path), _, _ in level:
                calls += [(bus_name, path, ACCESSIBLE, "GetRole", None, "(u)"),
                          (bus_name, path, ACCESSIBLE, "GetState", None, "(au)"),
                          (bus_name, path, "org.freedesktop.DBus.Properties", "Get", name_args, "(v)"),
                          (bus_name, path, ACCESSIBLE, "GetChildren", None, "(a(so))"),
                          (bus_name, path, ACCESSIBLE, "GetInterfaces", None, "(as)")]
            replies = self.batch(calls)
            following: list[tuple[Key, Key | None, int]] = []
            for n, (key, parent, index) in enumerate(level):
                role, state, name, children, interfaces = replies[5 * n:5 * n + 5]
                if any(isinstance(r, GLib.Error) for r in (role, state, children)):
                    continue
                kids = tuple((str(b), str(p)) for b, p in children[0])
                node = Node(key, _role(int(role[0])), name[0] if isinstance(name, tuple) else "", _states(state[0]),
                            parent, kids, index, app,
                            isinstance(interfaces, tuple) and "org.a11y.atspi.Component" in interfaces[0])
                found.append(node)
                if node.role == "application" or {"showing", "visible"} <= node.states:
                    following += [(kid, key, i) for i, kid in enumerate(kids)]
            level = following[:max(0, limit - len(found))]
        return found


def _root_property(display: str | None) -> str | None:
    """The AT_SPI_BUS property of `display`'s root window (where an accessibility bus may be published)."""
    if not display:
        return None
    try:
        from Xlib import X
        from Xlib.display import Display

        conn = Display(display)
        try:
            atom = conn.intern_atom("AT_SPI_BUS", only_if_exists=True)
            value = conn.screen().root.get_full_property(atom, X.AnyPropertyType) if atom else None
        finally:
            conn.close()
    except Exception:  # no such display: the session bus decides
        return None
    if value is None or not value.value:
        return None
    raw = value.value
    return (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).strip("\0") or None


def _screen_coords() -> Any:
    _, GLib = _gi()

    return GLib.Variant("(u)", (0,))  # ATSPI_COORD_TYPE_SCREEN


_STRING = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
_REF = rf"\(({_STRING}), ({_STRING})\)"
_ITEM = re.compile(rf"\({_REF}, {_REF}, {_REF}, (-?\d+), (-?\d+), \[((?:(?:{_STRING})(?:, )?)*)\], ({_STRING}), "
                   rf"(\d+), ({_STRING}), \[(\d+), (\d+)\]\)")


def _literal(text: str) -> str:
    return text[1:-1] if "\\" not in text else str(ast.literal_eval(text))


def _cache_nodes(bus_name: str, reply: Any, app: str) -> tuple[list[Node], dict[Key, int]]:
    """Nodes from a GetItems reply (a GLib.Variant), in either of its formats (children are linked afterwards),
    and each one's child count as the application gave it then.

    The current format is read from the variant's text form with one regular expression: unpacking
    the variant into Python objects takes ten times as long.
    """
    if reply.get_type_string() == "(a((so)(so)(so)iiassusau))":
        count = reply.get_child_value(0).n_children()
        fast, counts = [], {}
        for m in _ITEM.finditer(reply.print_(False)):
            g = m.groups()
            parent = (_literal(g[4]), _literal(g[5]))
            key = (_literal(g[0]), _literal(g[1]))
            fast.append(Node(key, _role(int(g[10])), _literal(g[9]), _states((int(g[12]), int(g[13]))),
                             parent if parent[1] != _NULL else None, (), int(g[6]), app,
                             "'org.a11y.atspi.Component'" in g[8]))
            counts[key] = int(g[7])
        if len(fast) == count:
            return fast, counts
    items = reply.unpack()[0]
    out, counts = [], {}
    for item in items:
        if len(item) == 10 and isinstance(item[3], int):  # ((so)(so)(so)iiassusau)
            ref, _app, parent, index, count, interfaces, name, role, _desc, states = item
            children: tuple[Key, ...] = ()
        elif len(item) == 9:  # legacy: ((so)(so)(so)a(so)assusau) or (o(so)(so)a(so)assusau)
            ref, _app, parent, kids, interfaces, name, role, _desc, states = item
            ref = ref if isinstance(ref, tuple) else (bus_name, ref)
            children, index, count = tuple((str(b), str(p)) for b, p in kids), -1, len(kids)
        else:
            continue
        parent_key = (str(parent[0]), str(parent[1])) if parent and parent[1] not in ("", _NULL) else None
        key = (str(ref[0]), str(ref[1]))
        out.append(Node(key, _role(int(role)), str(name), _states(states), parent_key, children, int(index), app,
                        "org.a11y.atspi.Component" in interfaces))
        counts[key] = int(count)
    return out, counts


def _linked(nodes: list[Node]) -> list[Node]:
    """Fill in children from parents (the cache gives parents and indices) and indices from children."""
    from dataclasses import replace

    by_key = {n.key: n for n in nodes}
    kids: dict[Key, list[Node]] = {}
    for node in by_key.values():
        if node.parent is not None:
            kids.setdefault(node.parent, []).append(node)
    out = []
    for node in by_key.values():
        children = node.children or tuple(k.key for k in sorted(kids.get(node.key, []), key=lambda k: k.index))
        out.append(replace(node, children=children) if children != node.children else node)
    position = {kid: i for n in out for i, kid in enumerate(n.children)}
    return [replace(n, index=position[n.key]) if n.index < 0 and n.key in position else n for n in out]

