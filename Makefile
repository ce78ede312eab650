# Thin wrappers: each target is one `python -m loadlab ...` call (or pytest).
# The first target run on a fresh machine creates .venv and installs what is missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
LOADLAB := $(PY) -m loadlab

.PHONY: setup test loadtest run sweep ui up down status verify lint micro bench evidence

setup: $(STAMP)
	@infra/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[services,load,dev]'
	@rm -f $(VENV)/.installed-*; touch $@

test: setup
	$(PY) -m pytest

loadtest: setup
	$(LOADLAB) loadtest $(ARGS)

run: setup
	$(LOADLAB) run $(ARGS)

# The stack is started if it is not up, and left running (make down stops it).
sweep: setup
	$(LOADLAB) up
	$(LOADLAB) sweep $(ARGS)

# The article's experiments at its sizes (about 6 minutes here); ARGS="--quick" for small ones.
micro: setup
	$(LOADLAB) micro $(ARGS)

# loadlab's generator against plain Locust on the same stack: CPU per request and per run
# (about 5 minutes here); ARGS="--quick" for two short passes.
bench: setup
	$(LOADLAB) bench $(ARGS)

# Every committed report made again, in order, from a clean tree (about two hours here);
# ARGS="--list" shows them, ARGS="--only NAME..." runs some.
evidence: setup
	$(LOADLAB) evidence $(ARGS)

VARIANT ?= flask_sync
SCENARIO ?= select_update
ui: setup
	$(LOADLAB) ui --variant $(VARIANT) --scenario $(SCENARIO) $(ARGS)

up: setup
	$(LOADLAB) up $(ARGS)

down: setup
	$(LOADLAB) down $(ARGS)

status: setup
	$(LOADLAB) status $(ARGS)

verify: setup
	$(LOADLAB) verify $(ARGS)

lint: setup
	$(PY) -m ruff check src services tests locustfiles
	$(PY) -m ruff format --check src services tests locustfiles
	$(PY) -m mypy src services
