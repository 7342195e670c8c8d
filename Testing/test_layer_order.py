"""The package's layer order (the table of the design, "the package, in the order data flows through it"):
each module imports only modules above it in the table, or in its own row.

Every ``import lesionseg.X`` / ``from lesionseg.X import ...`` counts, at the top of a file or inside a function
(a lazy import is still a dependency). Small shared modules outside the table (errors, labels, progress, device, lazy,
the starter model's path) may be imported by any layer and import no layer themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lesionseg"

#: The design's table, top to bottom; modules in one row may import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("io",),
    ("data",),
    ("synth",),
    ("preprocess",),
    ("metrics",),
    ("difficulty",),
    ("curriculum",),
    ("models", "losses"),
    ("bundle",),
    ("train",),
    ("infer",),
    ("stats", "report"),
    ("refine",),
    ("mrml",),
    ("cli",),
)
#: Shared by all layers; they import none.
SHARED = frozenset({"errors", "labels", "progress", "device", "lazy", "starter", "__init__", "__main__"})
RANK = {name: row for row, names in enumerate(LAYERS) for name in names}


def _owner(path: Path) -> str:
    """The top-level module a file belongs to (``lesionseg/io/geometry.py`` -> ``io``)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imported_modules(source: str) -> list[tuple[str, int]]:
    """The top-level lesionseg modules a source imports, with line numbers (``from lesionseg import io`` -> io)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[1], node.lineno) for alias in node.names
                      if alias.name.startswith("lesionseg.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("lesionseg."):
                found.append((node.module.split(".")[1], node.lineno))
            elif node.module == "lesionseg":
                found += [(alias.name, node.lineno) for alias in node.names if alias.name in RANK or alias.name in SHARED]
    return found


def layer_violations(owner: str, source: str) -> list[str]:
    """What ``source`` (a file of module ``owner``) imports against the layer order."""
    problems = []
    for target, line in imported_modules(source):
        if target == owner or target == "__version__":
            continue
        if owner in SHARED and owner not in ("__init__", "__main__") and target in RANK:
            problems.append(f"line {line}: shared module {owner} imports the layer {target}")
        elif owner in RANK and target in RANK and RANK[target] > RANK[owner]:
            problems.append(f"line {line}: {owner} imports {target}, which comes after it")
    return problems


def test_every_module_of_the_package_is_in_the_table_or_shared():
    modules = {_owner(path) for path in PACKAGE.rglob("*.py")}
    unplaced = sorted(modules - set(RANK) - SHARED)
    assert not unplaced, f"place these modules in the layer table of DESIGN.md and here: {unplaced}"


def test_no_module_imports_one_that_comes_after_it():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for problem in layer_violations(_owner(path), path.read_text(encoding="utf-8")):
            problems.append(f"{path.relative_to(PACKAGE.parent)} {problem}")
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)


@pytest.mark.parametrize(("owner", "source", "expected"), [
    ("io", "from lesionseg.cli import main", 1),
    ("preprocess", "def f():\n    from lesionseg.refine.revisions import x", 1),  # lazy imports count
    ("difficulty", "import lesionseg.curriculum.grouping", 1),
    ("labels", "from lesionseg import io", 1),
    ("curriculum", "from lesionseg.difficulty.scales import EASY_DIRECTIONS", 0),
    ("models", "from lesionseg.losses import registry", 0),  # one row
    ("refine", "from lesionseg import __version__\nfrom lesionseg.errors import ParameterError", 0),
])
def test_the_check_finds_imports_against_the_order(owner, source, expected):
    assert len(layer_violations(owner, source)) == expected
