"""The book's pages made from its chapters' ledgers: the front page's chapter list and "what held",
and the scorecard's table of every claim.

A chapter's ledger is the JSON file :func:`vidattn.report.tables.publish_ledger` writes
(``output_dir/ledgers/<profile>/<chapter>.json``). The chapter list is read from the
book's table of contents (``_toc.yml``), and a chapter's title from its source's first
heading, so neither is typed twice.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vidattn.core.paths import REPO_ROOT
from vidattn.report.tables import (
    HELD_KINDS,
    LEDGER_COLUMNS,
    TOLD_ORDER,
    VERDICT_KINDS,
    bound_of,
    decisive_limit,
    verdict_word,
    badge,
    held,
    row_id,
    split_paper,
    told,
    verdict_counts,
    verdict_kind,
)

EXECUTED = "book/_executed/"  # where the table of contents finds the executed chapters
# the small-profile ledgers as committed before the experiments were redesigned for decisive
# verdicts (the scorecard's baseline)
BASELINE_LEDGERS = REPO_ROOT / "data" / "ledgers" / "baseline"


@dataclass(frozen=True)
class Entry:
    """One page of the table of contents."""

    docname: str  # as _toc.yml names it, e.g. book/_executed/04_sifa
    title: str
    part: str
    number: int | None  # its chapter number, in a numbered part

    @property
    def stem(self) -> str:
        return Path(self.docname).name

    @property
    def short(self) -> str:
        """The title's name before its colon ("SIFA"), or the whole title."""
        return self.title.split(":")[0]


def source_of(docname: str, root: Path = REPO_ROOT) -> Path:
    """The source a table-of-contents entry is built from (an executed chapter's MyST notebook)."""
    if docname.startswith(EXECUTED):
        return root / "notebooks" / f"{docname[len(EXECUTED):]}.md"
    return root / f"{docname}.md"


def title_of(path: Path) -> str:
    """A page's title: the first level-1 heading of its source."""
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise ValueError(f"{path}: no level-1 heading to title the page")


def toc(root: Path = REPO_ROOT) -> list[Entry]:
    """The book's pages in reading order (the front page is the root, not an entry)."""
    spec = yaml.safe_load((root / "_toc.yml").read_text())
    entries, number = [], 0
    for part in spec["parts"]:
        for chapter in part["chapters"]:
            if part.get("numbered"):
                number += 1
            entries.append(Entry(chapter["file"], title_of(source_of(chapter["file"], root)), part["caption"],
                                 number if part.get("numbered") else None))
    return entries


def toc_markdown(entries: list[Entry]) -> str:
    """The chapter list as MyST: one line per part, each page linked under its title."""
    lines, parts = [], list(dict.fromkeys(e.part for e in entries))
    for part in parts:
        pages = [f"{e.number}. " * (e.number is not None) + f"{{doc}}`{e.title} </{e.docname}>`"
                 for e in entries if e.part == part]
        lines.append(f"- **{part}**: " + "; ".join(pages) + ".")
    return "\n".join(lines)


def read_ledgers(folder: Path, entries: list[Entry]) -> dict[str, dict[str, Any]]:
    """The ledgers in ``folder`` of the chapters in ``entries``, by chapter stem (missing ones left out)."""
    out = {}
    for e in entries:
        path = Path(folder) / f"{e.stem}.json"
        if path.is_file():
            try:
                out[e.stem] = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not a readable ledger ({err}); re-run its chapter") from err
    return out


def ledger_frame(data: dict[str, Any]) -> pd.DataFrame:
    """A saved ledger as the table :func:`vidattn.report.tables.claims_ledger` makes."""
    rows = [{k: c.get(k, "—") for k in LEDGER_COLUMNS} for c in data["claims"]]
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS).set_index("claim")


def what_held(entries: list[Entry], ledgers: dict[str, dict[str, Any]]) -> str:
    """The front page's summary (MyST): for each chapter with a ledger, what held and what did not."""
    lines = []
    for e in entries:
        if e.stem not in ledgers:
            continue
        frame = ledger_frame(ledgers[e.stem])
        gates = ledgers[e.stem]["gates"]
        lines.append(f"- {{doc}}`{e.short} </{e.docname}>` ({len(frame)} claims; gates "
                     f"{sum(g['passed'] for g in gates)} of {len(gates)} passed). {held(frame)}")
    return "\n".join(lines)


def decisive(row: dict[str, Any]) -> bool:
    """Whether a claim's verdict decides it: reproduced, reversed or not reproduced, or no effect
    detected with a bound no wider than its :func:`~vidattn.report.tables.decisive_limit`. Ledgers
    written since :func:`~vidattn.report.tables.settled` say "not testable" for a wider bound; the
    baseline ledgers do not, and a bound of exactly zero there comes from two identical rows
    (written before such comparisons were called not testable) and decides nothing."""
    kind = verdict_kind(row["verdict"])
    if kind in HELD_KINDS:
        return True
    if kind != "no effect detected":
        return False
    return 0 < bound_of(row["verdict"]) <= decisive_limit(str(row.get("paper", "")))


def decisive_row(data: dict[str, Any]) -> dict[str, Any]:
    """A chapter's claims that were run (all but "not run here"), how many of them held or reversed
    (reproduced, reversed or not reproduced), and how many are decided (:func:`decisive`)."""
    rows = [c for c in data["claims"] if verdict_kind(c["verdict"]) != "not run here"]
    n = sum(decisive(c) for c in rows)
    held = sum(verdict_kind(c["verdict"]) in HELD_KINDS for c in rows)
    return {"claims run": len(rows), "held or reversed": held, "decisive": n,
            "share": f"{n / len(rows):.0%}" if rows else "—"}


def counts_row(data: dict[str, Any]) -> dict[str, Any]:
    """A chapter's ledger counted: gates passed and claims by verdict kind."""
    frame = ledger_frame(data)
    gates, counts = data["gates"], verdict_counts(frame)
    return {"gates passed": f"{sum(g['passed'] for g in gates)} of {len(gates)}", "claims": len(frame),
            **{verdict_word(k): counts.get(k, 0) for k in VERDICT_KINDS}}


class ClaimsTable:
    """Every claim of the book, grouped by verdict: chapter, claim, the paper's numbers, ours, the
    verdict as a badge, and a link to its row in the chapter's ledger (same folder as this page)."""

    def __init__(self, entries: list[Entry], ledgers: dict[str, dict[str, Any]]):
        self.rows = []
        for e in entries:
            if e.stem in ledgers:
                for number, claim, row in told(ledger_frame(ledgers[e.stem])):
                    self.rows.append((e, number, claim, row))
        self.rows.sort(key=lambda r: TOLD_ORDER.index(verdict_kind(r[3]["verdict"])))

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        kinds = [verdict_word(verdict_kind(r[3]["verdict"])) for r in self.rows]
        return f"{len(self.rows)} claims: " + ", ".join(f"{k} {kinds.count(k)}" for k in dict.fromkeys(kinds))

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("chapter", "claim", "paper", "ours: a vs b, Δ [95 % CI]", "verdict"))
        body, kind = [], None
        for e, number, claim, row in self.rows:
            k = verdict_kind(row["verdict"])
            if k != kind:
                kind = k
                n = sum(verdict_kind(r[3]["verdict"]) == k for r in self.rows)
                body.append(f'<tr class="group"><th colspan="5">{verdict_word(k)} ({n})</th></tr>')
            link = f'<a href="{e.stem}.html#{row_id(e.stem, number)}">{html.escape(e.short)} #{number}</a>'
            ours = html.escape(row["ours"]) + ("" if row["difference"] == "—" else
                                               f"<br>Δ {html.escape(row['difference'])}")
            cells = [link, html.escape(split_paper(claim)[0]), html.escape(row["paper"]), ours, badge(row["verdict"])]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return (f'<table class="ledger claims docutils"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')
