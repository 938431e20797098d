"""Beam steps get artifact URIs that Beam's workers can open, and the task's local path otherwise."""

from __future__ import annotations

import dataclasses

import pytest

from components.common import io as fio


@dataclasses.dataclass
class Artifact:  # the two attributes of a kfp.dsl.Artifact that matter here
    uri: str
    path: str


@pytest.mark.parametrize("uri, path, expected", [
    ("gs://bucket/root/run/transform/transform_graph", "/gcs/bucket/root/run/transform/transform_graph",
     "gs://bucket/root/run/transform/transform_graph"),  # Vertex / GCS artifact store: Dataflow reads it
    ("minio://mlpipeline/v2/artifacts/run/examples", "/minio/mlpipeline/v2/artifacts/run/examples",
     "/minio/mlpipeline/v2/artifacts/run/examples"),  # the launcher's copy in the pod
    ("/work/out/pipeline_root/run/ingest/examples", "/work/out/pipeline_root/run/ingest/examples",
     "/work/out/pipeline_root/run/ingest/examples"),  # kfp.local
])
def test_beam_location(uri, path, expected):
    assert fio.beam_location(Artifact(uri, path)) == expected
