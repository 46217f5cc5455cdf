"""The head-to-head chapter's rows: every mechanism on every suite, at matched cost, one recipe family.

Each mechanism's width is scaled (:func:`matched_widths`) so that its multiply-adds per clip come
as close as the :data:`WIDTH_SCALES` allow to the bag of frames' (within ±25 % where possible;
the chapter reports the ratio beside every result). The recipe family is the SIFA chapter's SGD
recipe; each mechanism's peak learning rate is the one of :data:`PILOT_LRS` with the best mean
top-1 over the suites' validation splits (the last :data:`VALIDATION_SHARE` of the training
clips, held out of training; seed :data:`PILOT_SEED`, which no row of the matrix uses).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from vidattn.core.profiles import RunContext, apply_override
from vidattn.core.registry import Planned
from vidattn.data.validation import validation_size
from vidattn.engine.budget import Work, key
from vidattn.engine.flops import count_macs
from vidattn.papers.head_to_head.mechanisms import MECHANISMS, create_mechanism
from vidattn.papers.head_to_head.suites import FRAMES, SIZE, SUITES

# the SIFA chapter's recipe for its tiny net (SGD + Nesterov, one warm-up epoch, cosine, clipping)
TRAIN = {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4, "warmup_epochs": 1.0,
         "clip_grad": 40.0, "batch_size": 16}
PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"n_train": 32, "n_test": 16, "epochs": 1, "widths": (8, 16, 32)},
    "small": {"n_train": 800, "n_test": 400, "epochs": 12, "widths": (8, 16, 32)},
    "full": {"n_train": 20000, "n_test": 2000, "epochs": 30, "widths": (64, 128, 256)},
}
# The regime pilot (small profile, validation split, seed PILOT_SEED): the first small run, at batch 32
# and 6 epochs, failed every suite's gate on convergence. Candidates (batch, epochs, peak lr), the
# first being that run's, on REGIME_CELLS: each suite's gated row and three that run left unsettled.
# The one with the most converged cells (last fifth < 10 % of the loss's change), then the best mean
# score, became the recipe (REGIME_CHOICE; the chapter asserts the rule still picks it). The rule was
# written after the numbers were seen, and the chapter says so.
REGIME_PILOT: tuple[tuple[int, int, float], ...] = ((32, 6, 0.1), (16, 6, 0.1), (32, 12, 0.1), (16, 12, 0.05))
REGIME_CELLS = (("order", "directed attention"), ("order", "temporal self-attention"), ("events", "CIDC"),
                ("binding", "SIFA"), ("binding", "TSM"), ("glyph", "bag of frames"),
                ("actor", "pyramid attention"), ("actor", "bag of frames"))
REGIME_CHOICE = (16, 12, 0.05)
PILOT_LRS = (0.02, 0.05, 0.1)  # around the SIFA chapter's rate for this trunk (0.05)
SMOKE_LRS = (0.05,)  # the smoke profile runs the pilot at one rate (it exercises the code)
VALIDATION_SHARE = 0.2
PILOT_SEED = 100
WIDTH_SCALES = (0.625, 0.75, 0.875, 1.0)
MATCH = 0.25  # the tolerance on multiply-adds against the bag of frames

OVERRIDE = {"n_train": ("n_train",), "n_test": ("n_test",), "epochs": ("epochs",),
            "batch_size": (), "frames": (), "size": (), "model": ()}


def settings(ctx: RunContext) -> dict[str, Any]:
    """The profile's clip counts, epochs and base widths (``size_override``: clips and epochs)."""
    if set(ctx.size_override) & {"batch_size", "frames", "size", "model"}:
        raise ValueError(f"the head-to-head chapter runs at {SIZE} px and {FRAMES} frames on every suite; "
                         f"size_override may set n_train, n_test and epochs only, got {sorted(ctx.size_override)}")
    return apply_override(PROFILE_SETTINGS[ctx.profile], ctx, OVERRIDE)


@lru_cache(maxsize=None)
def macs_at(mechanism: str, widths: tuple[int, ...]) -> float:
    """Multiply-adds of one clip through ``mechanism`` at ``widths`` (10 classes)."""
    model = create_mechanism(mechanism, 10, FRAMES, SIZE, widths=widths,
                   num_orders=31 if MECHANISMS[mechanism].order_losses else 0)
    return float(count_macs(model, torch.zeros(1, 3, FRAMES, SIZE, SIZE), sampling=True))


def scaled(widths: tuple[int, ...], scale: float) -> tuple[int, ...]:
    """``widths`` times ``scale``, rounded to even numbers (two attention heads) of at least 8 (TSM's fold)."""
    return tuple(max(8, 2 * round(w * scale / 2)) for w in widths)


@lru_cache(maxsize=None)
def matched_widths(mechanism: str, base: tuple[int, ...]) -> tuple[tuple[int, ...], float]:
    """The widths of :data:`WIDTH_SCALES` whose cost is nearest the bag of frames' at ``base``, and
    the ratio of the two costs."""
    target = macs_at("bag of frames", base)
    best = min((scaled(base, s) for s in WIDTH_SCALES), key=lambda w: abs(macs_at(mechanism, w) / target - 1))
    return best, macs_at(mechanism, best) / target


def run_config(ctx: RunContext, mechanism: str, suite: str, seed: int, lr: float,
               validation: bool = False) -> dict[str, Any]:
    """Config of one ``h2h/train`` run."""
    s = settings(ctx)
    widths, _ = matched_widths(mechanism, tuple(s["widths"]))
    held = validation_size(s["n_train"], VALIDATION_SHARE) if validation else 0
    batch = min(TRAIN["batch_size"], s["n_train"] - held)  # a batch never exceeds the clips (smoke)
    config = {"mechanism": mechanism, "suite": suite, "n_train": s["n_train"], "n_test": s["n_test"],
              "widths": list(widths), "train": {**TRAIN, "batch_size": batch, "lr": lr, "epochs": s["epochs"]},
              "seed": seed, "device": ctx.device}
    if validation:
        config["validation"] = held
    return config


def regime_name(batch: int, epochs: int, lr: float) -> str:
    return f"batch {batch}, {epochs} epochs, lr {lr:g}"


def regime_pilot_runs(ctx: RunContext) -> list[Planned]:
    """The regime pilot: every :data:`REGIME_PILOT` candidate on every :data:`REGIME_CELLS` cell, seed
    :data:`PILOT_SEED`, scored on the validation split; row ``"<suite>: <mechanism>, <regime>"``.
    ``smoke`` runs the first cell once per candidate at one epoch (to exercise the code); ``full``
    none (the full profile keeps the small profile's choice)."""
    if ctx.profile == "full":
        return []
    cells = REGIME_CELLS[:1] if ctx.profile == "smoke" else REGIME_CELLS
    runs = []
    for batch, epochs, lr in REGIME_PILOT:
        for suite, m in cells:
            c = run_config(ctx, m, suite, PILOT_SEED, lr, validation=True)
            c["train"] = {**c["train"], "batch_size": min(batch, c["n_train"] - c["validation"]),
                          "epochs": 1 if ctx.profile == "smoke" else epochs}
            runs.append(Planned(f"{row_name(suite, m)}, {regime_name(batch, epochs, lr)}", c))
    return runs


def choose_regime(cells: dict[tuple[int, int, float], list[tuple[float, float]]],
                  converged: float = 0.10) -> tuple[int, int, float]:
    """The regime pilot's rule: the candidate with the most cells whose loss moved less than
    ``converged`` of its whole change in the last fifth, then the best mean score. ``cells``:
    candidate -> [(score, last-fifth change)] per cell."""
    unknown = set(cells) - set(REGIME_PILOT)
    if unknown or not cells:
        raise ValueError(f"unknown or no regime candidates {sorted(unknown)}; known: {list(REGIME_PILOT)}")
    return max(cells, key=lambda r: (sum(c < converged for _, c in cells[r]),
                                     sum(v for v, _ in cells[r]) / max(1, len(cells[r]))))


def pilot_lrs(ctx: RunContext) -> tuple[float, ...]:
    return SMOKE_LRS if ctx.profile == "smoke" else PILOT_LRS


def pilot_runs(ctx: RunContext) -> list[Planned]:
    """The learning-rate pilot: every mechanism at every rate of :func:`pilot_lrs` on every suite,
    seed :data:`PILOT_SEED`, scored on the validation split; row ``"<mechanism>, lr <lr>"``."""
    return [Planned(f"{m}, lr {lr:g}", run_config(ctx, m, suite, PILOT_SEED, lr, validation=True))
            for m in MECHANISMS for lr in pilot_lrs(ctx) for suite in SUITES]


def choose_lrs(scores: dict[tuple[str, float], list[float]]) -> dict[str, float]:
    """Each mechanism's learning rate: the best mean validation top-1 over the suites (``scores``:
    (mechanism, lr) -> top-1 per suite); ties go to the lower rate."""
    out = {}
    for m in MECHANISMS:
        cands = [(sum(v) / len(v), -lr, lr) for (mm, lr), v in scores.items() if mm == m and v]
        if not cands:
            raise ValueError(f"the pilot has no runs of {m!r}")
        out[m] = max(cands)[2]
    return out


# each suite's gate reference (declared before the matrix ran): TSM, the cheapest order-aware baseline,
# except on binding, where TSM either binds or stays at chance and SIFA, the mechanism the suite was built
# for, is the reference
GATE_REFERENCE = {s: "SIFA" if s == "binding" else "TSM" for s in SUITES}
# the cells a claim of the chapter reads (the chapter asserts that its claims read no other)
CLAIM_CELLS = frozenset({
    ("order", "directed attention"), ("order", "temporal self-attention"), ("order", "CIDC"),
    ("events", "CIDC"), ("events", "TSM"), ("events", "SIFA"), ("events", "directed attention"),
    ("binding", "SIFA"), ("binding", "TSM"), ("binding", "directed attention"),
    ("glyph", "pyramid attention"), ("actor", "pyramid attention"), ("actor", "CIDC")})
BAG = "bag of frames"
# Cut for the small profile's 90 minutes: a cell that no claim or gate reads runs the first SPARE_SEEDS
# seeds (None: every seed); the bag of frames, the gate references and the claims' cells run all
SPARE_SEEDS: dict[str, int | None] = {"smoke": None, "small": 3, "full": None}


def full_seed_cell(suite: str, mechanism: str) -> bool:
    """Whether a cell runs every seed: its suite's bag of frames or gate reference, or a claim's cell."""
    return mechanism in (BAG, GATE_REFERENCE[suite]) or (suite, mechanism) in CLAIM_CELLS


def cell_seeds(ctx: RunContext, suite: str, mechanism: str) -> tuple[int, ...]:
    """The seeds a cell runs: every seed of the chapter, or the first :data:`SPARE_SEEDS` for a cell
    that no claim or gate reads."""
    spare = SPARE_SEEDS[ctx.profile]
    return tuple(ctx.seeds) if spare is None or full_seed_cell(suite, mechanism) else tuple(ctx.seeds[:spare])


def chapter_runs(ctx: RunContext, lrs: dict[str, float]) -> list[Planned]:
    """The matrix: every mechanism on every suite at its pilot-chosen rate, seeds inside
    (:func:`cell_seeds`); row ``"<suite>: <mechanism>"``."""
    return [Planned(row_name(suite, m), run_config(ctx, m, suite, seed, lrs[m]))
            for suite in SUITES for m in MECHANISMS for seed in cell_seeds(ctx, suite, m)]


def row_name(suite: str, mechanism: str) -> str:
    return f"{suite}: {mechanism}"


def work(c: dict[str, Any]) -> list[Work]:
    """The training work of an ``h2h/train`` config: clips x epochs (twice for the order losses' pass)."""
    n = c["n_train"] - c.get("validation", 0)
    passes = 2 if MECHANISMS[c["mechanism"]].order_losses else 1

    def build():
        return (create_mechanism(c["mechanism"], 10, FRAMES, SIZE, widths=tuple(c["widths"])), (1, 3, FRAMES, SIZE, SIZE))

    return [Work(key(c["mechanism"], FRAMES, SIZE, 10, {"widths": c["widths"]}), build,
                 n * c["train"]["epochs"] * passes)]
