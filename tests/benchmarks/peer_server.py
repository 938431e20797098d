"""The serving benchmark's peer: the plainest HTTP endpoint over the same model, no kserve.

    .venv-serving/bin/python tests/benchmarks/peer_server.py --model_dir DIR --model_name model \
        --http_port 8080 [--backend onnx|savedmodel]

One Starlette route, `POST /v1/models/<name>:predict`, on uvicorn with uvloop and httptools, plus
`GET /v2/health/ready` for the benchmark's readiness poll. A request is decoded with orjson, turned
into the model's columns by the server's own `features.parse_v1`, and answered
`{"predictions": [...]}` by the server's own backend (serving/backends.py, the same ONNX Runtime
session options). It has none of the server's other work (prediction ids, the prediction log,
V2, metadata, size limits): it is the floor for a Python HTTP server, not a server to deploy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
import uvicorn
from kserve.errors import InvalidInput
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from serving import backends, features  # noqa: E402


def build_app(model_dir: str, model_name: str, backend: str) -> Starlette:
    resolved = backends.resolve_model_dir(model_dir)
    model = backends.load_backend(resolved.path, backend, backends.read_model_info(resolved.path))

    async def predict(request: Request) -> Response:
        if request.path_params["name"] != model_name:
            return Response(orjson.dumps({"error": "model not found"}), 404, media_type="application/json")
        try:
            columns, _ = features.parse_v1(orjson.loads(await request.body()), model.feature_types, 10_000)
        except (InvalidInput, orjson.JSONDecodeError) as exc:
            return Response(orjson.dumps({"error": str(exc)}), 400, media_type="application/json")
        body = orjson.dumps({"predictions": model.predict(columns).tolist()})
        return Response(body, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    return Starlette(routes=[Route("/v1/models/{name}:predict", predict, methods=["POST"]),
                             Route("/v2/health/ready", ready)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--model_name", default="model")
    parser.add_argument("--http_port", type=int, required=True)
    parser.add_argument("--backend", choices=backends.BACKENDS, default="onnx")
    args = parser.parse_args(argv)
    app = build_app(args.model_dir, args.model_name, args.backend)
    uvicorn.run(app, host="127.0.0.1", port=args.http_port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
