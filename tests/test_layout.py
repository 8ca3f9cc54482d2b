"""The layout the folders promise: the library below, the applications above, no import circles.

Drawn from the source (every import statement, at module level or inside a function: a lazy
import is still a dependency), so a new circle or a library module reaching up into the command
line fails here, like the test that keeps torch out of the runtime.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"seaembed.export": REPO / "export", "seaembed.runtime": REPO / "runtime"}
# What sits above the library: argument parsing and exit codes (cli), the HTTP server, bulk jobs.
APPLICATIONS = ("seaembed.runtime.cli", "seaembed.runtime.server", "seaembed.runtime.bulk")
# Compiled modules (setup.py): leaves of the graph whether or not this machine built them.
EXTENSIONS = ("seaembed.runtime.tokenizer._native",)


def _module_files() -> dict[str, Path]:
    modules = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    for name in EXTENSIONS:
        modules[name] = None
    return modules


MODULES = _module_files()


def _is_package(module: str) -> bool:
    return MODULES[module] is not None and MODULES[module].name == "__init__.py"


def _target(name: str) -> str | None:
    """The longest known module that `name` (a module or module.attribute) lives in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement in `module`."""
    if MODULES[module] is None:
        return []
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(target, []) for alias in node.names if (target := _target(alias.name))]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if _target(source) is None:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:  # `from . import bench` imports the module bench
                    found.append((submodule, []))
                else:
                    found.append((_target(source), [alias.name]))
    return found


def import_graph() -> dict[str, set[str]]:
    return {m: {target for target, _ in imports_of(m) if target != m} for m in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_scan_sees_the_imports_it_must():
    """Guards the scanner itself: relative, lazy and `from . import module` imports are all edges."""
    graph = import_graph()
    assert "seaembed.runtime.backends" in graph["seaembed.runtime.embedder"]  # from .backends import …
    assert "seaembed.runtime.bench" in graph["seaembed.runtime"]  # from . import bench
    assert "seaembed.runtime.cli.embed" in graph["seaembed.runtime.cli.commands"]  # lazy, inside a function
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_library_never_imports_the_applications():
    offending = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not _in(module, APPLICATIONS)
        for target in targets
        if _in(target, APPLICATIONS)
    ]
    assert offending == []


def test_server_and_bulk_do_not_parse_arguments():
    """Only runtime/cli builds parsers and exit codes; the server and bulk jobs are driven through it."""
    offending = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if _in(module, ("seaembed.runtime.server",))
        for target in targets
        if _in(target, ("seaembed.runtime.cli",))
    ]
    assert offending == []
    uses_argparse = sorted(
        module
        for module in MODULES
        if MODULES[module] is not None and not _in(module, ("seaembed.runtime.cli",))
        and "argparse" in {alias.name for node in ast.walk(ast.parse(MODULES[module].read_text())) if isinstance(node, ast.Import) for alias in node.names}
    )
    assert uses_argparse == []


def test_no_private_name_imported_across_modules():
    offending = [
        f"{module} imports {name} from {source}"
        for module in MODULES
        for source, names in imports_of(module)
        if source != module
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert offending == []


SCRIPT = """
import json, sys
import seaembed.runtime
from seaembed.runtime import Embedder
embedder = Embedder.load(sys.argv[1])
embedder.encode(["xin chào"])
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_runtime_loads_no_command_line_code(tiny_bundle):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_bundle)], capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    loaded = [m for m in modules if m == "argparse" or _in(m, APPLICATIONS)]
    assert loaded == []
