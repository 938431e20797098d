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
# The images' locks: the same pins as $(LOCK) without the test/dev extras; train adds CUDA wheels.
RUNTIME_LOCK := pipeline-runtime.lock
GPU_LOCK := train-gpu.lock

# TFT and TFMA need Keras 2; quiet TensorFlow's C++ start-up log.
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::FutureWarning,ignore::DeprecationWarning

# make run DATA=file.csv LABEL=col LABEL_KIND=auto|binary|multiclass|regression SLICES=a,b LABEL_THRESHOLD=x
#   KEY=id-column OUT=dir EPOCHS=n CONFIG=file.yaml DEPLOY_TARGET=local
#   RUNNER=docker: every task in its image (`make images` first), only OUT mounted
DATA ?=
LABEL ?=
LABEL_KIND ?=
SLICES ?=
LABEL_THRESHOLD ?=
KEY ?=
EPOCHS ?=
CONFIG ?=
DEPLOY_TARGET ?=
OUT ?= out/run
RUNNER ?= subprocess
PYTEST_ARGS ?=

include serving/serving.mk

.PHONY: help setup lock run compile test test-all test-containers images bench clean

help:
	@echo "make setup    build .venv from $(LOCK) with uv"
	@echo "make run      train on AER/HMDA locally with kfp.local (DATA=, LABEL=, LABEL_KIND=, SLICES=, LABEL_THRESHOLD=, OUT=,"
	@echo "             RUNNER=docker: each task in its image)"
	@echo "make images   build the pipeline, train (CUDA) and serving images (IMAGE_REPOSITORY=, PUSH=1)"
	@echo "make test-containers  the pipeline in its images, end to end (builds them first)"
	@echo "make test     the default test suite (fast + e2e; not slow, gpu tests skip without a GPU)"
	@echo "make test-all every test, slow ones included"
	@echo "make test-serving / make serve   the model server (own env: .venv-serving from serving.lock)"
	@echo "make compile  write pipelines/compiled/{training,retraining}_pipeline.yaml"
	@echo "make bench    benchmarks -> out/bench/*.json"
	@echo "make deploy   canary rollout of the last pushed model against the previous one (TARGET=local)"
	@echo "make rollback REASON=...  kill switch: 100% to the previous version now, recorded"
	@echo "make prometheus  install Prometheus (the canary-metrics tests scrape the local splitter)"
	@echo "make browser  install headless Chromium (report tests in the browser, docs screenshots)"
	@echo "make monitor  drift of the served traffic vs the champion's training stats (LABELS= for live metrics)"
	@echo "make retrain  the retraining pipeline: monitor LOG=, then on drift train on DATA= and canary it"
	@echo "make retrain-demo  serve the champion, send shifted traffic, watch retraining and its canary"
	@echo "make lock     re-resolve $(LOCK) from setup.cfg"

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: $(LOCK) setup.cfg | $(UV)
	$(UV) venv --seed --allow-existing --python 3.11 $(VENV)
	$(UV) pip sync --compile-bytecode --python $(PY) $(LOCK)
	$(UV) pip install --python $(PY) --no-deps -e .
	touch $@

setup: $(VENV)/.installed

LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
lock: | $(UV)
	$(UV) pip compile setup.cfg --extra test --extra dev $(LOCK_FLAGS) -o $(LOCK)
	$(UV) pip compile setup.cfg $(LOCK_FLAGS) -c $(LOCK) -o $(RUNTIME_LOCK)
	$(UV) pip compile setup.cfg --extra gpu $(LOCK_FLAGS) -c $(LOCK) -o $(GPU_LOCK)

# setup-serving: infra-validate loads the model in the serving environment before push
run: setup setup-serving
	$(PY) -m pipelines.run_local --out $(OUT) --runner $(RUNNER) \
	  $(if $(CONFIG),--config $(CONFIG)) $(if $(DATA),--data $(DATA)) $(if $(LABEL),--label $(LABEL)) \
	  $(if $(LABEL_KIND),--label-kind $(LABEL_KIND)) \
	  $(if $(SLICES),--slices $(SLICES)) $(if $(LABEL_THRESHOLD),--label-threshold $(LABEL_THRESHOLD)) \
	  $(if $(KEY),--key $(KEY)) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(DEPLOY_TARGET),--deploy-target $(DEPLOY_TARGET))

# IMAGE_REPOSITORY names the registry path in the compiled files and the built images alike;
# VERTEX_SPEC=file.yaml sets the Vertex form's machines (components/common/config.py:VertexSpec).
IMAGE_REPOSITORY ?= $(KFP_IMAGE_REPOSITORY)
VERTEX_SPEC ?=
export KFP_IMAGE_REPOSITORY := $(IMAGE_REPOSITORY)
compile: setup
	$(PY) -m pipelines.compile $(if $(VERTEX_SPEC),--vertex-spec $(VERTEX_SPEC))

# make images [IMAGES=pipeline,serving] [PUSH=1] [BASE_IMAGE=...]: starts a Docker engine if none
# answers; sizes, build times and digests in out/images/images.json.
IMAGES ?= pipeline,train,serving
PUSH ?=
BASE_IMAGE ?=
images:
	python3 components/images/build.py --images $(IMAGES) $(if $(PUSH),--push) \
	  $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))

# The deploy and notebook tests start real model servers (.venv-serving); report tests render
# pages in headless Chromium (`make browser`); the canary-metrics tests scrape with a real Prometheus
# (`make prometheus`).
test: setup setup-serving browser prometheus
	$(PY) -m pytest -m "not slow and not containers" $(PYTEST_ARGS)

# The pipeline in its containers (kfp.local DockerRunner), on images built from this tree.
test-containers: setup setup-serving images
	$(PY) -m pytest -m containers $(PYTEST_ARGS)

test-all: setup setup-serving browser prometheus
	$(PY) -m pytest $(PYTEST_ARGS)

# The containerized pipeline and image figures need `make images` first.
bench: setup
	$(PY) tests/benchmarks/run_all.py --out out/bench

# make deploy TARGET=local: a canary rollout (10% → 50% → 100%, analysed at each step, rolled back
# on a breach) of the last pushed model in $(OUT)/registry against the one pushed before it, on
# local model-server processes; the last run's held-out eval split (else the HMDA sample) is
# replayed as traffic. Reports in $(OUT)/deploy; a second run with the same champion changes nothing.
# The splitter sends every answered call to a local log sink, as KServe's payload logger does, which
# writes $(OUT)/deploy/predictions: `make monitor MONITOR_LOG=$(OUT)/deploy/predictions` reads it.
TARGET ?= local
DEPLOY_DATA ?= $(or $(lastword $(sort $(wildcard $(OUT)/pipeline_root/*/ingest/examples))),tests/fixtures/hmda_sample.csv)
DEPLOY_ARGS ?=
.PHONY: deploy
deploy: setup setup-serving
	$(PY) -m components.deploy --target $(TARGET) --registry $(OUT)/registry --model $(SERVE_MODEL) \
	  --data $(DEPLOY_DATA) --out $(OUT)/deploy --state-dir $(OUT)/deploy/state \
	  $(if $(filter local,$(TARGET)),--log-sink-output $(abspath $(OUT))/deploy/predictions) $(DEPLOY_ARGS)

# make rollback REASON="..." [BY=name] [TARGET=local]: the kill switch. 100% of traffic to the
# previous version now (a canary out is removed; else the registry's previous version is deployed
# and named champion); recorded in $(OUT)/registry/<model>/incidents.jsonl; a second pull is a no-op.
# Cluster targets take DEPLOY_ARGS such as --kserve-namespace ml-models.
REASON ?=
BY ?=
.PHONY: rollback
rollback: setup
	@test -n "$(REASON)" || { echo 'make rollback needs REASON="why" (it is recorded)'; exit 2; }
	$(PY) -m components.deploy.kill_switch --target $(TARGET) --registry $(OUT)/registry --model $(SERVE_MODEL) \
	  --state-dir $(OUT)/deploy/state --reason "$(REASON)" $(if $(BY),--by "$(BY)") $(DEPLOY_ARGS)

# make monitor: drift of the served traffic (the prediction log `make serve` writes) against the
# champion's training statistics; prints the table and the decision (ok/warn/act; exit 0 whatever
# it is). LABELS=file.csv (prediction_id,label[,timestamp]) adds live accuracy/AUC/FNR/FPR,
# per FEEDBACK_SLICES=col,... Reports in $(OUT)/monitor.
MONITOR_LOG ?= $(OUT)/serving/predictions.jsonl
LABELS ?=
FEEDBACK_SLICES ?=
MONITOR_ARGS ?=
.PHONY: monitor
monitor: setup
	$(PY) -m components.monitor --log $(MONITOR_LOG) --registry $(OUT)/registry --model $(SERVE_MODEL) \
	  --out $(OUT)/monitor $(if $(LABELS),--labels $(LABELS)) \
	  $(if $(FEEDBACK_SLICES),--slices $(FEEDBACK_SLICES)) $(MONITOR_ARGS)

# make retrain LOG=<prediction log> DATA=<newer labelled data> LABEL=col [RETRAIN_ON=act|warn|always]:
# the retraining pipeline locally: the drift monitor on the log, then (when it reaches RETRAIN_ON)
# the training pipeline on DATA, gated against the champion and canary-deployed on the local
# target (DEPLOY_TARGET=none to stop at the push). Summary in $(OUT)/retrain_summary.json.
LOG ?= $(OUT)/deploy/state/logs
RETRAIN_ON ?= act
.PHONY: retrain retrain-demo
retrain: setup setup-serving
	@test -n "$(DATA)" || { echo "make retrain needs DATA= (the newer labelled rows) and LABEL="; exit 2; }
	$(PY) -m pipelines.run_retraining --out $(OUT) --log $(LOG) --retrain-on $(RETRAIN_ON) \
	  --deploy-target $(or $(DEPLOY_TARGET),local) --data $(DATA) $(if $(LABEL),--label $(LABEL)) \
	  $(if $(SLICES),--slices $(SLICES)) $(if $(CONFIG),--config $(CONFIG)) $(if $(EPOCHS),--epochs $(EPOCHS))

# make retrain-demo (after `make run`): serve the champion locally, send it traffic with loan-to-value
# ratios up 30%, watch the monitor act, retrain on the shifted data and canary the new model.
SHIFT ?= lvrat=1.3
retrain-demo: setup setup-serving
	$(PY) -m pipelines.retraining_demo --out $(OUT) --shift $(SHIFT) $(if $(CONFIG),--config $(CONFIG)) \
	  $(if $(EPOCHS),--epochs $(EPOCHS))

# Headless Chromium (Debian package) for tests/test_reports_browser.py and docs screenshots.
.PHONY: browser
browser:
	@command -v chromium >/dev/null || ( SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium )
	@chromium --version

# Prometheus (Debian package) on loopback: components/deploy/tests/test_prometheus.py.
.PHONY: prometheus
prometheus:
	@command -v prometheus >/dev/null || ( SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends prometheus )
	@prometheus --version 2>&1 | head -1

clean:
	rm -rf out local_outputs .pytest_cache
