# Two entry points: `make book` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= small
NB ?= notebooks/01_data_suites.md
EXECUTED := book/_executed
REFERENCES := tests/reference

.PHONY: book test install chapter chapters html publish retrain verify references clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[book,test]'
	touch $@

install: $(VENV)/.installed

## run one chapter:  make chapter NB=notebooks/01_data_suites.md PROFILE=smoke
chapter: install
	$(PY) -m vidattn.cli run $(NB) $(EXECUTED)/$(notdir $(basename $(NB))).ipynb -p profile $(PROFILE)

## run every chapter for one profile into book/_executed
chapters: install
	$(PY) -m vidattn.cli run-all --profile $(PROFILE) --out-dir $(EXECUTED)

## render the executed chapters (warnings are errors)
html: install
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

## build the book: run the chapters (records are reused) and render them
book: chapters html
	@echo "book: $(CURDIR)/_build/html/index.html"

## push the built HTML to the gh-pages branch (what .github/workflows/book.yml deploys on CI)
publish: book
	$(VENV)/bin/ghp-import --no-jekyll --push --force _build/html

## unit tests + nbval on the committed smoke reference notebooks (tests/reference) + a smoke book build.
## nbval runs the reference notebooks in order in one process (cells share a kernel, and the scorecard
## reads the ledgers the chapters write) while the other tests spread over pytest-xdist workers
test: install
	rm -rf _build/test-records && mkdir -p _build
	VIDATTN_RECORDS_DIR=$(CURDIR)/_build/test-records $(PY) -m pytest tests/reference --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 -p no:cacheprovider -q > _build/nbval.log 2>&1 & nbval=$$!; \
	VIDATTN_RECORDS_DIR=$(CURDIR)/_build/test-records $(PY) -m pytest tests -p no:cacheprovider --durations=10 -n auto --dist worksteal; \
	rc=$$?; wait $$nbval; nrc=$$?; echo "--- nbval on tests/reference:"; cat _build/nbval.log; \
	test $$rc -eq 0 && test $$nrc -eq 0

## regenerate the smoke reference notebooks nbval compares against (after editing a chapter)
references: install
	rm -rf _build/ref-records
	VIDATTN_RECORDS_DIR=$(CURDIR)/_build/ref-records $(PY) -m vidattn.cli run-all --profile smoke --out-dir $(REFERENCES) -p seeds 2

## re-run every small-profile experiment from scratch and drop records that no longer match
retrain: install
	VIDATTN_RETRAIN=1 $(PY) -m vidattn.cli run-all --profile small --out-dir $(EXECUTED)
	$(PY) -m vidattn.cli store stale --delete

## re-run a sample of committed records from scratch: exact in their own environment, else against
## the spread of their row over seeds (said so); `vidattn store verify --claim` re-checks a verdict
verify: install
	$(PY) -m vidattn.cli store verify --sample 2

clean:
	rm -rf _build $(EXECUTED)
