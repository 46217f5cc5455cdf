"""Run by tests/test_full_path.py under torchrun (2 gloo processes): both chapters' real-data runs,
configured exactly as the chapters configure them, and a synthetic-suite row (TimeSformer
without the order loss, whose unused order head DDP would refuse)."""
from __future__ import annotations

import sys

from real_fixtures import CIDC_OVERRIDE, DIRECFORMER_OVERRIDE
from vidattn import profiles
from vidattn.experiments import cidc_configs, direcformer_configs
from vidattn.store import run_many

if __name__ == "__main__":
    ucf, vit, r50, out = sys.argv[1:5]
    ctx = profiles.setup("full", 1, "cpu", ucf, out, weights=vit, size_override=DIRECFORMER_OVERRIDE)
    run_many("direcformer/real", direcformer_configs.real_runs(ctx)[:1])
    ctx = profiles.setup("full", 1, "cpu", ucf, out, weights=r50, size_override=CIDC_OVERRIDE)
    run_many("cidc/real", cidc_configs.real_runs(ctx)[1:])  # CIDC (full): both stages under DDP
    synthetic = direcformer_configs.run_config("full", "order", "S-S", 0, 0, 0, "cpu",
                                               override=DIRECFORMER_OVERRIDE)
    run_many("direcformer/train", [synthetic])
