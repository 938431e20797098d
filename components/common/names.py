"""Artifact, parameter and file names shared by components, pipelines and tests.

KFP derives artifact names from component function parameters, so the component signatures must
use these exact names; tests/test_names.py checks that they do.
"""

# Component output/input artifact names.
EXAMPLES = "examples"
STATISTICS = "statistics"
SCHEMA = "schema"
ANOMALIES = "anomalies"
VALIDATION_REPORT = "validation_report"
TRANSFORM_GRAPH = "transform_graph"
TRANSFORMED_EXAMPLES = "transformed_examples"
MODEL = "model"
TRAINING_METRICS = "training_metrics"
EVALUATION = "evaluation"
BLESSING = "blessing"
EVAL_METRICS = "eval_metrics"
FAIRNESS_REPORT = "fairness_report"
PUSHED_MODEL = "pushed_model"
PUSH_REPORT = "push_report"
MODEL_CARD = "model_card"
VALIDATION_HTML = "validation_html"
FAIRNESS_HTML = "fairness_html"
CLASSIFICATION_METRICS = "classification_metrics"
SLICED_METRICS = "sliced_metrics"
INFRA_BLESSING = "infra_blessing"
INFRA_REPORT = "infra_report"
DEPLOY_REPORT = "deploy_report"
DEPLOY_HTML = "deploy_html"
DEPLOY_METRICS = "deploy_metrics"
DEPLOYMENT = "deployment"
DRIFT_METRICS = "drift_metrics"
DRIFT_REPORT = "drift_report"
DRIFT_SUMMARY = "drift_summary"
DRIFT = "drift"

# Split names (sub-directories of an examples artifact).
TRAIN = "train"
VALIDATION = "validation"
"""Early stopping and calibration fit here; the gates judge EVAL alone."""
EVAL = "eval"
SPLITS = (TRAIN, VALIDATION, EVAL)

# Files inside artifacts.
EXAMPLES_FILE = "data.tfrecord.gz"
EXAMPLES_METADATA_FILE = "metadata.json"
SCHEMA_FILE = "schema.pbtxt"
STATS_FILE = "stats.tfrecord"
ANOMALIES_FILE = "anomalies.pbtxt"
REPORT_JSON_FILE = "report.json"
REPORT_MD_FILE = "report.md"
REPORT_HTML_FILE = "report.html"
PUSH_RESULT_FILE = "push_result.json"
DEPLOY_RESULT_FILE = "result.json"
DRIFT_RESULT_FILE = "drift.json"
FEEDBACK_RESULT_FILE = "feedback.json"
SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "model.onnx"
MODEL_INFO_FILE = "model_info.json"
BLESSING_FILE = "blessing.json"
INFRA_BLESSING_FILE = "infra_blessing.json"
LINEAGE_FILE = "lineage.json"
MODEL_CARD_JSON_FILE = "model_card.json"
MODEL_CARD_MD_FILE = "model_card.md"
CHAMPION_FILE = "CHAMPION.json"

# Registry layout: <registry>/<model_name>/versions/<version>/...
REGISTRY_VERSIONS_DIR = "versions"
# Written last into a version directory by push: only versions holding it are listed (a crashed
# push to an object store leaves a directory without it).
VERSION_COMPLETE_FILE = "_COMPLETE"
# Create-only claims, one per change of CHAMPION.json (components/push/registry.py swap_champion).
REGISTRY_CLAIMS_DIR = "champion-claims"
REGISTRY_MODEL_PARTS = (SAVED_MODEL_DIR, ONNX_FILE, TRANSFORM_GRAPH, SCHEMA_FILE, STATS_FILE)

# Task names in the compiled pipeline (the local runner finds outputs by them).
INGEST_TASK = "ingest"
VALIDATE_TASK = "validate-data"
TRANSFORM_TASK = "transform"
TRAIN_TASK = "train"
EVALUATE_TASK = "evaluate"
INFRA_VALIDATE_TASK = "infra-validate"
PUSH_TASK = "push"
DEPLOY_TASK = "deploy"
MONITOR_TASK = "monitor"

# Deploy targets (a pipeline parameter); "none" records that nothing was deployed.
DEPLOY_LOCAL, DEPLOY_KSERVE, DEPLOY_VERTEX, DEPLOY_NONE = "local", "kserve", "vertex", "none"
DEPLOY_TARGETS = (DEPLOY_LOCAL, DEPLOY_KSERVE, DEPLOY_VERTEX, DEPLOY_NONE)

# Drift monitor decisions, mildest first; the retraining pipeline retrains at or above `retrain_on`
# ("always": a scheduled run retrains whatever the monitor says).
DRIFT_OK, DRIFT_WARN, DRIFT_ACT = "ok", "warn", "act"
DRIFT_DECISIONS = (DRIFT_OK, DRIFT_WARN, DRIFT_ACT)
RETRAIN_ALWAYS = "always"

# Prediction log: requests carrying this header (warm-up, load tests) are logged with
# `"synthetic": true`, and the monitor leaves them out. serving/prediction_log.py holds the same two
# names (the serving image does not ship components/); a test keeps them equal.
SYNTHETIC_TRAFFIC_HEADER = "x-synthetic-traffic"
SYNTHETIC_FIELD = "synthetic"

# Run summary statuses.
STATUS_BLESSED = "blessed"
STATUS_NOT_BLESSED = "not_blessed"
STATUS_FAILED_VALIDATION = "failed_validation"
STATUS_FAILED_INPUT = "failed_input"
