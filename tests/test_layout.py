"""The layout of DESIGN.md holds: import directions, agent's layers, backends behind their factories, sizes."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import tomllib

from tests.layout_rules import layer_of, violations

ROOT = Path(__file__).resolve().parent.parent


def test_the_tree_keeps_every_layout_rule() -> None:
    assert violations(ROOT) == []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the three packages, to break on purpose."""
    for package in ("agent", "actions", "vision"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _add(tree: Path, module: str, line: str) -> None:
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.mark.parametrize(("module", "line", "expected"), [
    ("vision/settle.py", "from actions.executor import Executor", "vision imports actions.executor"),
    ("vision/geometry.py", "import agent.loop", "vision imports agent.loop"),
    ("actions/executor.py", "from agent.types import Usage", "actions imports agent.types"),
    ("agent/loop.py", "from agent.ui import cli", "layer 3 module agent.loop imports layer 5 module agent.ui.cli"),
    ("agent/types.py", "from agent.session import Session",
     "layer 1 module agent.types imports layer 3 module agent.session"),
    ("agent/session.py", "from agent.models.anthropic import Claude",
     "agent.session imports the backend agent.models.anthropic"),
    ("agent/ui/cli.py", "    from actions.platform.x11.input import X11Input",
     "agent.ui.cli imports the backend actions.platform.x11.input"),
])
def test_a_forbidden_import_is_caught(tree: Path, module: str, line: str, expected: str) -> None:
    assert violations(tree) == []
    _add(tree, module, line if not line.startswith(" ") else f"def f():\n{line}")
    found = violations(tree)
    assert len(found) == 1 and expected in found[0] and found[0].startswith(module), found


def test_an_oversized_module_or_class_is_caught(tree: Path) -> None:
    _add(tree, "vision/diff.py", "\n".join(f"X{i} = {i}" for i in range(500)))
    body = "\n".join(f"    a{i} = {i}" for i in range(260))
    _add(tree, "vision/encode.py", f"class Big:\n{body}")
    found = violations(tree)
    assert any(f.startswith("vision/diff.py: ") and f.endswith("lines, over 500") for f in found)
    assert any("class Big has 261 lines, over 250" in f for f in found)


def test_layers_cover_every_agent_module() -> None:
    unplaced = [p for p in (ROOT / "agent").rglob("*.py") if p.name != "__init__.py"
                and layer_of(".".join(p.relative_to(ROOT).with_suffix("").parts)) is None]
    assert unplaced == []


# distribution name -> the module it provides, where they differ
MODULE_OF = {"opencv-python-headless": "cv2", "pyyaml": "yaml", "python-xlib": "Xlib"}


def _used_modules() -> set[str]:
    """Top-level modules the package code imports (or locates with importlib's find_spec)."""
    used: set[str] = set()
    for package in ("agent", "actions", "vision"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    used |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    used.add(node.module.split(".")[0])
                elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "find_spec"
                      and node.args and isinstance(node.args[0], ast.Constant)):
                    used.add(str(node.args[0].value).split(".")[0])
    return used


def test_every_dependency_is_used_by_package_code() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=\[ ;]", spec)[0] for spec in project["dependencies"]]
    used = _used_modules()
    assert [n for n in names if MODULE_OF.get(n, n.replace("-", "_")) not in used] == []
