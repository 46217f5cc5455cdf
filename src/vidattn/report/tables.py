"""Tables from run records: mean ± std over seeds, paper-vs-ours, and the claims ledger."""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from vidattn.core.paths import REPO_ROOT
from vidattn.core.store import Record
from vidattn.report.gates import NOT_LEARNED, GateResult
from vidattn.report.stats import Comparison, SuccessComparison

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


def recipe(train: dict[str, Any]) -> str:
    """A training recipe as text, for a reader ("optimizer sgd, lr 0.05, epochs 6, ...")."""
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, (list, tuple)):
            return "/".join(fmt(x) for x in v) or "none"
        if isinstance(v, dict):
            return "(" + recipe(v) + ")"
        return "none" if v is None else str(v)

    return ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in train.items())


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


BOOK_PROFILE = "small"  # the profile the published book is built with
COMMITTED_LEDGERS = REPO_ROOT / "data" / "ledgers" / BOOK_PROFILE  # its ledgers, committed beside the records

# the ledger's vocabulary; "not reproduced" is for exact computations (counts, costs) only
VERDICT_KINDS = ("reproduced", "reversed", "no effect detected", "not testable", NOT_LEARNED, "not run here",
                 "not reproduced")
LEDGER_COLUMNS = ["claim", "paper", "ours", "difference", "evidence", "verdict"]
# the order a chapter's findings are told in: what held or failed first, the undecided after
# the kinds that hold or fail a claim outright (the rest bound it, or say why they cannot)
HELD_KINDS = ("reproduced", "reversed", "not reproduced")
TOLD_ORDER = HELD_KINDS + ("no effect detected", NOT_LEARNED, "not testable", "not run here")


def verdict_kind(verdict: str) -> str:
    """The kind a verdict text starts with (raises for anything outside the vocabulary)."""
    for kind in VERDICT_KINDS:
        if verdict == kind or verdict.startswith(kind + " "):
            return kind
    raise ValueError(f"verdict {verdict!r} is not one of {VERDICT_KINDS}")


def split_paper(claim: str) -> tuple[str, str]:
    """A claim's text and the paper's evidence for it: the closing parenthesis that cites the paper
    ("SIFA beats TSM (Table 1e: 77.4 vs 74.7)" -> "SIFA beats TSM", "Table 1e: 77.4 vs 74.7"), or "—"."""
    m = re.fullmatch(r"(.*?)\s*\(([^()]*\d[^()]*)\)", claim.strip())
    return (m.group(1), m.group(2)) if m else (claim, "—")


DECISIVE_BOUND = 5.0  # points: the widest "no effect detected" bound that still informs


def paper_effect(paper: str) -> float | None:
    """The effect a paper's evidence states, or None: "Table 1e: 77.4 vs 74.7" and "83.1 → 86.5"
    give 2.7 and 3.4, a signed difference "Table 1a: +0.8" gives 0.8."""
    number = r"(-?\d+(?:\.\d+)?)"
    m = re.search(number + r"\s*%?\s*(?:vs\.?|→)\s*" + number, paper)
    if m:
        return abs(float(m.group(1)) - float(m.group(2)))
    m = re.search(r"(?:^|[\s:(])[+−-](\d+(?:\.\d+)?)", paper)
    return float(m.group(1)) if m else None


def decisive_limit(paper: str) -> float:
    """The widest "no effect detected" bound that decides a claim: :data:`DECISIVE_BOUND` points, or
    twice the effect the paper states (:func:`paper_effect`) when that is larger."""
    effect = paper_effect(paper)
    return max(DECISIVE_BOUND, 2 * effect if effect else 0.0)


def settled(text: str, comparison: Comparison | SuccessComparison) -> str:
    """The verdict of claim ``text``: the comparison's, except that "no effect detected" with a bound
    wider than the claim's :func:`decisive_limit` is *not testable at this size*: a bound wider than
    the effect in question is not a finding, and the comparison's ``too_wide`` says why (its seeds and
    what they detect, or its success rates and what the runs that learned show)."""
    verdict = comparison.verdict
    if verdict_kind(verdict) != "no effect detected":
        return verdict
    limit = decisive_limit(split_paper(text)[1])
    return verdict if bound_of(verdict) <= limit else comparison.too_wide(limit)


def claim_from(text: str, comparison: Comparison | SuccessComparison, gates: Sequence[GateResult] = ()
               ) -> dict[str, Any]:
    """A ledger row from a paired comparison (its verdict :func:`settled`); a failed gate replaces the
    verdict. A comparison made from records (:func:`vidattn.report.stats.compare_records`) adds what
    the claim rests on."""
    failed = [g.gate.name for g in gates if not g.passed]
    verdict = NOT_LEARNED if failed else settled(text, comparison)
    evidence = comparison.evidence + (f" (gate failed: {', '.join(failed)})" if failed else "")
    row: dict[str, Any] = {"claim": text, "ours": comparison.ours, "difference": comparison.difference,
                           "evidence": evidence, "verdict": verdict}
    if comparison.sources is not None:
        row["rests_on"] = {**comparison.sources.as_dict(), "a_name": comparison.a, "b_name": comparison.b,
                           "label": comparison.metric, "gates_failed": failed}
    return row


def claims_ledger(claims: list[dict[str, Any]]) -> pd.DataFrame:
    """The chapter's closing table: claim, the paper's numbers, ours, the paired difference, our
    evidence and the verdict (validated). A row made without a comparison gives what it has ("—"
    for the rest). What each claim rests on (when known) travels in ``attrs["rests_on"]``."""
    rows = []
    for c in claims:
        verdict_kind(str(c.get("verdict")))
        unknown = set(c) - set(LEDGER_COLUMNS) - {"rests_on"}
        if unknown:
            raise ValueError(f"ledger row {c.get('claim')!r} has unknown fields {sorted(unknown)}")
        rows.append({"paper": split_paper(c["claim"])[1], "ours": "—", "difference": "—", **c})
    ledger = pd.DataFrame(rows, columns=LEDGER_COLUMNS).set_index("claim")
    ledger.attrs["rests_on"] = {c["claim"]: c["rests_on"] for c in claims if "rests_on" in c}
    return ledger


def verdict_counts(ledger: pd.DataFrame) -> dict[str, int]:
    """How many claims of each kind a ledger holds."""
    kinds = [verdict_kind(v) for v in ledger["verdict"]]
    return {k: kinds.count(k) for k in VERDICT_KINDS if k in kinds}


def glance(ledger: pd.DataFrame, gates: Sequence[GateResult]) -> str:
    """The one-line summary of a ledger: gates passed and verdicts by kind."""
    passed = sum(g.passed for g in gates)
    kinds = ", ".join(f"{verdict_word(k)} {n}" for k, n in verdict_counts(ledger).items())
    return f"Gates: {passed} of {len(gates)} passed. All {len(ledger)} claims: {kinds}."


def verdict_word(kind: str) -> str:
    """A verdict kind as its badge reads ("not learned" for "not learned: no verdict")."""
    return "not learned" if kind == NOT_LEARNED else kind


def badge(verdict: str) -> str:
    """A verdict as HTML: its kind as a coloured badge (the book's CSS), the rest of the text after it."""
    kind = verdict_kind(verdict)
    rest = verdict[len(kind):].strip(" :") if kind != NOT_LEARNED else "no verdict"
    cls = "verdict-" + verdict_word(kind).replace(" ", "-")
    return f'<span class="verdict {cls}">{verdict_word(kind)}</span>' + (f" {html.escape(rest)}" if rest else "")


def bound_of(verdict: str) -> float:
    """The bound a "no effect detected" verdict states (its first "< x"), or inf."""
    m = re.search(r"< ([\d.]+)", verdict)
    return float(m.group(1)) if m else math.inf


def told(ledger: pd.DataFrame) -> list[tuple[int, str, dict[str, Any]]]:
    """The ledger's claims (number, text, row) in the order its findings are told: reproduced,
    reversed and not reproduced first, then the undecided by the tightness of their bound."""
    rows = [(i + 1, claim, row) for i, (claim, row) in enumerate(ledger.to_dict(orient="index").items())]
    return sorted(rows, key=lambda r: (TOLD_ORDER.index(verdict_kind(r[2]["verdict"])), bound_of(r[2]["verdict"]),
                                       r[0]))


def ledger_label(chapter: str) -> str:
    """The MyST label of a chapter's "Claims ledger" heading: ``(<chapter>-ledger)=``."""
    return f"{chapter}-ledger"


def row_id(chapter: str, number: int) -> str:
    """The HTML id of ledger row ``number`` (1-based) on the chapter's page."""
    return f"{chapter}-claim-{number}"


def findings(ledger: pd.DataFrame, gates: Sequence[GateResult], chapter: str, n: int = 5) -> str:
    """The chapter's opening findings (MyST): ``n`` claims, each "claim → verdict (paper, ours,
    difference [95 % CI])", told in :func:`told` order, then the gates and counts with a link
    to the ledger."""
    lines = []
    for number, claim, row in told(ledger)[:n]:
        text, paper = split_paper(claim)
        said = ([] if paper == "—" else [f"paper: {paper}"]) + (
            [] if row["ours"] == "—" else [f"ours {row['ours']}, Δ {row['difference']}"])
        lines.append(f"- {text} → {badge(row['verdict'])}" + (f" ({'; '.join(said)})" if said else "") + " "
                     f'<a href="#{row_id(chapter, number)}">#{number}</a>')
    lines.append(f"\n{glance(ledger, gates)} {{ref}}`The claims ledger <{ledger_label(chapter)}>` "
                 "gives every claim with its evidence.")
    return "\n".join(lines)


def held(ledger: pd.DataFrame) -> str:
    """What held, what did not, and what no effect was found for, in one paragraph (MyST) for a
    chapter's Summary; then the count of the undecided (not learned, not testable, not run)."""
    by: dict[str, list[str]] = {}
    for _, claim, row in told(ledger):
        by.setdefault(verdict_kind(row["verdict"]), []).append(split_paper(claim)[0])
    parts = []
    for kind, label in (("reproduced", "Held"), ("reversed", "Reversed"), ("not reproduced", "Not reproduced")):
        if kind in by:
            parts.append(f"**{label}** ({len(by[kind])}): " + "; ".join(by[kind]) + ".")
    if not parts:
        parts.append("**No claim held or reversed in this build.**")
    if "no effect detected" in by:
        bounds = [bound_of(v) for v in ledger["verdict"] if verdict_kind(v) == "no effect detected"]
        parts.append(f"**No effect detected** ({len(bounds)}; bounds {min(bounds):.1f} to {max(bounds):.1f} pts): "
                     + "; ".join(by["no effect detected"]) + ".")
    rest = [f"{verdict_word(k)} {len(by[k])}" for k in TOLD_ORDER[4:] if k in by]
    if rest:
        parts.append("**Undecided**: " + ", ".join(rest) + ".")
    return " ".join(parts)


class LedgerView:
    """How a ledger shows on the page: an HTML table (claim, paper, ours, difference, verdict badge,
    the evidence folded under the claim, each row with an id the scorecard links to), and a plain
    text table for nbval to compare."""

    def __init__(self, ledger: pd.DataFrame, chapter: str):
        self.ledger, self.chapter = ledger, chapter

    def __repr__(self) -> str:
        return self.ledger[["paper", "ours", "difference", "verdict"]].to_string()

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("claim", "paper", "ours: a vs b, Δ [95 % CI]", "verdict"))
        body = []
        for number, (claim, row) in enumerate(self.ledger.to_dict(orient="index").items(), 1):
            text = f"{number}. " + html.escape(split_paper(claim)[0])
            evidence = f"<details><summary>evidence</summary>{html.escape(row['evidence'])}</details>"
            ours = html.escape(row["ours"]) + ("" if row["difference"] == "—" else
                                               f"<br>Δ {html.escape(row['difference'])}")
            cells = [text + evidence, html.escape(row["paper"]), ours, badge(row["verdict"])]
            body.append(f'<tr id="{row_id(self.chapter, number)}">' + "".join(f"<td>{c}</td>" for c in cells)
                        + "</tr>")
        return f'<table class="ledger docutils"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


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
                   profile: str) -> LedgerView:
    """Glue the chapter's opening findings ("findings", :func:`findings`) and its Summary's
    "what held" ("held", :func:`held`), save the ledger as
    ``output_dir/ledgers/<profile>/<chapter>.json`` (:func:`ledger_json`) and, for the book's
    own profile, also as the committed ``data/ledgers/small/<chapter>.json``
    (:data:`COMMITTED_LEDGERS`, the book's results as data, like the records), and return the
    ledger as the page shows it."""
    from IPython.display import Markdown
    from myst_nb import glue

    from vidattn.core.files import write_atomic

    glue("findings", Markdown(findings(ledger, gates, chapter)), display=False)
    glue("held", Markdown(held(ledger)), display=False)
    text = json.dumps(ledger_json(ledger, gates, chapter, profile), indent=1, ensure_ascii=False) + "\n"
    folders = [Path(output_dir) / "ledgers" / profile] + ([COMMITTED_LEDGERS] if profile == BOOK_PROFILE else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{chapter}.json", lambda tmp: Path(tmp).write_text(text))
    return LedgerView(ledger, chapter)


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
