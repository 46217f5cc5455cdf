"""The data chapter's rows: the premise grid, the localisation demonstration and a bag of
frames on each paper chapter's suite (:mod:`vidattn.papers`)."""
from __future__ import annotations

from typing import Any

from vidattn.core.profiles import RunContext, apply_override
from vidattn.core.registry import Planned
from vidattn.engine.budget import Work, key

PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"n_train": 120, "n_test": 60, "epochs": 1, "batch_size": 32},
    "small": {"n_train": 2000, "n_test": 1000, "epochs": 15, "batch_size": 32},
    "full": {"n_train": 20000, "n_test": 2000, "epochs": 30, "batch_size": 32},
}
# where each size_override key lands (:func:`vidattn.core.profiles.apply_override`); ``frames`` and
# ``size`` reach the paper chapters' suites, whose bags of frames this chapter trains
OVERRIDE = {"n_train": ("n_train",), "n_test": ("n_test",), "epochs": ("epochs",), "batch_size": ("batch_size",),
            "frames": (), "size": ()}
# the premise: an order-blind bag of frames and a 3-D CNN, on order and on order with an arrow of time
PREMISE_GRID = tuple((s, m) for s in ("order", "order_arrow") for m in ("frame_average", "tiny_c3d"))


def settings(ctx: RunContext) -> dict[str, Any]:
    """Clip counts, epochs and batch of the profile, with the chapter's ``size_override``."""
    return apply_override(PROFILE_SETTINGS[ctx.profile], ctx, OVERRIDE)


def run_config(ctx: RunContext, suite: str, model: str, seed: int,
               suite_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Config of one ``data/premise`` or ``data/localisation`` run (``model`` on ``suite``)."""
    s = settings(ctx)
    return {"suite": suite,
            "suite_overrides": dict(suite_overrides) if suite_overrides is not None
            else {"n_train": s["n_train"], "n_test": s["n_test"]},
            "model": model, "width": 16, "seed": seed, "device": ctx.device,
            "train": {"epochs": s["epochs"], "batch_size": s["batch_size"], "lr": 3e-3, "weight_decay": 0.05}}


def row_name(suite: str, model: str) -> str:
    return f"{model} on {suite}"


def chapter_runs(ctx: RunContext) -> list[Planned]:
    """The premise grid, seed by seed."""
    return [Planned(row_name(s, m), run_config(ctx, s, m, seed)) for s, m in PREMISE_GRID for seed in ctx.seeds]


def localisation_runs(ctx: RunContext) -> list[Planned]:
    """``tiny_c3d`` on the actor-and-distractors suite, whose maps the localisation demo scores."""
    return [Planned(row_name("actor_distractor", "tiny_c3d"), run_config(ctx, "actor_distractor", "tiny_c3d", seed))
            for seed in ctx.seeds]


def chapter_suites(ctx: RunContext) -> dict[str, tuple[str, dict[str, Any]]]:
    """The suite each order chapter trains on in this profile, as ``{chapter: (suite, its overrides)}``:
    DirecFormer's ``order`` and CIDC's ``order_events``, read from their own run configs."""
    from vidattn.papers.cidc import rows as cidc_rows
    from vidattn.papers.direcformer import rows as direcformer_rows

    return {"DirecFormer": ("order", direcformer_rows.run_config(ctx, "order", "S-S", 0, 0, 0)["suite_overrides"]),
            "CIDC": ("order_events", cidc_rows.run_config(ctx, "I3D (GAP)", 0)["suite_overrides"])}


def suite_bag_runs(ctx: RunContext, suites: dict[str, tuple[str, dict[str, Any]]]) -> list[Planned]:
    """A bag of frames on each chapter's suite (``{chapter: (suite, its overrides)}``), named by the chapter."""
    return [Planned(chapter, run_config(ctx, name, "frame_average", seed, over))
            for chapter, (name, over) in suites.items() for seed in ctx.seeds]


def work(c: dict[str, Any]) -> list[Work]:
    """The training work of a ``data/premise`` or ``data/localisation`` config: clips x epochs
    through its model (a 32-frame 32² clip, the suites' size, bounds every one of them)."""
    from vidattn.data.suites.order import suite_config
    from vidattn.models import build_model

    suite = suite_config(c["suite"], **c["suite_overrides"])

    def build():
        return (build_model(c["model"], num_classes=suite.num_classes, width=c.get("width", 16)),
                (1, 3, suite.frames, suite.size, suite.size))

    return [Work(key(c["model"], suite.frames, suite.size), build, suite.n_train * c["train"]["epochs"])]
