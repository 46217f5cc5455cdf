"""Paired comparisons of two variants run on the same seeds and scored on the same test clips.

Two variants of one grid share their seeds (and, in the CIDC chapter, a backbone per
seed) and are scored on one test set, so their difference is measured *paired*:

* **over seeds**: the per-seed differences :math:`d_s=a_s-b_s` give a t interval with
  :math:`n-1` degrees of freedom, :math:`\\bar d\\pm t_{0.975,n-1}\\,s_d/\\sqrt n`;
* **over clips**: for an accuracy, the clips one variant gets right and the other wrong
  are the only evidence of a difference. Summed over seeds (each seed a stratum of the
  same clips), the exact McNemar test asks whether the two discordant counts differ
  more than a fair coin allows.

A claim "``a`` beats ``b``" is *reproduced* when the seed interval lies above zero and
(where per-clip outcomes exist) McNemar rejects equality with ``a`` ahead; *reversed*
when both point the other way; otherwise *no effect detected*, with the bound
:math:`|\\Delta|<x`, ``x`` the largest magnitude either 95 % interval admits.
The *detectable* effect is the true difference that the design finds with 80 % power
at the 5 % level, given the observed spread.

A comparison that detects no effect because it cannot is *not testable*, and says why
(:attr:`Comparison.degenerate`): the two rows agree on every seed and every clip (the same
evaluation rule twice), or both sit within a point of the metric's ceiling, with no room
left for the effect being asked about.

**Runs that either learn or stay at chance.** Where a run either takes off or stays on
the chance plateau, the per-seed values are bimodal and a t interval over them spans the
whole scale. Such a claim is judged in two parts (:func:`compare_success`), with a
per-run success criterion declared before the runs: the *success rates* over runs,
compared with Fisher's exact test, and the accuracy *among the runs that learned*,
compared paired over the seeds where both variants learned. How many seeds a design
needs follows from the exact power of Fisher's test (:func:`fisher_power`,
:func:`seeds_for`), or, for a confirmatory stage on fresh seeds, from resampling an
exploratory stage (:func:`resampled_power`).

A claim whose "no effect detected" bound is wider than what would decide it (5 points, or
twice the paper's effect) is *not testable at this size*: ``too_wide`` gives that verdict
with the design's reason, and :func:`vidattn.report.tables.settled` applies it per claim.

A comparison made from run records by :func:`compare_records` names them
(:class:`Sources`), so a ledger claim can say which records it rests on and
``vidattn store verify --claim`` can re-run them and recompute it (:mod:`vidattn.report.claims`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
POWER = 0.80
CEILING_ROOM = 1.0  # points: closer than this to the ceiling, both rows, and no effect can show


@dataclass(frozen=True)
class SeedInterval:
    """Mean paired difference over seeds with its t interval."""

    mean: float
    lo: float
    hi: float
    n: int
    sd: float
    detectable: float

    @property
    def significant(self) -> bool:
        return self.n >= 2 and (self.lo > 0 or self.hi < 0)


@dataclass(frozen=True)
class ClipTest:
    """Exact McNemar test on per-clip outcomes, summed over seeds; effects in percentage points."""

    a_only: int
    b_only: int
    n: int
    p: float
    delta: float
    lo: float
    hi: float
    detectable: float


def paired_seed_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> SeedInterval:
    """t interval of mean(a - b) over paired seeds (a[i] and b[i] share seed i)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(a) != len(b):
        raise ValueError(f"paired values need the same seeds: {len(a)} vs {len(b)}")
    n = len(d)
    if n < 2:
        m = float(d.mean()) if n else math.nan
        return SeedInterval(m, -math.inf, math.inf, n, math.nan, math.inf)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    detect = (t + float(stats.t.ppf(POWER, n - 1))) * se
    m = float(d.mean())
    return SeedInterval(m, m - t * se, m + t * se, n, sd, detect)


def mcnemar(correct_a: Sequence[Sequence[int]], correct_b: Sequence[Sequence[int]], level: float = LEVEL
            ) -> ClipTest:
    """Exact McNemar test of per-clip outcomes (1 = right), one list per seed, pooled over seeds."""
    if len(correct_a) != len(correct_b):
        raise ValueError("per-clip outcomes need the same seeds for both variants")
    a_only = b_only = n = 0
    for ca, cb in zip(correct_a, correct_b):
        xa, xb = np.asarray(ca, bool), np.asarray(cb, bool)
        if xa.shape != xb.shape:
            raise ValueError(f"per-clip outcomes of one seed differ in length: {xa.shape} vs {xb.shape}")
        a_only += int((xa & ~xb).sum())
        b_only += int((~xa & xb).sum())
        n += len(xa)
    if n == 0:
        raise ValueError("no clips to compare")
    disc = a_only + b_only
    p = float(stats.binomtest(a_only, disc, 0.5).pvalue) if disc else 1.0
    delta = (a_only - b_only) / n
    var = max(disc / n - delta**2, 0.0) / n
    z = float(stats.norm.ppf(0.5 + level / 2))
    half = z * math.sqrt(var)
    detect = (z + float(stats.norm.ppf(POWER))) * math.sqrt(disc / n / n)
    return ClipTest(a_only, b_only, n, p, 100 * delta, 100 * (delta - half), 100 * (delta + half), 100 * detect)


@dataclass(frozen=True)
class Sources:
    """The records a comparison was computed from, and how (the arguments of :func:`compare_records`)."""

    a: tuple[str, ...]  # "experiment/key" of each seed's record of ``a``, in seed order
    b: tuple[str, ...]
    metric: str
    metric_b: str | None = None
    clips: tuple[str, str] | None = None
    clip_mask: tuple[int, ...] | None = None
    ceiling: float | None = None
    success: tuple[str, float] | None = None  # runs judged learned or not: (metric, threshold)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """"``a`` beats ``b``" on ``metric``, tested paired."""

    metric: str
    a: str
    b: str
    seeds: SeedInterval
    clips: ClipTest | None
    alpha: float = 1 - LEVEL
    sources: Sources | None = field(default=None, compare=False)
    means: tuple[float, float] = (math.nan, math.nan)  # mean over seeds of a, of b
    ceiling: float | None = None  # the metric's best value (100 for an accuracy), when it has one
    room: float = CEILING_ROOM  # how far below the ceiling both rows must be for a claim to be testable

    @property
    def degenerate(self) -> str | None:
        """Why the comparison cannot tell anything (module docstring), or None."""
        s, c = self.seeds, self.clips
        if s.n >= 1 and s.mean == 0 and not (s.sd > 0) and (c is None or c.a_only + c.b_only == 0):
            return ("identical rows: the two variants score the same on every seed"
                    + ("" if c is None else " and every test clip"))
        if self.ceiling is not None and min(self.means) >= self.ceiling - self.room:
            return (f"both rows at the ceiling ({self.means[0]:.1f} and {self.means[1]:.1f} of "
                    f"{self.ceiling:g}; less than {self.room:g} pts of room)")
        return None

    @property
    def ours(self) -> str:
        """Our absolute numbers: "mean of a vs mean of b" over the seeds."""
        return f"{self.means[0]:.1f} vs {self.means[1]:.1f}"

    @property
    def difference(self) -> str:
        """The mean paired difference with its 95 % interval over seeds."""
        s = self.seeds
        return f"{s.mean:+.1f} [{s.lo:+.1f}, {s.hi:+.1f}]" if s.n > 1 else f"{s.mean:+.1f}"

    @property
    def kind(self) -> str:
        """reproduced | reversed | no effect detected | not testable | too few seeds."""
        if self.seeds.n < 2:
            return "too few seeds"
        clip_up = self.clips is None or (self.clips.p < self.alpha and self.clips.delta > 0)
        clip_down = self.clips is None or (self.clips.p < self.alpha and self.clips.delta < 0)
        if self.seeds.lo > 0 and clip_up:
            return "reproduced"
        if self.seeds.hi < 0 and clip_down:
            return "reversed"
        return "not testable" if self.degenerate else "no effect detected"

    @property
    def bound(self) -> float:
        """Largest |difference| the 95 % intervals admit."""
        ends = [self.seeds.lo, self.seeds.hi]
        if self.clips is not None:
            ends += [self.clips.lo, self.clips.hi]
        return max(abs(e) for e in ends)

    @property
    def detectable(self) -> float:
        return max(self.seeds.detectable, self.clips.detectable if self.clips else 0.0)

    @property
    def verdict(self) -> str:
        k = self.kind
        if k == "no effect detected":
            return f"no effect detected (|Δ| < {self.bound:.1f} at 95 %)"
        if k == "too few seeds":
            return f"not run here (needs ≥ 2 seeds; this build has {self.seeds.n})"
        if k == "not testable":
            return f"not testable ({self.degenerate})"
        return k

    def too_wide(self, limit: float) -> str:
        """The verdict when no effect was detected but the bound is wider than ``limit``, the widest
        that decides the claim: not testable at this size, with the seeds and what they detect."""
        return (f"not testable at this size (|Δ| < {self.bound:.1f} at 95 %, wider than the {limit:g} pts "
                f"that decide it; {self.seeds.n} paired seeds detect ≥ {self.detectable:.1f} pts)")

    @property
    def evidence(self) -> str:
        s = self.seeds
        text = (f"{self.metric}: {self.a} − {self.b} = {s.mean:+.1f} pts, 95 % CI [{s.lo:+.1f}, {s.hi:+.1f}] "
                f"over {s.n} paired seeds (t, {max(s.n - 1, 0)} df)")
        if self.clips is not None:
            c = self.clips
            text += (f"; per clip {c.delta:+.1f} [{c.lo:+.1f}, {c.hi:+.1f}], {c.a_only} vs {c.b_only} discordant "
                     f"of {c.n}, exact McNemar p = {c.p:.2g}")
        return text + f"; detectable ≥ {self.detectable:.1f} pts"


def compare(metric: str, a: str, b: str, a_values: Sequence[float], b_values: Sequence[float],
            a_clips: Sequence[Sequence[int]] | None = None, b_clips: Sequence[Sequence[int]] | None = None,
            ceiling: float | None = None) -> Comparison:
    """Paired comparison of ``a`` and ``b`` (per-seed values, optional per-clip outcomes per seed;
    ``ceiling``: the metric's best value, if it has one)."""
    seeds = paired_seed_interval(a_values, b_values)
    clips = mcnemar(a_clips, b_clips) if a_clips is not None and b_clips is not None else None
    means = (float(np.mean(a_values)) if len(a_values) else math.nan,
             float(np.mean(b_values)) if len(b_values) else math.nan)
    return Comparison(metric, a, b, seeds, clips, means=means, ceiling=ceiling)


def compare_records(metric: str, a: str, b: str, records_a: Sequence[Any], records_b: Sequence[Any],
                    metric_b: str | None = None, clips: str | tuple[str, str] | None = None,
                    clip_mask: Sequence[bool] | None = None, label: str | None = None,
                    ceiling: float | None = None) -> Comparison:
    """:func:`compare` of two rows' run records (paired in the given order, seed by seed).

    Values are ``metrics[metric]`` of ``records_a`` and ``metrics[metric_b or metric]`` of
    ``records_b``; ``clips`` names the per-clip outcomes to test (one name, or one per
    row), restricted to the clips where ``clip_mask`` is true. ``label`` replaces the
    metric's name in the evidence; ``ceiling`` is the metric's best value, if it has one.
    The comparison keeps its :class:`Sources`.
    """
    pair = (clips, clips) if isinstance(clips, str) else clips
    keep = None if clip_mask is None else np.flatnonzero(np.asarray(clip_mask, bool))

    def outcomes(records: Sequence[Any], name: str) -> list[np.ndarray]:
        out = [np.asarray(r.per_clip[name]) for r in records]
        return out if keep is None else [o[keep] for o in out]

    comparison = compare(label or metric, a, b, [r.metrics[metric] for r in records_a],
                         [r.metrics[metric_b or metric] for r in records_b],
                         outcomes(records_a, pair[0]) if pair else None,
                         outcomes(records_b, pair[1]) if pair else None, ceiling)
    sources = Sources(tuple(f"{r.experiment}/{r.key}" for r in records_a),
                      tuple(f"{r.experiment}/{r.key}" for r in records_b), metric, metric_b,
                      tuple(pair) if pair else None, None if keep is None else tuple(int(i) for i in keep),
                      ceiling)
    return replace(comparison, sources=sources)


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and t interval of independent values (for a gate's 'beats chance')."""
    x = np.asarray(values, float)
    m = float(x.mean())
    if len(x) < 2:
        return m, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return m, m - half, m + half


# --- runs that either learn or stay at chance -------------------------------------------------


def fisher_p(successes_a: int, runs_a: int, successes_b: int, runs_b: int) -> float:
    """Two-sided p value of Fisher's exact test of two success rates."""
    table = [[successes_a, runs_a - successes_a], [successes_b, runs_b - successes_b]]
    return float(stats.fisher_exact(table).pvalue)


def rate_difference_interval(successes_a: int, runs_a: int, successes_b: int, runs_b: int,
                             level: float = LEVEL) -> tuple[float, float]:
    """Newcombe's hybrid score interval of the difference of two success rates (points): the
    Wilson interval of each rate, combined; it stays inside [-100, 100] and is sensible at 0/n
    and n/n, where the normal approximation is not."""
    def wilson(k: int, n: int) -> tuple[float, float]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        return ci.low, ci.high

    pa, pb = successes_a / runs_a, successes_b / runs_b
    (la, ua), (lb, ub) = wilson(successes_a, runs_a), wilson(successes_b, runs_b)
    d = pa - pb
    lo = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    hi = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return 100 * lo, 100 * hi


def fisher_power(rate_a: float, rate_b: float, runs: int, alpha: float = 1 - LEVEL) -> float:
    """Exact power of the two-sided Fisher test at level ``alpha`` with ``runs`` runs of each variant
    whose true success rates are ``rate_a`` and ``rate_b``: the probability, summed over every
    outcome (k_a, k_b), that the test rejects."""
    k = np.arange(runs + 1)
    pa, pb = stats.binom.pmf(k, runs, rate_a), stats.binom.pmf(k, runs, rate_b)
    return float(sum(pa[x] * pb[y] for x in k for y in k if fisher_p(int(x), runs, int(y), runs) < alpha))


def seeds_for(rate_a: float, rate_b: float, power: float = POWER, alpha: float = 1 - LEVEL,
              most: int = 40) -> int:
    """The fewest runs per variant at which Fisher's test detects success rates ``rate_a`` vs
    ``rate_b`` with ``power`` (raises when ``most`` runs are not enough)."""
    for n in range(2, most + 1):
        if fisher_power(rate_a, rate_b, n, alpha) >= power:
            return n
    raise ValueError(f"success rates {rate_a:.2f} vs {rate_b:.2f}: {most} runs per variant do not reach "
                     f"{power:.0%} power")


def resampled_power(a: Sequence[float], b: Sequence[float], learned_a: Sequence[bool], learned_b: Sequence[bool],
                    runs: int, draws: int = 20_000, seed: int = 0, level: float = LEVEL) -> float:
    """The power of a fresh stage of ``runs`` paired seeds to find "``a`` beats ``b``" among the seeds
    where both learned (the paired t interval above zero), estimated by drawing seeds with replacement
    from an exploratory stage (per-seed values and success flags of both rows)."""
    if not len(a) == len(b) == len(learned_a) == len(learned_b):
        raise ValueError(f"paired seeds need the same count: {len(a)}, {len(b)}, {len(learned_a)}, {len(learned_b)}")
    gaps = np.asarray(a, float) - np.asarray(b, float)
    both = np.asarray(learned_a, bool) & np.asarray(learned_b, bool)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(draws):
        pick = rng.integers(0, len(gaps), runs)
        d = gaps[pick][both[pick]]
        if len(d) >= 2:
            hits += paired_seed_interval(d, np.zeros_like(d), level).lo > 0
    return hits / draws


@dataclass(frozen=True)
class SuccessComparison:
    """"``a`` beats ``b``" for runs that either learn or stay at chance (module docstring): success
    rates over runs (Fisher), then the metric among the seeds where both learned (paired)."""

    metric: str
    a: str
    b: str
    criterion: str  # the declared per-run success criterion, e.g. "learned = pair_accuracy ≥ 75"
    learned_a: tuple[bool, ...]  # per seed
    learned_b: tuple[bool, ...]
    among_learned: Comparison | None  # over the seeds where both learned (None: fewer than 2)
    alpha: float = 1 - LEVEL
    sources: Sources | None = field(default=None, compare=False)
    means: tuple[float, float] = (math.nan, math.nan)

    @property
    def rates(self) -> tuple[int, int, int, int]:
        return sum(self.learned_a), len(self.learned_a), sum(self.learned_b), len(self.learned_b)

    @property
    def p(self) -> float:
        return fisher_p(*self.rates)

    @property
    def rate_interval(self) -> tuple[float, float]:
        return rate_difference_interval(*self.rates)

    @property
    def ours(self) -> str:
        ka, na, kb, nb = self.rates
        return f"{self.means[0]:.1f} vs {self.means[1]:.1f}; learned {ka}/{na} vs {kb}/{nb}"

    @property
    def difference(self) -> str:
        ka, na, kb, nb = self.rates
        lo, hi = self.rate_interval
        text = f"success {100 * (ka / na - kb / nb):+.0f} [{lo:+.0f}, {hi:+.0f}]"
        if self.p >= self.alpha and self.among_learned is not None and self.among_learned.kind in (
                "reproduced", "reversed"):  # the verdict rests on the runs that learned: show their gap
            text += f"; learned {self.among_learned.difference}"
        return text

    @property
    def kind(self) -> str:
        ka, na, kb, nb = self.rates
        if min(na, nb) < 2:
            return "too few seeds"
        if self.p < self.alpha:
            return "reproduced" if ka / na > kb / nb else "reversed"
        if self.among_learned is not None and self.among_learned.kind in ("reproduced", "reversed"):
            return self.among_learned.kind
        if self.among_learned is not None and self.among_learned.kind == "not testable" and ka * nb == kb * na:
            return "not testable"  # the same success rate, and no room where both learned
        return "no effect detected"

    @property
    def verdict(self) -> str:
        k = self.kind
        if k == "too few seeds":
            return f"not run here (needs ≥ 2 seeds; this build has {min(self.rates[1], self.rates[3])})"
        if k == "not testable":
            ka, na, kb, nb = self.rates
            return (f"not testable ({self.among_learned.degenerate} where both learned; success rates "
                    f"{ka}/{na} vs {kb}/{nb}, Fisher p = {self.p:.2g})")
        if k != "no effect detected":
            return k
        lo, hi = self.rate_interval
        text = f"no effect detected (success rate |Δ| < {max(abs(lo), abs(hi)):.0f} pts"
        if self.among_learned is not None and self.among_learned.kind == "no effect detected":
            text += f"; among learned |Δ| < {self.among_learned.bound:.1f}"
        if self.among_learned is not None and self.among_learned.kind == "not testable":
            text += f"; among learned not testable: {self.among_learned.degenerate}"
        return text + " at 95 %)"

    def too_wide(self, limit: float) -> str:
        """The verdict when no effect was detected but the success-rate bound is wider than ``limit``,
        the widest that decides the claim: not testable at this size, with the rates and what the
        runs that learned show."""
        ka, na, kb, nb = self.rates
        lo, hi = self.rate_interval
        text = (f"not testable at this size (success rates {ka}/{na} vs {kb}/{nb} bound their gap only to "
                f"{max(abs(lo), abs(hi)):.0f} pts, wider than the {limit:g} that decide it")
        among = self.among_learned
        if among is not None and among.degenerate:
            text += f"; where both learned, {among.degenerate}"
        elif among is not None:
            text += f"; among learned |Δ| < {among.bound:.1f}"
        return text + ")"

    @property
    def evidence(self) -> str:
        ka, na, kb, nb = self.rates
        lo, hi = self.rate_interval
        text = (f"{self.criterion}: {self.a} learned on {ka} of {na} seeds, {self.b} on {kb} of {nb}; "
                f"success-rate difference {100 * (ka / na - kb / nb):+.0f} pts, 95 % CI [{lo:+.0f}, {hi:+.0f}] "
                f"(Newcombe), Fisher exact p = {self.p:.2g}")
        if self.among_learned is None:
            return text + "; fewer than 2 seeds where both learned, so no comparison among them"
        return text + f"; among the seeds where both learned: {self.among_learned.evidence}"


def compare_success(metric: str, a: str, b: str, records_a: Sequence[Any], records_b: Sequence[Any],
                    success_metric: str, threshold: float, clips: str | None = None, label: str | None = None,
                    ceiling: float | None = None) -> SuccessComparison:
    """:class:`SuccessComparison` of two rows' run records, paired seed by seed. A run succeeded
    when its ``success_metric`` is at least ``threshold`` (declared before the runs); the
    comparison among the seeds where both succeeded is :func:`compare_records` on ``metric``
    (with ``clips``)."""
    if len(records_a) != len(records_b):
        raise ValueError(f"paired rows need the same seeds: {len(records_a)} vs {len(records_b)}")
    la = tuple(float(r.metrics[success_metric]) >= threshold for r in records_a)
    lb = tuple(float(r.metrics[success_metric]) >= threshold for r in records_b)
    both = [i for i in range(len(la)) if la[i] and lb[i]]
    among = (compare_records(metric, a, b, [records_a[i] for i in both], [records_b[i] for i in both],
                             clips=clips, label=label, ceiling=ceiling) if len(both) >= 2 else None)
    sources = Sources(tuple(f"{r.experiment}/{r.key}" for r in records_a),
                      tuple(f"{r.experiment}/{r.key}" for r in records_b), metric, None,
                      (clips, clips) if clips else None, None, ceiling, (success_metric, threshold))
    means = (float(np.mean([r.metrics[metric] for r in records_a])),
             float(np.mean([r.metrics[metric] for r in records_b])))
    return SuccessComparison(label or metric, a, b, f"learned = {success_metric} ≥ {threshold:g}", la, lb, among,
                             sources=sources, means=means)
