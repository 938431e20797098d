"""Stand-in SavedModels with the trainer's serving contract, for evaluate's tests and benchmark.

Contract (what components/train exports): signature `serving_default`, input `examples` =
tf.string [None] serialized raw tf.Example, output {"probability": float32 [None, 1]}.
The stand-in parses a few features (numeric as is, yes/no strings as 0/1 indicators) and applies a
logistic regression fitted with numpy (Newton's method), so its AUC is meaningful without training a
Keras model. `bad` models negate the fitted weights: same signature, AUC = 1 - AUC of the good one.

The other label kinds (components/common/label_kinds.py) get the same stand-ins with their outputs:
multiclass {"probabilities": float32 [None, K]}, a softmax over a multinomial logistic regression
fitted with numpy (gradient descent); regression {"value": float32 [None, 1]}, least squares.
A feature kind "string=VALUE" enters as the indicator value == VALUE.
"""

from __future__ import annotations

import numpy as np


def read_examples(path: str) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def _indicator_value(kind: str) -> bytes:
    """The string value a string feature indicates: "string" → b"yes", "string=VALUE" → VALUE."""
    return kind.partition("=")[2].encode() or b"yes"


def feature_matrix(records: list[bytes], features: list[str] | dict[str, str], label: str,
                   label_dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Features (missing → 0, bytes → 1.0 if b"yes", or the value a dict's "string=VALUE" names) and
    labels (int64, or float64 for regression) of serialized tf.Examples."""
    import tensorflow as tf

    kinds = features if isinstance(features, dict) else {}
    x = np.zeros((len(records), len(features)), dtype=np.float64)
    y = np.zeros(len(records), dtype=label_dtype)
    for i, record in enumerate(records):
        feature = tf.train.Example.FromString(record).features.feature
        for j, name in enumerate(features):
            if name in feature:
                f = feature[name]
                if f.bytes_list.value:
                    x[i, j] = float(f.bytes_list.value[0] == _indicator_value(kinds.get(name, "string")))
                else:
                    values = list(f.float_list.value) or list(f.int64_list.value)
                    x[i, j] = float(values[0]) if values else 0.0
        y[i] = (list(feature[label].int64_list.value) or list(feature[label].float_list.value))[0]
    return x, y


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 25) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        grad = z.T @ (p - y) + l2 * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    coef = w[:-1] / std
    bias = w[-1] - float(np.sum(w[:-1] * mean / std))
    return coef, float(bias)


def fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 3e-3,
                steps: int = 2000, rate: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised multinomial logistic regression by gradient descent on standardised features:
    (coef [d, K], bias [K]) on the raw features."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    onehot = np.eye(n_classes)[y]
    w, b = np.zeros((z.shape[1], n_classes)), np.zeros(n_classes)
    for _ in range(steps):
        p = softmax(z @ w + b)
        w -= rate * (z.T @ (p - onehot) / len(z) + l2 * w)
        b -= rate * (p - onehot).mean(axis=0)
    coef = w / std[:, None]
    return coef, b - (mean / std) @ w


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fit_least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Ordinary least squares with an intercept: (coef [d], bias)."""
    solution, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
    return solution[:-1], float(solution[-1])


def _save_linear_model(export_dir: str, features: dict[str, str], coef, bias, output: str, activation) -> str:
    """A SavedModel: serving_default(examples: string[None]) → {output: activation(x @ coef + bias)}.

    `features` maps each feature to its ingest column type: "int", "float" or "string" (a string
    feature enters as the indicator value == "yes", or == VALUE for "string=VALUE").
    """
    import tensorflow as tf

    dtypes = {"int": tf.int64, "float": tf.float32, "string": tf.string}

    def base(kind: str) -> str:
        return kind.partition("=")[0]

    spec = {
        name: tf.io.FixedLenFeature([1], dtypes[base(kind)], default_value=["" if base(kind) == "string" else 0])
        for name, kind in features.items()
    }

    def column(name, tensor):
        if base(features[name]) == "string":
            return tf.cast(tf.equal(tensor, _indicator_value(features[name]).decode()), tf.float32)
        return tf.cast(tensor, tf.float32)
    coef = np.asarray(coef, dtype=np.float32)
    weights = tf.constant(coef.reshape(len(features), -1))
    intercept = tf.constant(np.asarray(bias, dtype=np.float32))

    class Linear(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(examples, spec)
            x = tf.concat([column(name, parsed[name]) for name in spec], axis=1)
            return {output: activation(tf.matmul(x, weights) + intercept)}

    module = Linear()
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    return export_dir


def save_logistic_model(export_dir: str, features: dict[str, str], coef, bias: float) -> str:
    """serving_default(examples) → {"probability": float32[None, 1]}, a sigmoid (_save_linear_model)."""
    import tensorflow as tf

    return _save_linear_model(export_dir, features, coef, bias, "probability", tf.sigmoid)


def save_softmax_model(export_dir: str, features: dict[str, str], coef, bias) -> str:
    """serving_default(examples) → {"probabilities": float32[None, K]}, a softmax over K logits."""
    import tensorflow as tf

    return _save_linear_model(export_dir, features, coef, bias, "probabilities", tf.nn.softmax)


def save_regression_model(export_dir: str, features: dict[str, str], coef, bias: float) -> str:
    """serving_default(examples) → {"value": float32[None, 1]}, the linear prediction."""
    import tensorflow as tf

    return _save_linear_model(export_dir, features, coef, bias, "value", tf.identity)


def predict(saved_model_dir: str, records: list[bytes], batch: int = 1024, output: str = "probability") -> np.ndarray:
    """Run a SavedModel's serving_default directly (the independent reference for TFMA): [N] for
    one-column outputs, [N, K] for "probabilities"."""
    import tensorflow as tf

    fn = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    out = [fn(examples=tf.constant(records[i:i + batch]))[output].numpy() for i in range(0, len(records), batch)]
    if not out:
        return np.zeros(0, dtype=np.float32)
    joined = np.concatenate(out)
    return joined.reshape(len(joined), -1)[:, 0] if joined.shape[-1] == 1 and output != "probabilities" else joined


# Features of the HMDA fixture the stand-in uses (ingest column types).
HMDA_FEATURES = {
    "pirat": "float", "hirat": "float", "lvrat": "float", "chist": "int", "mhist": "int",
    "unemp": "float", "insurance": "string", "selfemp": "string", "single": "string",
    "phist": "string", "condomin": "string",
}


def build_models(examples_dir: str, out_dir: str, label: str = "deny", fit_splits=("eval",),
                 features: dict[str, str] | None = None) -> dict[str, str]:
    """Model dirs (each with saved_model/) of a fitted logistic regression ("good"), the same with
    inverted scores ("bad": AUC = 1 - good AUC) and a weaker fit on three features ("weak").

    The fit uses the eval rows by default: the fixture's eval split has ~20 positives, and a fit on
    the train split reaches only AUC ~0.65 there; these models exist to exercise the evaluator (a
    clearly good, an inverted and a weaker scorer), not to model HMDA.
    """
    features = features or HMDA_FEATURES
    x, y = feature_matrix(_split_records(examples_dir, fit_splits), list(features), label)
    coef, bias = fit_logistic(x, y)
    weak = {k: features[k] for k in list(features)[:3]}
    weak_coef, weak_bias = fit_logistic(x[:, :3], y)
    return _save_variants(out_dir, save_logistic_model, (("good", features, coef, bias), ("bad", features, -coef, -bias),
                                                         ("weak", weak, weak_coef, weak_bias)))


def _save_variants(out_dir: str, save, variants) -> dict[str, str]:
    """Model dirs out_dir/<name>/saved_model, each saved by `save(dir, features, coef, bias)`."""
    import os

    dirs = {}
    for name, feats, coef, bias in variants:
        dirs[name] = os.path.join(out_dir, name)
        save(os.path.join(dirs[name], "saved_model"), feats, coef, bias)
    return dirs


def fit_and_save(
    export_dir: str, records: list[bytes], features: dict[str, str], label: str, *, bad: bool = False
) -> str:
    """Fit the logistic stand-in on `records` and save it; `bad` negates it (ranks backwards)."""
    x, y = feature_matrix(records, list(features), label)
    coef, bias = fit_logistic(x, y)
    if bad:
        coef, bias = -coef, -bias
    return save_logistic_model(export_dir, features, coef, bias)


# Features of the penguins fixture (multiclass `species`) and of CPS1985 (regression `wage`).
PENGUIN_FEATURES = {"bill_length_mm": "float", "bill_depth_mm": "float", "flipper_length_mm": "float",
                    "body_mass_g": "float", "island": "string=Dream", "sex": "string=male"}
CPS_FEATURES = {"education": "int", "experience": "int", "union": "string", "married": "string",
                "gender": "string=female", "occupation": "string=management", "sector": "string=manufacturing"}


def _with_ingest_types(examples_dir: str, features: dict[str, str]) -> dict[str, str]:
    """Numeric features take the column type ingest wrote (int64 or float lists)."""
    from components.ingest.ingest import read_metadata

    types = read_metadata(examples_dir)["column_types"]
    return {name: types[name] if kind in ("int", "float") else kind for name, kind in features.items()}


def _split_records(examples_dir: str, splits) -> list[bytes]:
    import os

    return [r for split in splits for r in read_examples(os.path.join(examples_dir, split, "data.tfrecord.gz"))]


def build_multiclass_models(examples_dir: str, out_dir: str, n_classes: int, label: str = "species",
                            fit_splits=("train",), features: dict[str, str] | None = None) -> dict[str, str]:
    """Model dirs (each with saved_model/) of a softmax stand-in fitted on `fit_splits` ("good"),
    the same with negated logits ("bad": ranks every class backwards) and one on the first feature
    alone ("weak")."""
    features = _with_ingest_types(examples_dir, features or PENGUIN_FEATURES)
    x, y = feature_matrix(_split_records(examples_dir, fit_splits), features, label)
    first = dict(list(features.items())[:1])
    coef, bias = fit_softmax(x, y, n_classes)
    weak_coef, weak_bias = fit_softmax(x[:, :1], y, n_classes)
    return _save_variants(out_dir, save_softmax_model, (("good", features, coef, bias), ("bad", features, -coef, -bias),
                                                        ("weak", first, weak_coef, weak_bias)))


def build_regression_models(examples_dir: str, out_dir: str, label: str = "wage", fit_splits=("train",),
                            features: dict[str, str] | None = None) -> dict[str, str]:
    """Model dirs of a least-squares stand-in ("good"), its mirror image around the train mean
    ("bad": 2 * mean - prediction, a negative R²) and a fit on the first feature alone ("weak")."""
    features = _with_ingest_types(examples_dir, features or CPS_FEATURES)
    x, y = feature_matrix(_split_records(examples_dir, fit_splits), features, label, label_dtype=np.float64)
    coef, bias = fit_least_squares(x, y)
    weak_coef, weak_bias = fit_least_squares(x[:, :1], y)
    mean = float(y.mean())
    return _save_variants(out_dir, save_regression_model,
                          (("good", features, coef, bias), ("bad", features, -coef, 2 * mean - bias),
                           ("weak", dict(list(features.items())[:1]), weak_coef, weak_bias)))


def champion_registry(registry_uri: str, model_name: str, version: str, model_dir: str) -> None:
    """A registry whose CHAMPION is `version`, holding model_dir's SavedModel (what evaluate's
    component reads of a champion)."""
    import json
    import os
    import shutil

    from components.common import names
    from components.push import registry

    version_dir = os.path.join(registry.model_root(registry_uri, model_name), names.REGISTRY_VERSIONS_DIR, version)
    shutil.copytree(os.path.join(model_dir, names.SAVED_MODEL_DIR), os.path.join(version_dir, names.SAVED_MODEL_DIR))
    with open(registry.champion_pointer_uri(registry_uri, model_name), "w") as f:
        json.dump({"version": version, "path": f"{names.REGISTRY_VERSIONS_DIR}/{version}"}, f)


def component_outputs(out_dir) -> dict:
    """Every output artifact of evaluate's component, under out_dir."""
    from kfp import dsl

    from components.common import names

    return {
        names.EVALUATION: dsl.Artifact(uri=str(out_dir / "evaluation")),
        names.BLESSING: dsl.Artifact(uri=str(out_dir / "blessing")),
        names.EVAL_METRICS: dsl.Metrics(uri=str(out_dir / "metrics")),
        names.FAIRNESS_REPORT: dsl.Markdown(uri=str(out_dir / "report.md")),
        names.CLASSIFICATION_METRICS: dsl.ClassificationMetrics(uri=str(out_dir / "cm")),
        names.FAIRNESS_HTML: dsl.HTML(uri=str(out_dir / "report.html")),
        names.SLICED_METRICS: dsl.SlicedClassificationMetrics(uri=str(out_dir / "sliced")),
    }
