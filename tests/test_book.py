"""Build the whole book from the smoke reference notebooks, warnings as errors, in a scratch copy,
then read it in a real headless browser with the network cut off.

The reference notebooks are the chapters executed in the smoke profile (``make references``);
nbval re-executes them in the same test run and compares their checked outputs.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vidattn.cli import chapters
from vidattn.report.plotting import OUTPUT_WIDTH_PX, PIXEL_DENSITY

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "tests" / "reference"


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    book = tmp_path_factory.mktemp("book_root")
    shutil.copytree(ROOT / "book", book / "book", ignore=shutil.ignore_patterns("_executed"))
    for f in ("_config.yml", "_toc.yml", "ARCHITECTURE.md"):  # book/architecture.md includes the last
        shutil.copy(ROOT / f, book / f)
    shutil.copytree(ROOT / "_static", book / "_static")
    (book / "book" / "_executed").mkdir()
    for ch in chapters():
        shutil.copy(REFERENCES / f"{ch.stem}.ipynb", book / "book" / "_executed")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return book / "_build" / "html"


def test_smoke_book_builds_with_figures(built_book):
    html = (built_book / "book" / "_executed" / "01_data_suites.html").read_text()
    assert html.count("<img") >= 4, "the data chapter's figures are missing"
    assert "Order premise" in html and "Traceback" not in html
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not served from the book"
    assert "cdn.jsdelivr.net/npm/mathjax" not in html


# what a reader must never see in a cell's output: a filesystem path, a Python repr of numpy
# scalars or of a dict, a timing print, or our internal wording
NOISE = {
    "a filesystem path": re.compile(r"(/work/|/tmp/|/home/|/root/|/usr/|site-packages|\.venv/|[A-Z]:\\\\)"),
    "a numpy repr": re.compile(r"np\.(int|float|bool_?)\d*\("),
    "a dict repr": re.compile(r"\{'[A-Za-z_]+': "),
    "a timing print": re.compile(r"(s spent here|chapter time|chapter executed in|missing run\(s\) in)"),
    "internal wording": re.compile(r"\b(the issue|issue's|TODO|FIXME)\b"),
}


@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.name)
def test_no_cell_output_holds_a_warning_a_path_a_repr_or_a_timing(path):
    nb = nbformat.read(REFERENCES / f"{path.stem}.ipynb", as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            data = {k: v for k, v in out.get("data", {}).items() if not k.startswith("image/")}
            text = out.get("text", "") + json.dumps(data, ensure_ascii=False) + "".join(out.get("traceback", []))
            assert out.get("output_type") != "error", f"cell {i} raised"
            assert out.get("name") != "stderr" and "Warning" not in text and "Traceback" not in text, \
                f"{path.name}, cell {i}: {text[:300]}"
            for what, pattern in NOISE.items():
                hit = pattern.search(text)
                assert not hit, f"{path.name}, cell {i} shows {what}: ...{text[max(hit.start() - 80, 0):hit.end() + 40]}"


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("the browser test needs Debian's chromium and chromium-driver (.ci/run installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600",
                "--host-resolver-rules=MAP * ~NOTFOUND"):  # no host resolves: the network is off
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_pages_typeset_their_math_offline_and_fit_the_column(built_book, tmp_path):
    pages = [built_book / "book" / "_executed" / f"{ch.stem}.html" for ch in chapters()]
    browser = _browser()
    try:
        browser.set_script_timeout(60)
        for page in pages:
            browser.get(page.as_uri())
            overflow = browser.execute_script(
                "const m = document.querySelector('main'); return m.scrollWidth - m.clientWidth")
            assert overflow <= 1, f"{page.name}: the main column overflows by {overflow} px"
            # figures are checked for legible text assuming this output width (vidattn.report.plotting),
            # and drawn at PIXEL_DENSITY pixels per CSS pixel (200 dpi; at least 150)
            shown = browser.execute_script(
                "return [...document.querySelectorAll('main img')].filter(i => i.src.endsWith('.png'))"
                ".map(i => [i.naturalWidth, i.clientWidth])")
            for natural, width in shown:
                assert width >= min(natural / PIXEL_DENSITY, OUTPUT_WIDTH_PX) - 2, (
                    f"{page.name}: a {natural}-px figure is shown {width} px wide, narrower than the "
                    f"{OUTPUT_WIDTH_PX} px its text was checked for")
                assert natural >= 1.5 * width, f"{page.name}: a figure is drawn at {natural} px for {width} px shown"
            if not browser.execute_script("return document.querySelectorAll('.math').length"):
                assert page.stem in ("00_front_page", "07_head_to_head", "90_full_size", "95_reproducibility",
                                     "96_cluster", "99_scorecard"), f"{page.name} shows no math"
                continue
            ready = browser.execute_async_script(
                "const done = arguments[0];"
                "if (!window.MathJax || !MathJax.startup) { done('no MathJax'); return; }"
                "MathJax.startup.promise.then(() => done('ok'), e => done(String(e)));")
            assert ready == "ok", f"{page.name}: {ready}"
            typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
            raw = browser.execute_script(  # TeX left as text: \\( or $$, or $...$ from generated Markdown
                "return [...document.querySelectorAll('main p, main li, main td')].map(e => e.innerText)"
                ".filter(t => t.includes('\\\\(') || t.includes('$$') || /\\$[^$\\s][^$]{0,60}\\$/.test(t))"
                ".slice(0, 3)")
            errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length")
            browser.save_screenshot(str(tmp_path / f"{page.stem}.png"))
            assert typeset > 10, f"{page.name}: MathJax typeset only {typeset} formulas"
            assert not raw, f"{page.name}: raw LaTeX left on the page: {raw}"
            assert errors == 0, f"{page.name}: MathJax could not typeset {errors} formula(s)"
            clipped = browser.execute_script(CLIPPED_MATH)
            assert not clipped, f"{page.name}: display math cut off and not scrollable: {clipped[:3]}"
    finally:
        browser.quit()


# display equations whose content leaves their box on the left (lost), or on the right without a
# scroll bar to reach it: [label or first characters, how many px]
CLIPPED_MATH = """
return [...document.querySelectorAll('main div.math')].flatMap(d => {
  const box = d.getBoundingClientRect(), c = d.querySelector('mjx-container') || d;
  const m = c.querySelector('mjx-math') || c, q = m.getBoundingClientRect();
  const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  const right = c.scrollWidth > c.clientWidth + 1 && !(scrolls(c) || scrolls(d));
  const name = d.id || (d.textContent || '').trim().slice(0, 30);
  if (q.left < box.left - 1) return [[name, Math.round(box.left - q.left), 'left']];
  if (right) return [[name, c.scrollWidth - c.clientWidth, 'right']];
  return [];
})"""

VISIBLE_CODE_SHARE = 0.25  # the most of a chapter's rendered height that visible code may take
MAX_SCREENS = 30  # the longest a chapter may be, in screens of 1280 x 1000


def visible_code_share(browser) -> float:
    """The share of the page's main column that shown code cells take (folded ones do not count)."""
    code, total = browser.execute_script(
        "const main = document.querySelector('main');"
        "const shown = [...main.querySelectorAll('.cell_input')]"
        "  .filter(e => e.offsetParent !== null && !e.closest('details:not([open])'));"
        "return [shown.reduce((s, e) => s + e.getBoundingClientRect().height, 0),"
        "        main.getBoundingClientRect().height];")
    return code / total


def test_chapters_show_at_most_a_quarter_code_and_fit_30_screens(built_book, capsys):
    """The page shows what a reader reads; the plumbing is folded or lives in the package."""
    browser = _browser()
    browser.set_window_size(1280, 1000)
    shares, screens = {}, {}
    try:
        for ch in chapters():
            if not ch.stem[:2] in {"01", "02", "03", "04", "05", "06", "07"}:
                continue
            browser.get((built_book / "book" / "_executed" / f"{ch.stem}.html").as_uri())
            shares[ch.stem] = visible_code_share(browser)
            screens[ch.stem] = browser.execute_script("return document.documentElement.scrollHeight") / 1000
    finally:
        browser.quit()
    with capsys.disabled():
        print("\nvisible code share and length in screens: "
              + ", ".join(f"{k} {shares[k]:.0%} {screens[k]:.1f}" for k in shares))
    assert len(shares) == 7 and all(0 < v <= VISIBLE_CODE_SHARE for v in shares.values()), shares
    assert all(v <= MAX_SCREENS for v in screens.values()), screens


def test_the_scorecard_links_every_claim_of_every_ledger(built_book):
    """Each ledger row on a chapter's page has an id, and the scorecard links to every one of them;
    each chapter's findings link to rows of its own ledger."""
    browser = _browser()
    try:
        ids, findings = [], {}
        for ch in chapters():
            browser.get((built_book / "book" / "_executed" / f"{ch.stem}.html").as_uri())
            rows = browser.execute_script("return [...document.querySelectorAll('table.ledger tr[id]')].map(r => r.id)")
            ids += [f"{ch.stem}.html#{r}" for r in rows]
            if rows:  # the findings' links: to rows of this ledger, and one to the ledger's heading
                links = browser.execute_script(
                    "return [...document.querySelectorAll('.admonition a[href^=\"#\"]')].map(a => a.hash.slice(1))"
                    ".map(h => [h, document.getElementById(h) ? document.getElementById(h).tagName : null])")
                findings[ch.stem] = [h for h, _ in links if h in rows]
                assert findings[ch.stem], f"{ch.stem}: the findings link no ledger row: {links}"
                assert all(tag in ("TR", "SECTION", "SPAN") for _, tag in links), f"{ch.stem}: a finding links nowhere: {links}"
        browser.get((built_book / "book" / "_executed" / "99_scorecard.html").as_uri())
        links = browser.execute_script(
            "return [...document.querySelectorAll('table.claims a')].map(a => a.getAttribute('href'))")
    finally:
        browser.quit()
    assert len(findings) == 6, f"five paper chapters and the head-to-head have a ledger: {sorted(findings)}"
    assert sorted(links) == sorted(ids), f"missing from the scorecard: {sorted(set(ids) - set(links))[:5]}"
