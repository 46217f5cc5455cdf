"""Content fingerprints of configs and of the package's own source code.

The rule (used by the suite cache and the result store): a cached artefact is keyed by
``sha256(canonical config) + sha256(code it depends on) + library versions``. The code
part is the normalised syntax tree of every ``vidattn`` module reachable by imports
from the entry modules, with docstrings removed, so comments, docstrings and
formatting do not invalidate results while any change to executable code does.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

PACKAGE = "vidattn"
PACKAGE_ROOT = Path(__file__).resolve().parent


def canonical_json(obj: Any) -> str:
    """Deterministic JSON for configs: sorted keys, dataclasses and tuples as lists."""

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        raise TypeError(f"cannot canonicalise {type(o).__name__} in a config")

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    return json.dumps(obj, sort_keys=True, default=default, separators=(",", ":"))


def sha256(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _module_path(name: str) -> Path | None:
    rel = name.split(".")[1:]
    base = PACKAGE_ROOT.joinpath(*rel)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def _imports(name: str, tree: ast.AST) -> set[str]:
    """``vidattn`` modules imported by module ``name`` (absolute and relative imports)."""
    found: set[str] = set()
    is_pkg = _module_path(name) is not None and _module_path(name).name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".")
                base_parts = parts if is_pkg else parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    # parents are executed on import too
    for mod in list(found):
        parts = mod.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return {m for m in found if _module_path(m) is not None}


@lru_cache(maxsize=None)
def _normalised_source(name: str) -> tuple[str, frozenset[str]]:
    path = _module_path(name)
    if path is None:
        raise ValueError(f"{name!r} is not a module of the {PACKAGE} package")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    deps = _imports(name, tree)
    return ast.dump(_strip_docstrings(tree), include_attributes=False), frozenset(deps)


def module_closure(entry_modules: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """All package modules reachable by imports from ``entry_modules`` (sorted).

    Modules in ``exclude`` are neither included nor followed.
    """
    todo = [m for m in entry_modules]
    seen: set[str] = set(exclude)
    found: list[str] = []
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        found.append(mod)
        todo.extend(_normalised_source(mod)[1] - seen)
    return sorted(found)


def code_fingerprint(entry_modules: Iterable[str], exclude: Iterable[str] = ()) -> str:
    """sha256 over the normalised source of the import closure of ``entry_modules``."""
    h = hashlib.sha256()
    for mod in module_closure(entry_modules, exclude):
        h.update(mod.encode())
        h.update(_normalised_source(mod)[0].encode())
    return h.hexdigest()


def clear_cache() -> None:
    """Forget parsed sources (tests that edit modules on disk call this)."""
    _normalised_source.cache_clear()
