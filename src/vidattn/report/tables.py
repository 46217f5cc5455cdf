"""Tables from run records: mean ± std over seeds, paper-vs-ours, and the claims ledger."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from vidattn.core.store import Record
from vidattn.report.gates import NOT_LEARNED, GateResult
from vidattn.report.stats import Comparison

# one place sets how every chapter displays tables: never truncate a cell, a row or a column
pd.set_option("display.max_colwidth", None)
pd.set_option("display.max_rows", None)
pd.set_option("display.max_columns", None)
pd.set_option("display.width", None)

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


# the ledger's vocabulary; "not reproduced" is for exact computations (counts, costs) only
VERDICT_KINDS = ("reproduced", "reversed", "no effect detected", "not run here", NOT_LEARNED, "not reproduced")


def verdict_kind(verdict: str) -> str:
    """The kind a verdict text starts with (raises for anything outside the vocabulary)."""
    for kind in VERDICT_KINDS:
        if verdict == kind or verdict.startswith(kind + " "):
            return kind
    raise ValueError(f"verdict {verdict!r} is not one of {VERDICT_KINDS}")


def claim_from(text: str, comparison: Comparison, gates: Sequence[GateResult] = ()) -> dict[str, Any]:
    """A ledger row from a paired comparison; a failed gate replaces the verdict. A comparison
    made from records (:func:`vidattn.report.stats.compare_records`) adds what the claim rests on."""
    failed = [g.gate.name for g in gates if not g.passed]
    verdict = NOT_LEARNED if failed else comparison.verdict
    evidence = comparison.evidence + (f" (gate failed: {', '.join(failed)})" if failed else "")
    row: dict[str, Any] = {"claim": text, "evidence": evidence, "verdict": verdict}
    if comparison.sources is not None:
        row["rests_on"] = {**comparison.sources.as_dict(), "a_name": comparison.a, "b_name": comparison.b,
                           "label": comparison.metric, "gates_failed": failed}
    return row


def claims_ledger(claims: list[dict[str, Any]]) -> pd.DataFrame:
    """The chapter's closing table: claim, our evidence, verdict (validated). What each claim
    rests on (when known) travels in ``attrs["rests_on"]`` to :func:`publish_ledger`."""
    for c in claims:
        verdict_kind(str(c.get("verdict")))
    ledger = pd.DataFrame(claims, columns=["claim", "evidence", "verdict"]).set_index("claim")
    ledger.attrs["rests_on"] = {c["claim"]: c["rests_on"] for c in claims if "rests_on" in c}
    return ledger


def verdict_counts(ledger: pd.DataFrame) -> dict[str, int]:
    """How many claims of each kind a ledger holds."""
    kinds = [verdict_kind(v) for v in ledger["verdict"]]
    return {k: kinds.count(k) for k in VERDICT_KINDS if k in kinds}


def glance(ledger: pd.DataFrame, gates: Sequence[GateResult]) -> str:
    """The one-line summary of a ledger: gates passed and verdicts by kind."""
    passed = sum(g.passed for g in gates)
    kinds = ", ".join(f"{k}: {n}" for k, n in verdict_counts(ledger).items())
    return f"**Gates** {passed} of {len(gates)} passed. **Verdicts** {kinds}."


def ledger_json(ledger: pd.DataFrame, gates: Sequence[GateResult], chapter: str, profile: str) -> dict[str, Any]:
    """What the scorecard and ``vidattn store verify --claim`` read of a chapter's ledger."""
    rests_on = ledger.attrs.get("rests_on", {})
    return {
        "chapter": chapter, "profile": profile,
        "gates": [{**g.row(), "passed": g.passed} for g in gates],
        "claims": [{"claim": c, **row, **({"rests_on": rests_on[c]} if c in rests_on else {})}
                   for c, row in ledger.to_dict(orient="index").items()],
    }


def publish_ledger(ledger: pd.DataFrame, gates: Sequence[GateResult], chapter: str, output_dir: Path,
                   profile: str) -> str:
    """Show the ledger's summary, glue it for the chapter's opening box ("verdicts"), and save the
    ledger as ``output_dir/ledgers/<profile>/<chapter>.json`` (:func:`ledger_json`)."""
    from IPython.display import Markdown, display
    from myst_nb import glue

    text = glance(ledger, gates)
    glue("verdicts", Markdown(text), display=False)
    display(Markdown(text))
    out = Path(output_dir) / "ledgers" / profile / f"{chapter}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(ledger_json(ledger, gates, chapter, profile), indent=1))
    return text


def real_data_label(records: list[Record]) -> str:
    """What a chapter's real-data runs read and how they were scored, for a table's caption:
    the dataset's root and test split, the test videos and views, the weights, the bad videos
    skipped (the most over the runs) and the device."""
    first = records[0]
    spec, weights = first.config["data"], first.config["weights"]
    views = spec["test"].get("clips", 1) * (3 if spec["test"].get("three_crop") else 1)
    bad = max(r.metrics["bad_train_videos"] + r.metrics["bad_test_videos"] for r in records)
    return (f"`{spec['root']}`, test split {spec['split'] or 'default'};"
            f" {int(first.metrics['test_videos_scored'])} test videos x {views} view(s);"
            f" weights: {Path(weights['path']).name if weights else 'none (from scratch)'};"
            f" bad videos skipped: {int(bad)}; device: {first.device}")
