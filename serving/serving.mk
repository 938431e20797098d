# Model server targets; the top-level Makefile includes this file (`include serving/serving.mk`).
# The serving environment is separate from .venv: kserve needs pandas >= 2.2, which TFX forbids.
# Uses $(PYTHON), $(UV), $(UV_VENV) and the $(UV) bootstrap rule from the Makefile.

SERVING_VENV := .venv-serving
SERVING_PY := $(SERVING_VENV)/bin/python
SERVING_LOCK := serving.lock
SERVING_RUNTIME_LOCK := serving-runtime.lock
SERVE_REGISTRY ?= $(OUT)/registry
SERVE_MODEL ?= model
SERVE_PORT ?= 8080
SERVE_BACKEND ?= onnx
SERVE_ARGS ?=

.PHONY: setup-serving lock-serving serve test-serving bench-serving

$(SERVING_VENV)/.installed: $(SERVING_LOCK) | $(UV)
	$(UV) venv --seed --allow-existing --python 3.11 $(SERVING_VENV)
	$(UV) pip sync --compile-bytecode --python $(SERVING_PY) $(SERVING_LOCK)
	touch $@

setup-serving: $(SERVING_VENV)/.installed

lock-serving: | $(UV)
	$(UV) pip compile serving/requirements-test.in $(LOCK_FLAGS) -o $(SERVING_LOCK)
	$(UV) pip compile serving/requirements.in $(LOCK_FLAGS) -c $(SERVING_LOCK) -o $(SERVING_RUNTIME_LOCK)

# Serve the champion of `make run` (OUT/registry/model/CHAMPION.json) on http://localhost:8080.
serve: setup-serving
	@test -f $(SERVE_REGISTRY)/$(SERVE_MODEL)/CHAMPION.json || \
	  { echo "no champion in $(SERVE_REGISTRY)/$(SERVE_MODEL): run 'make run' first"; exit 1; }
	$(SERVING_PY) -m serving.model_server --model_name=$(SERVE_MODEL) \
	  --model_dir=$(SERVE_REGISTRY)/$(SERVE_MODEL) --http_port=$(SERVE_PORT) \
	  --backend=$(SERVE_BACKEND) --prediction_log=$(OUT)/serving/predictions.jsonl $(SERVE_ARGS)

test-serving: setup-serving
	$(SERVING_PY) -m pytest serving/tests $(PYTEST_ARGS)

# Server rps and p50/p99 at concurrency 1/8/32 against in-process inference, SavedModel vs ONNX
# (tests/benchmarks/bench_serving.py, ~4 min); a stand-in model when there is no champion.
bench-serving: setup-serving
	$(SERVING_PY) tests/benchmarks/bench_serving.py --registry $(SERVE_REGISTRY) --model $(SERVE_MODEL) \
	  --out out/bench/bench_serving.json

# `make bench` runs bench_serving.py too (tests/benchmarks/run_all.py), with the serving env.
bench: setup-serving
