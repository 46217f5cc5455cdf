"""Fixture datasets and checkpoints in the real layouts, written the way the real ones are.

* :func:`~vidattn.data.fixtures.ucf101_fixture`: synthetic ``order`` clips exported to the
  UCF101 layout as MPEG-4 ``.avi`` files, 40 pixels wide by 32 high so the three test crops differ.
* :func:`vit_checkpoint`: a timm ``VisionTransformer`` state dict (the layout of the
  ImageNet ViT-B/16 files), at a tiny width.
* :func:`resnet50_checkpoint`: a torchvision ``resnet50`` state dict (random weights,
  real layout and shapes).
"""
from __future__ import annotations

from pathlib import Path

import torch

from vidattn.data.fixtures import ucf101_fixture  # noqa: F401  (the tests' dataset)

# what the chapters' full-path tests shrink: model and data size only
DIRECFORMER_OVERRIDE = {"frames": 8, "size": 32, "model": {"dim": 32, "depth": 2, "heads": 2},
                        "epochs": 1, "batch_size": 4, "n_train": 32, "n_test": 16}
# I3D-ResNet-50 trained from scratch with the paper's SGD at a fixture's batch of 4 diverges within a
# few steps; one step per run (8 clips, batch 8) exercises every line without that. 16 real frames
# leave res3-res5 two steps long.
CIDC_OVERRIDE = {"frames": 16, "size": 32, "epochs": 1, "batch_size": 8, "n_train": 8, "n_test": 8}
# SIFA: the released SIFA-Net needs a multiple of 8 frames; the synthetic grid shrinks with it
SIFA_OVERRIDE = {"frames": 8, "size": 32, "epochs": 1, "batch_size": 4, "n_train": 8, "n_test": 8}
SPATIAL_OVERRIDE = {"frames": 8, "size": 48, "epochs": 1, "batch_size": 4, "n_train": 8, "n_test": 8}
# the pyramid chapter: ResNet-50 (its fixture checkpoint) for IRv2, 32 px, 8 test frames (training keeps K = 3)
PYRAMID_OVERRIDE = {"model": {"backbone": "resnet50"}, "frames": 8, "size": 32, "epochs": 1, "batch_size": 4, "n_train": 20,
                    "n_test": 10}
DATA_OVERRIDE = {"frames": 8, "size": 32, "epochs": 1, "n_train": 32, "n_test": 16}


def vit_checkpoint(path: Path, dim: int = 32, depth: int = 2, heads: int = 2, patch: int = 16,
                   img: int = 32) -> Path:
    """A timm ViT's state dict with its ImageNet head, saved as the released files are."""
    from timm.models.vision_transformer import VisionTransformer

    vit = VisionTransformer(img_size=img, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads,
                            num_classes=1000)
    torch.save(vit.state_dict(), path)
    return path


def resnet50_checkpoint(path: Path) -> Path:
    """torchvision's ResNet-50 state dict (random weights: only the layout matters here)."""
    from torchvision.models import resnet50

    torch.save(resnet50().state_dict(), path)
    return path
