"""Start-up: building the command line's parser (``lesionseg --help``) imports neither torch nor MONAI, so
commands that do not need a network start in a fraction of a second; and ``import lesionseg.train.presets``
(the parsers' source of preset names) stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "monai")


def _imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_building_the_parser_imports_no_torch():
    # the parsers read lesionseg.train.presets and lesionseg.preprocess.config, whose packages used to
    # import the trainer (torch) and the whole pipeline
    code = "import lesionseg.cli as cli\ncli.build_parser().format_help()\nimport lesionseg.train.presets"
    assert _imported_after(code) == []


@pytest.mark.slow  # imports torch: a few seconds
def test_the_trainer_still_comes_with_torch_when_asked_for():
    # the lazy package still hands out its public names, and the probe does see torch when it is imported
    assert "torch" in _imported_after("from lesionseg.train import FoldTrainer, TrainConfig, train_run")
