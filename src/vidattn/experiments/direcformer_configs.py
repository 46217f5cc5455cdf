"""The DirecFormer chapter's run configurations per profile (kept apart from the experiment code).

Only configs live here, so the chapter and a batch job build identical configs (and hit
the same records) without this module entering any record's code fingerprint.

A *regime* fixes everything but the variant and the seed: the suite's overrides (frame
size, background, objects, clip counts), the model's size and the recipe. The small
profile's regime was chosen by the pilot grid below, on the reference model alone (S-S
with its time embedding on ``order``), before any variant was trained.
"""
from __future__ import annotations

from typing import Any

from vidattn.data.real import detect_layout
from vidattn.profiles import RunContext

# (variant, L_ord weight, L_self weight): Table 1's rows as reconstructed in the spec, then Table 2's extra row
TABLE1_ROWS = (("S-S", 0, 0), ("S-C", 0, 0), ("S-C", 1, 0), ("C-S", 0, 0), ("C-S", 1, 0), ("C-S", 1, 1),
               ("C-C", 0, 0), ("C-C", 1, 0), ("C-C", 1, 1))
TABLE2_ROWS = (("S-S", 0, 0), ("S-S", 1, 0), ("C-S", 0, 0), ("C-S", 1, 0), ("C-S", 1, 1), ("C-C", 0, 0),
               ("C-C", 1, 0), ("C-C", 1, 1))
# the rows trained on order_arrow too, for OrderAcc with the arrow cue (section 3 of the chapter)
ARROW_ROWS = (("C-S", 0, 0), ("C-S", 1, 1))
# rows the small profile leaves out to fit its budget (no claim of the ledger rests on them)
CUT_ROWS: dict[str, tuple[tuple[str, int, int], ...]] = {"small": (("S-C", 1, 0), ("C-C", 1, 0))}
# seeds of the order_arrow rows (fewer than the chapter's: they feed one claim)
ARROW_SEEDS = 3

TINY_TRAIN = {"batch_size": 32, "lr": 1e-3, "weight_decay": 0.05, "warmup_epochs": 0.5, "clip_grad": 1.0}
FULL_MODEL = {"patch_size": 16, "dim": 768, "depth": 12, "heads": 12, "mlp_ratio": 4.0, "drop_path": 0.1}
# the paper's recipe (SlowFast SGD defaults of the official config), see the spec's section 3
FULL_TRAIN = {"batch_size": 64, "optimizer": "sgd", "lr": 0.005, "momentum": 0.9, "nesterov": True,
              "weight_decay": 1e-4, "schedule": "step", "milestones": (11, 14), "gamma": 0.1}


def regime(size: int, patch: int, dim: int, depth: int, n_train: int, epochs: int, lr: float = 1e-3,
           background: str = "texture", objects: str = "shape", time_embed_std: float = 0.0, n_test: int = 500
           ) -> dict[str, Any]:
    """A scaled-down regime: suite overrides, a tiny model and the AdamW recipe."""
    return {
        "suite": {"size": size, "n_train": n_train, "n_test": n_test, "background": background, "objects": objects},
        "model": {"patch_size": patch, "dim": dim, "depth": depth, "heads": 4, "mlp_ratio": 2.0, "drop_path": 0.0,
                  "time_embed_std": time_embed_std},
        "train": {**TINY_TRAIN, "lr": lr, "epochs": epochs},
    }


# The pilot grid (S-S with time embedding on ``order``, seed 0 unless repeated below): what
# was tried to find a regime in which the reference model learns. Row 0 is the regime of
# the first edition.
FLAT_GLYPHS = {"background": "flat", "objects": "glyph"}
PILOT: dict[str, dict[str, Any]] = {
    "first edition: 24², P=8, texture, shapes": regime(24, 8, 48, 3, 1600, 8),
    "16², P=4, flat, glyphs": regime(16, 4, 64, 3, 3000, 12, **FLAT_GLYPHS),
    "24², P=8, flat, glyphs": regime(24, 8, 48, 3, 4000, 15, **FLAT_GLYPHS),
    "24², P=8, flat, glyphs, time embedding std 0.02": regime(24, 8, 48, 3, 4000, 15, time_embed_std=0.02,
                                                              **FLAT_GLYPHS),
    "24², P=8, flat, glyphs, time embedding std 0.2": regime(24, 8, 48, 3, 4000, 15, time_embed_std=0.2,
                                                             **FLAT_GLYPHS),
    "24², P=8, flat, glyphs, time embedding std 0.2, 3000 clips x 10": regime(
        24, 8, 48, 3, 3000, 10, time_embed_std=0.2, **FLAT_GLYPHS),
}
# further seeds of pilot rows: how reliable is what one seed showed?
PILOT_REPEATS = (("24², P=8, flat, glyphs", 1), ("24², P=8, flat, glyphs, time embedding std 0.02", 1),
                 ("24², P=8, flat, glyphs, time embedding std 0.2", 1),
                 ("24², P=8, flat, glyphs, time embedding std 0.2, 3000 clips x 10", 1))
SMOKE_REGIME = regime(24, 8, 48, 3, 64, 1, n_test=48)
SMALL_REGIME = PILOT["24², P=8, flat, glyphs, time embedding std 0.2"]
FULL_REGIME = {"suite": {"size": 224, "n_train": 20000, "n_test": 2000}, "model": FULL_MODEL,
               "train": {**FULL_TRAIN, "epochs": 15}}
PROFILE_REGIMES: dict[str, dict[str, Any]] = {"smoke": SMOKE_REGIME, "small": SMALL_REGIME, "full": FULL_REGIME}


def shrunk(regime: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A regime with the chapter's ``size_override`` applied (model and data size only);
    the regime itself when there is none, so configs and record keys stay as they were."""
    if not override:
        return regime
    suite = {**regime["suite"], **{k: override[k] for k in ("size", "n_train", "n_test") if k in override}}
    train = {**regime["train"], **{k: override[k] for k in ("epochs", "batch_size") if k in override}}
    return {"suite": suite, "model": {**regime["model"], **override.get("model", {})}, "train": train}


def run_config(profile: str, suite: str, variant: str, l_ord: float, l_self: float, seed: int, device: str,
               time_embed: bool = True, perm_rule: str = "max", regime: dict[str, Any] | None = None,
               override: dict[str, Any] | None = None) -> dict[str, Any]:
    """Config of one ``direcformer/train`` run (in the profile's regime unless ``regime`` is given)."""
    r = shrunk(regime or PROFILE_REGIMES[profile], override)
    return {
        "suite": suite, "suite_overrides": dict(r["suite"]),
        "variant": variant, "time_embed": time_embed, "l_ord": l_ord, "l_self": l_self, "perm_rule": perm_rule,
        "n_perms": 30, "model": dict(r["model"]), "train": dict(r["train"]),
        "seed": seed, "device": device,
    }


def pilot_runs(profile: str, device: str) -> list[dict[str, Any]]:
    """The pilot grid's runs, in the order of :data:`PILOT` (one seed).

    The pilot chose the small profile's regime; ``smoke`` runs it shrunk to the smoke
    profile's clip counts and one epoch (to exercise the code), ``full`` not at all.
    """
    if profile == "full":
        return []
    shrink = profile == "smoke"
    runs = []
    for r in PILOT.values():
        if shrink:
            r = {"suite": {**r["suite"], **{k: SMOKE_REGIME["suite"][k] for k in ("n_train", "n_test")}},
                 "model": r["model"], "train": {**r["train"], "epochs": 1}}
        runs.append(run_config(profile, "order", "S-S", 0, 0, 0, device, regime=r))
    for name, seed in PILOT_REPEATS:
        runs.append({**runs[list(PILOT).index(name)], "seed": seed})
    return runs


def chapter_runs(profile: str, seeds: tuple[int, ...], device: str, override: dict[str, Any] | None = None
                 ) -> dict[str, list[dict[str, Any]]]:
    """Every run of the chapter, grouped by the table it feeds."""
    cut = CUT_ROWS.get(profile, ())
    rows = [k for k in dict.fromkeys(TABLE1_ROWS + TABLE2_ROWS) if k not in cut]
    o = override
    return {
        "main": [run_config(profile, "order", v, lo, ls, seed, device, override=o) for v, lo, ls in rows
                 for seed in seeds],
        "bag": [run_config(profile, "order", "S-S", 0, 0, seed, device, time_embed=False, override=o)
                for seed in seeds],
        "arrow": [run_config(profile, "order_arrow", v, lo, ls, seed, device, override=o) for v, lo, ls in ARROW_ROWS
                  for seed in seeds[:ARROW_SEEDS]],
        "min_set": [run_config(profile, "order", "C-S", 1, 1, seed, device, perm_rule="min", override=o)
                    for seed in seeds],
    }


# ---------------------------------------------------------------- real data

# the rows trained on a real dataset: TimeSformer, directed attention alone, DirecFormer
REAL_ROWS = (("S-S", 0, 0), ("C-S", 0, 0), ("C-S", 1, 1))
# a time embedding drawn at random only helps from scratch; from ImageNet it starts at zero, as the paper
FROM_IMAGENET = {"time_embed_std": 0.0}


def real_sampling(dataset: str, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The paper's sampling (spec, Sec. 3): 8 frames at stride 32 on Kinetics, 8 TSN segments
    elsewhere; at test 1 clip x 3 crops along the longer side."""
    mode = {"mode": "dense", "stride": 32} if dataset.startswith("kinetics") else {"mode": "tsn"}
    train = {**mode, "frames": 8, "size": size}
    return train, {**train, "clips": 1, "three_crop": True}


def real_runs(ctx: RunContext) -> list[dict[str, Any]]:
    """The ``direcformer/real`` runs of :data:`REAL_ROWS` on the chapter's dataset, in the
    profile's regime (model, recipe and frame size; ``full`` is the paper's), seed by seed."""
    r = shrunk(PROFILE_REGIMES[ctx.profile], ctx.size_override)
    spec = ctx.data_spec(*real_sampling(ctx.dataset or detect_layout(ctx.data_root), r["suite"]["size"]))
    weights = ctx.weights_spec()
    model = {**r["model"], **(FROM_IMAGENET if weights else {})}
    return [{"data": spec, "variant": v, "time_embed": True, "l_ord": lo, "l_self": ls, "perm_rule": "max",
             "n_perms": 30, "model": model, "train": dict(r["train"]), "weights": weights, "seed": seed,
             "device": ctx.device} for v, lo, ls in REAL_ROWS for seed in ctx.seeds]


def cpu_seconds(configs: list[dict[str, Any]], workers: int) -> float:
    """Estimated one-thread training time of ``configs`` (``direcformer/train`` or ``/real``)
    spread over ``workers`` processes: each model's counted MACs (on PyTorch's meta device,
    so no memory is used) x the clips its training passes through it."""
    import json

    import torch

    from vidattn.data.suites import suite_config
    from vidattn.engine.real_data import open_real
    from vidattn.flops import count_macs
    from vidattn.models.direcformer import DirecFormer, DirecFormerConfig
    from vidattn.profiles import estimate_seconds

    macs: dict[str, float] = {}
    opened: dict[str, Any] = {}
    total = 0.0
    for c in configs:
        if "data" in c:
            key = json.dumps(c["data"], sort_keys=True)
            if key not in opened:  # every row and seed reads the same annotation files
                opened[key] = open_real(c["data"])
            data = opened[key]
            n, frames, size, classes = len(data.train), c["data"]["train"]["frames"], c["data"]["train"]["size"], \
                len(data.classes)
        else:
            suite = suite_config(c["suite"], **c["suite_overrides"])
            n, frames, size, classes = suite.n_train, suite.frames, suite.size, suite.num_classes
        key = json.dumps([c["variant"], frames, size, classes, c["model"]], sort_keys=True)
        if key not in macs:
            with torch.device("meta"):
                model = DirecFormer(DirecFormerConfig(num_classes=classes, variant=c["variant"], img_size=size,
                                                      frames=frames, num_orders=0, **c["model"]))
                macs[key] = float(count_macs(model, torch.empty(1, 3, frames, size, size)))
        passes = 2 if (c["l_ord"] or c["l_self"]) else 1
        total += macs[key] * n * c["train"]["epochs"] * passes
    return estimate_seconds(1.0, total, workers)
