"""The direction of dependencies (DESIGN: CLI -> catalog -> experiments -> testbeds -> methods -> nn
-> core), read from the source with ``ast`` so that a wrong import fails here and not in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aicanon

PACKAGE = Path(aicanon.__file__).resolve().parent
METHOD_AREAS = (
    "vision", "language", "align", "reasoning", "evals", "generative", "rl", "graphs", "learning",
    "timeseries", "multimodal", "explain", "medical", "society",
)  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str | None = None) -> set[str]:
    """Every ``aicanon...`` module the file imports (absolute or relative, at any depth)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    package = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # `from aicanon.experiments import gat` imports the module aicanon.experiments.gat
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "aicanon" or name.startswith("aicanon.")}


def _files(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).rglob("*.py"))


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _offences(files: list[Path], forbidden: tuple[str, ...], allowed_self: bool = False) -> list[str]:
    out = []
    for path in files:
        own = _module_name(path)
        for name in sorted(_imports(path)):
            if allowed_self and name == own:
                continue
            if any(_within(name, f"aicanon.{prefix}") for prefix in forbidden):
                out.append(f"{own} imports {name}")
    return out


def test_parser_sees_imports_of_every_form():
    # The checks below are only as good as the import reader: it must see `import a.b`,
    # `from a import b` (as the module a.b) and relative imports, nested in functions too.
    probe = PACKAGE / "experiments" / "probe.py"
    source = (
        "import aicanon.core\nfrom aicanon.experiments import gat\nfrom . import vit\n"
        "def f():\n    from ..graphs import gcn\n"
    )
    expected = {"aicanon.core", "aicanon.experiments.gat", "aicanon.experiments.vit", "aicanon.graphs.gcn"}
    assert expected <= _imports(probe, source)


def test_no_experiment_imports_another_experiment():
    offences = []
    for path in _files("experiments"):
        own = _module_name(path)
        for name in _imports(path):
            if _within(name, "aicanon.experiments") and name not in ("aicanon.experiments", own):
                offences.append(f"{own} imports {name}")
    assert not offences, offences


def test_core_knows_no_paper_catalog_or_method():
    forbidden = ("catalog", "cli", "report", "experiments", "testbeds", "nn", "datasets", *METHOD_AREAS)
    assert not _offences(_files("core"), forbidden)


def test_methods_never_import_experiments_or_testbeds():
    files = [f for area in (*METHOD_AREAS, "nn", "datasets") if (PACKAGE / area).is_dir() for f in _files(area)]
    assert files, "no method modules found"
    assert not _offences(files, ("experiments", "testbeds", "catalog", "cli", "report"))


def test_datasets_read_formats_and_import_no_method():
    assert not _offences(_files("datasets"), (*METHOD_AREAS, "nn", "experiments", "testbeds"))


def test_testbeds_import_no_experiment_or_catalog():
    assert _files("testbeds"), "aicanon.testbeds is missing"
    assert not _offences(_files("testbeds"), ("experiments", "catalog", "cli", "report"))


def test_gcn_does_not_depend_on_gat():
    assert not any(_within(name, "aicanon.graphs.gat") for name in _imports(PACKAGE / "graphs" / "gcn.py"))


@pytest.mark.parametrize("path", _files("experiments"), ids=lambda p: p.stem)
def test_experiments_do_not_force_a_matplotlib_backend(path):
    # They draw on matplotlib.figure.Figure, which needs no backend; results.write saves with Agg.
    assert 'matplotlib.use("Agg")' not in path.read_text()
