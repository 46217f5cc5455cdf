"""The cluster page's prediction: the longest-first schedule against the best schedule found by
brute force, Graham's bound, and the lower bounds no schedule beats."""
import itertools
import random

import pytest

from vidattn.core.store import Record
from vidattn.engine.scaling import lpt_makespan, predicted_hours


def best_makespan(jobs: list[float], workers: int) -> float:
    """The optimum by trying every assignment of jobs to workers."""
    best = float("inf")
    for assign in itertools.product(range(workers), repeat=len(jobs)):
        loads = [0.0] * workers
        for j, w in zip(jobs, assign):
            loads[w] += j
        best = min(best, max(loads))
    return best


def test_longest_first_is_within_grahams_bound_of_the_optimum_and_above_the_lower_bounds():
    rng = random.Random(0)
    worse = 0
    for _ in range(200):
        jobs = [float(rng.randint(1, 9)) for _ in range(rng.randint(1, 7))]
        p = rng.randint(1, 3)
        lpt, opt = lpt_makespan(jobs, p), best_makespan(jobs, p)
        assert max(sum(jobs) / p, max(jobs)) <= opt <= lpt <= (4 / 3 - 1 / (3 * p)) * opt + 1e-9
        worse += lpt > opt
    assert worse > 0, "the random cases never show LPT above the optimum; the check is too weak"
    assert lpt_makespan([3, 3, 2, 2, 2], 2) == 7.0 and best_makespan([3, 3, 2, 2, 2], 2) == 6.0


def test_predicted_hours_uses_every_records_run_time():
    records = [Record("x", str(i), {}, {}, s, "cpu", {}, "", {}, "")
               for i, s in enumerate([3600.0, 1800.0, 1800.0])]
    one, two = predicted_hours(records, [1, 2])
    assert one["LPT schedule (h)"] == pytest.approx(2.0) and one["longest run (h)"] == pytest.approx(1.0)
    assert two["LPT schedule (h)"] == pytest.approx(1.0) and two["total / cores (h)"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        lpt_makespan([1.0], 0)


def test_each_chapters_committed_records_fit_its_90_minutes_on_two_workers():
    """The small profile's budget (issue 26): a chapter's committed records, scheduled longest first
    on 2 workers, take at most 90 minutes. Records live under data/records/<chapter>/."""
    import json

    from vidattn.core.paths import REPO_ROOT

    chapters = sorted(p for p in (REPO_ROOT / "data" / "records").iterdir() if p.is_dir())
    assert len(chapters) >= 7, [p.name for p in chapters]
    for chapter in chapters:
        seconds = [json.loads(f.read_text())["wall_seconds"] for f in chapter.glob("*/*.json")]
        minutes = lpt_makespan(seconds, 2) / 60
        assert 0 < minutes <= 90, f"{chapter.name}: {minutes:.1f} min on 2 workers"
