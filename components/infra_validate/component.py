"""KFP interface of infra-validate; the work is serving/infra_validator.py, which ships in the
serving image: this task runs in the image that will serve the model, with its libraries."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components.common.images import SERVING_IMAGE


@dsl.component(base_image=SERVING_IMAGE, install_kfp_package=False)
def infra_validate(
    model: Input[Model],
    examples: Input[Dataset],
    requests: int,
    infra_blessing: Output[Artifact],
    infra_report: Output[Markdown],
):
    """Load the candidate with the real model server, answer held-out rows over HTTP (V1 and V2)
    on loopback, record load time and latency. The push refuses a model that fails here."""
    import json
    import os

    from serving.infra_validator import BLESSING_FILE, report_markdown, validate

    os.makedirs(infra_blessing.path, exist_ok=True)
    result = validate(model.path, examples.path, requests=requests, work_dir=infra_blessing.path)
    with open(os.path.join(infra_blessing.path, BLESSING_FILE), "w") as f:
        json.dump(result.to_dict(), f, indent=2)
    with open(infra_report.path, "w") as f:
        f.write(report_markdown(result))
    infra_blessing.metadata.update({"blessed": result.blessed, "reason": result.reason,
                                    "load_seconds": result.load_seconds or -1.0})
