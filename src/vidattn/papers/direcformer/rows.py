"""The DirecFormer chapter's rows: named run configurations per profile (:mod:`vidattn.papers`).

A *regime* fixes everything but the variant and the seed: the suite's overrides (frame
size, background, objects, clip counts), the model's size and the recipe. The small
profile's regime was chosen by the pilot grid below, on the reference model alone (S-S
with its time embedding on ``order``), before any variant was trained.
"""
from __future__ import annotations

from typing import Any

from vidattn.core.profiles import RunContext, apply_override
from vidattn.core.registry import Planned
from vidattn.data.validation import validation_size
from vidattn.data.real import detect_layout
from vidattn.engine.budget import Work, key, train_shape

# (variant, L_ord weight, L_self weight): Table 1's rows as reconstructed in the spec, then Table 2's extra row
TABLE1_ROWS = (("S-S", 0, 0), ("S-C", 0, 0), ("S-C", 1, 0), ("C-S", 0, 0), ("C-S", 1, 0), ("C-S", 1, 1),
               ("C-C", 0, 0), ("C-C", 1, 0), ("C-C", 1, 1))
TABLE2_ROWS = (("S-S", 0, 0), ("S-S", 1, 0), ("C-S", 0, 0), ("C-S", 1, 0), ("C-S", 1, 1), ("C-C", 0, 0),
               ("C-C", 1, 0), ("C-C", 1, 1))
# the rows trained on order_arrow too, for OrderAcc with the arrow cue (section 3 of the chapter)
ARROW_ROWS = (("C-S", 0, 0), ("C-S", 1, 1))
# rows the small profile leaves out to fit its 90 minutes at the recipe pilot's 30 epochs: first the
# Table 1-2 rows no claim rests on, then (rows before seeds; their claims say "not run here") the
# order_arrow rows and the min-set rule, groups named in CUT_GROUPS
CUT_ROWS: dict[str, tuple[tuple[str, int, int], ...]] = {"small": (("S-C", 1, 0), ("C-C", 1, 0), ("C-C", 0, 0))}
CUT_GROUPS: dict[str, tuple[str, ...]] = {"small": ("order_arrow rows", "min-set rule")}
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
FIRST_CHOICE = "24², P=8, flat, glyphs, time embedding std 0.2"  # the first grid's choice (on the test split)
FULL_REGIME = {"suite": {"size": 224, "n_train": 20000, "n_test": 2000}, "model": FULL_MODEL,
               "train": {**FULL_TRAIN, "epochs": 15}}


# where each size_override key lands in a regime (:func:`vidattn.core.profiles.apply_override`)
OVERRIDE = {"size": ("suite.size",), "n_train": ("suite.n_train",), "n_test": ("suite.n_test",),
            "model": ("model",), "epochs": ("train.epochs",), "batch_size": ("train.batch_size",), "frames": ()}


def settings(ctx: RunContext) -> dict[str, Any]:
    """The profile's regime with the chapter's ``size_override`` (``frames``: real data only)."""
    return apply_override(PROFILE_REGIMES[ctx.profile], ctx, OVERRIDE)


def model_name(variant: str, l_ord: float, l_self: float) -> str:
    """A model and its losses, as the tables name them: "DirecFormer C-S + L_ord + L_self"."""
    name = f"{'TimeSformer' if variant == 'S-S' else 'DirecFormer'} {variant}"
    return name + (" + L_ord" if l_ord else "") + (" + L_self" if l_self else "")


def row_name(suite: str, variant: str, l_ord: float, l_self: float, time_embed: bool = True,
             perm_rule: str = "max") -> str:
    """The name of a row: its suite, model and losses (and the options that differ from the default)."""
    name = f"{suite}: {model_name(variant, l_ord, l_self)}"
    return name + ("" if time_embed else ", no time embedding") + ("" if perm_rule == "max" else f", {perm_rule} set")


def run_config(ctx: RunContext, suite: str, variant: str, l_ord: float, l_self: float, seed: int,
               time_embed: bool = True, perm_rule: str = "max", regime: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Config of one ``direcformer/train`` run (in the chapter's regime unless ``regime`` is given)."""
    r = regime or settings(ctx)
    return {
        "suite": suite, "suite_overrides": dict(r["suite"]),
        "variant": variant, "time_embed": time_embed, "l_ord": l_ord, "l_self": l_self, "perm_rule": perm_rule,
        "n_perms": 30, "model": dict(r["model"]), "train": dict(r["train"]),
        "seed": seed, "device": ctx.device,
    }


def planned(ctx: RunContext, suite: str, variant: str, l_ord: float, l_self: float, seed: int, **kw: Any
            ) -> Planned:
    """One named ``direcformer/train`` run (:func:`row_name`, :func:`run_config`)."""
    return Planned(row_name(suite, variant, l_ord, l_self, **kw), run_config(ctx, suite, variant, l_ord, l_self,
                                                                            seed, **kw))


def pilot_runs(ctx: RunContext) -> list[Planned]:
    """The pilot grid's runs, in the order of :data:`PILOT` (one seed), named by their regime.

    The pilot chose the small profile's regime; ``smoke`` runs it shrunk to the smoke
    profile's clip counts and one epoch (to exercise the code), ``full`` not at all.
    """
    if ctx.profile == "full":
        return []
    shrink = ctx.profile == "smoke"
    runs = []
    for name, r in PILOT.items():
        if shrink:
            r = {"suite": {**r["suite"], **{k: SMOKE_REGIME["suite"][k] for k in ("n_train", "n_test")}},
                 "model": r["model"], "train": {**r["train"], "epochs": 1}}
        runs.append(Planned(name, run_config(ctx, "order", "S-S", 0, 0, 0, regime=r)))
    for name, seed in PILOT_REPEATS:
        runs.append(Planned(name, {**runs[list(PILOT).index(name)].config, "seed": seed}))
    return runs


# The recipe pilot (issue 26). The first grid scored its regimes on the test split, and at 8 seeds its
# choice failed the reference's convergence gate on one seed (seed 5: 16 % of the loss's descent in the
# last fifth of training). This pilot varies the recipe alone (peak learning rate, epochs) of the first
# grid's choice, on the reference (S-S with its time embedding on ``order``), with seeds the chapter's
# rows never use, trained without and scored on the last VALIDATION_SHARE of the training clips. The
# rule, declared before it ran: the cheapest candidate (fewest epochs, then the first listed) whose every
# seed meets the gate's top-1 and converges with margin, its last fifth under RECIPE_MARGIN of the
# loss's whole change (half the gate's 10 %). The 20-epoch candidate was added once the higher rates
# had failed on their first seeds, before any 30-epoch run had finished. A first build also ran seed 103;
# it was cut to fit the chapter's 90 minutes (the rule picks the same candidate on the three seeds left).
RECIPE_PILOT: dict[str, tuple[float, int]] = {
    "lr 0.001, 15 epochs (the first grid's)": (1e-3, 15), "lr 0.002, 15 epochs": (2e-3, 15),
    "lr 0.003, 15 epochs": (3e-3, 15), "lr 0.001, 20 epochs": (1e-3, 20), "lr 0.001, 30 epochs": (1e-3, 30)}
RECIPE_SEEDS = (100, 101, 102)
RECIPE_MARGIN = 0.05
VALIDATION_SHARE = 0.2


def recipe_pilot_runs(ctx: RunContext) -> list[Planned]:
    """The recipe pilot's runs, candidate by candidate, seeds inside; ``smoke`` runs each candidate
    once at its clip counts and one epoch (to exercise the code), ``full`` not at all."""
    if ctx.profile == "full":
        return []
    smoke = ctx.profile == "smoke"
    base = SMOKE_REGIME if smoke else PILOT[FIRST_CHOICE]
    runs = []
    for name, (lr, epochs) in RECIPE_PILOT.items():
        r = {**base, "train": {**base["train"], "lr": lr, "epochs": 1 if smoke else epochs}}
        n = validation_size(r["suite"]["n_train"], VALIDATION_SHARE)
        for seed in RECIPE_SEEDS[:1] if smoke else RECIPE_SEEDS:
            runs.append(Planned(name, {**run_config(ctx, "order", "S-S", 0, 0, seed, regime=r), "validation": n}))
    return runs


def choose_recipe(results: dict[str, list[tuple[float, float]]], top1: float = 80.0,
                  margin: float = RECIPE_MARGIN) -> str | None:
    """The recipe pilot's rule: the cheapest candidate (fewest epochs, then the first listed) whose
    every seed reaches ``top1`` on the validation split and whose loss moved less than ``margin`` of
    its whole change in the last fifth. ``results``: candidate -> [(top-1, last-fifth change)] per
    seed. None if no candidate qualifies."""
    unknown = set(results) - set(RECIPE_PILOT)
    if unknown:
        raise ValueError(f"unknown recipe candidate(s) {sorted(unknown)}; known: {list(RECIPE_PILOT)}")
    ok = [name for name in RECIPE_PILOT if name in results and results[name]
          and all(t >= top1 and change < margin for t, change in results[name])]
    return min(ok, key=lambda name: RECIPE_PILOT[name][1]) if ok else None


# what recipe_pilot_runs chose by choose_recipe (the chapter asserts it). The rows train on the recipe
# pilot's training clips exactly (clips are generated by index): the first grid's clips less the validation
# clips
RECIPE_CHOICE = "lr 0.001, 30 epochs"
_FIRST = PILOT[FIRST_CHOICE]
SMALL_REGIME = {
    "suite": {**_FIRST["suite"], "n_train": _FIRST["suite"]["n_train"] - validation_size(_FIRST["suite"]["n_train"], VALIDATION_SHARE)},
    "model": _FIRST["model"],
    "train": {**_FIRST["train"], "lr": RECIPE_PILOT[RECIPE_CHOICE][0], "epochs": RECIPE_PILOT[RECIPE_CHOICE][1]},
}
PROFILE_REGIMES: dict[str, dict[str, Any]] = {"smoke": SMOKE_REGIME, "small": SMALL_REGIME, "full": FULL_REGIME}


def chapter_runs(ctx: RunContext) -> list[Planned]:
    """Every ``direcformer/train`` run of the chapter: Tables 1-2's rows, the bag of frames (no time
    embedding), the rows on ``order_arrow`` and the min-set rule (less :data:`CUT_ROWS` and
    :data:`CUT_GROUPS`), seeds inside each row."""
    cut, groups = CUT_ROWS.get(ctx.profile, ()), CUT_GROUPS.get(ctx.profile, ())
    rows = [k for k in dict.fromkeys(TABLE1_ROWS + TABLE2_ROWS) if k not in cut]
    seeds = ctx.seeds
    arrow = [] if "order_arrow rows" in groups else [
        planned(ctx, "order_arrow", v, lo, ls, seed) for v, lo, ls in ARROW_ROWS for seed in seeds[:ARROW_SEEDS]]
    min_set = [] if "min-set rule" in groups else [
        planned(ctx, "order", "C-S", 1, 1, seed, perm_rule="min") for seed in seeds]
    return ([planned(ctx, "order", v, lo, ls, seed) for v, lo, ls in rows for seed in seeds]
            + [planned(ctx, "order", "S-S", 0, 0, seed, time_embed=False) for seed in seeds]
            + arrow + min_set)


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


def real_runs(ctx: RunContext) -> list[Planned]:
    """The ``direcformer/real`` runs of :data:`REAL_ROWS` on the chapter's dataset, in the
    profile's regime (model, recipe and frame size; ``full`` is the paper's), seed by seed;
    none without data."""
    if ctx.data_root is None:
        return []
    r = settings(ctx)
    spec = ctx.data_spec(*real_sampling(ctx.dataset or detect_layout(ctx.data_root), r["suite"]["size"]))
    weights = ctx.weights_spec()
    model = {**r["model"], **(FROM_IMAGENET if weights else {})}
    return [Planned(row_name("real", v, lo, ls),
                    {"data": spec, "variant": v, "time_embed": True, "l_ord": lo, "l_self": ls, "perm_rule": "max",
                     "n_perms": 30, "model": model, "train": dict(r["train"]), "weights": weights, "seed": seed,
                     "device": ctx.device}) for v, lo, ls in REAL_ROWS for seed in ctx.seeds]


def work(c: dict[str, Any]) -> list[Work]:
    """The training work of a ``direcformer/train`` or ``/real`` config: clips x epochs through the
    model, twice per step when an order or self-supervised loss runs a permuted pass."""
    from vidattn.data.suites.order import suite_config
    from vidattn.papers.direcformer.model import DirecFormer, DirecFormerConfig

    suite = None if "data" in c else suite_config(c["suite"], **c["suite_overrides"])
    n, frames, size, classes = train_shape(c, suite)

    def build():
        return (DirecFormer(DirecFormerConfig(num_classes=classes, variant=c["variant"], img_size=size,
                                              frames=frames, num_orders=0, **c["model"])),
                (1, 3, frames, size, size))

    passes = 2 if (c["l_ord"] or c["l_self"]) else 1
    return [Work(key(c["variant"], frames, size, classes, c["model"]), build, n * c["train"]["epochs"] * passes)]
