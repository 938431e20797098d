"""Find and show the reports a pipeline run wrote: its HTML and Markdown output artifacts.

The KFP UI renders these artifact types; a local run (kfp.local) leaves them as files under
<pipeline_root>/<run>/<task>/<output>. Which outputs are reports comes from the pipeline spec
itself (artifact schema titles), so a new report output is found without touching this module.
"""

from __future__ import annotations

import dataclasses
import html
import os

from google.protobuf import json_format

REPORT_TYPES = {"system.HTML": "html", "system.Markdown": "markdown"}


@dataclasses.dataclass(frozen=True)
class Report:
    task: str
    output: str
    kind: str  # "html" | "markdown"
    path: str

    @property
    def key(self) -> str:
        return f"{self.task}/{self.output}"


def report_outputs(pipeline) -> list[tuple[str, str, str]]:
    """(task, output, kind) of every HTML/Markdown output of a compiled-in-memory pipeline."""
    spec = json_format.MessageToDict(pipeline.pipeline_spec)
    found = []
    for task, task_spec in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task_spec["componentRef"]["name"]]
        for output, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            kind = REPORT_TYPES.get(definition["artifactType"]["schemaTitle"])
            if kind:
                found.append((task, output, kind))
    return sorted(found)


def find_reports(run_dir: str, pipeline) -> list[Report]:
    """The reports that exist in a local run directory (a task that did not run wrote none)."""
    reports = []
    for task, output, kind in report_outputs(pipeline):
        path = os.path.join(run_dir, task, output)
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            reports.append(Report(task, output, kind, path))
    return reports


def show(reports: list[Report], height: int = 560) -> None:
    """Display reports in a notebook: HTML pages in sandboxed iframes (their CSS stays theirs)."""
    from IPython.display import HTML, Markdown, display

    for report in reports:
        display(Markdown(f"#### {report.key}"))
        with open(report.path, encoding="utf-8") as f:
            text = f.read()
        if report.kind == "markdown":
            display(Markdown(text))
        else:
            display(HTML(f'<iframe sandbox srcdoc="{html.escape(text, quote=True)}" '
                         f'style="width:100%;height:{height}px;border:1px solid #d0d7de"></iframe>'))
