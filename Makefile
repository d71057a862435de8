# Two entry points (see README): `make serve` and `make test`. Both install into .venv.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: serve demo test lint typecheck unit install

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip uv
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(VENV)/bin/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	./scripts/serve-demo

demo: $(STAMP)
	$(VENV)/bin/opentse demo --data ./opentse-data --transactions 10 --export ./opentse-data/demo-export.tar

lint: $(STAMP)
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# bytecode written once: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
# process the tests start (servers, CLI runs) compiled opentse's modules again, ~0.4 s each
unit: $(STAMP)
	./scripts/ensure-chromium
	$(VENV)/bin/python -m compileall -q src
	$(VENV)/bin/pytest -q -n 2

test: lint typecheck unit
