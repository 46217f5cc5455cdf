"""The shared figure style: text stays legible at the size the book displays a figure."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vidattn.report.plotting import MIN_TEXT_PT, displayed_text_pt, frame_strip, show, use_style  # noqa: E402


def test_wide_figures_with_small_text_are_refused():
    use_style()
    narrow, ax = plt.subplots(figsize=(5, 3))
    ax.set_title("a title", fontsize=10)
    assert displayed_text_pt(narrow)[0] >= MIN_TEXT_PT
    show(narrow)
    wide, ax = plt.subplots(figsize=(14, 3))  # scaled to about half its size on the page
    ax.set_title("a title", fontsize=10)
    pt, text = displayed_text_pt(wide)
    assert pt < MIN_TEXT_PT and text
    with pytest.raises(ValueError, match="would display at"):
        show(wide)
    plt.close("all")


def test_frame_strips_fit_the_page():
    use_style()
    videos = np.zeros((3, 16, 24, 24, 3), np.uint8)
    fig = frame_strip(videos, ["a", "b", "c"])
    assert displayed_text_pt(fig)[0] >= MIN_TEXT_PT
    plt.close(fig)
