"""KFP interface of evaluate; the work is in evaluate.py."""

from kfp import dsl
from kfp.dsl import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
    SlicedClassificationMetrics,
)

from components.common.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def evaluate(
    examples: Input[Dataset],
    model: Input[Model],
    label: str,
    slices: list,
    registry_uri: str,
    model_name: str,
    auc_floor: float,
    max_auc_regression: float,
    fairness_metric: str,
    fairness_max_gap: float,
    decision_threshold: float,
    min_slice_examples: int,
    fairness_require_assessment: bool,
    calibration_min: float,
    calibration_max: float,
    max_expected_calibration_error: float,
    baseline_auc_margin: float,
    gate_rule: str,
    beam_args: list,
    evaluation: Output[Artifact],
    blessing: Output[Artifact],
    eval_metrics: Output[Metrics],
    fairness_report: Output[Markdown],
    classification_metrics: Output[ClassificationMetrics],
    fairness_html: Output[HTML],
    sliced_metrics: Output[SlicedClassificationMetrics],
    # Regression labels' bounds (defaults: GatePolicy's); binary and multiclass ignore them.
    r2_floor: float = 0.0,
    max_r2_regression: float = 0.01,
    baseline_r2_margin: float = 0.01,
    # GatePolicy's default; False skips TFMA's intervals (faster; gate_rule point_estimate only).
    confidence_intervals: bool = True,
):
    """TFMA on the eval split vs the registry's champion → floor, regression, fairness, calibration
    and simple-baseline gates, each with its 95% interval (none with confidence_intervals off). The
    label's kind (examples' metadata) chooses the figures: binary ROC + 2x2 confusion matrix,
    multiclass the K x K confusion matrix with the class names (ClassificationMetrics, per slice in
    sliced_metrics), regression MSE/MAE/R² in eval_metrics (no classification figures)."""
    import os
    import shutil

    from components.evaluate.evaluate import (
        FAIRNESS_HTML_FILE,
        FAIRNESS_REPORT_FILE,
        OVERALL,
        classification_curves,
        log_classification_metrics,
        log_sliced_classification_metrics,
        multiclass_curves,
    )
    from components.common import label_kinds
    from components.evaluate.evaluate import evaluate as run_evaluate
    from components.common import io as fio
    from components.push.registry import read_champion

    champion = read_champion(registry_uri, model_name)
    os.makedirs(blessing.path, exist_ok=True)
    result = run_evaluate(
        examples_dir=fio.beam_location(examples),
        model_dir=fio.beam_location(model),
        evaluation_dir=fio.beam_location(evaluation),
        blessing_dir=blessing.path,
        label=label,
        slices=list(slices),
        baseline_model_dir=champion.saved_model_uri if champion else "",
        baseline_version=champion.version if champion else "",
        auc_floor=auc_floor,
        max_auc_regression=max_auc_regression,
        fairness_metric=fairness_metric,
        fairness_max_gap=fairness_max_gap,
        decision_threshold=decision_threshold,
        min_slice_examples=min_slice_examples,
        fairness_require_assessment=fairness_require_assessment,
        calibration_min=calibration_min,
        calibration_max=calibration_max,
        max_expected_calibration_error=max_expected_calibration_error,
        baseline_auc_margin=baseline_auc_margin,
        gate_rule=gate_rule,
        confidence_intervals=confidence_intervals,
        r2_floor=r2_floor,
        max_r2_regression=max_r2_regression,
        baseline_r2_margin=baseline_r2_margin,
        beam_args=list(beam_args),
    )
    for name, value in result.to_dict()["metrics"].items():
        if value is not None:
            eval_metrics.log_metric(name, value)
    blessing.metadata.update(
        {
            "blessed": result.blessed,
            "baseline_version": result.baseline_version or "",
            "decision_threshold": result.decision_threshold,
            "gates": [g.to_dict() for g in result.gates],
            "label_kind": result.label_kind,
            "classes": list(result.classes),
        }
    )
    for gate in result.gates:
        blessing.metadata[f"gate_{gate.name}"] = gate.passed
    shutil.copyfile(os.path.join(blessing.path, FAIRNESS_REPORT_FILE), fairness_report.path)
    shutil.copyfile(os.path.join(blessing.path, FAIRNESS_HTML_FILE), fairness_html.path)
    fairness_html.metadata["blessed"] = result.blessed

    if result.label_kind == label_kinds.REGRESSION:
        return  # no classes: eval_metrics holds MSE, MAE and R²
    categories = result.classes if result.label_kind == label_kinds.MULTICLASS else None
    curves = (multiclass_curves(fio.beam_location(evaluation), result.classes) if categories
              else classification_curves(fio.beam_location(evaluation), result.decision_threshold))
    if OVERALL in curves:
        log_classification_metrics(classification_metrics, curves[OVERALL], categories)
    log_sliced_classification_metrics(sliced_metrics, curves, categories)
