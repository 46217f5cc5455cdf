"""A tiny real-layout dataset made from a synthetic suite: what the real-data paths run on
without a real dataset (the behaviour probes of the real-data experiments, the tests)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vidattn.data.real import export_ucf101
from vidattn.data.suites.order import generate_split, suite_config


def ucf101_fixture(root: Path, n: int = 40, frames: int = 16) -> Path:
    """``n`` clips of the ``order`` suite, those of 4 classes kept, in the UCF101 layout as MPEG-4
    ``.avi`` files 40 pixels wide by 32 high (so the three test crops differ): three of every four
    for training, the fourth for testing."""
    cfg = suite_config("order", frames=frames, size=32, n_train=n, n_test=4)
    clips = generate_split(cfg, "train", n)
    keep = np.isin(clips.labels, [0, 1, 2, 3])
    videos = np.pad(clips.videos[keep], ((0, 0), (0, 0), (0, 0), (4, 4), (0, 0)), mode="edge")
    labels = clips.labels[keep]
    export_ucf101(videos, labels, [c.name for c in cfg.classes], root, train=np.arange(len(labels)) % 4 != 3)
    return root
