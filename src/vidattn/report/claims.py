"""Re-checking a ledger claim on this machine: ``vidattn store verify --claim CHAPTER:CLAIM``.

A chapter's ledger (``notebooks/outputs/ledgers/<profile>/<chapter>.json``, written by
:func:`vidattn.report.tables.publish_ledger`) says for each claim made from run records which
records it rests on and how they were compared (:class:`vidattn.report.stats.Sources`).
:func:`recheck` re-runs every one of those records from scratch (one empty data folder
for the claim: suites and the stage-1 backbones its records share are rebuilt, once),
recomputes the comparison over the
fresh results, and reports whether the verdict is unchanged. On another CPU or other
library versions the fresh numbers differ in their last bits and, through training,
beyond; a verdict is what must hold, and that is the check that matters on a reader's
machine. The gates of the chapter are not recomputed; a claim whose stored verdict is
"not learned" has no comparison verdict to reproduce and is refused.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vidattn.core import store
from vidattn.core.paths import REPO_ROOT
from vidattn.report.stats import Comparison, SuccessComparison, compare_records, compare_success
from vidattn.report.tables import settled, verdict_kind

LEDGERS = REPO_ROOT / "notebooks" / "outputs" / "ledgers"  # the chapters' default output_dir


@dataclass(frozen=True)
class Recheck:
    """A claim, its stored verdict, and its comparison recomputed over fresh runs."""

    chapter: str
    claim: str
    stored: str
    fresh: Comparison | SuccessComparison
    records: list[store.Record]
    seconds: float  # recorded run time of the records re-run

    @property
    def verdict(self) -> str:
        """The fresh comparison's verdict, settled as the ledger's was (:func:`vidattn.report.tables.settled`)."""
        return settled(self.claim, self.fresh)

    @property
    def holds(self) -> bool:
        return verdict_kind(self.verdict) == verdict_kind(self.stored)


def find_claim(chapter: str, claim: str, profile: str = "small", ledgers: Path = LEDGERS) -> dict[str, Any]:
    """The ledger row of ``claim`` (its 1-based number in the ledger, or a text that only it contains)."""
    path = ledgers / profile / f"{chapter}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {profile} ledger for chapter {chapter!r}; build the book first "
                                "(make book) or name a chapter such as 04_sifa")
    rows = json.loads(path.read_text())["claims"]
    if claim.isdigit() and 1 <= int(claim) <= len(rows):
        return rows[int(claim) - 1]
    hits = [r for r in rows if claim.lower() in r["claim"].lower()]
    if len(hits) != 1:
        raise ValueError(f"{path}: {len(hits)} claims match {claim!r}; give its number (1-{len(rows)}) or more text")
    return hits[0]


def comparison_of(rests_on: dict[str, Any], records: dict[str, store.Record]) -> Comparison | SuccessComparison:
    """The comparison a ledger's ``rests_on`` describes, over ``records`` ("experiment/key" -> record)."""
    a, b = [records[k] for k in rests_on["a"]], [records[k] for k in rests_on["b"]]
    if rests_on.get("success"):
        success_metric, threshold = rests_on["success"]
        clips = rests_on["clips"][0] if rests_on["clips"] else None
        return compare_success(rests_on["metric"], rests_on["a_name"], rests_on["b_name"], a, b, success_metric,
                               threshold, clips, label=rests_on["label"], ceiling=rests_on.get("ceiling"))
    mask = rests_on["clip_mask"]
    if mask is not None:  # indices of the tested clips -> a mask over the first record's clips
        n = len(records[rests_on["a"][0]].per_clip[rests_on["clips"][0]])
        mask = [i in set(mask) for i in range(n)]
    return compare_records(rests_on["metric"], rests_on["a_name"], rests_on["b_name"], a, b,
                           rests_on["metric_b"], tuple(rests_on["clips"]) if rests_on["clips"] else None,
                           mask, label=rests_on["label"], ceiling=rests_on.get("ceiling"))


def cost_seconds(row: dict[str, Any]) -> float:
    """Recorded run time of the records a ledger row rests on (inf when it names none). A stage-1
    backbone the records share through a cache is counted only in the record that trained it, if
    any of them did: a lower bound on what a re-run from scratch costs."""
    rests = row.get("rests_on")
    if not rests:
        return float("inf")
    return sum(_stored(k).wall_seconds for k in dict.fromkeys(rests["a"] + rests["b"]))


def _stored(ref: str) -> store.Record:
    name, key = ref.rsplit("/", 1)
    path = store.records_dir() / name / f"{key}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the ledger names record {ref}, which is not in the store")
    return store.load_record(path)


def recheck(chapter: str, claim: str, profile: str = "small", workers: int = 1,
            ledgers: Path = LEDGERS) -> Recheck:
    """Re-run the records ``claim`` of ``chapter`` rests on and recompute its comparison."""
    row = find_claim(chapter, claim, profile, ledgers)
    rests = row.get("rests_on")
    if verdict_kind(row["verdict"]) not in ("reproduced", "reversed", "no effect detected", "not testable"):
        raise ValueError(f"{chapter}: claim {row['claim']!r} has the verdict {row['verdict']!r}, not one a "
                         "comparison gives; there is nothing to reproduce")
    if not rests:
        raise ValueError(f"{chapter}: claim {row['claim']!r} does not name the records it rests on "
                         "(its comparison is not made from run records); it cannot be re-checked here")
    refs = list(dict.fromkeys(rests["a"] + rests["b"]))
    stored = [_stored(k) for k in refs]
    fresh = [replace(r, result=result) for r, result in zip(stored, store.rerun(stored, workers, shared=True))]
    comparison = comparison_of(rests, dict(zip(refs, fresh)))
    return Recheck(chapter, row["claim"], row["verdict"], comparison, stored, sum(r.wall_seconds for r in stored))
