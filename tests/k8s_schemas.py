"""Offline validation of Kubernetes objects: core kinds with kubernetes-validate, KServe kinds with
the CRD schemas vendored in tests/schemas/kserve (see its README for the KServe commit; made strict, so an unknown field is an error rather
than silently pruned by the API server)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
KSERVE_SCHEMAS = ROOT / "tests" / "schemas" / "kserve"
KUBERNETES_VERSION = "1.32.0"


def _strict(schema):
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in sorted(KSERVE_SCHEMAS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


def validation_errors(obj: dict) -> list[str]:
    """Every schema violation of one object, as readable strings (empty when valid)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = f"{key[1]}/{obj.get('metadata', {}).get('name')}"
    if key[0] and key[0].startswith("serving.kserve.io/"):
        validator = crd_validators().get(key)
        if validator is None:
            return [f"{name}: no CRD schema for {key}"]
        return [f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{name}: {'/'.join(map(str, exc.path))}: {exc.message}"]
    return []
