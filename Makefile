# The README's two commands: `make demo` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY_VERSION ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
export GIT_AUTHOR_NAME ?= Model Freshness
export GIT_AUTHOR_EMAIL ?= freshness@localhost
export GIT_COMMITTER_NAME ?= $(GIT_AUTHOR_NAME)
export GIT_COMMITTER_EMAIL ?= $(GIT_AUTHOR_EMAIL)
export DVC_NO_ANALYTICS := 1

.PHONY: help demo setup binaries kueue promtool chromium iproute2 lint test test-setup test-fast cluster-up cluster-down clean

help:
	@echo "make demo       set up, then run the whole loop on a local control plane with real training"
	@echo "make test       set up everything, then lint and run the whole suite (cluster tests included)"
	@echo "make test-fast  the suite without cluster and slow tests"
	@echo "make lint       ruff, mypy and the import contracts"
	@echo "make cluster-up / cluster-down   the local control plane for poking around by hand"

# uv resolves to the same versions as pip (checked: identical `pip freeze`) but downloads in
# parallel and keeps a cache (~/.cache/uv) where pip's kept nothing: with torch's CUDA wheels, 34 s
# from an empty cache (without bytecode) against 343 s for pip. pip is the fallback if uv fails.
# --compile-bytecode: pip writes .pyc files at install and uv does not; where PYTHONDONTWRITEBYTECODE
# is set (as on this project's machines) every process would then compile torch, pandas and Evidently from
# source at each start (importing torch, pandas, Evidently, scikit-learn and DVC: 21 s without, 16 s with).
PROJECT_EXTRAS := '.[operator,trainer,serve,dev]'
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PY_VERSION) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet 'uv>=0.5,<1'
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e $(PROJECT_EXTRAS) \
	  || $(PY) -m pip install --quiet -e $(PROJECT_EXTRAS)
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) binaries promtool chromium iproute2

binaries:
	@bash hack/build-binaries.sh >/dev/null

# Kueue (tests/operator/test_kueue.py): `make test` builds it at nice 19 beside the suite, from the
# session's start (tests/conftest.py), and its tests wait for it; the demo does not need it.
kueue:
	@bash hack/build-binaries.sh kueue >/dev/null

promtool:
	@bash hack/install-promtool.sh

chromium:
	@bash hack/apt-install.sh chromium chromium

iproute2:
	@bash hack/apt-install.sh ip iproute2

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# `make demo VENV=<an existing environment>` uses that environment as it is, installing nothing
# into it, with this checkout's packages first on PYTHONPATH. The demo test runs a clone that way
# against the project's .venv: an editable install from the clone would repoint .venv at a
# temporary folder (edits here silently ignored, then a broken venv once the folder is gone).
SRC_PATH := $(CURDIR)/contract:$(CURDIR)/operator:$(CURDIR)/trainer:$(CURDIR)
DEMO_INSTALL := $(if $(filter command line,$(origin VENV)),,$(STAMP))

demo: $(DEMO_INSTALL) binaries promtool iproute2
	PYTHONPATH=$(SRC_PATH)$(if $(PYTHONPATH),:$(PYTHONPATH)) $(PY) -m hack.demo $(DEMO_ARGS)

test: test-setup
	$(PY) -m pytest

# What `make test` needs before pytest, in two lanes at once (hack/test-setup.sh): the Go builds
# beside the Python install, the Debian packages and lint.
test-setup:
	@bash hack/test-setup.sh $(STAMP) promtool chromium iproute2 lint

test-fast: $(STAMP)
	$(PY) -m pytest -m "not cluster and not slow"

cluster-up: $(STAMP) binaries
	$(PY) -m hack.localcluster up

cluster-down:
	$(PY) -m hack.localcluster down

clean: cluster-down
	rm -rf $(VENV) .localcluster
