"""The CIDC chapter's run configurations per profile (kept apart from the experiment code).

Only configs live here, so the chapter and a batch job build identical configs (and hit
the same records) without this module entering any record's code fingerprint.
"""
from __future__ import annotations

from typing import Any

from vidattn.profiles import RunContext

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


def settings(profile: str, override: dict[str, Any] | None = None) -> dict[str, Any]:
    """The profile's settings with the chapter's ``size_override`` applied (model and data size
    only); the settings themselves when there is none, so record keys stay as they were."""
    s = PROFILE_SETTINGS[profile]
    if not override:
        return s
    s = {**s, **{k: override[k] for k in ("size", "n_train", "n_test") if k in override},
         "backbone": {**s["backbone"], **override.get("model", {})}}
    if "epochs" in override:
        s["backbone_epochs"] = s["head_epochs"] = override["epochs"]
    if "batch_size" in override:
        s["backbone_train"] = {**s["backbone_train"], "batch_size": override["batch_size"]}
        s["head_train"] = {**s["head_train"], "batch_size": override["batch_size"]}
    return s


def run_config(profile: str, head: str, seed: int, device: str, override: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Config of one ``cidc/train`` run."""
    s = settings(profile, override)
    return {
        "suite": "order_events",
        "suite_overrides": {**SUITE, "size": s["size"], "n_train": s["n_train"], "n_test": s["n_test"]},
        "backbone": dict(s["backbone"]), "backbone_train": {**s["backbone_train"], "epochs": s["backbone_epochs"]},
        "head": dict(HEADS[head]), "head_train": {**s["head_train"], "epochs": s["head_epochs"]},
        "seed": seed, "device": device,
    }


def chapter_runs(profile: str, seeds: tuple[int, ...], device: str, override: dict[str, Any] | None = None
                 ) -> list[dict[str, Any]]:
    """Every run of the chapter, seed by seed (the heads of a seed share its backbone)."""
    return [run_config(profile, h, seed, device, override) for seed in seeds for h in HEADS]


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


def real_runs(ctx: RunContext) -> list[dict[str, Any]]:
    """The ``cidc/real`` runs of :data:`REAL_HEADS` on the chapter's dataset, in the profile's
    settings (backbone and recipe; ``full`` is the paper's), seed by seed."""
    s = settings(ctx.profile, ctx.size_override)
    train, test = REAL_SAMPLING[ctx.profile]
    spec = ctx.data_spec(train, {**train, **test})
    weights = ctx.weights_spec()
    return [{"data": spec, "backbone": dict(s["backbone"]), "weights": weights,
             "backbone_train": {**s["backbone_train"], "epochs": s["backbone_epochs"]},
             "head": dict(HEADS[h]), "head_train": {**s["head_train"], "epochs": s["head_epochs"]},
             "seed": seed, "device": ctx.device} for seed in ctx.seeds for h in REAL_HEADS]


def cpu_seconds(configs: list[dict[str, Any]], workers: int) -> float:
    """Estimated one-thread training time of ``configs`` (``cidc/train`` or ``/real``) over
    ``workers`` processes: the backbone's counted MACs (on PyTorch's meta device) x the clips
    stage 1 trains on (once per shared backbone) and stage 2 passes through it for features."""
    import json

    import torch

    from vidattn.engine.real_data import open_real
    from vidattn.experiments.cidc import build_backbone, suite_of
    from vidattn.flops import count_macs
    from vidattn.models.cidc import GAPHead, VideoClassifier
    from vidattn.profiles import estimate_seconds

    macs: dict[str, float] = {}
    sizes: dict[str, int] = {}
    backbones: set[str] = set()
    total = 0.0
    for c in configs:
        if "data" in c:
            key = json.dumps(c["data"], sort_keys=True)
            if key not in sizes:  # every head and seed reads the same annotation files
                sizes[key] = len(open_real(c["data"]).train)
            n, frames, size = sizes[key], c["data"]["train"]["frames"], c["data"]["train"]["size"]
        else:
            suite = suite_of(c)
            n, frames, size = suite.n_train, suite.frames, suite.size
        key = json.dumps([c["backbone"], frames, size], sort_keys=True)
        if key not in macs:
            with torch.device("meta"):
                b = build_backbone(c["backbone"])
                macs[key] = float(count_macs(VideoClassifier(b, GAPHead(b.channels, 2)),
                                             torch.empty(1, 3, frames, size, size)))
        stage1 = json.dumps([key, c.get("data"), c.get("suite_overrides"), c["backbone_train"], c["seed"]],
                            sort_keys=True)
        if stage1 not in backbones:  # every head of a seed shares its backbone
            backbones.add(stage1)
            total += 3 * macs[key] * n * c["backbone_train"]["epochs"]
        if c["head"]["name"] != "gap":
            total += macs[key] * n  # the frozen backbone's features, one forward per clip
    return estimate_seconds(1.0, total / 3, workers)
