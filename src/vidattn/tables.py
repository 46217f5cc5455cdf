"""Tables from run records: mean ± std over seeds, paper-vs-ours, and the claims ledger."""
from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

from vidattn.store import Record

def aggregate(records: Iterable[Record], by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and std over seeds: one row per value of the ``by`` config fields."""
    rows = [{**{b: r.config.get(b) for b in by}, "seed": r.config.get("seed"), **{m: r.metrics.get(m) for m in metrics}}
            for r in records]
    if not rows:
        raise ValueError("no records to aggregate")
    df = pd.DataFrame(rows)
    g = df.groupby(by, sort=False, dropna=False)
    out = g[metrics].agg(["mean", "std"])
    out[("seeds", "n")] = g["seed"].nunique()
    return out


def mean_std(mean: float, std: float, digits: int = 1) -> str:
    """``mean ± std`` as text (std of a single seed is shown as n/a)."""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f} ± n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def paper_vs_ours(rows: list[dict[str, Any]], label: str) -> pd.DataFrame:
    """A "paper reported | ours" table.

    Each row: ``{"row": name, "paper": number or None, "ours": (mean, std) or None}``;
    ``label`` names the evidence, for example ``"ours (small, 3 seeds, suite order)"``.
    Missing values are shown as an em dash with no number invented.
    """
    out = []
    for r in rows:
        ours = r.get("ours")
        out.append({
            "": r["row"],
            "paper reported": "—" if r.get("paper") is None else f"{r['paper']:.2f}",
            label: "—" if ours is None else mean_std(*ours),
        })
    return pd.DataFrame(out).set_index("")


VERDICTS = ("reproduced", "not reproduced", "inconclusive")


def claims_ledger(claims: list[dict[str, str]]) -> pd.DataFrame:
    """The chapter's closing table: claim, our evidence, verdict (validated)."""
    for c in claims:
        if c.get("verdict") not in VERDICTS:
            raise ValueError(f"verdict {c.get('verdict')!r} for claim {c.get('claim')!r} is not one of {VERDICTS}")
    return pd.DataFrame(claims, columns=["claim", "evidence", "verdict"]).set_index("claim")


def verdict(higher: Iterable[float], lower: Iterable[float], z: float = 2.0, min_difference: float = 0.0
            ) -> tuple[str, str]:
    """Verdict on "``higher`` beats ``lower``" from per-seed values, and the evidence as text.

    The difference of means is compared with its standard error over seeds (Welch) and
    with ``min_difference`` (for example twice the test set's sampling std, which seeds
    sharing one test set do not show): beyond both in the claimed direction the claim is
    *reproduced*, beyond both against it *not reproduced*, otherwise *inconclusive*.
    """
    a, b = [float(x) for x in higher], [float(x) for x in lower]
    if len(a) < 2 or len(b) < 2:
        return "inconclusive", "fewer than 2 seeds"
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    diff = ma - mb
    score = diff / se if se > 0 else math.copysign(math.inf, diff) if diff else 0.0
    text = f"{ma:.1f} vs {mb:.1f} (difference {diff:+.1f}, {score:+.1f} standard errors)"
    if score > z and diff > min_difference:
        return "reproduced", text
    if score < -z and diff < -min_difference:
        return "not reproduced", text
    return "inconclusive", text
