"""Content fingerprints of configs and of the package's own source code.

:func:`canonical_json` and :func:`sha256` make the keys of records and caches
(:mod:`vidattn.core.identity`). :func:`code_fingerprint` is provenance: the normalised syntax
tree of every ``vidattn`` module reachable by imports from the entry modules, with
docstrings removed, stored in each record so that ``vidattn store drift`` can list the
records made by other (earlier, equivalent) code.
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
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_ROOT.parents[1]


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


def _module_file(name: str) -> str | None:
    """``name``'s file relative to the package root (None if it is not a package module)."""
    rel = "/".join(name.split(".")[1:])
    for cand in (f"{rel}.py", f"{rel}/__init__.py" if rel else "__init__.py"):
        if (PACKAGE_ROOT / cand).is_file():
            return cand
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
    is_pkg = (_module_file(name) or "").endswith("__init__.py")
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
    return {m for m in found if _module_file(m) is not None}


@lru_cache(maxsize=None)
def _normalised_source(name: str) -> tuple[str, frozenset[str]]:
    rel = _module_file(name)
    if rel is None:
        raise ValueError(f"{name!r} is not a module of the {PACKAGE} package")
    tree = ast.parse((PACKAGE_ROOT / rel).read_text(encoding="utf-8"))
    return ast.dump(_strip_docstrings(tree), include_attributes=False), frozenset(_imports(name, tree))


def _excluded(mod: str, exclude: tuple[str, ...]) -> bool:
    return any(mod == e or mod.startswith(e + ".") for e in exclude)


def module_closure(entry_modules: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """All package modules reachable by imports from ``entry_modules`` (sorted).

    Modules in ``exclude`` (or in a package it names) are neither included nor followed.
    """
    skip = tuple(exclude)
    todo = list(entry_modules)
    seen: set[str] = set()
    found: list[str] = []
    while todo:
        mod = todo.pop()
        if mod in seen or _excluded(mod, skip):
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
