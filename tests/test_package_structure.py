"""Structure of the package: no import cycles (lazy, function-level imports included) and small modules."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "trl_unlearn"
MAX_MODULE_LINES = 600  # the guideline


def _modules() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _imported(module: str, is_package: bool, node: ast.AST, known) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".") if is_package else module.split(".")[:-1]
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module
        names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    return {name for name in names if name in known}


def import_graph() -> dict[str, set[str]]:
    """Every import of every module (module-level and inside functions), parents excluded."""
    modules = _modules()
    graph = {}
    for module, (path, is_package) in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _imported(module, is_package, node, modules)
        graph[module] = {dep for dep in edges if dep != module and not module.startswith(dep + ".")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_cycle_finder_finds_a_lazy_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert "trl_unlearn.evaluation.tofu_summary" in graph["trl_unlearn.evaluation.tofu_evaluator"]
    assert find_cycles(graph) == []


def test_no_module_over_the_size_guideline():
    sizes = {path.name: len(path.read_text().splitlines()) for path, _ in _modules().values()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_public_modules_export_evaluator_and_summaries():
    from trl_unlearn.evaluation import muse, muse_summary, tofu, tofu_summary
    from trl_unlearn.evaluation.muse_evaluator import MUSEEvaluator
    from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator

    assert tofu.TOFUEvaluator is TOFUEvaluator and muse.MUSEEvaluator is MUSEEvaluator
    assert tofu.summarize is tofu_summary.summarize and muse.summarize is muse_summary.summarize
    assert set(tofu_summary.__all__) < set(tofu.__all__) and set(muse_summary.__all__) < set(muse.__all__)
