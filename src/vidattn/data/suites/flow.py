"""Optical flow for the two-stream chapters (spec Sec. 3): estimation, stacks, compensation.

* :func:`estimate_flow`: forward flow between consecutive frames with OpenCV: DIS or
  Farneback (fast enough for whole datasets), or TV-L1 (the paper's [56], about 300x
  slower here: for a subset). Flow is (dx, dy) in pixels per frame.
* :func:`quantise` / :func:`dequantise`: the TSN storage convention, each component
  clipped to +-20 px and mapped to 0-255 (the paper stores flow as grey images).
* :func:`flow_stack`: L consecutive flows at a sampled frame as 2L channels (x0, y0,
  x1, y1, ...), and :func:`flip_flow`: a horizontally flipped stack negates its x parts.
* :func:`compensate`: "warped flow" [28]: fit a homography (RANSAC) to the flow's point
  correspondences and subtract the camera motion it explains.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

METHODS = ("dis", "farneback", "tvl1")
BOUND = 20.0  # px; the TSN/TV-L1 storage bound


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _estimator(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import cv2

    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setPatchSize(4)
        dis.setPatchStride(2)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 7, 3, 5, 1.1, 0)
    if method == "tvl1":
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    raise ValueError(f"unknown flow method {method!r}; known: {METHODS}")


def estimate_flow(video: np.ndarray, method: str = "dis") -> np.ndarray:
    """Forward flow of a (T, H, W, 3) uint8 clip: (T - 1, H, W, 2) float32, (dx, dy) px."""
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"expected a (T, H, W, 3) uint8 clip, got {video.shape} {video.dtype}")
    calc = _estimator(method)
    grey = [_grey(f) for f in video]
    return np.stack([calc(grey[t], grey[t + 1]) for t in range(len(grey) - 1)]).astype(np.float32)


def quantise(flow: np.ndarray) -> np.ndarray:
    """Clip to +-:data:`BOUND` px and map to 0-255 uint8 (127.5 is zero motion)."""
    return np.round((np.clip(flow, -BOUND, BOUND) + BOUND) * (255.0 / (2 * BOUND))).astype(np.uint8)


def dequantise(q: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantise` up to its 0.157-px step: float32 px."""
    return (q.astype(np.float32) * (2 * BOUND / 255.0) - BOUND).astype(np.float32)


def flow_stack(flow: np.ndarray, t: int, length: int) -> np.ndarray:
    """``length`` consecutive flows from frame ``t`` (clamped to the clip) as (2L, H, W): x0, y0, x1, ..."""
    T1 = flow.shape[0]
    idx = np.clip(np.arange(t, t + length), 0, T1 - 1)
    return np.ascontiguousarray(flow[idx].transpose(0, 3, 1, 2).reshape(2 * length, *flow.shape[1:3]))


def flip_flow(stack: np.ndarray) -> np.ndarray:
    """A (2L, H, W) float stack flipped left-right: columns reversed and every x part negated."""
    out = stack[..., ::-1].copy()
    out[0::2] *= -1
    return out


def homography(flow: np.ndarray, step: int = 2) -> np.ndarray:
    """The 3 x 3 homography that best explains one (H, W, 2) flow field (RANSAC, 1-px threshold)."""
    import cv2

    H, W = flow.shape[:2]
    ys, xs = np.mgrid[0:H:step, 0:W:step]
    src = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    dst = src + flow[ys.ravel(), xs.ravel()]
    h, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
    return np.eye(3) if h is None else h


def compensate(flow: np.ndarray) -> np.ndarray:
    """Warped flow: each (H, W, 2) field of a (T - 1, H, W, 2) stack minus its homography's flow."""
    out = np.empty_like(flow)
    H, W = flow.shape[1:3]
    ys, xs = np.mgrid[0:H, 0:W]
    pts = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3).astype(np.float64)
    for t, f in enumerate(flow):
        proj = pts @ homography(f).T
        camera = (proj[:, :2] / proj[:, 2:3] - pts[:, :2]).reshape(H, W, 2)
        out[t] = f - camera
    return out


def endpoint_error(estimate: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean end-point error ||estimate - truth|| in px, over ``where`` (a boolean mask) if given."""
    err = np.linalg.norm(estimate - truth, axis=-1)
    return float(err[where].mean() if where is not None else err.mean())
