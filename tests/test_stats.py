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
    # a run on the chance plateau (loss 0.688 -> 0.685) is flat, not still changing; a run
    # that takes off late is not converged
    plateau = [0.688, 0.703, 0.697, 0.694, 0.695, 0.693, 0.69, 0.688, 0.687, 0.685]
    assert 0 < last_fifth_change(plateau) < 0.1 < abs(plateau[-3] - plateau[-1]) / abs(plateau[0] - plateau[-1])
    late = [0.687, 0.702, 0.702, 0.683, 0.637, 0.625, 0.62, 0.58, 0.509, 0.454]
    assert last_fifth_change(late) > 0.5
    c = compare("top1", "A", "B", [70, 72, 71], [60, 61, 60])
    row = claim_from("A beats B", c, [good, near_chance])
    assert row["verdict"] == NOT_LEARNED and "reference" in row["evidence"]
    assert claim_from("A beats B", c, [good])["verdict"] == "reproduced"
    assert "failed" in near_chance.row()["result"] and good.row()["result"] == "passed"
    # a ceiling without the mechanism in chance's place: above chance is not enough
    ceiling = Gate("reference", "top-1", chance=50, margin=10, curve="training loss", floor="context ceiling")
    at_ceiling = check(ceiling, [52, 47, 49], [[2.0, 1.0, 0.5, 0.41, 0.40]] * 3)
    assert not at_ceiling.passed and check(g, [52, 47, 49], [[2.0, 1.0, 0.5, 0.41, 0.40]] * 3).lo > 25
    assert "context ceiling 50.0 + 10.0" in at_ceiling.row()["criterion"]
    assert at_ceiling.row()["result"] == "failed: not above context ceiling + margin"


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


def test_degenerate_comparisons_are_not_testable_and_say_why():
    same = compare("top1", "A", "B", [80.0, 90.0, 85.0], [80.0, 90.0, 85.0], [[1, 0, 1]] * 3, [[1, 0, 1]] * 3)
    assert same.verdict.startswith("not testable (identical rows") and "every test clip" in same.verdict
    # the same seed values but clips that disagree: a real (null) comparison, not a degenerate one
    swapped = compare("top1", "A", "B", [50.0, 50.0], [50.0, 50.0], [[1, 0]] * 2, [[0, 1]] * 2)
    assert swapped.kind == "no effect detected"
    top = compare("top1", "A", "B", [99.8, 100.0, 99.6], [99.7, 99.9, 100.0], ceiling=100.0)
    assert top.verdict.startswith("not testable (both rows at the ceiling")
    assert compare("top1", "A", "B", [99.8, 100.0, 99.6], [99.7, 99.9, 100.0]).kind == "no effect detected"
    # a clear win near the ceiling still counts: the ceiling only explains an absent effect
    win = compare("top1", "A", "B", [99.9, 99.9, 99.8], [99.0, 99.1, 99.1], ceiling=100.0)
    assert win.kind == "reproduced"


def test_fisher_power_is_the_exact_rejection_probability():
    from vidattn.report.stats import fisher_p, fisher_power, seeds_for

    # 3 seeds each can never reject at 5 % (3/3 vs 0/3 gives p = 0.1), 4 seeds can
    assert fisher_p(3, 3, 0, 3) == pytest.approx(0.1) and fisher_power(1.0, 0.0, 3) == 0.0
    assert fisher_p(4, 4, 0, 4) == pytest.approx(2 / 70) and fisher_power(1.0, 0.0, 4) == 1.0
    # against a simulation of the same design
    rng = np.random.default_rng(0)
    ka, kb = rng.binomial(8, 0.9, 4000), rng.binomial(8, 0.2, 4000)
    simulated = np.mean([fisher_p(int(x), 8, int(y), 8) < 0.05 for x, y in zip(ka, kb)])
    assert fisher_power(0.9, 0.2, 8) == pytest.approx(simulated, abs=0.03)
    n = seeds_for(0.9, 0.2)
    assert fisher_power(0.9, 0.2, n) >= 0.8 > fisher_power(0.9, 0.2, n - 1)
    with pytest.raises(ValueError, match="do not reach"):
        seeds_for(0.55, 0.45, most=10)


def test_resampled_power_counts_the_draws_whose_interval_clears_zero():
    from vidattn.report.stats import resampled_power

    # every seed learned with the same gap: any draw of two or more seeds clears zero
    assert resampled_power([10.0, 10.0], [0.0, 0.0], [True, True], [True, True], runs=3, draws=200) == 1.0
    # no gap on average: the interval clears zero about as often as a one-sided 2.5 % test
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 40), rng.normal(0, 1, 40)
    assert resampled_power(a - a.mean() + b.mean(), b, [True] * 40, [True] * 40, runs=10, draws=4000) < 0.06
    # a seed where either row failed does not count, however large its gap
    assert resampled_power([90.0, 90.0], [0.0, 0.0], [True, False], [False, True], runs=5, draws=200) == 0.0
    assert resampled_power([90.0, -1.0, 1.0], [0.0, 0.0, 0.0], [False, True, True], [True] * 3, runs=4,
                           draws=2000) < 0.2
    with pytest.raises(ValueError, match="same count"):
        resampled_power([1.0], [0.0, 0.0], [True], [True, True], runs=2)


def test_the_rate_interval_is_newcombes_and_covers_the_truth():
    from vidattn.report.stats import rate_difference_interval

    lo, hi = rate_difference_interval(8, 8, 0, 8)  # all vs nothing: far from zero, inside the scale
    assert 0 < lo < hi <= 100
    # Newcombe (1998), Statistics in Medicine 17, 873-890, Table II, example (a): 56/70 vs 48/80
    lo, hi = rate_difference_interval(56, 70, 48, 80)
    assert (round(lo / 100, 4), round(hi / 100, 4)) == (0.0524, 0.3339)


class _Rec:
    def __init__(self, i: int, top1: float, clips: list[int]):
        self.experiment, self.key = "x", str(i)
        self.metrics, self.per_clip = {"top1": top1}, {"top1": clips}


def test_bimodal_runs_are_judged_by_success_rate_then_among_the_learned():
    from vidattn.report.stats import compare_success

    a = [_Rec(i, v, [1] * 9 + [0]) for i, v in enumerate([99.0, 98.0, 99.5, 97.0, 99.0, 98.5, 99.0, 97.5])]
    b = [_Rec(10 + i, v, [1] * 5 + [0] * 5) for i, v in enumerate([50.0, 99.0, 51.0, 50.0, 49.0, 52.0, 50.0, 50.5])]
    c = compare_success("top1", "A", "B", a, b, "top1", 75.0, clips="top1")
    assert c.rates == (8, 8, 1, 8) and c.p == pytest.approx(sps.fisher_exact([[8, 0], [1, 7]]).pvalue)
    assert c.kind == "reproduced" and "learned on 8 of 8 seeds" in c.evidence and c.among_learned is None
    # the same success rates: the verdict comes from the seeds where both learned
    d = compare_success("top1", "A", "B", a[:4], a[4:], "top1", 75.0)
    assert d.rates == (4, 4, 4, 4) and d.among_learned is not None and d.among_learned.seeds.n == 4
    assert d.kind == d.among_learned.kind
    e = compare_success("top1", "A", "B", a[:3], b[:3], "top1", 75.0)  # 3/3 vs 1/3: not enough seeds
    assert e.kind == "no effect detected" and e.verdict.startswith("no effect detected (success rate |Δ| < ")
    row = claim_from("A learns more often", c)
    assert row["rests_on"]["success"] == ("top1", 75.0) and verdict_kind(row["verdict"]) == "reproduced"
    # alike success rates, and both rows within a point of 100 where they learned: not testable, not
    # "no effect detected" (neither part can measure a one-point effect)
    top = [_Rec(20 + i, v, [1] * 10) for i, v in enumerate([99.6, 99.8, 99.5, 99.9, 50.0])]
    f = compare_success("top1", "A", "B", top[:4] + [top[4]], top[1:4] + top[:1] + [top[4]], "top1", 75.0,
                        clips="top1", ceiling=100.0)
    assert f.rates == (4, 5, 4, 5) and f.among_learned.kind == "not testable" and f.kind == "not testable"
    assert f.verdict.startswith("not testable (both rows at the ceiling") and "4/5 vs 4/5" in f.verdict
    assert verdict_kind(claim_from("A beats B", f)["verdict"]) == "not testable"
    # different success rates stay a test of success rates, however wide
    g = compare_success("top1", "A", "B", top[:4] + [top[0]], top[1:4] + top[:1] + [top[4]], "top1", 75.0,
                        clips="top1", ceiling=100.0)
    assert g.rates == (5, 5, 4, 5) and g.kind == "no effect detected" and "among learned not testable" in g.verdict
    # the same success rates and a gap where both learned: the difference shows the gap the verdict rests on
    hi = [_Rec(30 + i, v, [1] * 10) for i, v in enumerate([99.0, 99.5, 98.5, 99.2])]
    lo = [_Rec(40 + i, v, [1] * 8 + [0] * 2) for i, v in enumerate([80.0, 82.0, 79.0, 81.0])]
    h = compare_success("top1", "A", "B", hi, lo, "top1", 75.0, clips="top1")
    assert h.kind == "reproduced" and h.p == 1.0
    assert h.difference == f"success +0 [{h.rate_interval[0]:+.0f}, {h.rate_interval[1]:+.0f}]; learned " \
        + h.among_learned.difference
    assert ";" not in c.difference  # decided by the success rates: their gap alone


def _record(row: str, seed: int, top1: float):
    from vidattn.core.store import Record

    return Record("x/train", f"{row}-{seed}", {"seed": seed, "suite": "s"}, {"metrics": {"top1": top1},
                  "per_clip": {"top1": [int(top1 > 75)] * 4}}, 1.0, "cpu", {}, "", {}, "", row=row)


def test_the_kit_pairs_two_rows_on_the_seeds_both_ran_and_judges_success_rates():
    from vidattn.report.kit import Results

    a = [_record("A", s, 99.0) for s in range(8)]
    b = [_record("B", s, v) for s, v in enumerate([50.0, 99.0, 50.0, 51.0, 49.0, 50.0, 50.5, 50.0])]
    c = [_record("C", s, 60.0) for s in range(3)]  # a row on three seeds only
    R = Results(a + b + c, metric="top1", clips={"top1"})
    ab = R.paired("A", "C")
    assert ab.seeds.n == 3 and [s.split("/")[-1] for s in ab.sources.a] == ["A-0", "A-1", "A-2"]
    s = R.success("A", "B", "top1", 75.0)
    assert s.rates == (8, 8, 1, 8) and s.kind == "reproduced"
    assert s.sources.clips == ("top1", "top1") and s.sources.success == ("top1", 75.0)
    row = R.success_claim("A learns more often than B", "A", "B", [], "top1", 75.0)
    assert row["verdict"] == "reproduced" and row["ours"].endswith("learned 8/8 vs 1/8")


def test_a_gate_on_runs_that_learn_or_not_asks_convergence_of_the_runs_that_learned():
    from vidattn.core.store import Record
    from vidattn.report.kit import Results

    def rec(seed, top1, loss):
        return Record("x/train", f"A-{seed}", {"seed": seed, "suite": "s"},
                      {"metrics": {"top1": top1}, "curves": {"loss": loss}}, 1.0, "cpu", {}, "", {}, "", row="A")

    learned = [0.7, 0.5, 0.2, 0.05, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02]
    memorising = [0.7, 0.7, 0.69, 0.69, 0.68, 0.68, 0.67, 0.66, 0.65, 0.63]  # at chance, still falling
    R = Results([rec(s, 99.0, learned) for s in range(7)] + [rec(7, 50.0, memorising)], metric="top1")
    every = R.gate("A", "A", 50, 15)
    assert every.learned and not every.converged and not every.passed
    among = R.gate("A", "A", 50, 15, converged_if=("top1", 75.0))
    assert among.passed and len(among.changes) == 7 and among.values == every.values
    assert "of the runs that learned (top1 ≥ 75)" in among.gate.curve
    # the runs that did not learn still count against the mean: 4 of 8 fail the margin
    half = Results([rec(s, 99.0, learned) for s in range(4)] + [rec(s, 50.0, learned) for s in range(4, 8)])
    assert not half.gate("A", "A", 50, 25, converged_if=("top1", 75.0)).passed
