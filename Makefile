# `make demo` and `make test` do all set-up themselves: a virtual environment in .venv/ with the exact
# pins of requirements.txt, then the compiled MetaSeg metrics, numpy 1.23's argsort and the float32
# cell passes (both for --protocol smiyc). A second run skips what is done.
# `make gpu-check PY=python3` (any target) runs and builds with an interpreter that already has the
# packages instead, without the virtual environment: a machine without a package index, such as a lent GPU
# machine (docs/performance.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(if $(filter $(VENV)/bin/python,$(PY)),$(VENV)/.installed)
EXT := $(shell $(if $(INSTALLED),$(PYTHON),$(PY)) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
METRICS := src/metaseg/metrics$(EXT)
ARGSORT := src/evaluation/legacy_argsort$(EXT)
CELLS := src/evaluation/float_cells$(EXT)

.PHONY: setup test demo bench clean gpu-check rehearsal

setup: $(METRICS) $(ARGSORT) $(CELLS)

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(METRICS): src/metaseg/metrics.pyx $(INSTALLED)
	$(PY) -m Cython.Build.Cythonize --inplace -3 --force src/metaseg/metrics.pyx

$(ARGSORT): src/evaluation/legacy_argsort.pyx $(INSTALLED)
	$(PY) -m Cython.Build.Cythonize --inplace -3 --force src/evaluation/legacy_argsort.pyx

$(CELLS): src/evaluation/float_cells.pyx $(INSTALLED)
	$(PY) -m Cython.Build.Cythonize --inplace -3 --force src/evaluation/float_cells.pyx

test: setup
	$(PY) -m pytest -q tests

demo: setup
	$(PY) demo.py

# the benchmarks with a reference in the same run; demo_seeds.py (five whole demos), rehearsal.py and
# gpu_check.py have their own targets or commands, as each takes half an hour or a GPU
LONG_BENCHES := bench/demo_seeds.py bench/rehearsal.py bench/gpu_check.py
bench: setup
	for b in $(filter-out $(LONG_BENCHES),$(wildcard bench/*.py)); do $(PY) $$b || exit 1; done

# every CUDA path in one table, at most 5 minutes on one GPU; one line and exit 0 without CUDA
gpu-check: setup
	$(PY) bench/gpu_check.py

# every stage on the full-resolution demo world, extrapolated to the real datasets (about 25 min on 2 cores)
rehearsal: setup
	$(PY) bench/rehearsal.py

clean:
	rm -rf build $(METRICS) src/metaseg/metrics.c $(ARGSORT) src/evaluation/legacy_argsort.c $(CELLS) src/evaluation/float_cells.c
