"""Rendering primitives for the procedural video suites.

Everything here is plain NumPy on float32 canvases in ``[0, 1]`` so that the same
seed gives byte-identical uint8 clips on any machine (no OpenCV, no threading).
Sprites are alpha maps in ``[0, 1]``; they are placed on the canvas by an inverse
affine map (translation, scale along two axes, rotation) with bilinear sampling.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

SPRITE_SIZE = 16  # every sprite is defined on a 16x16 grid before transformation


def _disc(n: int) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n] + 0.5
    r = np.hypot(x - n / 2, y - n / 2)
    return (r <= n / 2 - 0.5).astype(np.float32)


def _ring(n: int) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n] + 0.5
    r = np.hypot(x - n / 2, y - n / 2)
    return ((r <= n / 2 - 0.5) & (r >= n / 4)).astype(np.float32)


def _square(n: int) -> np.ndarray:
    a = np.zeros((n, n), np.float32)
    a[2:-2, 2:-2] = 1
    return a


def _triangle(n: int) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n] + 0.5
    return ((y >= 2) & (y <= n - 2) & (np.abs(x - n / 2) <= (y - 2) / 2)).astype(np.float32)


def _cross(n: int) -> np.ndarray:
    a = np.zeros((n, n), np.float32)
    a[n // 2 - 2 : n // 2 + 2, 1:-1] = 1
    a[1:-1, n // 2 - 2 : n // 2 + 2] = 1
    return a


SHAPES = {"disc": _disc, "ring": _ring, "square": _square, "triangle": _triangle, "cross": _cross}


@lru_cache(maxsize=None)
def shape_sprite(name: str) -> np.ndarray:
    """A named geometric shape as a 16x16 alpha map."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; known: {sorted(SHAPES)}")
    return SHAPES[name](SPRITE_SIZE)


@lru_cache(maxsize=None)
def glyph_sprite(index: int, grid: int = 5) -> np.ndarray:
    """Glyph ``index``: a fixed random ``grid x grid`` binary pattern, blown up to 16x16.

    The pattern is drawn from its own seeded generator so glyph ``k`` is the same
    everywhere; about half of the cells are on and the border cells stay on so the
    glyph's outline is a square (glyphs differ only inside).
    """
    rng = np.random.default_rng(np.random.SeedSequence([7919, index]))
    cells = rng.random((grid, grid)) < 0.5
    cells[0, :] = cells[-1, :] = cells[:, 0] = cells[:, -1] = True
    reps = -(-SPRITE_SIZE // grid)
    big = np.kron(cells, np.ones((reps, reps), bool))[:SPRITE_SIZE, :SPRITE_SIZE]
    return big.astype(np.float32)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def digit_sprite(digit: int, instance: int) -> np.ndarray:
    """A real handwritten digit (scikit-learn's bundled 8x8 set) upsampled to 16x16.

    ``instance`` picks one of the ~180 writers' samples of that digit (modulo).
    """
    images, targets = _digits()
    idx = np.flatnonzero(targets == digit)
    img = images[idx[instance % len(idx)]]
    return np.kron(img, np.ones((2, 2), np.float32))


def sprite(kind: str, ident: int | str, instance: int = 0) -> np.ndarray:
    """Dispatch to the three object families: ``shape``, ``glyph`` or ``digit``."""
    if kind == "shape":
        return shape_sprite(str(ident))
    if kind == "glyph":
        return glyph_sprite(int(ident))
    if kind == "digit":
        return digit_sprite(int(ident), instance)
    raise ValueError(f"unknown object kind {kind!r}; known: shape, glyph, digit")


def place_sprite(
    alpha: np.ndarray,
    height: int,
    width: int,
    cx: float,
    cy: float,
    size: float,
    angle: float = 0.0,
    aspect: float = 1.0,
) -> np.ndarray:
    """Alpha map of ``alpha`` placed on a ``height x width`` canvas.

    The sprite's centre goes to ``(cx, cy)`` (pixels), its side to ``size`` pixels
    (``size*aspect`` wide, ``size/aspect`` high), rotated by ``angle`` radians
    counter-clockwise. Inverse mapping with bilinear sampling; outside is 0.
    """
    n = alpha.shape[0]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    dx, dy = x - cx, y - cy
    c, s = np.cos(angle), np.sin(angle)
    u = (c * dx - s * dy) / (size * aspect) * n + n / 2 - 0.5
    v = (s * dx + c * dy) / (size / aspect) * n + n / 2 - 0.5
    u0, v0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = (u - u0).astype(np.float32), (v - v0).astype(np.float32)
    padded = np.pad(alpha, 1)
    out = np.zeros((height, width), np.float32)
    for du, wu in ((0, 1 - fu), (1, fu)):
        for dv, wv in ((0, 1 - fv), (1, fv)):
            uu = np.clip(u0 + du + 1, 0, n + 1)
            vv = np.clip(v0 + dv + 1, 0, n + 1)
            out += wu * wv * padded[vv, uu]
    out[(u < -1) | (u > n) | (v < -1) | (v > n)] = 0.0
    return out


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency RGB texture: a ``cells x cells`` random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1, 3)).astype(np.float32)
    ys = np.linspace(0, cells, height, dtype=np.float32)
    xs = np.linspace(0, cells, width, dtype=np.float32)
    y0 = np.minimum(ys.astype(np.int64), cells - 1)
    x0 = np.minimum(xs.astype(np.int64), cells - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy * (1 - fx) + g11 * fy * fx).astype(
        np.float32
    )


def composite(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Paint ``colour`` over ``canvas`` (H, W, 3) with coverage ``alpha`` (H, W)."""
    a = alpha[..., None]
    return canvas * (1 - a) + colour[None, None, :] * a
