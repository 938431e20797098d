# Fresh machine: `make run` (train on AER/HMDA) and `make test`. Both build the environment first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
LOCK := pipeline.lock

# TFT and TFMA need Keras 2; quiet TensorFlow's C++ start-up log.
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::FutureWarning,ignore::DeprecationWarning

# make run DATA=file.csv LABEL=col SLICES=a,b LABEL_THRESHOLD=x OUT=dir EPOCHS=n CONFIG=file.yaml
DATA ?=
LABEL ?=
SLICES ?=
LABEL_THRESHOLD ?=
EPOCHS ?=
CONFIG ?=
OUT ?= out/run
PYTEST_ARGS ?=

include serving/serving.mk

.PHONY: help setup lock run compile test test-all bench clean

help:
	@echo "make setup    build .venv from $(LOCK) with uv"
	@echo "make run      train on AER/HMDA locally with kfp.local (DATA=, LABEL=, SLICES=, LABEL_THRESHOLD=, OUT=)"
	@echo "make test     the default test suite (fast + e2e; not slow, gpu tests skip without a GPU)"
	@echo "make test-all every test, slow ones included"
	@echo "make test-serving / make serve   the model server (own env: .venv-serving from serving.lock)"
	@echo "make compile  write pipelines/compiled/training_pipeline.yaml"
	@echo "make bench    benchmarks -> out/bench/*.json"
	@echo "make lock     re-resolve $(LOCK) from setup.cfg"

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: $(LOCK) setup.cfg | $(UV)
	$(UV) venv --seed --allow-existing --python 3.11 $(VENV)
	$(UV) pip sync --python $(PY) $(LOCK)
	$(UV) pip install --python $(PY) --no-deps -e .
	touch $@

setup: $(VENV)/.installed

lock: | $(UV)
	$(UV) pip compile setup.cfg --extra test --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes -o $(LOCK)

run: setup
	$(PY) -m pipelines.run_local --out $(OUT) \
	  $(if $(CONFIG),--config $(CONFIG)) $(if $(DATA),--data $(DATA)) $(if $(LABEL),--label $(LABEL)) \
	  $(if $(SLICES),--slices $(SLICES)) $(if $(LABEL_THRESHOLD),--label-threshold $(LABEL_THRESHOLD)) \
	  $(if $(EPOCHS),--epochs $(EPOCHS))

compile: setup
	$(PY) -m pipelines.compile

test: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) tests/benchmarks/run_all.py --out out/bench

clean:
	rm -rf out local_outputs .pytest_cache
