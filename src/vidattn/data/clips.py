"""A suite split in memory (:class:`SuiteArrays`) and the PyTorch dataset over it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass
class SuiteArrays:
    """A whole split in memory: uint8 videos (N,T,H,W,3), bool masks (N,T,H,W), labels."""

    videos: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    meta: list[dict[str, Any]]
    config: Any  # the suite config dataclass (order, motion, glyph, synthact)
    seconds: float = 0.0  # generation time (0 when read from the cache)

    def __len__(self) -> int:
        return len(self.labels)


ClipParts = tuple[np.ndarray, np.ndarray, int, dict[str, Any]]  # video, mask, label, meta


class ClipDataset(Dataset):
    """Clips as float tensors (C, T, H, W) in [-0.5, 0.5], with label and actor mask."""

    def __init__(self, arrays: SuiteArrays):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        video = torch.from_numpy(self.arrays.videos[i]).permute(3, 0, 1, 2).float().div_(255.0).sub_(0.5)
        return {
            "video": video,
            "label": torch.tensor(int(self.arrays.labels[i])),
            "mask": torch.from_numpy(self.arrays.masks[i]),
            "index": torch.tensor(i),
        }
