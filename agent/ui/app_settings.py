"""What `deskpilot app` remembers between starts: a small JSON file, `$XDG_CONFIG_HOME/deskpilot/app.json`.

It holds the last choices (model, base URL, target, theme, the suite's folder, attempts and
engine). A file that cannot be read or is not a JSON object is ignored with a note the window
shows (and is replaced at the next save); a value of the wrong type falls back to its default.
Writes are atomic (a temporary file renamed over the old one). No Tk here.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 1024
THEMES = ("system", "light", "dark")


def settings_path(env: dict[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/deskpilot/app.json` (default `~/.config`)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "deskpilot" / "app.json"


@dataclass
class AppSettings:
    """The app's remembered choices; every field has a default."""

    model: str = ""  # FAMILY/NAME as in --model; "" the default model
    base_url: str = ""  # an OpenAI-compatible server's URL; "" none
    target: str = ""  # the target's label ("This desktop", "Sandbox (virtual desktop)", "Display :N")
    theme: str = "system"  # system | light | dark
    suite_folder: str = ""
    attempts: int = 2
    engine: str = "local"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppSettings:
        """Known keys of the right type; others are left at their defaults."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            default = getattr(cls, f.name)
            if isinstance(value, type(default)) and not isinstance(value, bool):
                values[f.name] = value
        settings = cls(**values)
        if settings.theme not in THEMES:
            settings.theme = "system"
        if settings.attempts < 1:
            settings.attempts = 1
        return settings


def load_settings(path: Path) -> tuple[AppSettings, str | None]:
    """The settings in `path` and a note for the window when the file was there but unusable."""
    try:
        if not path.exists():
            return AppSettings(), None
        if not path.is_file():
            return AppSettings(), f"settings {path} is not a file: ignored"
        if path.stat().st_size > MAX_BYTES:
            return AppSettings(), f"settings {path} is larger than {MAX_BYTES // 1024} KiB: ignored"
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return AppSettings(), f"settings {path} could not be read ({type(exc).__name__}: {exc}): ignored, " \
                              "it is rewritten with your next choices"
    if not isinstance(data, dict):
        return AppSettings(), f"settings {path} is not a JSON object: ignored, it is rewritten with your next choices"
    return AppSettings.from_json(data), None


def save_settings(path: Path, settings: AppSettings) -> str | None:
    """Write `settings` atomically; a note for the window when it cannot be written (never raises)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".app-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(settings), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
        return None
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return f"settings could not be saved to {path}: {exc}"
