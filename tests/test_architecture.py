"""Imports point down the layers of docs/ARCHITECTURE.md, and no two modules import each other.

Every module under src/squeezelab is parsed (not imported), so imports inside functions count as
much as the ones at the top: a lazy import still ties the two layers together.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "squeezelab"
DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"

# From the ground up. A name is a package or module under squeezelab; the longest name that
# matches a module decides its layer. A module may import its own layer and the ones below.
LAYERS = [
    ["errors", "utils", "runtime", "preprocessing"],
    ["models"],
    ["model_files"],
    ["data"],
    ["evaluate.metrics", "report"],
    ["evaluate"],
    ["train"],
    ["compress"],
    ["export"],
    ["loading"],
    ["analysis", "serve", "evaluate.files", "export.benchmark", "convert"],
    ["squeezelab"],  # the package itself: the public names `import squeezelab` gives
    ["cli", "__main__"],
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer_of(module: str) -> int:
    name = module.removeprefix("squeezelab.") if module != "squeezelab" else "squeezelab"
    best, layer = "", None
    for index, names in enumerate(LAYERS):
        for prefix in names:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
                best, layer = prefix, index
    assert layer is not None, f"{module} is in no layer; add it to LAYERS and docs/ARCHITECTURE.md"
    return layer


def imports_of(module: str) -> set[str]:
    """The squeezelab modules `module` imports anywhere in its text (top level or in functions)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import module` imports the module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_point_down():
    upward = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
              for m, targets in GRAPH.items() for t in sorted(targets) if layer_of(t) > layer_of(m)]
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_two_modules_import_each_other():
    assert _cycles(GRAPH) == []


def test_the_checks_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("squeezelab.evaluate.files") > layer_of("squeezelab.loading") > layer_of("squeezelab.evaluate")
    assert layer_of("squeezelab.cli.train") == len(LAYERS) - 1


def test_doc_lists_the_same_layers():
    block = re.search(r"```layers\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/ARCHITECTURE.md has no ```layers block"
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    documented = [[name.strip() for name in line.split(",")] for line in lines if line]
    assert documented == LAYERS[::-1]  # the doc reads from the top down



def test_doc_lists_every_module():
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", DOC.read_text(), re.M))
    missing = sorted(str(p.relative_to(SRC)) for p in MODULES.values() if str(p.relative_to(SRC)) not in listed)
    assert missing == [], f"add a row for each to docs/ARCHITECTURE.md's module table: {missing}"
    gone = sorted(listed - {str(p.relative_to(SRC)) for p in MODULES.values()})
    assert gone == [], f"docs/ARCHITECTURE.md lists modules that no longer exist: {gone}"
