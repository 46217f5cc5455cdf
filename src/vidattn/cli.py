"""Command line: run chapters with papermill, and inspect or verify the result store.

    vidattn run notebooks/data_suites.md book/_executed/data_suites.ipynb -p profile smoke
    vidattn run-all --profile small --out-dir book/_executed
    vidattn store stale [--delete]
    vidattn store verify --sample 2
"""
from __future__ import annotations

import argparse
import ast
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from vidattn.paths import REPO_ROOT
from vidattn.profiles import PROFILES

NOTEBOOKS = REPO_ROOT / "notebooks"


def chapters() -> list[Path]:
    """Every chapter, in book order (file names start with their number)."""
    return sorted(NOTEBOOKS.glob("*.md"))


def parameters_of(nb: Any) -> dict[str, Any]:
    """Names and default values in the notebook's single ``parameters`` cell."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected exactly one cell tagged 'parameters', found {len(cells)}")
    values: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def run_chapter(src: Path, out: Path, params: dict[str, Any], prepare_only: bool = False) -> None:
    """Convert a MyST chapter with jupytext and execute it with papermill into ``out``."""
    import jupytext
    import nbformat
    import papermill

    src, out = Path(src), Path(out)
    if not src.is_file():
        raise FileNotFoundError(f"chapter {src} not found")
    nb = jupytext.read(src)
    known = parameters_of(nb)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{src.name}: unknown parameter(s) {unknown}; the chapter takes {sorted(known)}")
    if "profile" in params and params["profile"] not in PROFILES:
        raise ValueError(f"unknown profile {params['profile']!r}; choose one of {PROFILES}")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".ipynb", dir=out.parent, delete=False) as fh:
        nbformat.write(nb, fh)
        tmp = fh.name
    try:
        papermill.execute_notebook(tmp, str(out), parameters=params, kernel_name="python3", language="python",
                                   cwd=str(src.parent), prepare_only=prepare_only, progress_bar=False)
    finally:
        os.unlink(tmp)


def _parse_params(pairs: list[list[str]] | None) -> dict[str, Any]:
    return {k: yaml.safe_load(v) for k, v in (pairs or [])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vidattn", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one chapter with papermill")
    r.add_argument("chapter", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="chapter parameter")
    r.add_argument("--prepare-only", action="store_true", help="inject parameters without executing")
    a = sub.add_parser("run-all", help="run every chapter for one profile")
    a.add_argument("--profile", required=True, choices=PROFILES)
    a.add_argument("--out-dir", type=Path, required=True)
    a.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="extra chapter parameter")
    a.add_argument("--prepare-only", action="store_true")
    s = sub.add_parser("store", help="inspect the result store")
    s.add_argument("action", choices=["stale", "verify"])
    s.add_argument("--delete", action="store_true", help="with stale: delete the stale records")
    s.add_argument("--sample", type=int, default=2, help="with verify: how many records to re-run")
    s.add_argument("--atol", type=float, default=1e-6, help="with verify: tolerance on each metric")
    args = ap.parse_args(argv)

    if args.cmd == "run":
        run_chapter(args.chapter, args.out, _parse_params(args.p), args.prepare_only)
    elif args.cmd == "run-all":
        for ch in chapters():
            params = {"profile": args.profile, **_parse_params(args.p)}
            print(f"[vidattn] {ch.name} ({args.profile})", flush=True)
            run_chapter(ch, args.out_dir / f"{ch.stem}.ipynb", params, args.prepare_only)
    else:
        from vidattn import experiments  # noqa: F401  (registers every experiment)
        from vidattn import store

        if args.action == "stale":
            stale = store.stale_records()
            for rec in stale:
                print(f"stale: {rec.path}")
                if args.delete:
                    rec.path.unlink()
            print(f"{len(stale)} stale record(s) of {len(store.all_records())}")
        else:
            recs = store.all_records()
            stale_keys = {r.key for r in store.stale_records()}
            current = [r for r in recs if r.key not in stale_keys]
            sample = random.Random(0).sample(current, min(args.sample, len(current)))
            failed = 0
            for rec, diff in store.verify(sample, args.atol):
                status = "OK " if not diff else "DIFF"
                failed += bool(diff)
                print(f"{status} {rec.experiment} {rec.key} {diff if diff else ''}")
            print(f"{len(sample) - failed} matched, {failed} differed")
            return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
