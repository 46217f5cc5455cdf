"""Content fingerprints of configs and of the package's own source code.

:func:`canonical_json` and :func:`sha256` make the keys of records and caches
(:mod:`vidattn.identity`). :func:`code_fingerprint` is provenance: the normalised syntax
tree of every ``vidattn`` module reachable by imports from the entry modules, with
docstrings removed, stored in each record so that ``vidattn store drift`` can list the
records made by other (earlier, equivalent) code. It reads the working tree or, for the
one-time migration of records keyed by the old rule, the source at a git revision.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

PACKAGE = "vidattn"
PACKAGE_ROOT = Path(__file__).resolve().parent
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


@lru_cache(maxsize=None)
def _files_at(rev: str) -> frozenset[str]:
    """The package's files at git revision ``rev``, relative to the package root."""
    prefix = PACKAGE_ROOT.relative_to(REPO_ROOT).as_posix() + "/"
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-tree", "-r", "--name-only", rev, prefix],
                             check=True, capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        raise ValueError(f"cannot read the package source at git revision {rev!r} in {REPO_ROOT}") from e
    return frozenset(line[len(prefix):] for line in out.splitlines())


def _module_file(name: str, rev: str | None = None) -> str | None:
    """``name``'s file relative to the package root (in the working tree, or at ``rev``)."""
    rel = "/".join(name.split(".")[1:])
    for cand in (f"{rel}.py", f"{rel}/__init__.py" if rel else "__init__.py"):
        if (cand in _files_at(rev)) if rev else (PACKAGE_ROOT / cand).is_file():
            return cand
    return None


def _read(rel: str, rev: str | None) -> str:
    if rev is None:
        return (PACKAGE_ROOT / rel).read_text(encoding="utf-8")
    prefix = PACKAGE_ROOT.relative_to(REPO_ROOT).as_posix()
    return subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{rev}:{prefix}/{rel}"], check=True,
                          capture_output=True, text=True).stdout


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def _imports(name: str, tree: ast.AST, rev: str | None = None) -> set[str]:
    """``vidattn`` modules imported by module ``name`` (absolute and relative imports)."""
    found: set[str] = set()
    is_pkg = (_module_file(name, rev) or "").endswith("__init__.py")
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
    return {m for m in found if _module_file(m, rev) is not None}


@lru_cache(maxsize=None)
def _normalised_source(name: str, rev: str | None = None) -> tuple[str, frozenset[str]]:
    rel = _module_file(name, rev)
    if rel is None:
        raise ValueError(f"{name!r} is not a module of the {PACKAGE} package" + (f" at {rev}" if rev else ""))
    tree = ast.parse(_read(rel, rev))
    deps = _imports(name, tree, rev)
    return ast.dump(_strip_docstrings(tree), include_attributes=False), frozenset(deps)


def module_closure(entry_modules: Iterable[str], exclude: Iterable[str] = (), rev: str | None = None) -> list[str]:
    """All package modules reachable by imports from ``entry_modules`` (sorted).

    Modules in ``exclude`` are neither included nor followed; ``rev`` reads the source
    at that git revision instead of the working tree.
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
        todo.extend(_normalised_source(mod, rev)[1] - seen)
    return sorted(found)


def code_fingerprint(entry_modules: Iterable[str], exclude: Iterable[str] = (), rev: str | None = None) -> str:
    """sha256 over the normalised source of the import closure of ``entry_modules`` (at ``rev``)."""
    h = hashlib.sha256()
    for mod in module_closure(entry_modules, exclude, rev):
        h.update(mod.encode())
        h.update(_normalised_source(mod, rev)[0].encode())
    return h.hexdigest()


def clear_cache() -> None:
    """Forget parsed sources (tests that edit modules on disk call this)."""
    _normalised_source.cache_clear()
    _files_at.cache_clear()
