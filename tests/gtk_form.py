"""A small GTK 3 form for the accessibility tests: labelled and unlabelled fields, buttons, a scrolled list.

`python gtk_form.py OUT.json [--at X,Y] [--title T]` opens a window at X,Y (default 40,40) with
a Name field (its label is the field's accessible name), an Email field whose label is only drawn
beside it (the field has no accessible name), a Subscribe check box, Save and Cancel buttons, a
hidden "Secret" button and a short scrolled list of 30 "Item N" buttons (most of them scrolled out of
view). Save writes OUT.json with what was entered and shows "Saved"; Cancel quits.
"""

from __future__ import annotations

import argparse
import json
import sys

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import Gtk  # noqa: E402


def main(argv: list[str]) -> None:
    """Open the form and run until it is closed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--at", default="40,40")
    parser.add_argument("--title", default="GTK form")
    args = parser.parse_args(argv)
    x, y = (int(v) for v in args.at.split(","))

    window = Gtk.Window(title=args.title)
    window.set_default_size(420, 360)
    window.move(x, y)
    grid = Gtk.Grid(row_spacing=8, column_spacing=12, margin=12)
    window.add(grid)

    name_label = Gtk.Label(label="_Name:", use_underline=True, xalign=1.0)
    name = Gtk.Entry()
    name_label.set_mnemonic_widget(name)
    grid.attach(name_label, 0, 0, 1, 1)
    grid.attach(name, 1, 0, 2, 1)
    grid.attach(Gtk.Label(label="Email:", xalign=1.0), 0, 1, 1, 1)  # drawn beside the field only
    email = Gtk.Entry()
    grid.attach(email, 1, 1, 2, 1)
    subscribe = Gtk.CheckButton(label="Subscribe")
    grid.attach(subscribe, 1, 2, 2, 1)
    status = Gtk.Label(label="Ready")

    def save(_button: Gtk.Button) -> None:
        data = {"name": name.get_text(), "email": email.get_text(), "subscribe": subscribe.get_active()}
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump(data, out)
        status.set_text("Saved")

    save_button = Gtk.Button(label="Save")
    save_button.connect("clicked", save)
    cancel = Gtk.Button(label="Cancel")
    cancel.connect("clicked", lambda _b: Gtk.main_quit())
    secret = Gtk.Button(label="Secret")
    grid.attach(save_button, 1, 3, 1, 1)
    grid.attach(cancel, 2, 3, 1, 1)
    grid.attach(secret, 0, 3, 1, 1)
    grid.attach(status, 1, 4, 2, 1)

    scrolled = Gtk.ScrolledWindow()
    scrolled.set_min_content_height(90)
    items = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
    for n in range(30):
        items.add(Gtk.Button(label=f"Item {n}"))
    scrolled.add(items)
    grid.attach(scrolled, 1, 5, 2, 1)

    window.connect("destroy", Gtk.main_quit)
    window.show_all()
    secret.hide()
    Gtk.main()


if __name__ == "__main__":
    main(sys.argv[1:])
