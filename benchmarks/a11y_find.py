"""Time to resolve an accessibility target `{role, name}` on real GTK windows (target: under 50 ms).

On a virtual desktop with its own accessibility bus (as deskpilot starts it), two GTK 3 windows:
galculator (about 80 accessible objects) and a larger settings-like window (a grid of 30 rows of
label, entry, check box and 7 buttons, taller than the screen, beside a scrolled list of 200
buttons: about 510 objects, most of the list's in the tree but not showing). For each, a fresh
`Snapshot` + `find` as the task runner does on every look (the whole tree read, boxes only where
needed):

- `find_ms`: median and p90 of 30 look-ups, the connection already open;
- `first_find_ms`: a new connection (`AtspiTree`) and its first look-up;
- `at_ms`: the element under a point (the recording hook), median of 30;
- `tree_ms`: every showing element with its box (what `deskpilot inspect` prints), median of 10.

The reference is libatspi's own walk (`gi.repository.Atspi`, how pyatspi-based tools search: one
D-Bus round trip per property, showing subtrees only), in a child process on the same bus,
median of 10: `ratio` = reference / deskpilot. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from actions.platform.x11.desktop import VirtualDesktop
from benchmarks._screens import median_ms
from vision.geometry import Size
from vision.locate.accessibility import Snapshot
from vision.locate.atspi import AtspiTree

BIG_WINDOW = """
import gi
gi.require_version("Gtk", "3.0")
from gi.repository import Gtk
window = Gtk.Window(title="Settings")
window.set_default_size(1200, 760)
outer = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL)
grid = Gtk.Grid(row_spacing=2, column_spacing=4)
for r in range(30):
    grid.attach(Gtk.Label(label=f"Option {r}"), 0, r, 1, 1)
    grid.attach(Gtk.Entry(), 1, r, 1, 1)
    grid.attach(Gtk.CheckButton(label=f"Enable {r}"), 2, r, 1, 1)
    for c in range(7):
        grid.attach(Gtk.Button(label=f"B{r}.{c}"), 3 + c, r, 1, 1)
scroll = Gtk.ScrolledWindow()
scroll.set_min_content_width(160)
items = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
for n in range(200):
    items.add(Gtk.Button(label=f"Item {n}"))
scroll.add(items)
outer.pack_start(grid, False, False, 0)
outer.pack_start(scroll, True, True, 0)
window.add(outer)
window.connect("destroy", Gtk.main_quit)
window.show_all()
Gtk.main()
"""

REFERENCE = """
import json, sys, time
import gi
gi.require_version("Atspi", "2.0")
from gi.repository import Atspi
role_names, name = set(sys.argv[1].split(",")), sys.argv[2]
Atspi.init()
SHOWING = Atspi.StateType.SHOWING

def walk(node, depth):
    if node.get_role_name() in role_names and node.get_name() == name and node.get_state_set().contains(SHOWING):
        return node.get_extents(Atspi.CoordType.SCREEN)
    if depth >= 2 and not node.get_state_set().contains(SHOWING):
        return None
    for i in range(node.get_child_count()):
        child = node.get_child_at_index(i)
        found = child is not None and walk(child, depth + 1)
        if found:
            return found
    return None

samples = []
for _ in range(10):
    start = time.perf_counter()
    found = walk(Atspi.get_desktop(0), 0)
    samples.append(time.perf_counter() - start)
    assert found is not None and found.width > 0
print(json.dumps(samples))
"""


def wait_for(tree: AtspiTree, role: str, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            Snapshot(tree, (0, 0, 1280, 800)).find(role, name)
            return
        except LookupError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def measure(desktop: VirtualDesktop, role: str, name: str, atspi_roles: str) -> dict:
    """The figures of one window (see the module docstring)."""
    screen = (0, 0, 1280, 800)
    started = time.perf_counter()
    fresh = AtspiTree(desktop.env())
    element = Snapshot(fresh, screen).find(role, name)[0]
    first = time.perf_counter() - started
    fresh.close()
    tree = AtspiTree(desktop.env())
    objects = len(Snapshot(tree, screen).nodes)
    finds, ats, trees = [], [], []
    for _ in range(30):
        start = time.perf_counter()
        found = Snapshot(tree, screen).find(role, name)[0]
        finds.append(time.perf_counter() - start)
        assert found.box == element.box
    for _ in range(30):
        start = time.perf_counter()
        under = Snapshot(tree, screen).at(element.center)
        ats.append(time.perf_counter() - start)
        assert under is not None and under.name == name
    for _ in range(10):
        start = time.perf_counter()
        showing = Snapshot(tree, screen).showing()
        trees.append(time.perf_counter() - start)
    tree.close()
    reference = subprocess.run([sys.executable, "-c", REFERENCE, atspi_roles, name], env=desktop.env(),
                               capture_output=True, text=True, timeout=300)
    ref = json.loads(reference.stdout) if reference.returncode == 0 else None
    ordered = sorted(finds)
    out = {"objects": objects, "showing": len(showing), "query": {"role": role, "name": name},
           "find_ms": median_ms(finds), "find_p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 1),
           "first_find_ms": round(first * 1000, 1), "at_ms": median_ms(ats), "tree_ms": median_ms(trees),
           "reference_libatspi_walk_ms": median_ms(ref) if ref else f"failed: {reference.stderr[-300:]}"}
    if ref:
        out["ratio_reference_over_find"] = round(median_ms(ref) / max(out["find_ms"], 0.1), 1)
    return out


def main() -> None:
    """Start the desktop and both windows, measure, print one JSON object."""
    load = os.getloadavg()
    with VirtualDesktop(Size(1280, 800)) as desktop:
        calculator = desktop.launch(["galculator"])
        tree = AtspiTree(desktop.env())
        wait_for(tree, "button", "7")
        galculator = measure(desktop, "button", "7", "toggle button,push button")
        calculator.terminate()
        desktop.launch([sys.executable, "-c", BIG_WINDOW])
        wait_for(tree, "button", "B18.6")
        tree.close()
        big = measure(desktop, "button", "B18.6", "push button,toggle button")
    print(json.dumps({"benchmark": "a11y_find", "target_ms": 50, "galculator": galculator, "larger_gtk_window": big,
                      "load_average_before": [round(v, 2) for v in load], "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
