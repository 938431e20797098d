"""KFP interface of push; the work is in push.py."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components.common.images import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def push(
    model: Input[Model],
    transform_graph: Input[Artifact],
    schema: Input[Artifact],
    statistics: Input[Artifact],
    blessing: Input[Artifact],
    infra_blessing: Input[Artifact],
    examples: Input[Dataset],
    registry_uri: str,
    model_name: str,
    code_version: str,
    pushed_model: Output[Model],
    push_report: Output[Markdown],
    model_card: Output[Markdown],
):
    """Publish the model to the registry if and only if it is blessed and the model server loaded
    it and answered held-out rows (infra_blessing) (TFX Pusher semantics).

    push_report: Markdown for the KFP UI: blessed or rejected and why (each gate with its figures),
    the metrics against the champion and the lineage of the model now in the registry.

    model_card: Markdown for the KFP UI, written for every outcome (components/push/model_card.py):
    a pushed model's card is also in its registry version (model_card.json, model_card.md); a model
    that was not pushed gets its card here only, and it opens with why it was not published. The
    data validation summary is the one validate_data records on `statistics`' metadata.
    """
    import json
    import os

    from components.common import names
    from components.common.failures import failure_report
    from components.push.model_card import card_markdown, data_validation_summary
    from components.push.push import push as run_push
    from components.push.push import read_blessing, read_lineage, report_markdown

    os.makedirs(pushed_model.path, exist_ok=True)
    with failure_report(pushed_model.path):
        result = run_push(
            model_dir=model.path,
            transform_graph_dir=transform_graph.path,
            schema_dir=schema.path,
            statistics_dir=statistics.path,
            blessing_dir=blessing.path,
            examples_dir=examples.path,
            registry_uri=registry_uri,
            model_name=model_name,
            code=code_version,
            infra_blessing_dir=infra_blessing.path,
            data_validation=data_validation_summary(statistics.metadata),
        )
        with open(os.path.join(pushed_model.path, names.PUSH_RESULT_FILE), "w") as f:
            json.dump(result.record(), f, indent=2)
        with open(push_report.path, "w") as f:
            f.write(report_markdown(result, read_blessing(blessing.path), read_lineage(result)))
        with open(model_card.path, "w") as f:
            f.write(card_markdown(result.card))
    pushed_model.metadata.update({k: v for k, v in result.record().items() if v is not None})
