"""Stand-in SavedModels with the trainer's serving contract, for evaluate's tests and benchmark.

Contract (what components/train exports): signature `serving_default`, input `examples` =
tf.string [None] serialized raw tf.Example, output {"probability": float32 [None, 1]}.
The stand-in parses a few features (numeric as is, yes/no strings as 0/1 indicators) and applies a
logistic regression fitted with numpy (Newton's method), so its AUC is meaningful without training a
Keras model. `bad` models negate the fitted weights: same signature, AUC = 1 - AUC of the good one.
"""

from __future__ import annotations

import numpy as np


def read_examples(path: str) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def feature_matrix(records: list[bytes], features: list[str], label: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (missing → 0, bytes → 1.0 if b"yes") and labels of serialized tf.Examples."""
    import tensorflow as tf

    x = np.zeros((len(records), len(features)), dtype=np.float64)
    y = np.zeros(len(records), dtype=np.int64)
    for i, record in enumerate(records):
        feature = tf.train.Example.FromString(record).features.feature
        for j, name in enumerate(features):
            if name in feature:
                f = feature[name]
                if f.bytes_list.value:
                    x[i, j] = float(f.bytes_list.value[0] == b"yes")
                else:
                    values = list(f.float_list.value) or list(f.int64_list.value)
                    x[i, j] = float(values[0]) if values else 0.0
        y[i] = feature[label].int64_list.value[0]
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


def save_logistic_model(
    export_dir: str, features: dict[str, str], coef, bias: float
) -> str:
    """A SavedModel: serving_default(examples: string[None]) → {"probability": float32[None, 1]}.

    `features` maps each feature to its ingest column type: "int", "float" or "string" (a string
    feature enters as the indicator value == "yes").
    """
    import tensorflow as tf

    dtypes = {"int": tf.int64, "float": tf.float32, "string": tf.string}
    spec = {
        name: tf.io.FixedLenFeature([1], dtypes[kind], default_value=["" if kind == "string" else 0])
        for name, kind in features.items()
    }

    def column(name, tensor):
        if features[name] == "string":
            return tf.cast(tf.equal(tensor, "yes"), tf.float32)
        return tf.cast(tensor, tf.float32)
    weights = tf.constant(np.asarray(coef, dtype=np.float32).reshape(-1, 1))
    intercept = tf.constant(np.float32(bias))

    class Logistic(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(examples, spec)
            x = tf.concat([column(name, parsed[name]) for name in spec], axis=1)
            return {"probability": tf.sigmoid(tf.matmul(x, weights) + intercept)}

    module = Logistic()
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    return export_dir


def predict(saved_model_dir: str, records: list[bytes], batch: int = 1024) -> np.ndarray:
    """Run a SavedModel's serving_default directly (the independent reference for TFMA)."""
    import tensorflow as tf

    fn = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    out = [fn(examples=tf.constant(records[i:i + batch]))["probability"].numpy().reshape(-1)
           for i in range(0, len(records), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


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
    import os

    features = features or HMDA_FEATURES
    records = [r for split in fit_splits
               for r in read_examples(os.path.join(examples_dir, split, "data.tfrecord.gz"))]
    x, y = feature_matrix(records, list(features), label)
    coef, bias = fit_logistic(x, y)
    weak = {k: features[k] for k in list(features)[:3]}
    weak_coef, weak_bias = fit_logistic(x[:, :3], y)
    dirs = {}
    for name, feats, c, b in (("good", features, coef, bias), ("bad", features, -coef, -bias),
                              ("weak", weak, weak_coef, weak_bias)):
        dirs[name] = os.path.join(out_dir, name)
        save_logistic_model(os.path.join(dirs[name], "saved_model"), feats, c, b)
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
