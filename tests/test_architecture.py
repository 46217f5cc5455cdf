"""The package's layout rules (ARCHITECTURE.md): no import circle, the kernel imports no experiment,
the public API is importable and documented, and user errors at the command line are one line."""
import ast
import subprocess
import sys

import pytest

from vidattn.core import fingerprint

PKG = fingerprint.PACKAGE_ROOT


def _modules() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def _graph() -> dict[str, set[str]]:
    """Each module's imports of package modules (function-level imports included), parents left out."""
    graph = {}
    for mod in _modules():
        rel = fingerprint._module_file(mod)
        tree = ast.parse((PKG / rel).read_text())
        deps = fingerprint._imports(mod, tree)
        graph[mod] = {d for d in deps if d != mod and not mod.startswith(d + ".")
                      and fingerprint._module_file(d) and not fingerprint._module_file(d).endswith("__init__.py")}
    return graph


def test_the_import_graph_has_no_circle():
    graph, state, stack, cycles = _graph(), {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, f"import circles: {cycles[:3]}"


def test_the_kernel_and_the_store_import_no_experiment():
    graph = _graph()
    for mod, deps in graph.items():
        if mod.startswith("vidattn.core"):
            bad = {d for d in deps if d.startswith(("vidattn.papers", "vidattn.catalog", "vidattn.report"))}
            assert not bad, f"{mod} imports {sorted(bad)}"
    assert not any(d.startswith("vidattn.papers") for d in graph["vidattn.core.store"])


def test_the_public_api_exports_documented_names():
    from vidattn import api

    assert len(api.__all__) >= 25
    for name in api.__all__:
        obj = getattr(api, name)
        assert (obj.__doc__ or "").strip(), f"vidattn.api.{name} has no docstring"
    page = (PKG.parents[1] / "book" / "api.md").read_text()
    documented = {line.split("vidattn.api.")[1].strip() for line in page.splitlines() if "vidattn.api." in line}
    assert documented == set(api.__all__)  # the reference page lists exactly the API


@pytest.mark.parametrize("argv, says", [
    (["run", "notebooks/01_data_suites.md", "/tmp/x.ipynb", "-p", "profile", "huge"], "unknown profile 'huge'"),
    (["run", "notebooks/nope.md", "/tmp/x.ipynb"], "chapter notebooks/nope.md not found"),
    (["data", "check", "/nonexistent/dataset"], "/nonexistent/dataset"),
    (["store", "verify", "--claim", "98_none:1", "--profile", "smoke"], "no smoke ledger"),
])
def test_a_user_error_is_one_line_and_exit_2(argv, says):
    out = subprocess.run([sys.executable, "-m", "vidattn.cli", *argv], capture_output=True, text=True,
                         cwd=PKG.parents[1])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and says in lines[0] and "Traceback" not in out.stderr, out.stderr
