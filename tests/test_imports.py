"""Imports run one way: cli -> api -> {stream, export -> train} -> inference -> models -> audio ->
files and errors. Built from the source, function-level imports included (TYPE_CHECKING blocks
excepted), so a circle cannot hide inside a function."""

import ast

import pytest
from conftest import REPO

FOLDERS = {
    "vocalstream": "vocalstream",
    "stream": "vocalstream.stream",
    "models": "vocalstream.models",
    "export": "vocalstream.export",
    "inference": "vocalstream.inference",
    "train": "vocalstream.train",
    "catalog": "vocalstream.catalog",
    "service": "vocalstream.service",
}

# Lower ranks never import higher ones; within a rank, modules of one package may import each
# other as long as there is no circle.
RANKS = {
    "vocalstream.errors": 0,
    "vocalstream.files": 0,
    "vocalstream.processes": 0,
    "vocalstream.version": 0,
    "vocalstream.defaults": 0,
    "vocalstream.audio": 1,
    "vocalstream.models": 2,
    "vocalstream.inference": 3,
    "vocalstream.stream": 4,
    "vocalstream.train": 4,
    "vocalstream.export": 5,
    "vocalstream.api": 6,
    "vocalstream": 7,
    "vocalstream.catalog": 7,
    "vocalstream.service": 7,
    "vocalstream.cli": 8,
    "vocalstream.__main__": 9,
}


def modules() -> dict[str, ast.Module]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = ast.parse(path.read_text())
    return found


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    return skipped


def imports_of(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    skipped = _type_checking_nodes(tree)
    targets = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import; vocalstream imports absolutely"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                targets.add(submodule if submodule in known else node.module)
    return {t for t in targets if t in known and t != name}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, or None."""
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (circle := visit(target, [*path, target])):
                return circle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module, [module])):
            return circle
    return None


def rank(module: str) -> int:
    while module not in RANKS:
        module = module.rsplit(".", 1)[0]
    return RANKS[module]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, tree, set(found)) for name, tree in found.items()}


def test_the_graph_is_built_from_every_module(graph):
    assert {
        "vocalstream.cli",
        "vocalstream.api",
        "vocalstream.inference.model",
        "vocalstream.stream.pipeline",
        "vocalstream.export.bundle",
    } <= set(graph)
    assert "vocalstream.inference.model" in graph["vocalstream.api"]


def test_there_is_no_import_circle(graph):
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    circle = find_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_imports_only_run_down_the_layers(graph):
    upward = [f"{a} -> {b}" for a, targets in graph.items() for b in targets if rank(b) > rank(a)]
    assert not upward, upward


def test_the_daemon_path_never_imports_training_or_bundle_writing(graph):
    reached, todo = set(), ["vocalstream.api"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += graph[module]
    forbidden = sorted(
        m for m in reached if m.startswith(("vocalstream.train", "vocalstream.export"))
    )
    assert not forbidden, forbidden
