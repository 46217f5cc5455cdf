"""Run by tests/test_full_path.py under torchrun (2 gloo processes): both chapters' real-data runs,
configured exactly as the chapters configure them, and a synthetic-suite row (TimeSformer
without the order loss, whose unused order head DDP would refuse)."""
from __future__ import annotations

import sys

from real_fixtures import CIDC_OVERRIDE, DIRECFORMER_OVERRIDE

import vidattn.catalog  # noqa: F401  (registers every experiment)
from vidattn.core import profiles
from vidattn.core.store import run_many
from vidattn.papers.cidc import rows as cidc_rows
from vidattn.papers.direcformer import rows as direcformer_rows

if __name__ == "__main__":
    ucf, vit, r50, out = sys.argv[1:5]
    ctx = profiles.setup("full", 1, "cpu", ucf, out, weights=vit, size_override=DIRECFORMER_OVERRIDE)
    run_many("direcformer/real", direcformer_rows.real_runs(ctx)[:1])
    ctx = profiles.setup("full", 1, "cpu", ucf, out, weights=r50, size_override=CIDC_OVERRIDE)
    run_many("cidc/real", cidc_rows.real_runs(ctx)[1:])  # CIDC (full): both stages under DDP
    synthetic = direcformer_rows.run_config(profiles.context("full", size_override=DIRECFORMER_OVERRIDE),
                                               "order", "S-S", 0, 0, 0)
    run_many("direcformer/train", [synthetic])
