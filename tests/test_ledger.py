"""The ledger as readers see it: the paper's numbers split from the claim, our means beside them,
the findings told decisive-first, the badges, the row ids the scorecard links, and the pages
made from the ledgers (the front page's chapter list and the scorecard's table of claims)."""
import json
import re

import pytest

from vidattn.core.paths import REPO_ROOT
from vidattn.report.gates import NOT_LEARNED
from vidattn.report.scorecard import ClaimsTable, ledger_frame, read_ledgers, toc, toc_markdown, what_held
from vidattn.report.stats import compare
from vidattn.report.tables import (
    LedgerView,
    badge,
    claim_from,
    claims_ledger,
    findings,
    held,
    ledger_json,
    split_paper,
    told,
)


def _ledger():
    up = compare("top1", "A", "B", [80.0, 82.0, 81.0], [60.0, 61.0, 59.5])
    flat = compare("top1", "A", "C", [70.0, 72.0, 71.0], [71.0, 70.5, 71.5])
    down = compare("top1", "A", "D", [50.0, 51.0, 52.0], [70.0, 71.0, 72.5])
    return claims_ledger([
        claim_from("A is no better than C (Table 2: 71.0 vs 70.2)", flat),
        claim_from("A beats D (Fig. 3)", down),
        {"claim": "A costs 12 GFLOPs (Table 5)", "evidence": "counted", "verdict": "reproduced"},
        claim_from("A beats B (Table 1: 75.4 vs 72.0)", up),
        {"claim": "A beats B on Kinetics", "evidence": "needs data", "verdict": "not run here (needs data_root)"},
    ])


def test_the_papers_numbers_are_the_claims_closing_parenthesis_with_a_number():
    assert split_paper("SIFA beats TSM (Table 1e: 77.4 vs 74.7)") == ("SIFA beats TSM", "Table 1e: 77.4 vs 74.7")
    assert split_paper("L_ord raises OrderAcc (ours)") == ("L_ord raises OrderAcc (ours)", "—")
    assert split_paper("k = 5 adds nothing (Table 1c); tested: k=5 > k=3")[1] == "—"


def test_a_claim_carries_our_means_and_the_paired_difference():
    row = claim_from("A beats B", compare("top1", "A", "B", [80.0, 82.0, 81.0], [60.0, 61.0, 59.5]))
    assert row["ours"] == "81.0 vs 60.2" and row["difference"].startswith("+20.8 [")
    assert row["verdict"] == "reproduced"


def test_findings_are_told_decisive_first_and_link_rows_of_the_ledger():
    ledger = _ledger()
    kinds = [row["verdict"].split(" (")[0] for _, _, row in told(ledger)]
    assert kinds[:3] == ["reproduced", "reproduced", "reversed"] and kinds[-1].startswith("not run here")
    text = findings(ledger, [], "07_x", n=3)
    bullets = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(bullets) == 3 and "paper: Table 1: 75.4 vs 72.0; ours 81.0 vs 60.2" in bullets[1]
    assert re.findall(r'href="#(07_x-claim-\d)"', text) == ["07_x-claim-3", "07_x-claim-4", "07_x-claim-2"]
    assert "{ref}`The claims ledger <07_x-ledger>`" in text and "All 5 claims" in text


def test_held_says_what_held_what_reversed_and_what_stays_undecided():
    text = held(_ledger())
    assert text.startswith("**Held** (2): A costs 12 GFLOPs; A beats B.")
    assert "**Reversed** (1): A beats D." in text
    assert "**No effect detected** (1; bounds " in text and text.endswith("**Undecided**: not run here 1.")


def test_the_ledger_shows_badges_and_ids_and_prints_as_text():
    view = LedgerView(_ledger(), "07_x")
    page = view._repr_html_()
    assert re.findall(r'<tr id="([^"]+)"', page) == [f"07_x-claim-{i}" for i in range(1, 6)]
    assert page.count('class="verdict verdict-reproduced"') == 2 and "<details><summary>evidence" in page
    assert "81.0 vs 60.2" in repr(view) and "not run here" in repr(view)
    assert badge(NOT_LEARNED) == '<span class="verdict verdict-not-learned">not learned</span> no verdict'
    with pytest.raises(ValueError, match="not one of"):
        badge("probably true")


def test_a_ledger_row_with_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="unknown fields \\['paper_value'\\]"):
        claims_ledger([{"claim": "c", "evidence": "e", "verdict": "reproduced", "paper_value": 3}])


def test_the_table_of_contents_numbers_the_chapters_and_titles_them_from_their_sources():
    entries = toc()
    numbered = [(e.number, e.short) for e in entries if e.number is not None]
    assert numbered == [(1, "The synthetic video suites"), (2, "DirecFormer"), (3, "CIDC"), (4, "SIFA"),
                        (5, "Spatial attention"), (6, "Pyramid attention"), (7, "Head to head")]
    md = toc_markdown(entries)
    assert md.count("{doc}`") == len(entries) and "4. {doc}`SIFA: attention between consecutive frames " \
        "</book/_executed/04_sifa>`" in md


def test_the_scorecard_lists_every_claim_of_every_saved_ledger(tmp_path):
    entries = [e for e in toc() if e.number is not None]
    for stem in ("03_cidc", "04_sifa"):
        (tmp_path / f"{stem}.json").write_text(json.dumps(ledger_json(_ledger(), [], stem, "small")))
    ledgers = read_ledgers(tmp_path, entries)
    assert sorted(ledgers) == ["03_cidc", "04_sifa"] and len(ledger_frame(ledgers["04_sifa"])) == 5
    table = ClaimsTable(entries, ledgers)
    links = re.findall(r'href="([^"]+)"', table._repr_html_())
    assert len(table) == 10 and sorted(links) == sorted(
        f"{s}.html#{s}-claim-{i}" for s in ("03_cidc", "04_sifa") for i in range(1, 6))
    assert repr(table).startswith("10 claims: reproduced 4, reversed 2")
    summary = what_held(entries, ledgers)
    assert summary.count("**Held** (2)") == 2 and "{doc}`SIFA </book/_executed/04_sifa>`" in summary
    (tmp_path / "05_spatial_attention.json").write_text("{not json")
    with pytest.raises(ValueError, match="05_spatial_attention.json: not a readable ledger"):
        read_ledgers(tmp_path, entries)


def test_a_claim_is_decisive_when_it_holds_reverses_or_bounds_the_effect_tightly():
    from vidattn.report.scorecard import decisive, decisive_row
    from vidattn.report.tables import paper_effect

    assert paper_effect("Table 1e: 77.4 vs 74.7") == pytest.approx(2.7) and paper_effect("Fig. 3") is None
    assert paper_effect("83.1 → 86.5") == pytest.approx(3.4) and paper_effect("Table 1a: +0.8") == 0.8
    assert paper_effect("Tables 3-4") is None
    row = lambda verdict, paper="—": {"verdict": verdict, "paper": paper}  # noqa: E731
    assert decisive(row("reproduced")) and decisive(row("reversed"))
    assert decisive(row("no effect detected (|Δ| < 4.9 at 95 %)"))
    assert not decisive(row("no effect detected (|Δ| < 5.1 at 95 %)"))
    # a paper effect of 4 points allows a bound of 8
    assert decisive(row("no effect detected (|Δ| < 7.9 at 95 %)", "Table 2: 70.0 vs 66.0"))
    assert not decisive(row(NOT_LEARNED)) and not decisive(row("not testable (identical rows)"))
    assert not decisive(row("no effect detected (|Δ| < 0.0 at 95 %)"))  # identical rows, old wording
    counted = decisive_row({"claims": [row("reproduced"), row("no effect detected (|Δ| < 40.0 at 95 %)"),
                                       row("not run here (needs data_root)")]})
    assert counted == {"claims run": 2, "held or reversed": 1, "decisive": 1, "share": "50%"}


def test_a_bound_wider_than_the_claim_decides_is_not_testable_and_says_why():
    from vidattn.report.stats import SuccessComparison, compare
    from vidattn.report.tables import claim_from, settled

    tight = compare("top1", "a", "b", [80.0, 81.0, 80.5, 80.2], [80.1, 80.6, 80.9, 80.0])
    wide = compare("top1", "a", "b", [50.0, 99.0, 51.0], [99.0, 50.0, 98.0])
    assert tight.verdict.startswith("no effect detected") and settled("a beats b", tight) == tight.verdict
    verdict = settled("a beats b", wide)
    assert verdict.startswith("not testable at this size (|Δ| < ") and "wider than the 5 pts that decide it" in verdict
    assert "3 paired seeds detect ≥ " in verdict
    # a paper effect of 80 points allows a bound of 160: the same comparison then decides
    assert settled("a beats b (Table 2: 90.0 vs 10.0)", wide) == wide.verdict
    assert claim_from("a beats b", wide)["verdict"] == verdict
    ceiling = compare("top1", "a", "b", [99.8, 99.9], [99.9, 99.7], ceiling=100.0)
    runs = SuccessComparison("top1", "a", "b", "learned = top1 ≥ 75", (True,) * 8, (True,) * 7 + (False,), ceiling)
    assert runs.verdict.startswith("no effect detected (success rate |Δ| < ")
    verdict = settled("a beats b (Table 1a: +0.8)", runs)
    assert verdict.startswith("not testable at this size (success rates 8/8 vs 7/8 bound their gap only to ")
    assert "wider than the 5 that decide it; where both learned, both rows at the ceiling" in verdict


COMMITTED = sorted((REPO_ROOT / "data" / "ledgers" / "small").glob("*.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_the_committed_ledger_is_what_the_committed_records_give(path):
    """Each claim of a committed small-profile ledger that names its records is recomputed from
    those records (data/records): the same numbers, the same evidence and the same verdict (or
    "not learned" where the ledger says which gate failed). A change to the statistics, or a
    record that moved, makes the committed ledger stale and fails here."""
    from vidattn.core.store import load_record
    from vidattn.report.claims import comparison_of
    from vidattn.report.tables import settled

    data = json.loads(path.read_text())
    checked = 0
    for row in data["claims"]:
        rests = row.get("rests_on")
        if not rests:
            continue
        records = {ref: load_record(REPO_ROOT / "data" / "records" / f"{ref}.json")
                   for ref in dict.fromkeys(rests["a"] + rests["b"])}
        fresh = comparison_of(rests, records)
        assert (fresh.ours, fresh.difference) == (row["ours"], row["difference"]), row["claim"]
        assert row["evidence"].startswith(fresh.evidence), row["claim"]
        assert row["verdict"] == (NOT_LEARNED if rests["gates_failed"] else settled(row["claim"], fresh)), row["claim"]
        checked += 1
    assert checked, f"{path.name}: no claim names its records"
    assert data["profile"] == "small" and data["chapter"] == path.stem


def test_the_book_commits_the_small_ledger_of_every_paper_chapter():
    papers = {e.stem for e in toc() if e.part in ("Papers", "Across the papers")}
    assert {p.stem for p in COMMITTED} == papers, "run `make book` and commit data/ledgers/small"
