"""The package's folders show the flow of data, and no import runs back up it.

Layers, from first to last: base modules (config, errors, summaries, style) -> data -> model
-> analysis -> studies -> report -> cli. A module may import from its own layer and the ones
before it, never from a later one (lazy imports inside functions included).
"""

import ast
from pathlib import Path

import pytest

import bayes_lac

PACKAGE = Path(bayes_lac.__file__).parent
LAYERS = ["base", "data", "model", "analysis", "studies", "report", "cli"]


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] not in LAYERS:
        return "base"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayes_lac"):
            if node.module == "bayes_lac":
                for alias in node.names:
                    yield f"bayes_lac.{alias.name}", node.lineno
            else:
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bayes_lac"):
                    yield alias.name, node.lineno


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


def test_every_module_is_in_a_known_layer():
    folders = {p.parent.name for p in SOURCES if p.parent != PACKAGE}
    assert folders <= set(LAYERS) | {"templates"}, folders - set(LAYERS)


@pytest.mark.parametrize("path", [p for p in SOURCES if module_name(p) != "bayes_lac"], ids=module_name)
def test_no_import_runs_back_up_the_flow(path):
    here = LAYERS.index(layer_of(module_name(path)))
    backwards = [
        f"line {line}: {target} ({layer_of(target)})"
        for target, line in imported_modules(path)
        if target not in {"bayes_lac", "bayes_lac.__version__"} and LAYERS.index(layer_of(target)) > here
    ]
    assert not backwards, f"{module_name(path)} ({layer_of(module_name(path))}) imports from a later layer: {backwards}"


def test_the_checker_sees_a_backward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from bayes_lac.report.board import build_report\n")
    assert [t for t, _ in imported_modules(bad)] == ["bayes_lac.report.board"]
    assert LAYERS.index(layer_of("bayes_lac.report.board")) > LAYERS.index(layer_of("bayes_lac.model.fit"))
