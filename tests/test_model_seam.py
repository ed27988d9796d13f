"""The model seam: a backend registered from a test is used by `deskpilot run --model FAMILY/NAME`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import BadInput
from agent.models import registry
from agent.models.base import ModelConfig
from agent.models.scripted import ScriptedModel, computer, say
from agent.ui.cli import main as cli_main
from vision.geometry import Size


class HalfSizeModel(ScriptedModel):
    """A test family whose screenshots are half the screen's size, in both directions."""

    def __init__(self, name: str, config: ModelConfig) -> None:
        super().__init__([[say("Clicking."), computer("left_click", coordinate=[100, 50])], [say("Done.")]],
                         name=name, image_size=lambda s: Size(s.width // 2, s.height // 2))
        self.config = config


@pytest.fixture
def test_family() -> object:
    created: list[HalfSizeModel] = []

    def factory(name: str, config: ModelConfig) -> HalfSizeModel:
        created.append(HalfSizeModel(name, config))
        return created[-1]

    registry.register("test", factory)
    yield created
    registry.unregister("test")


def test_a_registered_family_runs_a_goal_through_the_cli(test_family, desktop, probe, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["run", "Click the thing", "--model", "test/half-1", "--display", desktop.display,
                     "--out", str(tmp_path / "rec"), "--confirm", "allow"])
    out = capsys.readouterr().out
    assert code == 0, out
    [model] = test_family
    assert model.name == "half-1" and model.config.model == "test/half-1"
    # the click at (100, 50) of the half-size image landed at the screen's (200, 100) +- one model pixel
    [click] = [e for e in probe.wait_for(lambda ev: any(e["type"] == "press" for e in ev)) if e["type"] == "press"]
    assert abs(click["x"] - 201) <= 1 and abs(click["y"] - 101) <= 1
    # the model got the screen at its own image size, and the recording says which model ran
    [first, _] = model.requests
    assert first["history"][0].images[0].size == Size(640, 400)
    recording = Path(out.strip().splitlines()[-1].removeprefix("recording: "))
    meta = json.loads((recording / "meta.json").read_text(encoding="utf-8"))
    assert meta["model"] == "test/half-1" and meta["model_image"] == {"width": 640, "height": 400}


def test_unknown_families_and_names_are_refused_with_the_choices() -> None:
    assert registry.split("claude-sonnet-4-6") == ("anthropic", "claude-sonnet-4-6")
    assert registry.split("anthropic/claude-opus-4-5") == ("anthropic", "claude-opus-4-5")
    with pytest.raises(BadInput, match="unknown family 'nope'.*anthropic"):
        registry.create(ModelConfig(model="nope/x"))
    with pytest.raises(BadInput, match="use FAMILY/NAME"):
        registry.create(ModelConfig(model="gpt-9"))
    with pytest.raises(BadInput, match="tool table"):
        registry.create(ModelConfig(model="claude-future-9"))


def test_backends_are_imported_only_when_chosen() -> None:
    import subprocess
    import sys

    code = ("import sys; from agent.models import registry; from agent.models.base import ModelConfig; "
            "print('agent.models.anthropic' in sys.modules, 'anthropic' in sys.modules); "
            "registry.create(ModelConfig(model='scripted/x')); print('agent.models.anthropic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split()
    assert out == ["False", "False", "False"]
