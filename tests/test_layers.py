"""The package's layers (DESIGN.md section 2): a module imports only its own layer or those below it.

Every import counts, at module level or inside a function: a lazy import upward is still a dependency, and the
one that once tied the recipe composer to half the package in a cycle was lazy.
"""

import ast
from pathlib import Path

from pixelis_verl.config import REPO_ROOT

# Bottom to top; a name is a subpackage or a top-level module of pixelis_verl. A package's `__main__` is its
# command, an entry like train.py.
LAYERS = [
    {"typed_config", "paths", "registry", "run_metrics"},
    {"trajectory"},
    {"ops"},
    {"tools"},
    {"rewards"},
    {"data"},
    {"runtime", "agent_loop"},
    {"tiny"},
    {"sft", "ttrl", "eval"},
    {"serve"},
    {"plugin"},
    {"cli", "config", "cluster", "preflight"},
    {"train", "evaluate", "submit", "plot", "local_cluster", "rehearse", "merge", "__main__"},
]
PACKAGE = REPO_ROOT / "pixelis_verl"


def _layer(parts: tuple[str, ...]) -> int:
    """The layer of a module given as its path parts under pixelis_verl (`("ttrl", "stream")`)."""
    name = "__main__" if parts[-1] == "__main__" else parts[0]
    return next(i for i, names in enumerate(LAYERS) if name in names)


def _imports(path: Path) -> list[tuple[int, tuple[str, ...]]]:
    """(line, module parts under pixelis_verl) of every pixelis_verl import in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.startswith("pixelis_verl."):
                found.append((node.lineno, tuple(name.split(".")[1:])))
    return found


def test_every_module_belongs_to_a_layer():
    modules = {path.relative_to(PACKAGE).with_suffix("").parts for path in PACKAGE.rglob("*.py")}
    homeless = [parts for parts in modules if parts != ("__init__",) and not any(parts[0] in n for n in LAYERS)]
    assert not homeless, f"add these to LAYERS (and DESIGN.md section 2): {homeless}"


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        for line, target in _imports(path):
            if _layer(target) > _layer(parts):
                upward.append(f"{path.relative_to(REPO_ROOT)}:{line} imports pixelis_verl.{'.'.join(target)}")
    assert not upward, "imports upward:\n" + "\n".join(upward)
