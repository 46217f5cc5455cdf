"""Paired statistics and learning gates against independent computations."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from vidattn.report.gates import NOT_LEARNED, Gate, check, last_fifth_change
from vidattn.report.stats import compare, mcnemar, paired_seed_interval
from vidattn.report.tables import claim_from, verdict_kind


def test_the_seed_interval_is_the_paired_t_interval():
    a, b = [61.0, 70.5, 66.0, 59.0, 72.0], [55.0, 60.0, 61.5, 57.0, 60.0]
    s = paired_seed_interval(a, b)
    d = np.subtract(a, b)
    res = sps.ttest_rel(a, b)
    lo, hi = res.confidence_interval(0.95)
    assert math.isclose(s.mean, d.mean()) and math.isclose(s.lo, lo) and math.isclose(s.hi, hi)
    # pairing matters: the unpaired interval of the same numbers is wider
    welch = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (hi - lo) < (welch.high - welch.low)


def test_a_consistent_gain_is_significant_paired_but_not_unpaired():
    base = [43.7, 55.5, 51.7]  # seed-to-seed variance dominates
    variant = [x + 10 + e for x, e in zip(base, (0.5, -0.4, 0.2))]
    assert paired_seed_interval(variant, base).lo > 0
    assert sps.ttest_ind(variant, base, equal_var=False).pvalue > 0.05


def test_mcnemar_matches_the_exact_binomial_test():
    a = [[1, 1, 1, 0, 1, 1, 0, 1] * 10]
    b = [[1, 0, 0, 0, 1, 0, 0, 1] * 10]
    t = mcnemar(a, b)
    assert (t.a_only, t.b_only, t.n) == (30, 0, 80)
    assert math.isclose(t.p, sps.binomtest(30, 30, 0.5).pvalue)
    assert math.isclose(t.delta, 100 * 30 / 80)
    two_seeds = mcnemar(a * 2, b * 2)
    assert (two_seeds.a_only, two_seeds.n) == (60, 160) and two_seeds.p < t.p
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar([[1, 0]], [[1, 0, 1]])


def test_verdicts_use_both_levels_and_state_a_bound():
    up = compare("top1", "A", "B", [70, 72, 71], [60, 61, 60], [[1] * 30 + [0] * 10] * 3, [[0] * 40] * 3)
    assert up.kind == "reproduced" and "McNemar" in up.evidence and "CI [" in up.evidence
    down = compare("top1", "A", "B", [60, 61, 60], [70, 72, 71])
    assert down.kind == "reversed"
    flat = compare("top1", "A", "B", [60, 70, 65], [64, 66, 65])
    assert flat.kind == "no effect detected" and flat.verdict.startswith("no effect detected (|Δ| < ")
    assert flat.bound >= max(abs(flat.seeds.lo), abs(flat.seeds.hi)) and flat.detectable > 0
    # seeds agree but the clips do not: no verdict from seeds alone
    weak = compare("top1", "A", "B", [61, 62, 61], [60, 61, 60], [[1, 0] * 5] * 3, [[0, 1] * 5] * 3)
    assert weak.kind == "no effect detected"
    one = compare("top1", "A", "B", [70], [60])
    assert verdict_kind(one.verdict) == "not run here"


def test_gates():
    g = Gate("reference", "top-1", chance=25, margin=40, curve="training loss")
    good = check(g, [80, 82, 79], [[2.0, 1.0, 0.5, 0.41, 0.40]] * 3)
    assert good.passed
    still_falling = check(g, [80, 82, 79], [[2.0, 1.5, 1.0, 0.8, 0.6]] * 3)
    assert still_falling.learned and not still_falling.converged and not still_falling.passed
    near_chance = check(g, [30, 70, 26], [[1.0, 1.0]] * 3)
    assert not near_chance.learned
    assert math.isclose(last_fifth_change([4, 3, 2, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.9]), 0.1 / 3.1)
    assert last_fifth_change([2.0, 1.0]) == math.inf  # too short to tell
    c = compare("top1", "A", "B", [70, 72, 71], [60, 61, 60])
    row = claim_from("A beats B", c, [good, near_chance])
    assert row["verdict"] == NOT_LEARNED and "reference" in row["evidence"]
    assert claim_from("A beats B", c, [good])["verdict"] == "reproduced"
    assert "failed" in near_chance.row()["result"] and good.row()["result"] == "passed"


def test_chance_gate():
    g = Gate("bag of frames", "pair accuracy", chance=50, margin=0, curve="", expect="chance")
    assert check(g, [49.0, 52.0, 50.5], [[]] * 3).passed
    leaky = check(g, [60.0, 61.0, 62.0], [[]] * 3)
    assert not leaky.passed and "excludes chance" in leaky.row()["result"]
    with pytest.raises(ValueError, match="expect"):
        Gate("x", "m", 50, 0, "", expect="below")


def test_a_chance_gate_tolerates_the_test_sets_sampling_error_only_when_asked():
    from vidattn.report.gates import Gate, check, sampling_halfwidth

    half = sampling_halfwidth(50, 1000)
    assert abs(half - 3.099) < 0.01  # 1.96 * sqrt(0.25 / 1000), in points
    values, strict = [51.6, 52.0, 51.8], Gate("blind", "top-1", 50, 0, "", expect="chance")
    assert not check(strict, values, []).passed  # seeds agree: the interval misses 50
    loose = Gate("blind", "top-1", 50, 0, "", expect="chance", tolerance=half)
    assert check(loose, values, []).passed
    assert not check(loose, [58.0, 58.5, 57.5], []).passed  # a real edge still fails
    assert "within 3.1 of chance 50.0" in check(loose, values, []).row()["criterion"]
