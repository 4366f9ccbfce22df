# lstmkit: two commands on a fresh machine -- `make demo` and `make test`.
#
# TORCH_SPEC is the pip requirement for PyTorch. The default pins the CPU build that this
# project's machines carry locally; with a GPU, override it, e.g.
#   make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lstmkit-installed
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test test-all test-cuda bench bench-check bench-train clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(PY) -m lstmkit demo --overwrite

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

# The CUDA side (tests/cuda): skips cleanly without a CUDA device. With one, install a CUDA build of
# torch (TORCH_SPEC above). benchmarks/cuda_check.sh runs these plus the GPU benchmarks.
test-cuda: setup
	$(PY) -m pytest -q -m cuda tests/cuda

# The analysis of docs/benchmarks.md and docs/results.md: each command prints its table and writes
# JSON, CSV, plots and report.md under benchmarks/results/ (about 40 minutes on 2 cores).
BENCH_OUT ?= benchmarks/results
bench: setup
	$(PY) -m lstmkit bench speed --out $(BENCH_OUT)/speed
	$(PY) -m lstmkit bench scaling --out $(BENCH_OUT)/scaling
	$(PY) -m lstmkit bench latency --out $(BENCH_OUT)/latency
	$(PY) -m lstmkit bench images --out $(BENCH_OUT)/images
	for task in digits mnist1d italypower; do \
		$(PY) -m lstmkit bench compare --task $$task --out $(BENCH_OUT)/compare-$$task || exit 1; done

# The speed bars of docs/benchmarks.md (lstmkit/bench/speed_bars.json) on (100,32,8,128) and
# (500,16,1,64), both allocator settings: exits non-zero when a row exceeds its bar (~1-2 min).
# For contributors touching lstmkit.nn; not run in CI (timings are too noisy there).
bench-check: setup
	$(PY) -m lstmkit bench speed --check --out $(BENCH_OUT)/speed-check

bench-train: setup
	$(PY) benchmarks/train_overhead.py --epochs 20 --repeats 3 --out benchmarks/results/train_overhead.json

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache runs
