"""What the CIDC chapter reads from its records beyond the shared kit (:mod:`vidattn.report.kit`)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidattn.report.kit import ClipTest


def clip_test(test_labels: Sequence[int]) -> ClipTest:
    """How each metric is tested on the shared test clips: top-1 and pair accuracy on every
    clip; a class's accuracy (``class_acc_<c>``) on that class's clips only; others not at all."""
    labels = np.asarray(test_labels)

    def test(metric: str) -> tuple[str | None, Sequence[bool] | None]:
        if metric.startswith("class_acc_"):
            return "ordered_top1", labels == int(metric.rsplit("_", 1)[1])
        if metric in ("ordered_top1", "ordered_pair"):
            return metric, None
        return None, None

    return test
