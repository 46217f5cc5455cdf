"""Trained by tests/test_engine.py: under torchrun (2 gloo processes) and in one process."""
from __future__ import annotations

import sys

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from vidattn.core.distributed import init_from_env
from vidattn.engine.train import TrainConfig, fit, seed_everything


class Toy(Dataset):
    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 3, 4, 8, 8, generator=g)
        self.y = torch.randint(0, 5, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": self.x[i], "label": self.y[i], "index": torch.tensor(i)}


def train(cfg: TrainConfig) -> nn.Module:
    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 32), nn.GELU(), nn.Linear(32, 5))
    fit(model, Toy(), cfg)
    return model


CFG = TrainConfig(epochs=3, batch_size=8, optimizer="sgd", lr=0.05, schedule="cosine", warmup_epochs=1,
                  weight_decay=1e-4, clip_grad=5.0)

if __name__ == "__main__":
    info, _ = init_from_env("cpu")
    model = train(CFG)
    if info.rank == 0:
        torch.save(model.state_dict(), sys.argv[1])
