"""Figure helpers shared by the chapters: one style, frame strips with masks and maps."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import matplotlib.text
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import FuncFormatter, NullFormatter
import numpy as np
import seaborn as sns
from scipy.ndimage import binary_erosion

# Width of a cell's output in the book's theme, in CSS pixels (measured in Chromium at a
# 1280-pixel window; the browser test checks it). A wider figure is scaled down to it.
OUTPUT_WIDTH_PX = 660
CSS_DPI = 96
MIN_TEXT_PT = 8.0
FIGURE_DPI = 100  # layout: CSS pixels per inch of a figure as the page shows it
PIXEL_DENSITY = 2  # PNGs are drawn at twice that (200 dpi) and shown at FIGURE_DPI: sharp on any screen


def use_style() -> None:
    """The book's single plotting style (figures drawn at 200 dpi, shown at 100 pixels per inch)."""
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": FIGURE_DPI, "savefig.bbox": "tight", "axes.titlesize": 10})
    set_matplotlib_formats("retina" if PIXEL_DENSITY == 2 else "png")


def plain_log_ticks(ax: plt.Axes, axis: str = "both") -> None:
    """Label a log axis with plain numbers (20, 30, 100) rather than 2×10¹, 3×10¹, 10²."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for name in ("x", "y") if axis == "both" else (axis,):
        scale = getattr(ax, f"get_{name}scale")()
        if scale == "log":
            target = getattr(ax, f"{name}axis")
            target.set_major_formatter(plain)
            target.set_minor_formatter(NullFormatter())


def displayed_text_pt(fig: plt.Figure) -> tuple[float, str]:
    """The smallest text of ``fig`` in points as a reader sees it, and that text.

    The figure is shown at its natural width (``FIGURE_DPI`` pixels per inch of its tight
    bounding box) or scaled down to :data:`OUTPUT_WIDTH_PX`, whichever is narrower.
    """
    renderer = fig.canvas.get_renderer()
    natural_px = fig.get_tightbbox(renderer).width * fig.dpi
    scale = min(1.0, OUTPUT_WIDTH_PX / natural_px)
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    if not texts:
        return float("inf"), ""
    smallest = min(texts, key=lambda t: t.get_fontsize())
    return smallest.get_fontsize() * fig.dpi / CSS_DPI * scale, smallest.get_text()


def show(fig: plt.Figure | None = None) -> None:
    """Show ``fig`` (the current figure by default) after checking that its text is legible:
    no text below :data:`MIN_TEXT_PT` points at the size the book displays it."""
    fig = fig or plt.gcf()
    pt, text = displayed_text_pt(fig)
    if pt < MIN_TEXT_PT:
        width = fig.get_tightbbox(fig.canvas.get_renderer()).width
        raise ValueError(f"figure text {text!r} would display at {pt:.1f} pt (minimum {MIN_TEXT_PT:g}): the "
                         f"figure is {width:.1f} in wide, shown at most {OUTPUT_WIDTH_PX / FIGURE_DPI:.1f} in; "
                         "narrow it or enlarge its text")
    plt.show()


def frame_strip(
    videos: np.ndarray,
    row_labels: Sequence[str],
    masks: np.ndarray | None = None,
    overlay: np.ndarray | None = None,
    max_frames: int = 16,
    frames: Sequence[int] | None = None,
    overlay_label: str = "map (min–max per clip)",
) -> plt.Figure:
    """Clips (N, T, H, W, 3) uint8 as rows of frames.

    ``masks`` (N, T, H, W) are drawn as cyan outlines; ``overlay`` (N, T, h, w) maps are
    shown as a translucent heat map (min-max per clip), each map cell as one flat block
    so a coarse map is not passed off as a fine one. ``frames`` gives the clip's frame
    index of each column (for strips that show every second frame, say). Frames are
    separated by a gap, and an overlay gets a colour bar labelled ``overlay_label``.
    """
    N, T = videos.shape[:2]
    T = min(T, max_frames)
    frames = list(range(T)) if frames is None else list(frames)[:T]
    side = min(0.9, (OUTPUT_WIDTH_PX / FIGURE_DPI - 2.0) / T)  # leave 2 in for the row labels
    fig, axes = plt.subplots(N, T, figsize=(T * side, N * side * 1.05), squeeze=False)
    for i in range(N):
        if overlay is not None:
            o = overlay[i].astype(np.float32)
            o = (o - o.min()) / (np.ptp(o) + 1e-12)
        for t in range(T):
            ax = axes[i, t]
            ax.imshow(videos[i, t], interpolation="nearest")
            H, W = videos.shape[2:4]
            if overlay is not None:
                ax.imshow(o[t], cmap="magma", alpha=0.7, extent=(-0.5, W - 0.5, H - 0.5, -0.5),
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
                ax.set_xlabel(f"t = {frames[t]}" if t == 0 else f"{frames[t]}", fontsize=9)
        axes[i, 0].set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.12, hspace=0.12)
    if overlay is not None:
        fig.colorbar(ScalarMappable(Normalize(0, 1), "magma"), ax=axes, fraction=0.025, pad=0.02,
                     label=overlay_label)
    return fig
