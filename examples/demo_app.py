"""The demo app deskpilot's examples drive: a small Tk form that saves what was entered.

`python3 demo_app.py OUT.json` shows a form (name, email, password, a colour list, a newsletter
box, a volume slider, a notes area); Submit writes OUT.json and opens a "Saved" dialog that says
hello. The password itself is never written, only its SHA-256, so checks can verify it.

Options for replay tests: `--geometry WxH+X+Y` (default 760x620+40+40), `--submit-label TEXT`
(rename the Submit button; an empty label removes it) and `--duplicate-submit` (two Submit buttons).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tkinter as tk
from pathlib import Path

FONT = ("DejaVu Sans", 14)
COLOURS = ["Red", "Green", "Blue", "Yellow"]


class DemoForm:
    """The form window."""

    def __init__(self, root: tk.Tk, out: Path, geometry: str = "760x620+40+40", submit_label: str = "Submit",
                 duplicate_submit: bool = False) -> None:
        self.root, self.out = root, out
        root.title("deskpilot demo")
        root.geometry(geometry)
        root.option_add("*Font", FONT)
        tk.Label(root, text="Demo form", font=("DejaVu Sans", 20, "bold")).grid(row=0, column=0, columnspan=3,
                                                                               pady=(12, 8))
        self.name = self._field("Name:", 1)
        self.email = self._field("Email:", 2)
        self.password = self._field("Password:", 3, show="*")
        tk.Label(root, text="Colour:").grid(row=4, column=0, sticky="ne", padx=10, pady=6)
        self.colours = tk.Listbox(root, height=4, exportselection=False)
        for colour in COLOURS:
            self.colours.insert("end", colour)
        self.colours.grid(row=4, column=1, sticky="w", pady=6)
        self.subscribe = tk.BooleanVar()
        tk.Checkbutton(root, text="Subscribe", variable=self.subscribe).grid(row=5, column=1, sticky="w")
        tk.Label(root, text="Volume:").grid(row=6, column=0, sticky="e", padx=10)
        self.volume = tk.Scale(root, from_=0, to=100, orient="horizontal", length=300)
        self.volume.grid(row=6, column=1, sticky="w")
        tk.Label(root, text="Notes:").grid(row=7, column=0, sticky="ne", padx=10, pady=6)
        self.notes = tk.Text(root, width=36, height=5)
        self.notes.insert("1.0", "\n".join(f"line {n}" for n in range(1, 41)))
        self.notes.grid(row=7, column=1, sticky="w", pady=6)
        buttons = tk.Frame(root)
        buttons.grid(row=8, column=1, sticky="w", pady=10)
        if submit_label:
            tk.Button(buttons, text=submit_label, command=self.submit).pack(side="left", padx=(0, 12))
        tk.Button(buttons, text="Clear", command=self.clear).pack(side="left")
        if duplicate_submit:
            tk.Button(buttons, text=submit_label, command=self.submit).pack(side="left", padx=(12, 0))
        self.status = tk.Label(root, text="Ready", fg="#555555")
        self.status.grid(row=9, column=1, sticky="w")

    def _field(self, label: str, row: int, show: str = "") -> tk.Entry:
        tk.Label(self.root, text=label).grid(row=row, column=0, sticky="e", padx=10, pady=6)
        entry = tk.Entry(self.root, width=28, show=show)
        entry.grid(row=row, column=1, sticky="w", pady=6)
        return entry

    def values(self) -> dict:
        """What the form holds now."""
        selected = self.colours.curselection()
        return {
            "name": self.name.get(), "email": self.email.get(),
            "password_sha256": hashlib.sha256(self.password.get().encode()).hexdigest(),
            "colour": COLOURS[selected[0]] if selected else None, "subscribe": self.subscribe.get(),
            "volume": self.volume.get(), "notes_top_line": self.notes.index("@0,0"),
        }

    def submit(self) -> None:
        """Save the form and say hello in a dialog."""
        self.out.write_text(json.dumps(self.values(), ensure_ascii=False), encoding="utf-8")
        self.status.configure(text="Saved")
        dialog = tk.Toplevel(self.root)
        dialog.title("Saved")
        dialog.geometry("+260+260")
        tk.Label(dialog, text=f"Hello {self.name.get() or 'stranger'}", padx=30, pady=20).pack()
        tk.Button(dialog, text="OK", width=8, command=dialog.destroy).pack(pady=(0, 16))
        dialog.transient(self.root)

    def clear(self) -> None:
        """Empty every field."""
        for entry in (self.name, self.email, self.password):
            entry.delete(0, "end")
        self.colours.selection_clear(0, "end")
        self.subscribe.set(False)
        self.status.configure(text="Cleared")


def main() -> None:
    """Run the demo form until its window is closed."""
    parser = argparse.ArgumentParser(description="The deskpilot demo form.")
    parser.add_argument("out", nargs="?", default="/tmp/deskpilot-demo.json", help="where Submit saves the form")
    parser.add_argument("--geometry", default="760x620+40+40", help="window size and place, WxH+X+Y")
    parser.add_argument("--submit-label", default="Submit", help="the Submit button's label ('' removes it)")
    parser.add_argument("--duplicate-submit", action="store_true", help="show two Submit buttons")
    args = parser.parse_args()
    root = tk.Tk()
    DemoForm(root, Path(args.out), args.geometry, args.submit_label, args.duplicate_submit)
    root.mainloop()


if __name__ == "__main__":
    main()
