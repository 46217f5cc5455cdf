"""The DirecFormer chapter's run configurations per profile (kept apart from the experiment code).

Only configs live here, so the chapter and a batch job build identical configs (and hit
the same records) without this module entering any record's code fingerprint.
"""
from __future__ import annotations

from typing import Any

# (variant, L_ord weight, L_self weight): Table 1's rows as reconstructed in the spec, then Table 2's extra row
TABLE1_ROWS = (("S-S", 0, 0), ("S-C", 0, 0), ("S-C", 1, 0), ("C-S", 0, 0), ("C-S", 1, 0), ("C-S", 1, 1),
               ("C-C", 0, 0), ("C-C", 1, 0), ("C-C", 1, 1))
TABLE2_ROWS = (("S-S", 0, 0), ("S-S", 1, 0), ("C-S", 0, 0), ("C-S", 1, 0), ("C-S", 1, 1), ("C-C", 0, 0),
               ("C-C", 1, 0), ("C-C", 1, 1))
TINY_MODEL = {"patch_size": 8, "dim": 48, "depth": 3, "heads": 4, "mlp_ratio": 2.0, "drop_path": 0.0}
FULL_MODEL = {"patch_size": 16, "dim": 768, "depth": 12, "heads": 12, "mlp_ratio": 4.0, "drop_path": 0.1}
TINY_TRAIN = {"batch_size": 32, "lr": 1e-3, "weight_decay": 0.05, "warmup_epochs": 0.5, "clip_grad": 1.0}
# the paper's recipe (SlowFast SGD defaults of the official config), see the spec's section 3
FULL_TRAIN = {"batch_size": 64, "optimizer": "sgd", "lr": 0.005, "momentum": 0.9, "nesterov": True,
              "weight_decay": 1e-4, "schedule": "step", "milestones": (11, 14), "gamma": 0.1}

PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"size": 24, "n_train": 64, "n_test": 48, "epochs": 1, "model": TINY_MODEL, "train": TINY_TRAIN},
    "small": {"size": 24, "n_train": 1600, "n_test": 500, "epochs": 8, "model": TINY_MODEL, "train": TINY_TRAIN},
    "full": {"size": 224, "n_train": 20000, "n_test": 2000, "epochs": 15, "model": FULL_MODEL, "train": FULL_TRAIN},
}


def run_config(profile: str, suite: str, variant: str, l_ord: float, l_self: float, seed: int, device: str,
               time_embed: bool = True, perm_rule: str = "max") -> dict[str, Any]:
    """Config of one ``direcformer/train`` run."""
    s = PROFILE_SETTINGS[profile]
    return {
        "suite": suite, "suite_overrides": {"size": s["size"], "n_train": s["n_train"], "n_test": s["n_test"]},
        "variant": variant, "time_embed": time_embed, "l_ord": l_ord, "l_self": l_self, "perm_rule": perm_rule,
        "n_perms": 30, "model": dict(s["model"]), "train": {**s["train"], "epochs": s["epochs"]},
        "seed": seed, "device": device,
    }


def chapter_runs(profile: str, seeds: tuple[int, ...], device: str) -> dict[str, list[dict[str, Any]]]:
    """Every run of the chapter, grouped by the table it feeds."""
    rows = dict.fromkeys(TABLE1_ROWS + TABLE2_ROWS)
    return {
        "main": [run_config(profile, "order_arrow", v, o, s, seed, device) for v, o, s in rows for seed in seeds],
        "bag": [run_config(profile, suite, "S-S", 0, 0, seed, device, time_embed=False)
                for suite in ("order_arrow", "order") for seed in seeds],
        "no_arrow": [run_config(profile, "order", v, o, s, seed, device) for v, o, s in (("S-S", 0, 0), ("C-S", 1, 1))
                     for seed in seeds],
        "min_set": [run_config(profile, "order_arrow", "C-S", 1, 1, seed, device, perm_rule="min") for seed in seeds],
    }
