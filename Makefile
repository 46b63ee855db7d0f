# Developer shortcuts. `make install` pins torch to the CPU build used by CI; on a GPU
# machine install your own torch first and use `pip install -e ".[dev]"` instead.
PYTHON ?= python3

.PHONY: install example test test-cluster notebooks protos benchmarks ci

install:
	$(PYTHON) -m pip install torch==2.13.0 -e ".[dev]"

example:
	$(PYTHON) examples/titanic_ablation.py

test:
	$(PYTHON) -m pytest -q

test-cluster:
	$(PYTHON) -m pytest -q -m cluster

notebooks:
	$(PYTHON) examples/make_notebooks.py

protos:
	$(PYTHON) maggy/core/rpc/codegen.py

benchmarks:
	for b in benchmarks/*.py; do $(PYTHON) $$b || exit 1; done

ci:
	bash .ci/run
