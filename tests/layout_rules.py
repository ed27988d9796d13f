"""The layout rules of DESIGN.md, checked on source trees: import directions, layers, backends, sizes.

- `agent` -> `actions` -> `vision`: `vision` imports neither, `actions` does not import `agent`.
- Inside `agent`, a module imports only modules of its own layer or below (LAYERS).
- A backend is imported only by its registry or factory (BACKENDS).
- No module over MAX_MODULE_LINES lines, no class over MAX_CLASS_LINES.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ("agent", "actions", "vision")
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 250

# agent's layers, lowest first; a module belongs to the first entry that is a prefix of its name
LAYERS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, ("agent.types", "agent.errors", "agent.yaml_lines", "agent.vault")),
    (2, ("agent.models", "agent.tools")),
    (3, ("agent.loop", "agent.session", "agent.safety", "agent.recording", "agent.budget", "agent.stepping")),
    (4, ("agent.tasks", "agent.replay", "agent.rollouts", "agent.eval", "agent.mcp")),
    (5, ("agent.ui",)),
)

# backend package prefix -> the modules allowed to import it (besides the backend's own modules)
BACKENDS: dict[str, tuple[str, ...]] = {
    "actions.platform.x11": ("actions.platform",),
    "actions.platform.portable": ("actions.platform",),
    "agent.models.anthropic": ("agent.models.registry", "agent.models.anthropic_messages"),
    "agent.models.anthropic_messages": ("agent.models.anthropic",),
    "agent.models.scripted": ("agent.models.registry",),
    "agent.models.chat": ("agent.models.registry",),
    "agent.models.openai_responses": ("agent.models.registry",),
    "agent.models.ui_tars": ("agent.models.registry",),
    "agent.models.ui_tars_actions": ("agent.models.ui_tars",),
    "agent.models.qwen25_vl": ("agent.models.registry",),
    "agent.models.qwen3_vl": ("agent.models.registry",),
    "agent.models.qwen_calls": ("agent.models.qwen25_vl", "agent.models.qwen3_vl"),
}


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of the three packages under `root`."""
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imports(path: Path, name: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every import in the file, also inside functions and TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from agent.models import registry` imports agent.models.registry
                yield node.lineno, f"{base}.{alias.name}"


def layer_of(module: str) -> int | None:
    """The agent layer of a module, or None outside `agent` (or for `agent` itself)."""
    for number, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return number
    return None


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """Every broken rule in the tree at `root`, one line each (file:line: what)."""
    found: list[str] = []
    names = {name for name, _ in modules(root)}
    for name, path in modules(root):
        where = path.relative_to(root)
        top = name.split(".")[0]
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(f"{where}: {lines} lines, over {MAX_MODULE_LINES}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                found.append(f"{where}:{node.lineno}: class {node.name} has {node.end_lineno - node.lineno + 1} "
                             f"lines, over {MAX_CLASS_LINES}")
        found_imports = [(line, t) for line, t in imports(path, name) if t.split(".")[0] in PACKAGES and t in names]
        for line, target in found_imports:  # `from agent.ui import cli` counts once, as agent.ui.cli
            if any(other.startswith(target + ".") for n, other in found_imports if n == line):
                continue
            target_top = target.split(".")[0]
            if top == "vision" and target_top != "vision":
                found.append(f"{where}:{line}: vision imports {target}")
            if top == "actions" and target_top == "agent":
                found.append(f"{where}:{line}: actions imports {target}")
            mine, theirs = layer_of(name), layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{where}:{line}: layer {mine} module {name} imports layer {theirs} module {target}")
            for backend, allowed in BACKENDS.items():
                if not _within(target, backend) or _within(name, backend):
                    continue
                if name in allowed:
                    continue
                found.append(f"{where}:{line}: {name} imports the backend {target}; only "
                             f"{' or '.join(allowed)} may")
    return found
