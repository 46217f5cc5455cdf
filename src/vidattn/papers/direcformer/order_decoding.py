"""Order correction: decode a frame order from a T x T temporal attention matrix (Eq. 15).

``A[q, k]`` is the weight of query slot ``q`` on key slot ``k``. A decoder returns a
*path* ``pi``: the slots listed in the order it believes they happened. The predicted
order in the gather convention of :mod:`vidattn.papers.direcformer.permutations` is ``o_hat = argsort(pi)``
(the rank of each slot), so ``o_hat == o`` exactly when ``pi == argsort(o)``.

* :func:`hamiltonian_path`: the paper's decoder, the maximum-weight Hamiltonian path
  ``max sum_i A[pi_i, pi_{i+1}]``, exact by Held-Karp dynamic programming over subsets,
  vectorised over a batch (:func:`brute_force_path` is its oracle for the tests).
* :func:`linear_ordering`: ``max sum_{i<j} A[pi_i, pi_j]``, every earlier-to-later pair
  counts, which is what :func:`~vidattn.papers.direcformer.model.self_guided_loss` trains.
* :func:`borda`: slots sorted by row sum, descending, an O(T^2) approximation of it.

Ties are broken deterministically: the lowest subset/slot index wins.
"""
from __future__ import annotations

import numpy as np

from vidattn.papers.direcformer.permutations import all_permutations


def _as_batch(A: np.ndarray) -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    if A.ndim == 2:
        A = A[None]
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"attention must be (T, T) or (B, T, T), got {A.shape}")
    if A.shape[1] > 12:
        raise ValueError(f"exact decoding is O(2^T T^2); T={A.shape[1]} is too large (<= 12)")
    return A


def _subset_dp(A: np.ndarray, gain) -> tuple[np.ndarray, np.ndarray]:
    """Shared subset DP: ``best[S, j]`` = best score of an ordering of subset S ending at j."""
    B, T, _ = A.shape
    full = 1 << T
    best = np.full((B, full, T), -np.inf)
    parent = np.full((B, full, T), -1, np.int8)
    for j in range(T):
        best[:, 1 << j, j] = 0.0
    bits = (np.arange(full)[:, None] >> np.arange(T)) & 1  # (2^T, T) membership
    for S in range(1, full):
        members = bits[S].astype(bool)
        if members.sum() < 2:
            continue
        for k in np.flatnonzero(members):
            prev = S & ~(1 << k)
            cand = best[:, prev, :] + gain(A, prev, k, bits[prev])  # (B, T) over the last slot j
            j = cand.argmax(1)
            best[:, S, k] = cand[np.arange(B), j]
            parent[:, S, k] = j
    return best, parent


def _backtrack(best: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B, full, T = best.shape
    S = np.full(B, full - 1)
    last = best[:, full - 1].argmax(1)
    score = best[np.arange(B), full - 1, last]
    path = np.zeros((B, T), np.int64)
    for i in range(T - 1, -1, -1):
        path[:, i] = last
        prev = parent[np.arange(B), S, last]
        S = S & ~(1 << last)
        last = prev
    return path, score


def hamiltonian_path(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 15's decoder by Held-Karp: paths (B, T) and weights (B,) maximising sum_i A[pi_i, pi_{i+1}]."""
    A = _as_batch(A)
    best, parent = _subset_dp(A, lambda A, prev, k, member: A[:, :, k])
    return _backtrack(best, parent)


def linear_ordering(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact linear ordering: paths (B, T) and scores maximising sum_{i<j} A[pi_i, pi_j]."""
    A = _as_batch(A)
    # appending k after subset prev gains sum_{i in prev} A[i, k], whatever the last slot j
    best, parent = _subset_dp(A, lambda A, prev, k, member: (A[:, :, k] * member).sum(1, keepdims=True))
    return _backtrack(best, parent)


def brute_force_path(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Test oracle: the Hamiltonian path by enumerating all T! orders (first maximum wins)."""
    A = _as_batch(A)
    perms = all_permutations(A.shape[1]).astype(np.int64)
    weights = A[:, perms[:, :-1], perms[:, 1:]].sum(-1)  # (B, T!)
    i = weights.argmax(1)
    return perms[i], weights[np.arange(len(A)), i]


def borda(A: np.ndarray) -> np.ndarray:
    """Slots by descending row sum ``sum_k A[q, k]`` (a slot that attends positively to many is early)."""
    A = _as_batch(A)
    return np.argsort(-A.sum(2), axis=1, kind="stable")


def path_to_order(path: np.ndarray) -> np.ndarray:
    """Predicted order ``o_hat = argsort(pi)``: the rank of each slot in the decoded path."""
    return np.argsort(np.asarray(path), axis=-1)


def lcs_length(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common subsequence of two sequences (O(T^2) DP)."""
    a, b = list(a), list(b)
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, 1):
            prev_diag, row[j] = row[j], prev_diag + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def order_accuracy(o_hat: np.ndarray, o: np.ndarray, direction_agnostic: bool = False) -> float:
    """Eq. 15: mean ``100 * LCS(o_hat, o) / T`` over a batch of (B, T) orders.

    ``direction_agnostic`` also credits the reversed prediction ``T - 1 - o_hat`` and keeps
    the better of the two, for suites where the direction is not recoverable.
    """
    o_hat, o = np.atleast_2d(o_hat), np.atleast_2d(o)
    T = o.shape[1]
    scores = []
    for p, q in zip(o_hat, o):
        s = lcs_length(p, q)
        if direction_agnostic:
            s = max(s, lcs_length(T - 1 - p, q))
        scores.append(100.0 * s / T)
    return float(np.mean(scores))


def chance_order_accuracy(frames: int) -> float:
    """Exact E[OrderAcc] of a uniformly random prediction: E[LCS] = E[longest increasing subsequence]."""
    perms = all_permutations(frames)
    ident = np.arange(frames)
    return float(np.mean([lcs_length(p, ident) for p in perms])) * 100.0 / frames
