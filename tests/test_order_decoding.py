"""Order decoders against brute force, OrderAcc reference points (Eq. 15)."""
from __future__ import annotations

import numpy as np
import pytest

from vidattn.papers.direcformer.order_decoding import (
    borda,
    brute_force_path,
    chance_order_accuracy,
    hamiltonian_path,
    lcs_length,
    linear_ordering,
    order_accuracy,
    path_to_order,
)
from vidattn.papers.direcformer.permutations import all_permutations


def test_held_karp_equals_brute_force():
    A = np.random.default_rng(0).normal(size=(32, 7, 7))
    path, weight = hamiltonian_path(A)
    path2, weight2 = brute_force_path(A)
    assert np.allclose(weight, weight2) and (path == path2).all()
    for b in range(4):  # the weight is what the path collects
        assert np.isclose(A[b, path[b, :-1], path[b, 1:]].sum(), weight[b])


def test_linear_ordering_equals_brute_force():
    A = np.random.default_rng(1).normal(size=(8, 6, 6))
    perms = all_permutations(6).astype(int)
    i, j = np.triu_indices(6, 1)
    path, score = linear_ordering(A)
    for b in range(8):
        scores = A[b][perms[:, i], perms[:, j]].sum(1)
        assert np.isclose(scores.max(), score[b])
        assert np.isclose(A[b][path[b][i], path[b][j]].sum(), score[b])


def test_decoders_recover_the_order_from_an_ideal_signed_matrix():
    o = np.array([4, 0, 6, 2, 7, 1, 3, 5])  # slot t shows frame o[t]
    A = np.where(o[:, None] < o[None, :], 1.0, -1.0)  # varsigma
    np.fill_diagonal(A, 0)
    for path in (hamiltonian_path(A)[0][0], linear_ordering(A)[0][0], borda(A)[0]):
        assert (path_to_order(path) == o).all()
    # the L_self optimum sin(pi (o_u - o_t)/T): the Hamiltonian decoder fails, the others do not
    S = np.sin(np.pi * (np.arange(8)[None] - np.arange(8)[:, None]) / 8)
    assert order_accuracy(path_to_order(hamiltonian_path(S)[0][0]), np.arange(8)) == 50.0
    assert order_accuracy(path_to_order(linear_ordering(S)[0][0]), np.arange(8)) == 100.0


def test_order_accuracy_reference_points():
    o = np.arange(8)
    assert order_accuracy(o, o) == 100.0
    assert order_accuracy(o[::-1], o) == 12.5
    assert order_accuracy(o[::-1], o, direction_agnostic=True) == 100.0
    assert order_accuracy(np.array([1, 0, 2, 3, 4, 5, 6, 7]), o) == 87.5
    assert lcs_length([1, 3, 2, 4], [1, 2, 3, 4]) == 3
    assert round(chance_order_accuracy(8), 2) == 47.13


def test_ties_are_deterministic_and_sizes_checked():
    A = np.zeros((8, 8))
    assert (hamiltonian_path(A)[0] == hamiltonian_path(A)[0]).all()
    with pytest.raises(ValueError, match="too large"):
        hamiltonian_path(np.zeros((13, 13)))
    with pytest.raises(ValueError, match="must be"):
        borda(np.zeros((2, 3, 4)))
