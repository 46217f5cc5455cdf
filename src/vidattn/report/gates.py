"""Learning gates: the reference models of a grid must have learned before its claims are judged.

A gate names a reference model, the metric that shows it learned, that metric's chance
level and the margin it must clear, and the training curve that must have flattened.
Where a model could score above chance without the mechanism (reading the context alone,
or pooling without order), that ceiling takes chance's place (``floor`` names it). It
passes when

* the reference's mean beats chance (or that ceiling) by at least ``margin`` and the 95 % t
  interval of its mean over seeds excludes it, and
* on every seed, the curve has flattened: the change over the last fifth of training is
  less than ``converged_fraction`` of the curve's whole change,
  :math:`|c_{E-k}-c_E|/|c_1-c_E|` with :math:`k=\\max(1,\\lfloor E/5\\rceil)` for a curve
  of :math:`E` epochs. (Relative to the whole descent rather than to the last value,
  because a loss that approaches zero changes by a large fraction of itself long after
  the model has stopped improving. A curve that never moved, a run on the chance
  plateau, is measured against a twentieth of its start instead: it is flat.)

A *chance* gate (``expect="chance"``) states the opposite of a reference: a control that
must stay at chance (a bag of frames within time-reversal pairs). It passes when the 95 %
interval of its mean contains chance, or, with a ``tolerance``, comes within it of
chance. The seed interval alone ignores that every seed is scored on the same test
clips: a label-blind model fitted to one training set makes much the same guesses at
every seed, so its seeds agree to a fraction of a point while the test set's own
sampling error is larger. ``tolerance`` is that error, the 95 % half-width of a binomial
proportion at chance over the test clips (:func:`sampling_halfwidth`).

A claim that rests on a failed gate gets the verdict :data:`NOT_LEARNED`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd
from scipy.stats import norm

from vidattn.report.stats import mean_interval

NOT_LEARNED = "not learned: no verdict"


@dataclass(frozen=True)
class Gate:
    name: str  # what is gated, e.g. "stage-1 backbone (I3D + GAP)"
    metric: str  # what the values are, e.g. "top-1 on the order-free control classes"
    chance: float
    margin: float
    curve: str  # the curve that must flatten, e.g. "training loss"
    converged_fraction: float = 0.10
    expect: str = "above"  # "above": a reference that learned; "chance": a control that cannot
    tolerance: float = 0.0  # chance gates: how far from chance the interval may end (percentage points)
    floor: str = "chance"  # what ``chance`` is: chance itself, or a ceiling the mechanism must beat

    def __post_init__(self) -> None:
        if self.expect not in ("above", "chance"):
            raise ValueError(f"gate {self.name!r}: expect must be 'above' or 'chance', got {self.expect!r}")


FLAT = 0.05  # a curve whose whole change is under this share of its start never moved


def last_fifth_change(curve: Sequence[float]) -> float:
    """Change of ``curve`` over its last fifth as a share of its whole change (module docstring).
    A curve that never moved (its whole change under :data:`FLAT` of its start, a run that
    stayed on the chance plateau) is measured against ``FLAT`` of its start instead: it is
    flat, and whether it learned is the metric's question, not the curve's."""
    if len(curve) < 3:
        return float("inf")  # too short to tell a plateau from a slope
    k = max(1, round(len(curve) / 5))
    whole = abs(float(curve[0]) - float(curve[-1]))
    return abs(float(curve[-1 - k]) - float(curve[-1])) / max(whole, FLAT * abs(float(curve[0])), 1e-12)


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    values: tuple[float, ...]
    mean: float
    lo: float
    hi: float
    changes: tuple[float, ...]

    @property
    def learned(self) -> bool:
        if self.gate.expect == "chance":
            tol = self.gate.tolerance
            return self.lo <= self.gate.chance + tol and self.hi >= self.gate.chance - tol
        return self.mean - self.gate.chance >= self.gate.margin and self.lo > self.gate.chance

    @property
    def converged(self) -> bool:
        return self.gate.expect == "chance" or all(c < self.gate.converged_fraction for c in self.changes)

    @property
    def passed(self) -> bool:
        return self.learned and self.converged

    def row(self) -> dict[str, str]:
        g = self.gate
        measured = f"{self.mean:.1f} [{self.lo:.1f}, {self.hi:.1f}] over {len(self.values)} seed(s)"
        if g.expect == "chance":
            criterion = f"{g.metric}: 95 % CI contains chance {g.chance:.1f}"
            if g.tolerance:
                criterion = (f"{g.metric}: 95 % CI within {g.tolerance:.1f} of chance {g.chance:.1f} "
                             "(the test set's sampling error)")
            return {"gate": g.name, "criterion": criterion, "measured": measured,
                    "result": "passed" if self.passed else "failed: CI excludes chance"}
        return {
            "gate": g.name,
            "criterion": f"{g.metric} ≥ {g.floor} {g.chance:.1f} + {g.margin:.1f}, CI above {g.floor}; "
                         f"{g.curve}: last fifth < {100 * g.converged_fraction:.0f} % of its whole change",
            "measured": f"{measured}; change {', '.join(f'{100 * c:.1f} %' for c in self.changes)}",
            "result": "passed" if self.passed else
                      "failed: " + " and ".join(w for w, ok in ((f"not above {g.floor} + margin", self.learned),
                                                                ("not converged", self.converged)) if not ok),
        }


def sampling_halfwidth(chance: float, n: int, level: float = 0.95) -> float:
    """95 % half-width, in points, of an accuracy at ``chance`` % measured on ``n`` clips (normal
    approximation to the binomial): the tolerance of a chance gate."""
    p = chance / 100
    return 100 * float(norm.ppf(0.5 + level / 2)) * (p * (1 - p) / n) ** 0.5


def check(gate: Gate, values: Sequence[float], curves: Sequence[Sequence[float]]) -> GateResult:
    """Evaluate ``gate`` on per-seed ``values`` and per-seed training ``curves``."""
    if not values:
        raise ValueError(f"gate {gate.name!r}: no values")
    m, lo, hi = mean_interval(values)
    return GateResult(gate, tuple(float(v) for v in values), m, lo, hi,
                      tuple(last_fifth_change(c) for c in curves))


def gate_table(results: Sequence[GateResult]) -> pd.DataFrame:
    """The gates of a chapter as a table (one row per gate)."""
    return pd.DataFrame([r.row() for r in results]).set_index("gate")
