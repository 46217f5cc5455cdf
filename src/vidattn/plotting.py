"""Figure helpers shared by the chapters: one style, frame strips with masks and maps."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from scipy.ndimage import binary_erosion


def use_style() -> None:
    """The book's single plotting style."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "axes.titlesize": 10})


def frame_strip(
    videos: np.ndarray,
    row_labels: Sequence[str],
    masks: np.ndarray | None = None,
    overlay: np.ndarray | None = None,
    max_frames: int = 16,
    frames: Sequence[int] | None = None,
) -> plt.Figure:
    """Clips (N, T, H, W, 3) uint8 as rows of frames.

    ``masks`` (N, T, H, W) are drawn as cyan outlines; ``overlay`` (N, T, h, w) maps are
    shown as a translucent heat map (min-max per clip), each map cell as one flat block
    so a coarse map is not passed off as a fine one. ``frames`` gives the clip's frame
    index of each column (for strips that show every second frame, say).
    """
    N, T = videos.shape[:2]
    T = min(T, max_frames)
    frames = list(range(T)) if frames is None else list(frames)[:T]
    fig, axes = plt.subplots(N, T, figsize=(T * 0.9, N * 0.95), squeeze=False)
    for i in range(N):
        if overlay is not None:
            o = overlay[i].astype(np.float32)
            o = (o - o.min()) / (np.ptp(o) + 1e-12)
        for t in range(T):
            ax = axes[i, t]
            ax.imshow(videos[i, t], interpolation="nearest")
            H, W = videos.shape[2:4]
            if overlay is not None:
                ax.imshow(o[t], cmap="magma", alpha=0.55, extent=(-0.5, W - 0.5, H - 0.5, -0.5),
                          interpolation="nearest", vmin=0, vmax=1)
            if masks is not None:
                m = masks[i, t].astype(bool)
                edge = m & ~binary_erosion(m)
                cyan = [np.zeros_like(edge, float), np.ones_like(edge, float), np.ones_like(edge, float)]
                ax.imshow(np.dstack(cyan + [0.8 * edge.astype(float)]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == N - 1:
                ax.set_xlabel(f"t={frames[t]}", fontsize=8)
        axes[i, 0].set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.03, hspace=0.06)
    return fig
