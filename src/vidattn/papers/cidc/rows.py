"""The CIDC chapter's rows: named run configurations per profile (:mod:`vidattn.papers`)."""
from __future__ import annotations

from typing import Any

from vidattn.core.profiles import RunContext, apply_override
from vidattn.core.registry import Planned
from vidattn.engine.budget import Work, key, train_shape

# event, pause, event with two palindromic events (a size pulse, a there-and-back shift):
# each event leaves the actor as it found it, so nothing but the order of the events
# tells "pulse then oscillate" from "oscillate then pulse"; two order-free controls
EVENTS = {"programs": (("pulse", "oscillate"),), "controls": (("pulse", "pulse"), ("oscillate", "oscillate"))}
# the chapter's suite: those classes among two moving look-alikes over a panning background, with a
# small oscillation (travel 0.2) and pixel noise 0.08, so that no variant sits at 100 % (a pilot
# without the last two had every CIDC variant at 97-98 % pair accuracy)
SUITE = {**EVENTS, "distractors": 2, "background": "pan", "travel": 0.2, "noise": 0.08}

TINY_BACKBONE = {"name": "tiny", "width": 16, "temporal_stem": True}
TINY_TRAIN = {"batch_size": 32, "lr": 2e-3, "weight_decay": 1e-4, "warmup_epochs": 0.5}
HEAD_TRAIN = {"batch_size": 32, "lr": 1e-3, "weight_decay": 1e-4}
# the paper's recipe (Sec. 3.3): SGD, momentum 0.9, wd 1e-4, lr 0.01 x0.1 at 40 and 80 of 100 epochs
PAPER_TRAIN = {"batch_size": 64, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4,
               "schedule": "step", "milestones": (40, 80), "gamma": 0.1}

PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"size": 32, "n_train": 64, "n_test": 40, "backbone": TINY_BACKBONE, "backbone_epochs": 1,
              "head_epochs": 1, "backbone_train": TINY_TRAIN, "head_train": HEAD_TRAIN},
    # a pilot (shown in the chapter as the stage-1 learning curves) found 2,000 clips x 8 epochs leaves the
    # order-free controls at 68-74 % and 2,000 x 30 overfits (train loss 0.02, controls 82-93 %); 4,000 x 20
    # brings them to 97-99 % with a flat loss
    "small": {"size": 32, "n_train": 4000, "n_test": 600, "backbone": TINY_BACKBONE, "backbone_epochs": 20,
              "head_epochs": 6, "backbone_train": TINY_TRAIN, "head_train": HEAD_TRAIN},
    "full": {"size": 224, "n_train": 20000, "n_test": 2000, "backbone": {"name": "i3d", "non_local": False},
             "backbone_epochs": 100, "head_epochs": 100, "backbone_train": PAPER_TRAIN, "head_train": PAPER_TRAIN},
}

# head variants: (row name, head spec); "full" is the paper's model (bi, 3 scales, attention, concat-t, n1)
FULL_CIDC = {"name": "cidc", "direction": "bi", "scales": 3, "units": 2, "attention": True, "fusion": "concat_t",
             "norm": "n1"}
HEADS: dict[str, dict[str, Any]] = {
    "I3D (GAP)": {"name": "gap"},
    "single-scale": {**FULL_CIDC, "scales": 1, "attention": False},
    "multi-scale": {**FULL_CIDC, "attention": False},
    "CIDC (full)": FULL_CIDC,
    "non-direction": {**FULL_CIDC, "direction": "non"},
    "uni-direction": {**FULL_CIDC, "direction": "uni"},
    "LSTM": {"name": "lstm", "hidden": 64, "layers": 2},
    "self-attention": {"name": "self_attention", "layers": 2, "heads": 4},
    "concat c": {**FULL_CIDC, "fusion": "concat_c"},
    "sum": {**FULL_CIDC, "fusion": "sum"},
    "no normalisation (N0)": {**FULL_CIDC, "norm": "n0"},
}


# where each size_override key lands in the settings (:func:`vidattn.core.profiles.apply_override`)
OVERRIDE = {"size": ("size",), "n_train": ("n_train",), "n_test": ("n_test",), "model": ("backbone",),
            "epochs": ("backbone_epochs", "head_epochs"),
            "batch_size": ("backbone_train.batch_size", "head_train.batch_size"), "frames": ()}


def settings(ctx: RunContext) -> dict[str, Any]:
    """The profile's settings with the chapter's ``size_override`` (``frames``: real data only)."""
    return apply_override(PROFILE_SETTINGS[ctx.profile], ctx, OVERRIDE)


def run_config(ctx: RunContext, head: str, seed: int) -> dict[str, Any]:
    """Config of one ``cidc/train`` run."""
    s = settings(ctx)
    return {
        "suite": "order_events",
        "suite_overrides": {**SUITE, "size": s["size"], "n_train": s["n_train"], "n_test": s["n_test"]},
        "backbone": dict(s["backbone"]), "backbone_train": {**s["backbone_train"], "epochs": s["backbone_epochs"]},
        "head": dict(HEADS[head]), "head_train": {**s["head_train"], "epochs": s["head_epochs"]},
        "seed": seed, "device": ctx.device,
    }


def chapter_runs(ctx: RunContext) -> list[Planned]:
    """Every ``cidc/train`` run of the chapter, seed by seed (the heads of a seed share its backbone)."""
    return [Planned(h, run_config(ctx, h, seed)) for seed in ctx.seeds for h in HEADS]


# ---------------------------------------------------------------- real data

# the rows trained on a real dataset: the I3D baseline and the paper's CIDC network
REAL_HEADS = ("I3D (GAP)", "CIDC (full)")
# the paper's clips (spec, Sec. 3): 32 frames every other frame; at test 10 uniform clips x 3 crops.
# The scaled-down profiles keep the suites' 32 frames and size with one test view.
REAL_SAMPLING = {
    "smoke": ({"mode": "dense", "frames": 32, "stride": 2, "size": 32}, {"clips": 1}),
    "small": ({"mode": "dense", "frames": 32, "stride": 2, "size": 32}, {"clips": 1}),
    "full": ({"mode": "dense", "frames": 32, "stride": 2, "size": 224}, {"clips": 10, "three_crop": True}),
}


def real_runs(ctx: RunContext) -> list[Planned]:
    """The ``cidc/real`` runs of :data:`REAL_HEADS` on the chapter's dataset, in the profile's
    settings (backbone and recipe; ``full`` is the paper's), seed by seed; none without data."""
    if ctx.data_root is None:
        return []
    s = settings(ctx)
    train, test = REAL_SAMPLING[ctx.profile]
    spec = ctx.data_spec(train, {**train, **test})
    weights = ctx.weights_spec()
    return [Planned(h, {"data": spec, "backbone": dict(s["backbone"]), "weights": weights,
                        "backbone_train": {**s["backbone_train"], "epochs": s["backbone_epochs"]},
                        "head": dict(HEADS[h]), "head_train": {**s["head_train"], "epochs": s["head_epochs"]},
                        "seed": seed, "device": ctx.device}) for seed in ctx.seeds for h in REAL_HEADS]


def work(c: dict[str, Any]) -> list[Work]:
    """The training work of a ``cidc/train`` or ``/real`` config (:func:`vidattn.engine.budget.cpu_seconds`):
    stage 1 trains the backbone (once per seed, every head shares it); a head other than GAP
    passes each clip through the frozen backbone once for its features."""
    from vidattn.papers.cidc.experiment import build_backbone, suite_of
    from vidattn.papers.cidc.model import GAPHead, VideoClassifier

    n, frames, size, _ = train_shape(c, None if "data" in c else suite_of(c))
    model = key(c["backbone"], frames, size)

    def build():
        b = build_backbone(c["backbone"])
        return VideoClassifier(b, GAPHead(b.channels, 2)), (1, 3, frames, size, size)

    stage1 = key(model, c.get("data"), c.get("suite_overrides"), c["backbone_train"], c["seed"])
    out = [Work(model, build, n * c["backbone_train"]["epochs"], shared=stage1)]
    if c["head"]["name"] != "gap":
        out.append(Work(model, build, n, forward_only=True))
    return out
