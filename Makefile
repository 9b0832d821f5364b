# Build, test and benchmark entry points (GNU make). `make` alone lists the targets.
#
#   make book                  build the site into _build/html (PROFILE=default)
#   make book PROFILE=paper    same, with another QUADNET_PROFILE (quick|default|paper)
#   make pdf                   the whole book as a PDF, _build/latex/quadnet.pdf (needs TeX Live: .ci/run)
#   make timings               run every chapter per profile, record the times in book/timings.json
#   make test                  everything CI runs (quick profile; the browser step needs /usr/bin/chromium)
#   make bench                 benchmarks

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON         ?= python3
PROFILE        ?= default
XDIST          ?= 2
NBMAKE_TIMEOUT ?= 900
# threads per notebook when XDIST notebooks run at once: numba's parallel chain and BLAS would
# otherwise start a thread per core in every worker (on 2 cores, 4 threads: chapter 4 took 77 s
# instead of 60 s)
NB_THREADS     ?= $(shell n=$$(( $$(nproc) / $(XDIST) )); [ $$n -ge 1 ] && echo $$n || echo 1)

VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILD := _build
CACHE := $(BUILD)/.jupyter_cache
JUNIT := test-artifacts/junit

# Tools from the venv first, for every recipe and the kernels they start.
export PATH := $(abspath $(BIN)):$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))
# Notebooks need the inline backend that ipykernel picks when MPLBACKEND is unset: never pass
# an inherited MPLBACKEND (e.g. Agg) on, or figures vanish from the executed notebooks.
unexport MPLBACKEND

JB_FLAGS := -W -n --keep-going

# Execution results are cached by notebook code only, so the cache in use is tied to a key:
# the profile plus a hash of the package sources. On a new key the current cache is set
# aside under its own key, the one for the new key (if any) is brought back, and the Sphinx
# environment is dropped so every page is re-read. Switching quick <-> default is cheap;
# changing lib/ re-executes.
EXEC_KEY = $(PROFILE)-$(shell cat pyproject.toml $$(find lib -name '*.py' 2>/dev/null | LC_ALL=C sort) 2>/dev/null | sha256sum | cut -c1-12)

# MathJax 3 is served from the site itself, never from a CDN: the npm package `mathjax`, pinned
# by version and by the registry's sha512 integrity, is unpacked under $(BUILD)/vendor before every
# build. _config.yml lists $(MATHJAX_SITE) in html_extra_path, so Sphinx copies it to the site root
# (_build/html/_static/mathjax) and `mathjax_path` points there. Only the parts a page can load
# are kept: the tex-mml-chtml component, its CHTML fonts, the TeX extensions, menu and a11y.
MATHJAX_VERSION   := 3.2.2
MATHJAX_INTEGRITY := sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==
VENDOR            := $(BUILD)/vendor
MATHJAX_SITE      := $(VENDOR)/site
MATHJAX_STAMP     := $(VENDOR)/.mathjax-$(MATHJAX_VERSION)

# uPlot, the explorer's charting library (chapter 8), comes from the npm registry the same way:
# the package `uplot`, pinned by version and sha512 integrity, is unpacked under $(UPLOT_VENDOR);
# _config.yml lists $(UPLOT_SITE) in html_extra_path, so the site serves _static/uplot/.
UPLOT_VERSION   := 1.6.32
UPLOT_INTEGRITY := sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
UPLOT_VENDOR    := $(BUILD)/vendor-uplot
UPLOT_SITE      := $(UPLOT_VENDOR)/site
UPLOT_STAMP     := $(UPLOT_VENDOR)/.uplot-$(UPLOT_VERSION)

# Steps of `make test`, in order.
TEST_STEPS := lint test-unit test-doctest test-notebooks test-book test-pdf test-site test-browser

# What ruff lints and formats (settings in pyproject.toml).
LINT_PATHS := lib tests benchmarks book

# `make timings`: profiles and chapters (docnames; empty = every notebook of _toc.yml) to measure.
TIMINGS_PROFILES ?= quick
TIMINGS_CHAPTERS ?=

PDF := $(BUILD)/latex/quadnet.pdf

# Each pytest step writes a JUnit report; `make test` closes with one line summing them all.
PYTEST_REPORT = --junitxml=$(JUNIT)/$@.xml
define JUNIT_SUMMARY
import glob, xml.etree.ElementTree as ET
t = f = s = 0
for path in sorted(glob.glob("$(JUNIT)/*.xml")):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        t += int(suite.get("tests", 0)); s += int(suite.get("skipped", 0))
        f += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
print(f"summary: {t - f - s} passed, {f} failed, {s} skipped")
endef
export JUNIT_SUMMARY

# pytest whose exit status 5 ("no tests collected") counts as success; only for steps whose
# tests may not exist yet (site and browser checks).
define pytest_may_be_empty
	$(BIN)/pytest $(1) || { rc=$$?; if [ $$rc -eq 5 ]; then echo "make: no tests collected for '$(1)'; step passes"; else exit $$rc; fi; }
endef

.PHONY: help venv .venv mathjax uplot book pdf timings test $(TEST_STEPS) format bench clean

help: ## list the targets
	@echo "Targets (variables: PROFILE=$(PROFILE), XDIST=$(XDIST), PYTHON=$(PYTHON)):"
	@grep -E '^[a-zA-Z_. -]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

venv .venv: $(STAMP) ## create .venv and install requirements.txt (again when it or pyproject.toml changes)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	@touch $@

mathjax: $(MATHJAX_STAMP) ## fetch the pinned MathJax from the npm registry into _build/vendor (needs npm)

$(MATHJAX_STAMP):
	@command -v npm >/dev/null || { echo "make: npm is needed to fetch MathJax $(MATHJAX_VERSION) from the npm registry (Debian: apt-get install npm)" >&2; exit 1; }
	@rm -rf $(VENDOR) && mkdir -p $(VENDOR)/pack $(MATHJAX_SITE)/_static/mathjax
	npm pack --silent --loglevel=error --pack-destination $(VENDOR)/pack mathjax@$(MATHJAX_VERSION) >/dev/null
	@got=$$($(PYTHON) -c 'import base64, hashlib, sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' $(VENDOR)/pack/mathjax-$(MATHJAX_VERSION).tgz); \
	if [ "$$got" != '$(MATHJAX_INTEGRITY)' ]; then \
	  echo "make: mathjax-$(MATHJAX_VERSION).tgz integrity $$got, expected $(MATHJAX_INTEGRITY)" >&2; exit 1; fi
	tar -xzf $(VENDOR)/pack/mathjax-$(MATHJAX_VERSION).tgz -C $(VENDOR)/pack
	@dest='$(abspath $(MATHJAX_SITE))/_static/mathjax'; cd $(VENDOR)/pack/package && mkdir -p "$$dest/output" && \
	  cp LICENSE es5/tex-mml-chtml.js "$$dest/" && \
	  cp -R es5/input es5/ui es5/a11y es5/sre es5/adaptors "$$dest/" && \
	  cp -R es5/output/chtml es5/output/chtml.js "$$dest/output/"
	@rm -rf $(VENDOR)/pack
	@touch $@
	@echo "make: MathJax $(MATHJAX_VERSION) in $(MATHJAX_SITE)/_static/mathjax ($$(du -sh $(MATHJAX_SITE) | cut -f1))"

uplot: $(UPLOT_STAMP) ## fetch the pinned uPlot from the npm registry into _build/vendor-uplot (needs npm)

$(UPLOT_STAMP):
	@command -v npm >/dev/null || { echo "make: npm is needed to fetch uPlot $(UPLOT_VERSION) from the npm registry (Debian: apt-get install npm)" >&2; exit 1; }
	@rm -rf $(UPLOT_VENDOR) && mkdir -p $(UPLOT_VENDOR)/pack $(UPLOT_SITE)/_static/uplot
	npm pack --silent --loglevel=error --pack-destination $(UPLOT_VENDOR)/pack uplot@$(UPLOT_VERSION) >/dev/null
	@got=$$($(PYTHON) -c 'import base64, hashlib, sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' $(UPLOT_VENDOR)/pack/uplot-$(UPLOT_VERSION).tgz); \
	if [ "$$got" != '$(UPLOT_INTEGRITY)' ]; then \
	  echo "make: uplot-$(UPLOT_VERSION).tgz integrity $$got, expected $(UPLOT_INTEGRITY)" >&2; exit 1; fi
	tar -xzf $(UPLOT_VENDOR)/pack/uplot-$(UPLOT_VERSION).tgz -C $(UPLOT_VENDOR)/pack
	cp $(UPLOT_VENDOR)/pack/package/LICENSE $(UPLOT_VENDOR)/pack/package/dist/uPlot.iife.min.js \
	  $(UPLOT_VENDOR)/pack/package/dist/uPlot.min.css $(UPLOT_SITE)/_static/uplot/
	@rm -rf $(UPLOT_VENDOR)/pack
	@touch $@
	@echo "make: uPlot $(UPLOT_VERSION) in $(UPLOT_SITE)/_static/uplot"

# The execution cache in use, switched to the one of $(EXEC_KEY) (see above). Shared by the
# HTML and the LaTeX builds, so `make pdf` after `make book` executes nothing again.
define use_exec_cache
	@mkdir -p $(BUILD)
	@key='$(EXEC_KEY)'; old=$$(cat $(BUILD)/.exec-key 2>/dev/null || true); \
	if [ "$$old" != "$$key" ]; then \
	  echo "make: execution key $${old:-none} -> $$key"; \
	  if [ -n "$$old" ] && [ -d $(CACHE) ]; then \
	    rm -rf $(CACHE).$${old%-*}-*; mv $(CACHE) $(CACHE).$$old; fi; \
	  rm -rf $(CACHE); \
	  if [ -d $(CACHE).$$key ]; then mv $(CACHE).$$key $(CACHE); fi; \
	  rm -rf $(BUILD)/.doctrees; \
	  echo "$$key" > $(BUILD)/.exec-key; \
	fi
endef

book: $(STAMP) $(MATHJAX_STAMP) $(UPLOT_STAMP) ## build the site into _build/html and the Colab notebooks into _build/colab
	$(use_exec_cache)
	QUADNET_PROFILE=$(PROFILE) $(BIN)/jupyter-book build . --path-output . $(JB_FLAGS)
	@if [ -f $(PDF) ] && [ $(PDF) -nt $(BUILD)/.exec-key ]; then cp $(PDF) $(BUILD)/html/quadnet.pdf; fi

pdf: $(STAMP) $(MATHJAX_STAMP) $(UPLOT_STAMP) ## the whole book as a PDF (LaTeX, xelatex) into _build/latex/quadnet.pdf, copied to the site
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null || { echo "make: the PDF needs xelatex and latexmk (Debian: see .ci/run)" >&2; exit 1; }
	$(use_exec_cache)
	@rm -f $(BUILD)/latex/*.tex $(PDF)
	QUADNET_PROFILE=$(PROFILE) $(BIN)/jupyter-book build . --path-output . --builder pdflatex $(JB_FLAGS)
	@test -s $(PDF) || { echo "make: no $(PDF)" >&2; exit 1; }
	@if [ -d $(BUILD)/html ]; then cp $(PDF) $(BUILD)/html/quadnet.pdf; fi
	@echo "make: $(PDF) ($$(du -h $(PDF) | cut -f1))"

timings: $(STAMP) ## run each chapter per profile (TIMINGS_PROFILES="quick default") and record it in book/timings.json
	$(BIN)/python book/_ext/timings.py $(foreach p,$(TIMINGS_PROFILES),--profile $(p)) \
	  $(if $(strip $(TIMINGS_CHAPTERS)),--chapters $(TIMINGS_CHAPTERS))

test: $(STAMP) ## run every check CI runs: unit, notebooks, site build, site and browser checks
	@rm -rf $(JUNIT)
	@set -e; for step in $(TEST_STEPS); do \
	  echo; echo "==== make $$step"; $(MAKE) --no-print-directory $$step; done
	@echo; echo "==== make test: all steps passed ($(TEST_STEPS))"
	@$(BIN)/python -c "$$JUNIT_SUMMARY"

lint: $(STAMP) ## (0) ruff check and ruff format --check (no changes made; `make format` applies them)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: $(STAMP) ## apply ruff's import sorting, safe fixes and formatting to $(LINT_PATHS)
	$(BIN)/ruff check --fix --select I $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

test-unit: $(STAMP) ## (1) unit tests of quadnet and notebook hygiene
	$(BIN)/pytest -m "not site and not browser" -n $(XDIST) $(PYTEST_REPORT) tests

test-doctest: $(STAMP) ## (2) the Examples sections of every docstring in lib/quadnet (pytest --doctest-modules)
	$(BIN)/pytest --doctest-modules -p no:cacheprovider $(PYTEST_REPORT) lib/quadnet

test-notebooks: $(STAMP) ## (3) execute every book/*.ipynb with nbmake, quick profile; prints each one's time
	QUADNET_PROFILE=quick NUMBA_NUM_THREADS=$(NB_THREADS) OMP_NUM_THREADS=$(NB_THREADS) \
	  OPENBLAS_NUM_THREADS=$(NB_THREADS) $(BIN)/pytest --nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) -n $(XDIST) --durations=0 $(PYTEST_REPORT) book/

test-book: $(STAMP) ## (4) site build with the quick profile, warnings as errors
	$(MAKE) --no-print-directory book PROFILE=quick

test-pdf: $(STAMP) ## (5) the PDF of the book, quick profile (reuses the executed notebooks of test-book)
	$(MAKE) --no-print-directory pdf PROFILE=quick

test-site: $(STAMP) ## (6) checks of the built HTML, the Colab notebooks and the PDF (pytest -m site)
	$(call pytest_may_be_empty,-m site $(PYTEST_REPORT) tests)

test-browser: $(STAMP) ## (6) every page in headless Chromium, no network (pytest -m browser)
	$(call pytest_may_be_empty,-m browser $(PYTEST_REPORT) tests)

bench: $(STAMP) ## run the benchmarks (benchmarks/run.py, then the explorer latency: benchmarks/explorer_latency.py)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/explorer_latency.py --no-baseline

clean: ## remove _build (site, doctrees, execution caches)
	rm -rf $(BUILD)
