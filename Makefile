# The two commands of the README: `make book` and `make test`.
# Both create or refresh one virtual environment, .venv/, from constraints.txt.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILD := _build
JB := $(VENV)/bin/jupyter-book
JBFLAGS := -W -n --keep-going
# Notebooks and tests run with one BLAS thread, as tools/execute_notebooks.py does.
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

.PHONY: book test html notebooks student-book lock clean vs-dapper accuracy nbval nbval-reduced-isa

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## book: execute notebooks whose source changed, build the HTML book, say where it is
book: $(STAMP)
	$(PY) tools/execute_notebooks.py
	$(MAKE) --no-print-directory html
	@echo "The book is at $(CURDIR)/$(BUILD)/html/index.html"

## html: build the HTML from the stored notebook outputs (no execution), zero warnings
html: $(STAMP)
	$(JB) build . $(JBFLAGS) --path-output . --builder html

## notebooks: re-execute every notebook (after a change in dalib)
notebooks: $(STAMP)
	$(PY) tools/execute_notebooks.py --all

NBVAL := $(PY) -m pytest --nbval --nbval-current-env \
	--nbval-sanitize-with tools/nbval_sanitize.cfg -p no:cacheprovider

## test: unit tests on every backend, notebook checks (native and on a reduced instruction
## set), the book and student builds, a browser test
test: $(STAMP)
	$(PY) -m pytest tests --ignore=tests/browser
	$(MAKE) --no-print-directory nbval nbval-reduced-isa
	rm -rf $(BUILD)/html $(BUILD)/.doctrees $(BUILD)/jupyter_execute
	$(MAKE) --no-print-directory html
	$(MAKE) --no-print-directory student-book
	$(PY) -m pytest -p no:cacheprovider tests/browser

## nbval: re-execute every notebook and compare with its stored outputs
nbval: $(STAMP)
	$(NBVAL) book/*.ipynb

## nbval-reduced-isa: re-check the stored outputs as on an SSE4.2-level x86-64 processor
nbval-reduced-isa: $(STAMP)
	@if [ "$$(uname -m)" = x86_64 ]; then \
		PYTHON=$(PY) tools/reduced_isa.sh $(NBVAL) book/*.ipynb; \
	else echo "nbval-reduced-isa: skipped, the emulation needs an x86-64 processor"; fi

## student-book: the book without solutions, in _build/student/_build/html
student-book: $(STAMP)
	$(PY) tools/execute_notebooks.py --student $(BUILD)/student
	cd $(BUILD)/student && ../../$(JB) build . $(JBFLAGS) --path-output . --builder html
	@echo "The student edition is at $(CURDIR)/$(BUILD)/student/_build/html/index.html"

## vs-dapper: time dalib against DAPPER side by side (QUICK=1 for the short version)
# DAPPER lives in its own environment; dapper >= 1.7.2 needs Python >= 3.12.
DAPPER_PYTHON ?= $(shell (pyenv prefix $$(pyenv latest 3.12) 2>/dev/null || dirname $$(dirname $$(command -v python3.12))) | head -1)/bin/python3.12
DAPPER_VENV := benchmarks/.venv-dapper

$(DAPPER_VENV)/.installed: benchmarks/dapper-requirements.txt
	rm -rf $(DAPPER_VENV)
	$(DAPPER_PYTHON) -m venv $(DAPPER_VENV)
	$(DAPPER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	$(DAPPER_VENV)/bin/python -m pip check
	touch $@

vs-dapper: $(STAMP) $(DAPPER_VENV)/.installed
	$(PY) benchmarks/vs_dapper.py $(if $(QUICK),--quick)

## accuracy: dalib's RMSE against published twin-experiment tables (QUICK=1: short runs)
accuracy: $(STAMP)
	$(PY) benchmarks/accuracy.py $(if $(QUICK),--quick)

## lock: re-resolve constraints.txt from pyproject.toml in a throw-away environment
lock:
	rm -rf $(BUILD)/lockenv && $(PYTHON) -m venv $(BUILD)/lockenv
	$(BUILD)/lockenv/bin/pip install --quiet --upgrade "pip==25.3"
	$(BUILD)/lockenv/bin/pip install --quiet -e ".[dev]"
	( echo "# Exact versions of every package of the book/test environment (pip constraints)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BUILD)/lockenv/bin/pip freeze --exclude-editable ) > constraints.txt

clean:
	rm -rf $(BUILD)
