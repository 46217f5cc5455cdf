"""Chapter hygiene: one parameters cell, tags survive jupytext, bad parameters fail clearly."""
from pathlib import Path

import jupytext
import nbformat
import pytest

from vidattn.cli import NOTEBOOKS, build_order, chapters, parameters_of, run_chapter
from vidattn.core import profiles
from vidattn.core.profiles import CHAPTER_PARAMETERS


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.name)
def test_exactly_one_parameters_cell_with_the_shared_names(path):
    nb = jupytext.read(path)
    params = parameters_of(nb)  # raises unless exactly one tagged cell
    # the scorecard and the full-size page train nothing: they take only the profile and the output folder
    reference_pages = ("00_front_page", "90_full_size", "95_reproducibility", "96_cluster", "99_scorecard")
    assert tuple(params) == (("profile", "output_dir") if path.stem in reference_pages else CHAPTER_PARAMETERS)
    assert params["profile"] == "small", "the committed default is the CPU scaled-down profile"
    header = path.read_text().split("---")[1]
    assert "cell_metadata_filter: -all" not in header  # would drop the tag on round trip


def test_a_build_runs_the_pages_made_from_ledgers_after_the_chapters():
    order = [p.stem for p in build_order()]
    assert order[:2] == ["01_data_suites", "02_direcformer"] and order[-2:] == ["00_front_page", "99_scorecard"]


def test_unknown_parameter_and_profile_fail_before_running(tmp_path):
    ch = NOTEBOOKS / "01_data_suites.md"
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


REFERENCES = Path(__file__).parent / "reference"


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.name)
def test_the_reference_notebook_is_the_chapter_run_in_smoke(path):
    """nbval executes tests/reference/*.ipynb: each must hold the chapter's current code (make references)."""
    ref = nbformat.read(REFERENCES / f"{path.stem}.ipynb", as_version=4)
    injected = [c for c in ref.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    ref_code = [c.source for c in ref.cells if c.cell_type == "code" and c not in injected]
    now = [c.source for c in jupytext.read(path).cells if c.cell_type == "code"]
    assert ref_code == now, f"{path.name} changed since its reference notebook was made: run `make references`"
    checked = [c for c in ref.cells if c.cell_type == "code" and "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked and all(c.outputs for c in checked), "every checked cell needs stored outputs to compare"


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.name)
def test_code_on_the_page_fits_88_columns(path):
    long = [(i, c.source.splitlines()[i][:50]) for c in jupytext.read(path).cells if c.cell_type == "code"
            for i in range(len(c.source.splitlines())) if len(c.source.splitlines()[i]) > 88]
    assert not long, f"{path.name}: code lines over 88 columns: {long[:3]}"


def test_a_killed_chapter_run_leaves_nothing_in_the_book_tree(tmp_path, monkeypatch):
    """While a chapter executes, nothing of it is in the output folder, so a SIGKILL (no cleanup
    runs) leaves nothing that Sphinx would read; only the finished notebook arrives there."""
    import papermill

    out = tmp_path / "book" / "_executed" / "01_data_suites.ipynb"
    seen = []

    def executing(input_path, output_path, **kw):
        Path(output_path).write_text(Path(input_path).read_text())  # papermill writes as it goes
        seen.append(sorted(p.name for p in out.parent.iterdir()))
        assert not Path(output_path).is_relative_to(out.parent) and not Path(input_path).is_relative_to(out.parent)

    monkeypatch.setattr(papermill, "execute_notebook", executing)
    run_chapter(NOTEBOOKS / "01_data_suites.md", out, {"profile": "smoke"})
    assert seen == [[]] and sorted(p.name for p in out.parent.iterdir()) == [out.name]
