"""Command line: run chapters with papermill, and inspect or verify the result store.

    vidattn run notebooks/data_suites.md book/_executed/data_suites.ipynb -p profile smoke
    vidattn run-all --profile small --out-dir book/_executed
    vidattn store stale [--delete]
    vidattn store drift
    vidattn store verify [--sample 2 | --all] [--workers N] [--experiment NAME]
    vidattn store verify --claim CHAPTER:CLAIM [--profile small]
    vidattn data check DATA_ROOT [--workers N]
    vidattn probe [NAME ...] [--update]
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from vidattn.core.files import CorruptFileError
from vidattn.core.paths import REPO_ROOT
from vidattn.core.profiles import PROFILES

NOTEBOOKS = REPO_ROOT / "notebooks"


# the pages made from the chapters' ledgers (vidattn.report.scorecard): a build runs them last
LEDGER_PAGES = ("00_front_page", "99_scorecard")


def chapters() -> list[Path]:
    """Every chapter, in book order (file names start with their number)."""
    return sorted(NOTEBOOKS.glob("*.md"))


def build_order() -> list[Path]:
    """The chapters in the order a build runs them: the pages that read the ledgers last."""
    return sorted(chapters(), key=lambda p: p.stem in LEDGER_PAGES)


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
    """Convert a MyST chapter with jupytext and execute it with papermill into ``out``.

    Both temporaries (the converted input and papermill's output) live in a fresh folder
    outside the book's source tree, so a killed run leaves nothing that Sphinx would read;
    only when every cell has run is the notebook copied into place atomically
    (:func:`vidattn.core.files.write_atomic`), so a failed run never leaves a notebook that
    looks complete (the hidden copies of runs killed in that instant are removed first).
    Under ``torchrun`` (``torchrun --nproc_per_node=N -m vidattn.cli run ...``) every rank
    executes the chapter, its kernel joins the process group, and only rank 0 writes ``out``.
    """
    import shutil

    import jupytext
    import nbformat
    import papermill

    from vidattn.core.files import write_atomic

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
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0:
        for stale in out.parent.glob(f".{out.name}.*.tmp"):
            stale.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"vidattn-{out.stem}-") as tmp:
        tmp_in, executed = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, tmp_in)
        papermill.execute_notebook(str(tmp_in), str(executed), parameters=params, kernel_name="python3",
                                   language="python", cwd=str(src.parent), prepare_only=prepare_only,
                                   progress_bar=False)
        _label_parameters(executed)
        if rank0:  # under torchrun every rank runs the chapter; rank 0 keeps it
            write_atomic(out, lambda tmp: shutil.copyfile(executed, tmp))


def _label_parameters(path: Path) -> None:
    """Show the parameters once: label papermill's injected cell, hide the chapter's defaults."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    if not injected:
        return
    injected[0].source = injected[0].source.replace(
        "# Parameters", "# This build's parameters", 1)
    for c in nb.cells:
        tags = c.metadata.get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            c.metadata["tags"] = tags + ["remove-cell"]
    nbformat.write(nb, path)


def _parse_params(pairs: list[list[str]] | None) -> dict[str, Any]:
    return {k: yaml.safe_load(v) for k, v in (pairs or [])}


def _stale(delete: bool) -> int:
    """List (and with ``delete`` remove) stale records; corrupt ones are reported, never read."""
    from vidattn import catalog  # noqa: F401  (registers every experiment)
    from vidattn.core import store

    recs, corrupt = store.scan_records()
    for path, err in corrupt:
        print(f"corrupt (skipped): {err}")
    stale = [r for r in recs if store.is_stale(r)]
    for rec in stale:
        print(f"stale: {rec.path}")
        if delete:
            rec.path.unlink()
    print(f"{len(stale)} stale record(s) of {len(recs)}; {len(corrupt)} corrupt (delete them by hand)")
    return 0


def _drift() -> int:
    """Records made by other code than today's: listed with their experiment; counts per experiment."""
    from collections import Counter

    from vidattn import catalog  # noqa: F401  (registers every experiment)
    from vidattn.core import store

    recs, _ = store.scan_records()
    drifted = [r for r in recs if not store.is_stale(r) and r.code != store.code_of(r.experiment)]
    for rec in drifted:
        print(f"drift: {rec.path} (made by code {rec.code[:12]}, today {store.code_of(rec.experiment)[:12]})")
    for name, n in sorted(Counter(r.experiment for r in drifted).items()):
        print(f"{name}: {n} record(s) made by earlier code (the behaviour probes vouch for the same computation)")
    print(f"{len(drifted)} of {len(recs)} current record(s) made by other code than today's")
    return 0


def _verify(sample: int | None, workers: int | None, experiment: str | None = None) -> int:
    """Re-run current records from scratch; non-zero exit unless at least one ran and all held.

    In a record's own environment the check is exact; elsewhere each metric is shown beside
    its row's spread over seeds, and the output says that this is not an exact check.
    """
    from vidattn import catalog  # noqa: F401  (registers every experiment)
    from vidattn.core import store
    from vidattn.core.paths import records_dir

    everything, corrupt = store.scan_records()
    for path, err in corrupt:
        print(f"CORRUPT {err}")
    recs = [r for r in everything if experiment is None or r.experiment == experiment]
    current = [r for r in recs if not store.is_stale(r)]
    if len(current) < len(recs):
        print(f"{len(recs) - len(current)} stale record(s) not verified (vidattn store stale lists them)")
    chosen = store.sample_records(current, sample)
    results = store.verify(chosen, workers=workers or store.default_workers(), store_records=everything)
    for v in results:
        rec = v.record
        if v.exact:
            print(f"{'OK  ' if v.holds else 'DIFF'} {rec.experiment} {rec.key}: exact (same environment)")
            for name, (stored, fresh) in v.diff.items():
                print(f"     {name}: stored {stored}, fresh {fresh}")
            continue
        env = ", ".join(f"{k} {rec.versions.get(k)}" for k in ("cpu_capability", "torch", "numpy")
                        if rec.versions.get(k) != store.environment(store.device_type_of(rec.config)).get(k))
        print(f"{'OK  ' if v.holds else 'OUT '} {rec.experiment} {rec.key}: NOT an exact check (made with {env}); "
              f"{len(v.diff)} result entr(ies) differ from the stored ones; each metric beside its row's {{lo .. hi}} over seeds:")
        for name, sp in v.spread.items():
            mark = {True: "in ", False: "OUT", None: "-- "}[sp.within]
            print(f"     {mark} {name}: fresh {sp.fresh:.4g}, stored row mean {sp.mean:.4g} ± {sp.sd:.2g} "
                  f"{{{sp.lo:.4g} .. {sp.hi:.4g}}} over {sp.n} seed(s)")
    held = sum(v.holds for v in results)
    print(f"{held} held, {len(results) - held} did not, {len(corrupt)} corrupt, in {records_dir()} "
          f"({sum(v.exact for v in results)} exact, {sum(not v.exact for v in results)} against the seeds' spread)")
    if not results:
        print("nothing was verified: no current record found", file=sys.stderr)
    return 0 if results and held == len(results) and not corrupt else 1


def _verify_claim(spec: str, profile: str, workers: int | None) -> int:
    """Re-run the records a ledger claim rests on and recompute it; 0 when the verdict is unchanged."""
    from vidattn import catalog  # noqa: F401  (registers every experiment)
    from vidattn.core import store
    from vidattn.report.claims import recheck

    if ":" not in spec:
        print(f"--claim takes CHAPTER:CLAIM (e.g. 04_sifa:3), got {spec!r}", file=sys.stderr)
        return 2
    chapter, claim = spec.split(":", 1)
    try:
        r = recheck(chapter, claim, profile, workers or store.default_workers())
    except (ValueError, FileNotFoundError) as e:  # no ledger, no such claim, nothing to re-check
        print(f"vidattn store verify --claim: {e}", file=sys.stderr)
        return 2
    print(f"claim: {r.claim}\n  rests on {len(r.records)} record(s), {r.seconds / 60:.1f} min of recorded run time "
          "(a stage-1 backbone they share through a cache counts only where it was trained), "
          f"re-run from scratch here\n  stored verdict: {r.stored}\n  fresh verdict:  {r.verdict}\n"
          f"  fresh evidence: {r.fresh.evidence}\n{'HOLDS' if r.holds else 'CHANGED'}: the verdict is "
          f"{'unchanged' if r.holds else 'not the stored one'}")
    return 0 if r.holds else 1


def _data_check(root: Path, workers: int | None, dataset: str = "") -> int:
    """Decode every listed video; report the bad ones; non-zero exit when any is bad."""
    from collections import Counter

    from vidattn.core.store import default_workers
    from vidattn.data.check import check_dataset

    layout, checks = check_dataset(root, workers or default_workers(), dataset=dataset)
    bad = [c for c in checks if c.status != "ok"]
    for c in bad:
        print(f"{c.status.upper():9s} {c.path}: {c.detail}")
    counts = Counter(c.status for c in checks)
    print(f"{layout} at {root}: {len(checks)} listed video(s); "
          + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "missing", "corrupt", "truncated")))
    return 1 if bad else 0


def _cluster_scaling(epochs: int, seeds: int) -> int:
    """Time one set of data/premise runs under the local pool and Ray, 1 and 2 workers; save the
    table for the book's cluster page (vidattn.engine.scaling)."""
    import platform

    import torch

    import vidattn.papers.data_suites.experiment  # noqa: F401 (registers data/premise)
    from vidattn.core import profiles
    from vidattn.core.registry import Planned
    from vidattn.engine.scaling import measure, write_measurement
    from vidattn.papers.data_suites.rows import chapter_runs

    with tempfile.TemporaryDirectory() as tmp:
        ctx = profiles.setup("smoke", seeds, "cpu", "", tmp)
    runs = [Planned(r.row, {**r.config, "train": {**r.config["train"], "epochs": epochs}}) for r in chapter_runs(ctx)]
    rows = measure("data/premise", runs)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"{torch.backends.cpu.get_cpu_capability()}")
    print(f"{write_measurement(rows, machine)}: {len(runs)} runs under {len(rows)} settings on {machine}")
    for r in rows:
        print(f"  {r['executor']:5s} x {r['workers']}: {r['wall_seconds']:6.1f} s wall, "
              f"same records: {r['same_records']}")
    return 0 if all(r["same_records"] for r in rows) else 1


def _probe(names: list[str], update: bool) -> int:
    """Run behaviour probes (all by default); compare with the committed ones, or rewrite them."""
    from vidattn import catalog  # noqa: F401  (registers every experiment)
    from vidattn.core import probes

    unknown = sorted(set(names) - set(probes.PROBE_CONFIGS))
    if unknown:
        print(f"no probe for {unknown}; probed: {sorted(probes.PROBE_CONFIGS)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names or list(probes.PROBE_CONFIGS):
        fresh = probes.run_probe(name)
        if update:
            print(f"wrote {probes.write(name, fresh)}")
            continue
        problems = probes.check(name, fresh, probes.expected(name))
        failed += bool(problems)
        print(f"{'DIFF' if problems else 'OK  '} {name}" + (f": {probes.advice(name, problems)}" if problems else ""))
    return 1 if failed else 0


TRACEBACK = "VIDATTN_TRACEBACK"  # set to 1 to see the traceback of a user error too


def main(argv: list[str] | None = None) -> int:
    """The command line; a user error (a bad value, a missing or corrupt file) is one line and exit 2."""
    try:
        return _main(argv)
    except (ValueError, OSError, CorruptFileError) as e:
        if os.environ.get(TRACEBACK) == "1":
            raise
        print(f"vidattn: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from papermill.exceptions import PapermillExecutionError

        if not isinstance(e, PapermillExecutionError) or e.ename not in USER_ERRORS or os.environ.get(TRACEBACK) == "1":
            raise
        print(f"vidattn: error: {e.exec_count and f'cell {e.exec_count}: ' or ''}{e.ename}: {e.evalue}", file=sys.stderr)
        return 2


# errors a chapter raises for its parameters or its data (a bug raises something else)
USER_ERRORS = ("ValueError", "FileNotFoundError", "CorruptFileError", "CorruptRecordError", "NotADirectoryError")


def _main(argv: list[str] | None) -> int:
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
    s.add_argument("action", choices=["stale", "verify", "drift"])
    s.add_argument("--delete", action="store_true", help="with stale: delete the stale records")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--sample", type=int, default=2, help="with verify: how many records to re-run (default 2)")
    g.add_argument("--all", action="store_true", help="with verify: re-run every current record")
    s.add_argument("--workers", type=int, default=None, help="with verify: parallel processes (one per core)")
    s.add_argument("--experiment", default=None, help="with verify: only records of this experiment")
    s.add_argument("--claim", default=None, metavar="CHAPTER:CLAIM",
                   help="with verify: re-run the records a ledger claim rests on and recompute its verdict "
                        "(CLAIM: its number in the ledger, or text only it contains)")
    s.add_argument("--profile", default="small", choices=PROFILES, help="with verify --claim: whose ledger")
    d = sub.add_parser("data", help="check a real dataset")
    d.add_argument("action", choices=["check"])
    d.add_argument("root", type=Path, help="the dataset's root folder (a known layout)")
    d.add_argument("--workers", type=int, default=None, help="parallel decoding processes")
    d.add_argument("--dataset", default="", help="the layout, where the files leave it ambiguous "
                   "(kinetics600, frame_list, ...)")
    cs = sub.add_parser("cluster-scaling", help="time one set of runs under the local pool and Ray (1 and 2 "
                        "workers) and save it for the book's cluster page")
    cs.add_argument("--epochs", type=int, default=40, help="epochs of each data/premise run")
    cs.add_argument("--seeds", type=int, default=2, help="seeds (each adds the premise grid's four runs)")
    pr = sub.add_parser("probe", help="run the behaviour probes that guard the experiments' versions")
    pr.add_argument("names", nargs="*", help="experiments to probe (default: all)")
    pr.add_argument("--update", action="store_true", help="rewrite the committed probes (after a version bump)")
    args = ap.parse_args(argv)

    if args.cmd == "run":
        run_chapter(args.chapter, args.out, _parse_params(args.p), args.prepare_only)
    elif args.cmd == "run-all":
        import jupytext

        from vidattn.core.store import RUN_LOG, runs_logged

        fd, name = tempfile.mkstemp(prefix="vidattn-runs-", suffix=".log")
        os.close(fd)
        log = Path(name)
        os.environ[RUN_LOG] = str(log)  # every record this build writes, from any kernel or worker
        for ch in build_order():
            params = {"profile": args.profile, **_parse_params(args.p)}
            known = parameters_of(jupytext.read(ch))
            dropped = sorted(set(params) - set(known))
            if dropped:  # said, not silently ignored
                print(f"[vidattn] {ch.name} takes no {dropped}; running it without them", flush=True)
            print(f"[vidattn] {ch.name} ({args.profile})", flush=True)
            run_chapter(ch, args.out_dir / f"{ch.stem}.ipynb", {k: v for k, v in params.items() if k in known},
                        args.prepare_only)
        runs = runs_logged(log)
        log.unlink(missing_ok=True)
        print(f"[vidattn] this build ran {len(runs)} experiment run(s) ({sum(r[2] for r in runs) / 60:.1f} min); "
              "every other result was served from the records", flush=True)
    elif args.cmd == "cluster-scaling":
        return _cluster_scaling(args.epochs, args.seeds)
    elif args.cmd == "probe":
        return _probe(args.names, args.update)
    elif args.cmd == "data":
        return _data_check(args.root, args.workers, args.dataset)
    elif args.action == "stale":
        return _stale(args.delete)
    elif args.action == "drift":
        return _drift()
    elif args.claim:
        return _verify_claim(args.claim, args.profile, args.workers)
    else:
        return _verify(None if args.all else args.sample, args.workers, args.experiment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
