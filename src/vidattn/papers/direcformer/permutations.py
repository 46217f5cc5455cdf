"""Frame permutations: the order-prediction task of DirecFormer (Eq. 1, 13).

Convention (gather): a permutation ``o`` of ``range(T)`` reorders a clip so that slot
``t`` holds original frame ``o[t]``, i.e. ``x_perm[:, t] = x[:, o[t]]``. Order class 0 is
the identity; classes 1..|P| are the rows of a permutation set.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch

SELECTION_RULES = ("max", "min")


@lru_cache(maxsize=4)
def all_permutations(frames: int) -> np.ndarray:
    """Every permutation of ``range(frames)`` in lexicographic order, (frames!, frames) int8."""
    if frames > 10:
        raise ValueError(f"enumerating {frames}! permutations is too large; use frames <= 10")
    return np.array(list(itertools.permutations(range(frames))), dtype=np.int8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of slots in which permutations differ (broadcast over leading axes)."""
    return (np.asarray(a) != np.asarray(b)).sum(-1)


def permutation_set(frames: int, size: int, rule: str = "max", seed: int = 0) -> np.ndarray:
    """``size`` permutations chosen greedily by mean Hamming distance (the identity excluded).

    Start from one random permutation; each step adds the candidate whose mean Hamming
    distance to the rows already chosen is the largest (``rule="max"``, the rule the
    official file was built with) or the smallest (``"min"``, the paper's wording).
    Ties are broken uniformly at random by the seeded generator. Returns (size, frames) int64.
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; known: {SELECTION_RULES}")
    perms = all_permutations(frames)[1:]  # row 0 is the identity
    if not 1 <= size <= len(perms):
        raise ValueError(f"a permutation set of {frames} frames holds 1..{len(perms)} rows, asked for {size}")
    rng = np.random.default_rng(seed)
    free = np.ones(len(perms), bool)
    total = np.zeros(len(perms), np.int64)  # summed distance of each candidate to the chosen rows
    chosen = [int(rng.integers(len(perms)))]
    for _ in range(size - 1):
        free[chosen[-1]] = False
        total += hamming(perms, perms[chosen[-1]])
        score = np.where(free, total if rule == "max" else -total, np.iinfo(np.int64).min)
        best = np.flatnonzero(score == score.max())
        chosen.append(int(rng.choice(best)))
    return perms[chosen].astype(np.int64)


def order_table(perm_set: np.ndarray) -> torch.Tensor:
    """(|P|+1, T) long tensor: row 0 the identity, then the set (order class -> permutation)."""
    T = perm_set.shape[1]
    return torch.cat([torch.arange(T)[None], torch.as_tensor(perm_set, dtype=torch.long)])


def permute_frames(video: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Eq. 1's T(x, o): ``out[b, :, t] = video[b, :, orders[b, t]]`` for clips (B, C, T, H, W)."""
    B, C, T = video.shape[:3]
    if orders.shape != (B, T):
        raise ValueError(f"orders must be (batch, frames) = {(B, T)}, got {tuple(orders.shape)}")
    idx = orders.to(video.device).view(B, 1, T, 1, 1).expand_as(video)
    return video.gather(2, idx)


def order_signs(orders: torch.Tensor) -> torch.Tensor:
    """Eq. 13's varsigma: ``s[b, t, t'] = +1`` if ``o_t < o_t'`` (slot t' shows a later frame) else -1.

    The diagonal is -1 by the paper's "otherwise"; :func:`self_guided_loss` excludes it.
    """
    o = orders.long()
    return torch.where(o[:, :, None] < o[:, None, :], 1.0, -1.0)


def uniform_orders(n: int, frames: int, seed: int = 0) -> torch.Tensor:
    """(n, frames) orders drawn uniformly from all frames! permutations (identity included), seeded."""
    rng = np.random.default_rng(seed)
    return torch.as_tensor(np.stack([rng.permutation(frames) for _ in range(n)]), dtype=torch.long)
