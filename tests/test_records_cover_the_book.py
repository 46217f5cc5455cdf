"""The committed records hold every run the small profile plans, and nothing else: a fresh clone builds the book
from them without training (data/records). A change to a chapter's configs that was not followed by
its records (`make chapter`, then committing the new records) fails here and names the runs.

Each chapter's plan is built from its rows module as the chapter builds it; where a plan depends on
earlier results (the spatial chapter's analysed seeds, the head-to-head's chosen rates), those results
are read from the committed records, as the chapter reads them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import vidattn.catalog  # noqa: F401 (registers every experiment)
from vidattn.core import store
from vidattn.core.paths import REPO_ROOT
from vidattn.core.profiles import context
from vidattn.core.registry import Planned

RECORDS = REPO_ROOT / "data" / "records"


def small_context(notebook: str):
    """The small profile with the chapter's default seed count (its parameters cell)."""
    text = (REPO_ROOT / "notebooks" / f"{notebook}.md").read_text()
    return context("small", int(re.search(r"^seeds = (\d+)$", text, re.M).group(1)))


class Plan:
    """The runs of one chapter by experiment, and the committed records of those that have one."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.count = 0
        self.paths: set[Path] = set()

    def served(self, experiment: str, runs: list[Planned]) -> list[store.Record]:
        records = []
        for p in runs:
            path = RECORDS / experiment / f"{store.record_key(experiment, p.config, 'cpu')}.json"
            self.count += 1
            self.paths.add(path)
            if path.is_file():
                records.append(store.load_record(path))
            else:
                self.missing.append(f"{experiment} {p.row} seed {p.config.get('seed')}")
        return records


def plan_data(ctx, plan: Plan) -> None:
    from vidattn.papers.data_suites import rows

    plan.served("data/premise", rows.chapter_runs(ctx) + rows.suite_bag_runs(ctx, rows.chapter_suites(ctx)))
    plan.served("data/localisation", rows.localisation_runs(ctx))


def plan_direcformer(ctx, plan: Plan) -> None:
    from vidattn.papers.direcformer import rows

    plan.served("direcformer/train", rows.pilot_runs(ctx) + rows.recipe_pilot_runs(ctx) + rows.chapter_runs(ctx))


def plan_cidc(ctx, plan: Plan) -> None:
    from vidattn.papers.cidc import rows

    plan.served("cidc/train", rows.chapter_runs(ctx))


def plan_sifa(ctx, plan: Plan) -> None:
    from vidattn.papers.sifa import rows

    plan.served("sifa/train", rows.far_pilot_runs(ctx) + rows.chapter_runs(ctx))


def plan_spatial(ctx, plan: Plan) -> None:
    from vidattn.papers.spatial import rows

    plan.served("spatial/pretrain", rows.regime_pilot_runs(ctx) + rows.first_pass_runs(ctx))
    stage1 = plan.served("spatial/pretrain", rows.reference_runs(ctx))
    seeds = rows.analysed_seeds(ctx, {r.config["seed"]: r.metrics["top1"] for r in stage1})
    plan.served("spatial/pretrain", rows.control_runs(ctx, seeds))
    plan.served("spatial/train", rows.chapter_runs(ctx, seeds))


def plan_pyramid(ctx, plan: Plan) -> None:
    from vidattn.papers.pyramid import rows

    plan.served("pyramid/pretrain", rows.stage1_runs(ctx))
    plan.served("pyramid/train", rows.chapter_runs(ctx) + rows.pilot_runs(ctx) + rows.test_split_pilot_runs(ctx)
                + rows.first_grid_runs(ctx))


def plan_head_to_head(ctx, plan: Plan) -> None:
    from vidattn.papers.head_to_head import rows

    plan.served("h2h/train", rows.regime_pilot_runs(ctx))
    scores: dict[tuple[str, float], list[float]] = {}
    for r in plan.served("h2h/train", rows.pilot_runs(ctx)):
        scores.setdefault((r.config["mechanism"], r.config["train"]["lr"]), []).append(r.metrics["ordered_top1"])
    plan.served("h2h/train", rows.chapter_runs(ctx, rows.choose_lrs(scores)))


CHAPTERS = {"01_data_suites": plan_data, "02_direcformer": plan_direcformer, "03_cidc": plan_cidc,
            "04_sifa": plan_sifa, "05_spatial_attention": plan_spatial, "06_pyramid_attention": plan_pyramid,
            "07_head_to_head": plan_head_to_head}


@pytest.mark.parametrize("notebook", CHAPTERS)
def test_every_run_the_small_profile_plans_has_a_committed_record(notebook):
    plan = Plan()
    CHAPTERS[notebook](small_context(notebook), plan)
    assert plan.count, f"{notebook}: the plan is empty"
    assert not plan.missing, (f"{notebook}: {len(plan.missing)} of {plan.count} planned small-profile runs have no "
                              f"committed record (run `make chapter NB=notebooks/{notebook}.md PROFILE=small` and "
                              f"commit data/records): {plan.missing[:5]}")


def test_every_committed_record_is_a_run_some_chapter_plans():
    """No record outside the plans: one would count against a chapter's 90 minutes and be served to no page."""
    plan = Plan()
    for notebook, build in CHAPTERS.items():
        build(small_context(notebook), plan)
    orphans = sorted(str(p.relative_to(RECORDS)) for p in set(RECORDS.glob("*/*/*.json")) - plan.paths)
    assert not orphans, f"{len(orphans)} committed record(s) no chapter plans (delete them): {orphans[:5]}"
