"""The analysis every chapter runs on its records: rows, seeds, paired comparisons, gates, claims.

A chapter runs its planned rows (:func:`run_rows`) and gets a :class:`Results`: the
records of each named row (:class:`vidattn.core.registry.Planned`), seed by seed. Every
number a chapter prints about a row goes through it:

* ``per_seed(row, metric)``, ``mean(row, metric)``, ``ms(row, metric)`` (mean ± sd);
* ``paired(a, b, metric)``: "a beats b", paired over the seeds both rows ran and, where the metric has
  per-clip outcomes, over the same test clips (McNemar; :func:`vidattn.report.stats.compare_records`),
  and ``delta(a, b, metric)``, its mean difference with the seeds' interval;
* ``success(a, b, metric, success_metric, threshold)``: "a beats b" for runs that either
  learn or stay at chance: success rates over seeds (Fisher's exact test) and the metric
  among the seeds where both learned (:func:`vidattn.report.stats.compare_success`);
* ``gate(name, row, ...)``: a learning gate over the row's seeds (:mod:`vidattn.report.gates`);
* ``claim(text, a, b, gates, metric)``: a ledger row whose verdict is computed from the
  comparison and its gates (:func:`vidattn.report.tables.claim_from`).

A row is named by a string, or by a tuple of parts that ``name`` turns into its string
(DirecFormer's rows are a suite, a variant and two loss weights). ``metric`` defaults to
the chapter's main one. ``clips`` says how a metric is tested on the shared test clips: the
names of the metrics whose per-clip outcomes the records keep (``None``: every such metric
the records keep), or a function of the metric
giving the outcomes that test it and the clips they cover (CIDC tests a class's accuracy
on that class's clips only). Only rows scored on the same test clips (the same suite or
real dataset, :func:`same_test_clips`) are compared clip by clip. A metric with per-clip
outcomes is an accuracy in percent, so its ceiling is 100: two rows both within a point of
it are *not testable* (:attr:`vidattn.report.stats.Comparison.degenerate`).
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from vidattn.core.registry import Planned
from vidattn.core.store import Record, run_many
from vidattn.report.gates import Gate, GateResult, check
from vidattn.report.stats import Comparison, SuccessComparison, compare_records, compare_success
from vidattn.report.tables import claim_from, mean_std

ACCURACY_CEILING = 100.0  # a metric with per-clip outcomes is an accuracy in percent
Row = Hashable  # a row's name, or the parts of it (see ``Results.name``)
# metric -> (the per-clip outcomes that test it, or None; the clips they cover, or None for all)
ClipTest = Callable[[str], tuple[str | None, Sequence[bool] | None]]


def _named(metrics: frozenset[str]) -> ClipTest:
    return lambda metric: (metric if metric in metrics else None, None)


def _recorded(records: list[Record]) -> ClipTest:
    """Every metric whose per-clip outcomes all ``records`` (the two rows compared) keep."""
    kept = frozenset.intersection(*(frozenset(r.per_clip) for r in records)) if records else frozenset()
    return _named(kept)


def same_test_clips(a: Sequence[Record], b: Sequence[Record]) -> bool:
    """Whether two rows were scored on the same test clips: the same suite, or the same real data."""
    def test_set(r: Record) -> tuple[Any, Any]:
        return r.config.get("suite"), (r.config.get("data") or {}).get("fingerprint")

    return bool(a) and bool(b) and test_set(a[0]) == test_set(b[0])


def run_rows(experiment: str, runs: Iterable[Planned], **results: Any) -> Results:
    """The records of ``runs`` (run where missing, :func:`vidattn.core.store.run_many`) as :class:`Results`."""
    return Results(run_many(experiment, list(runs)), **results)


class Results:
    """A chapter's records by row, seed by seed (module docstring)."""

    def __init__(self, records: Iterable[Record], metric: str = "top1", clips: Collection[str] | ClipTest | None = (),
                 name: Callable[..., str] | None = None):
        self.records = list(records)
        self.metric = metric
        self.clip_test: ClipTest | None = (clips if callable(clips) else None if clips is None
                                           else _named(frozenset(clips)))
        self._name = name
        self.rows: dict[str, list[Record]] = {}
        for r in self.records:
            seeds = self.rows.setdefault(r.row, [])
            if all(s.config.get("seed") != r.config.get("seed") for s in seeds):  # one record per seed
                seeds.append(r)
        for seeds in self.rows.values():
            seeds.sort(key=lambda r: r.config.get("seed", 0))

    def name(self, row: Row) -> str:
        """The row's name: ``row`` itself, or its parts joined by the chapter's ``name``."""
        if isinstance(row, tuple):
            if self._name is None:
                raise ValueError(f"row {row!r} is given by parts, but these results have no name function")
            return self._name(*row)
        return str(row)

    def __contains__(self, row: Row) -> bool:
        return self.name(row) in self.rows

    def recs(self, row: Row) -> list[Record]:
        """The row's records, in seed order ([] for a row that did not run, e.g. cut for budget)."""
        return self.rows.get(self.name(row), [])

    def common_seeds(self, a: Row, b: Row) -> tuple[list[Record], list[Record]]:
        """The records of two rows on the seeds both ran, in seed order (a row may run more seeds
        than another: a paired comparison uses the ones they share)."""
        seeds = {r.config.get("seed") for r in self.recs(a)} & {r.config.get("seed") for r in self.recs(b)}
        return ([r for r in self.recs(a) if r.config.get("seed") in seeds],
                [r for r in self.recs(b) if r.config.get("seed") in seeds])

    def on_seeds(self, seeds: Collection[int]) -> Results:
        """These results restricted to ``seeds`` (e.g. a confirmatory stage's fresh seeds)."""
        keep = set(seeds)
        return Results([r for r in self.records if r.config.get("seed") in keep], self.metric,
                       self.clip_test, self._name)

    def per_seed(self, row: Row, metric: str | None = None) -> list[float]:
        """The metric of every seed of the row, in seed order (so two rows pair up)."""
        return [float(r.metrics[metric or self.metric]) for r in self.recs(row)]

    def mean(self, row: Row, metric: str | None = None) -> float:
        """The mean over seeds (nan for a row that did not run, e.g. cut for budget)."""
        values = self.per_seed(row, metric)
        return float(np.mean(values)) if values else float("nan")

    def ms(self, row: Row, metric: str | None = None, digits: int = 1) -> str:
        """"mean ± sd" over seeds ("cut (budget)" for a row that did not run)."""
        values = self.per_seed(row, metric)
        return mean_sd(values, digits) if values else "cut (budget)"

    def paired(self, a: Row, b: Row, metric: str | None = None, metric_b: str | None = None,
               clips: bool = True, label: str | None = None) -> Comparison:
        """"a beats b" over seeds and, where both rows' metric has per-clip outcomes (and ``clips``),
        on the same test clips."""
        metric = metric or self.metric
        ra, rb = self.common_seeds(a, b)
        test = self.clip_test or _recorded(ra + rb)
        (clip_a, mask), (clip_b, _) = test(metric), test(metric_b or metric)
        pair = (clip_a, clip_b) if clips and clip_a and clip_b and same_test_clips(ra, rb) else None
        if label is None and metric_b not in (None, metric):
            label = f"{metric} vs {metric_b}"
        return compare_records(metric, self.name(a), self.name(b), ra, rb, metric_b=metric_b,
                               clips=pair, clip_mask=mask if pair else None, label=label,
                               ceiling=ACCURACY_CEILING if clip_a and clip_b else None)

    def success(self, a: Row, b: Row, success_metric: str, threshold: float, metric: str | None = None,
                label: str | None = None) -> SuccessComparison:
        """"a beats b" for runs that learn or stay at chance: a run learned when its ``success_metric``
        is at least ``threshold`` (declared before running); success rates over seeds, then
        ``metric`` among the seeds where both learned (:func:`vidattn.report.stats.compare_success`)."""
        metric = metric or self.metric
        ra, rb = self.common_seeds(a, b)
        test = self.clip_test or _recorded(ra + rb)
        clip, _ = test(metric)
        clips = clip if clip and same_test_clips(ra, rb) else None
        return compare_success(metric, self.name(a), self.name(b), ra, rb, success_metric, threshold, clips,
                               label=label, ceiling=ACCURACY_CEILING if clip else None)

    def success_claim(self, text: str, a: Row, b: Row, gates: Sequence[GateResult], success_metric: str,
                      threshold: float, metric: str | None = None, label: str | None = None) -> dict[str, Any]:
        """A ledger row judged by :meth:`success` under ``gates``."""
        return claim_from(text, self.success(a, b, success_metric, threshold, metric, label), gates)

    def delta(self, a: Row, b: Row, metric: str | None = None) -> str:
        """The mean difference a - b with its 95 % interval over seeds."""
        return self.paired(a, b, metric).difference

    def claim(self, text: str, a: Row, b: Row, gates: Sequence[GateResult], metric: str | None = None,
              **paired: Any) -> dict[str, Any]:
        """A ledger row: "a beats b" judged on ``metric``, under ``gates`` (failed gates: not learned)."""
        return claim_from(text, self.paired(a, b, metric, **paired), gates)

    def gate(self, name: str, row: Row, chance: float, margin: float, curve: str = "loss",
             metric: str | None = None, metric_name: str = "top-1", expect: str = "above",
             tolerance: float = 0.0, curve_name: str = "training loss", floor: str = "chance",
             converged_if: tuple[str, float] | None = None) -> GateResult:
        """The learning gate of ``row``: its ``metric`` against ``chance`` + ``margin`` over seeds, and
        its ``curve`` (``curve_name``) converged (:func:`vidattn.report.gates.check`); ``floor`` names
        ``chance`` when it is a ceiling without the mechanism (e.g. "context ceiling"). For a row whose
        runs either learn or stay at chance, ``converged_if`` = (metric, threshold) asks convergence of
        the runs that learned only (the others count against the mean)."""
        recs = self.recs(row)
        if converged_if is not None:
            success_metric, threshold = converged_if
            recs = [r for r in recs if float(r.metrics[success_metric]) >= threshold]
            curve_name = f"{curve_name} of the runs that learned ({success_metric} ≥ {threshold:g})"
        gate = Gate(name, metric_name, chance, margin, curve_name, expect=expect, tolerance=tolerance, floor=floor)
        return check(gate, self.per_seed(row, metric), [r.curves[curve] for r in recs])


def mean_sd(values: Sequence[float], digits: int = 1) -> str:
    """"mean ± sd" of values over seeds (sd with one degree of freedom lost; none for one seed)."""
    v = np.asarray(values, float)
    return mean_std(v.mean(), v.std(ddof=1) if len(v) > 1 else float("nan"), digits)


def verdicts(ledger_rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The verdict of each keyed ledger row (the chapters' prose quotes them by key)."""
    return {k: row["verdict"] for k, row in ledger_rows.items()}


def real_metric(results: Results) -> str:
    """The main score of a real-data section: mAP on a multi-label dataset (Charades), else top-1."""
    return "ordered_mAP" if "ordered_mAP" in results.records[0].metrics else "ordered_top1"


def real_gate(results: Results, name: str, baseline: str, margin: float = 5.0, curve: str = "loss",
              curve_name: str = "training loss") -> GateResult:
    """The real-data baseline's gate: its main score beats chance (one over the classes) by ``margin``."""
    from vidattn.engine.real_data import open_real

    metric = real_metric(results)
    chance = 100 / len(open_real(results.recs(baseline)[0].config["data"]).classes)
    return results.gate(name, baseline, chance, margin, curve, metric=metric,
                        metric_name="mAP" if metric.endswith("mAP") else "top-1", curve_name=curve_name)
