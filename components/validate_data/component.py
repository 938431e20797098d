"""KFP interface of validate_data; the work is in validate.py."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Output

from components.common.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def validate_data(
    examples: Input[Dataset],
    schema_uri: str,
    registry_uri: str,
    model_name: str,
    skew_jensen_shannon_threshold: float,
    skew_linf_threshold: float,
    drift_jensen_shannon_threshold: float,
    drift_linf_threshold: float,
    data_noise_quantile: float,
    beam_args: list,
    statistics: Output[Artifact],
    schema: Output[Artifact],
    anomalies: Output[Artifact],
    validation_report: Output[Markdown],
    validation_html: Output[HTML],
):
    """TFDV: statistics (one Beam job), schema (curated/champion/inferred), anomalies, and skew and
    drift on quantile bins judged against sampling noise."""
    from components.common import io as fio
    from components.common import names
    from components.common.errors import DataValidationError
    from components.common.failures import failure_report
    from components.validate_data.validate import validate

    fio.makedirs(anomalies.path)
    with failure_report(anomalies.path):
        result = validate(
            examples_dir=fio.beam_location(examples),
            statistics_dir=fio.beam_location(statistics),
            schema_dir=schema.path,
            anomalies_dir=anomalies.path,
            curated_schema_uri=schema_uri,
            registry_uri=registry_uri,
            model_name=model_name,
            skew_jensen_shannon_threshold=skew_jensen_shannon_threshold,
            skew_linf_threshold=skew_linf_threshold,
            drift_jensen_shannon_threshold=drift_jensen_shannon_threshold,
            drift_linf_threshold=drift_linf_threshold,
            noise_quantile=data_noise_quantile,
            beam_args=list(beam_args),
            raise_on_anomalies=False,  # raised below, once every output and its metadata is written
        )
        fio.write_text_atomic(validation_report.path, result.report_markdown)
        # the page validate() wrote next to the anomalies, also when validation failed
        fio.write_text_atomic(validation_html.path, fio.read_text(fio.join(anomalies.path, names.REPORT_HTML_FILE)))
        summary = {
            "row_counts": result.row_counts,
            "anomaly_count": len(result.anomalies),
            "schema_source": result.schema_source,
            "passed": result.passed,
        }
        for artifact in (statistics, schema, anomalies, validation_report, validation_html):
            artifact.metadata.update(summary)
        if not result.passed:
            raise DataValidationError(result.report_markdown, anomalies={"anomalies": result.anomalies})
