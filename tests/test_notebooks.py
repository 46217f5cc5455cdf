"""Chapter hygiene: one parameters cell, tags survive jupytext, bad parameters fail clearly."""
import jupytext
import pytest

from vidattn import profiles
from vidattn.cli import chapters, parameters_of, run_chapter
from vidattn.profiles import CHAPTER_PARAMETERS


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.name)
def test_exactly_one_parameters_cell_with_the_shared_names(path):
    nb = jupytext.read(path)
    params = parameters_of(nb)  # raises unless exactly one tagged cell
    assert tuple(params) == CHAPTER_PARAMETERS
    assert params["profile"] == "small", "the committed default is the CPU scaled-down profile"
    header = path.read_text().split("---")[1]
    assert "cell_metadata_filter: -all" not in header  # would drop the tag on round trip


def test_chapters_exist():
    assert [p.name for p in chapters()][0] == "01_data_suites.md"


def test_unknown_parameter_and_profile_fail_before_running(tmp_path):
    ch = chapters()[0]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['epochs'\]"):
        run_chapter(ch, tmp_path / "x.ipynb", {"epochs": 3})
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        run_chapter(ch, tmp_path / "x.ipynb", {"profile": "huge"})


def test_setup_validates(tmp_path):
    ctx = profiles.setup("smoke", 2, "cpu", "", str(tmp_path / "o"))
    assert ctx.seeds == (0, 1) and ctx.pick(1, 2, 3) == 1
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.setup("medium", 1)
    with pytest.raises(FileNotFoundError, match="data_root .*missing"):
        profiles.setup("small", 1, "cpu", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="unknown device"):
        profiles.setup("small", 1, "tpu")
