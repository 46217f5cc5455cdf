"""Build the whole book from the smoke reference notebooks, warnings as errors, in a scratch copy.

The reference notebooks are the chapters executed in the smoke profile (``make references``);
nbval re-executes them in the same test run and compares their checked outputs.
"""
import shutil
import subprocess
import sys
from pathlib import Path

from vidattn.cli import chapters

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_book_builds_with_figures(tmp_path, records_dir):
    book = tmp_path / "book_root"
    shutil.copytree(ROOT / "book", book / "book", ignore=shutil.ignore_patterns("_executed"))
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / f, book / f)
    (book / "book" / "_executed").mkdir()
    for ch in chapters():
        shutil.copy(ROOT / "tests" / "reference" / f"{ch.stem}.ipynb", book / "book" / "_executed")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = (book / "_build" / "html" / "book" / "_executed" / "01_data_suites.html").read_text()
    assert html.count("<img") >= 4, "the data chapter's figures are missing"
    assert "Order premise" in html and "Traceback" not in html
