"""A stand-in for a pushed model version, with exactly components/train's export contract.

    saved_model/   serving_default: examples tf.string [None] (serialized raw tf.Example)
                   serving_raw:     lvrat float32 [None], chist int64 [None], selfemp string [None]
                   both → {"probability": float32 [None, 1]} (binary), {"probabilities":
                   float32 [None, 3]} (multiclass) or {"value": float32 [None, 1]} (regression)
    model.onnx     the same function over raw features (ai.onnx + ai.onnx.ml ops)
    model_info.json (label_kind, classes, output), lineage.json, schema.pbtxt

The function: a linear score over "transformed" features, with the train contract's missing
values (NaN / int64 min / "__missing__") imputed like the transform does:
    z = W_LVRAT * (lvrat - 0.8) / 0.2 + W_CHIST * (chist - 2) + W_SELFEMP * onehot(selfemp) + BIAS
and per kind: binary sigmoid(z); multiclass softmax([0, z, MULTICLASS_C - z]) over CLASSES, its
columns reordered by `permutation` (a broken version answers another class's probability);
regression VALUE_SCALE * z + VALUE_OFFSET + `shift`.
"""

from __future__ import annotations

import json
import os

import numpy as np

FEATURE_TYPES = {"lvrat": "float", "chist": "int", "selfemp": "string"}
LABEL = "deny"
LVRAT_MEAN, LVRAT_STD = 0.8, 0.2
CHIST_MEAN = 2
W_LVRAT, W_CHIST, BIAS = 1.5, 0.4, -2.0
SELFEMP_VOCAB = {"no": 0.0, "yes": 0.7}
SELFEMP_OOV = 0.3  # unknown values and "__missing__"
INT_MISSING = -(2**63)
BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
OUTPUT_NAMES = {BINARY: "probability", MULTICLASS: "probabilities", REGRESSION: "value"}
CLASSES = ("approve", "review", "deny")
IDENTITY = (0, 1, 2)
MULTICLASS_C = -1.0
VALUE_SCALE, VALUE_OFFSET = 10.0, 50.0


def score(row: dict, bias: float = BIAS) -> float:
    """The stand-in's z for one raw row, in numpy (missing values imputed as the model does)."""
    lvrat = LVRAT_MEAN if row.get("lvrat") is None else row["lvrat"]
    chist = CHIST_MEAN if row.get("chist") is None else row["chist"]
    return (W_LVRAT * (lvrat - LVRAT_MEAN) / LVRAT_STD + W_CHIST * (chist - CHIST_MEAN)
            + SELFEMP_VOCAB.get(row.get("selfemp"), SELFEMP_OOV) + bias)


def head(z: np.ndarray, kind: str = BINARY, permutation=IDENTITY, shift: float = 0.0) -> np.ndarray:
    """The stand-in's answer for scores z, in numpy: [N] (binary, regression) or [N, 3]."""
    z = np.asarray(z, dtype=np.float64)
    if kind == BINARY:
        return 1 / (1 + np.exp(-z))
    if kind == REGRESSION:
        return VALUE_SCALE * z + VALUE_OFFSET + shift
    logits = np.stack([np.zeros_like(z), z, MULTICLASS_C - z], axis=1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True))[:, list(permutation)]


def build_saved_model(path: str, bias: float = BIAS, kind: str = BINARY, permutation=IDENTITY,
                      shift: float = 0.0) -> None:
    import tensorflow as tf

    class StandIn(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(list(SELFEMP_VOCAB), list(SELFEMP_VOCAB.values()),
                                                    key_dtype=tf.string, value_dtype=tf.float32),
                default_value=SELFEMP_OOV)

        def _probability(self, lvrat, chist, selfemp):
            lvrat = tf.where(tf.math.is_nan(lvrat), tf.constant(LVRAT_MEAN, tf.float32), lvrat)
            chist = tf.where(tf.equal(chist, INT_MISSING), tf.constant(CHIST_MEAN, tf.int64), chist)
            z = (W_LVRAT * (lvrat - LVRAT_MEAN) / LVRAT_STD
                 + W_CHIST * (tf.cast(chist, tf.float32) - CHIST_MEAN)
                 + self.table.lookup(selfemp) + bias)
            if kind == MULTICLASS:
                logits = tf.stack([tf.zeros_like(z), z, MULTICLASS_C - z], axis=1)
                return {OUTPUT_NAMES[kind]: tf.gather(tf.nn.softmax(logits, axis=1), list(permutation), axis=1)}
            answer = tf.sigmoid(z) if kind == BINARY else VALUE_SCALE * z + VALUE_OFFSET + shift
            return {OUTPUT_NAMES[kind]: tf.expand_dims(answer, 1)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="lvrat"),
                                      tf.TensorSpec([None], tf.int64, name="chist"),
                                      tf.TensorSpec([None], tf.string, name="selfemp")])
        def serving_raw(self, lvrat, chist, selfemp):
            return self._probability(lvrat, chist, selfemp)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serving_default(self, examples):
            parsed = tf.io.parse_example(examples, {
                "lvrat": tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
                "chist": tf.io.FixedLenFeature([], tf.int64, default_value=INT_MISSING),
                "selfemp": tf.io.FixedLenFeature([], tf.string, default_value="__missing__"),
            })
            return self._probability(parsed["lvrat"], parsed["chist"], parsed["selfemp"])

    module = StandIn()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serving_default,
                                                  "serving_raw": module.serving_raw})


def _onnx_head(kind: str, permutation, shift: float, const) -> tuple[list, list[int | None]]:
    """Nodes from the score "z" [N] to the kind's output, and that output's shape."""
    from onnx import TensorProto, helper

    output = OUTPUT_NAMES[kind]
    if kind == BINARY:
        return [helper.make_node("Sigmoid", ["z"], ["p"]),
                helper.make_node("Unsqueeze", ["p", "axis1"], [output])], [None, 1]
    if kind == REGRESSION:
        return [const("scale", VALUE_SCALE, TensorProto.FLOAT),
                const("offset", VALUE_OFFSET + shift, TensorProto.FLOAT),
                helper.make_node("Mul", ["z", "scale"], ["zs"]), helper.make_node("Add", ["zs", "offset"], ["v"]),
                helper.make_node("Unsqueeze", ["v", "axis1"], [output])], [None, 1]
    order = helper.make_tensor("order", TensorProto.INT64, [len(permutation)], list(permutation))
    return [const("c", MULTICLASS_C, TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["z", "axis1"], ["z1"]),
            helper.make_node("Sub", ["z1", "z1"], ["zero"]),
            helper.make_node("Sub", ["c", "z1"], ["other"]),
            helper.make_node("Concat", ["zero", "z1", "other"], ["logits"], axis=1),
            helper.make_node("Softmax", ["logits"], ["softmax"], axis=1),
            helper.make_node("Constant", [], ["order"], value=order),
            helper.make_node("Gather", ["softmax", "order"], [output], axis=1)], [None, len(CLASSES)]


def build_onnx(path: str, bias: float = BIAS, kind: str = BINARY, permutation=IDENTITY, shift: float = 0.0) -> None:
    import onnx
    from onnx import TensorProto, helper

    def const(name, value, dtype):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, [], [value]))

    nodes = [
        const("lv_mean", LVRAT_MEAN, TensorProto.FLOAT), const("lv_std", LVRAT_STD, TensorProto.FLOAT),
        const("w_lv", W_LVRAT, TensorProto.FLOAT), const("ch_missing", INT_MISSING, TensorProto.INT64),
        const("ch_mean_i", CHIST_MEAN, TensorProto.INT64), const("ch_mean", float(CHIST_MEAN), TensorProto.FLOAT),
        const("w_ch", W_CHIST, TensorProto.FLOAT), const("bias", bias, TensorProto.FLOAT),
        const("axis1", 1, TensorProto.INT64),
        helper.make_node("IsNaN", ["lvrat"], ["lv_nan"]),
        helper.make_node("Where", ["lv_nan", "lv_mean", "lvrat"], ["lv_filled"]),
        helper.make_node("Sub", ["lv_filled", "lv_mean"], ["lv_c"]),
        helper.make_node("Div", ["lv_c", "lv_std"], ["lv_z"]),
        helper.make_node("Mul", ["lv_z", "w_lv"], ["t_lv"]),
        helper.make_node("Equal", ["chist", "ch_missing"], ["ch_is_missing"]),
        helper.make_node("Where", ["ch_is_missing", "ch_mean_i", "chist"], ["ch_filled"]),
        helper.make_node("Cast", ["ch_filled"], ["ch_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["ch_f", "ch_mean"], ["ch_c"]),
        helper.make_node("Mul", ["ch_c", "w_ch"], ["t_ch"]),
        helper.make_node("LabelEncoder", ["selfemp"], ["t_se"], domain="ai.onnx.ml",
                         keys_strings=list(SELFEMP_VOCAB), values_floats=list(SELFEMP_VOCAB.values()),
                         default_float=SELFEMP_OOV),
        helper.make_node("Add", ["t_lv", "t_ch"], ["s1"]),
        helper.make_node("Add", ["s1", "t_se"], ["s2"]),
        helper.make_node("Add", ["s2", "bias"], ["z"]),
    ]
    head_nodes, output_shape = _onnx_head(kind, permutation, shift, const)
    nodes += head_nodes
    graph = helper.make_graph(
        nodes, "stand_in",
        [helper.make_tensor_value_info("lvrat", TensorProto.FLOAT, [None]),
         helper.make_tensor_value_info("chist", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("selfemp", TensorProto.STRING, [None])],
        [helper.make_tensor_value_info(OUTPUT_NAMES[kind], TensorProto.FLOAT, output_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 2)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def build_registry(registry: str, model_name: str = "model", version: str = "v20250101T000000Z-standin",
                   onnx_inputs: str = "raw", bias: float = BIAS, kind: str = BINARY, permutation=IDENTITY,
                   shift: float = 0.0) -> str:
    """registry/<model_name>/{CHAMPION.json, versions/<version>/...}; returns the version dir.
    Another `bias` shifts every logit (a version whose predictions moved), `permutation` reorders
    the class probabilities (multiclass), `shift` moves every value (regression); CHAMPION.json
    then names this version, with the champion it replaced as "previous"."""
    root = os.path.join(registry, model_name)
    version_dir = os.path.join(root, "versions", version)
    os.makedirs(version_dir)
    build_saved_model(os.path.join(version_dir, "saved_model"), bias, kind, permutation, shift)
    build_onnx(os.path.join(version_dir, "model.onnx"), bias, kind, permutation, shift)
    output = OUTPUT_NAMES[kind]
    info = {
        "onnx": {"inputs": onnx_inputs, "opset": 15, "output": output},
        "raw_feature_types": FEATURE_TYPES,
        "raw_missing_values": {"lvrat": "NaN", "chist": str(INT_MISSING), "selfemp": "__missing__"},
        "label": LABEL,
        "signatures": {"serving_default": {"inputs": ["examples"], "outputs": [output]},
                       "serving_raw": {"inputs": list(FEATURE_TYPES), "outputs": [output]}},
    }
    if kind != BINARY:  # binary versions stay as old ones were: no label_kind means binary
        info.update(label_kind=kind, classes=list(CLASSES) if kind == MULTICLASS else [], output=output)
    with open(os.path.join(version_dir, "model_info.json"), "w") as f:
        json.dump(info, f)
    with open(os.path.join(version_dir, "lineage.json"), "w") as f:
        json.dump({"model_version": version}, f)
    with open(os.path.join(version_dir, "schema.pbtxt"), "w") as f:
        f.write("".join(f'feature {{ name: "{c}" }}\n' for c in FEATURE_TYPES))
    pointer = os.path.join(root, "CHAMPION.json")
    previous = None
    if os.path.exists(pointer):
        with open(pointer) as f:
            previous = json.load(f).get("version")
    with open(pointer, "w") as f:
        json.dump({"version": version, "path": f"versions/{version}", "previous": previous}, f)
    return version_dir


def expected_probabilities(saved_model_dir: str, rows: list[dict], output: str = "probability") -> np.ndarray:
    """The SavedModel's own serving_default output for raw rows (None = feature absent): [N], or
    [N, K] for a multiclass `output`."""
    import tensorflow as tf

    records = []
    for row in rows:
        feature = {}
        if row.get("lvrat") is not None:
            feature["lvrat"] = tf.train.Feature(float_list=tf.train.FloatList(value=[row["lvrat"]]))
        if row.get("chist") is not None:
            feature["chist"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[row["chist"]]))
        if row.get("selfemp") is not None:
            feature["selfemp"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["selfemp"].encode()]))
        records.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    loaded = tf.saved_model.load(saved_model_dir)
    out = loaded.signatures["serving_default"](examples=tf.constant(records))[output].numpy().astype(np.float64)
    return out if output == OUTPUT_NAMES[MULTICLASS] else out.reshape(-1)
