"""The model's head for each label kind (components/common/label_kinds.py): its output layer, loss,
training metric and class weights.

- binary: one logit → sigmoid "probability"; binary cross-entropy; AUC.
- multiclass: K logits → softmax "probabilities"; sparse categorical cross-entropy; accuracy.
- regression: one output in standard units → "value" = mean + sd * output (the train split's label
  mean and sd, so the network learns a standardised target whatever the label's scale); squared
  error divided by the label's variance (the loss reads as 1 - R² on train); RMSE.

Every kind's last pre-activation layer is named LOGIT, where calibration attaches.
"""

from __future__ import annotations

import dataclasses

from components.common import label_kinds, names
from components.common.errors import PipelineInputError

LOGIT = "logit"


@dataclasses.dataclass(frozen=True)
class Head:
    kind: str
    classes: tuple[str, ...] = ()
    label_mean: float = 0.0
    label_std: float = 1.0

    @property
    def output_name(self) -> str:
        return label_kinds.output_name(self.kind)

    @property
    def units(self) -> int:
        """Logits (outputs) of the last layer: K for multiclass, else 1."""
        return len(self.classes) if self.kind == label_kinds.MULTICLASS else 1

    @property
    def metric_name(self) -> str:
        return {label_kinds.BINARY: "auc", label_kinds.MULTICLASS: "accuracy", label_kinds.REGRESSION: "rmse"}[self.kind]

    def output(self, logit):
        """The output layer over the LOGIT tensor, named by the kind."""
        import tf_keras as keras

        if self.kind == label_kinds.BINARY:
            return keras.layers.Activation("sigmoid", name=self.output_name)(logit)
        if self.kind == label_kinds.MULTICLASS:
            return keras.layers.Softmax(name=self.output_name)(logit)
        return keras.layers.Rescaling(scale=self.label_std, offset=self.label_mean, name=self.output_name)(logit)

    def compile(self, model, learning_rate: float | None = None) -> None:
        """Loss, metric and optimizer of the kind (a calibrated model is compiled only to be
        evaluated: its learning rate does not matter)."""
        import tf_keras as keras

        if self.kind == label_kinds.BINARY:
            loss, metric, weight = keras.losses.BinaryCrossentropy(), keras.metrics.AUC(name="auc"), 1.0
        elif self.kind == label_kinds.MULTICLASS:
            loss, weight = keras.losses.SparseCategoricalCrossentropy(), 1.0
            metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        else:
            loss, weight = keras.losses.MeanSquaredError(), 1.0 / self.label_std ** 2
            metric = keras.metrics.RootMeanSquaredError(name="rmse")
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate if learning_rate is not None else 0.001)
        model.compile(optimizer=optimizer, loss=loss, loss_weights=[weight], metrics=[metric])


def head_for(metadata: dict) -> Head:
    """The head of the examples' label (ingest metadata; no label_kind: an older binary artifact)."""
    kind = label_kinds.check_kind(metadata.get("label_kind", label_kinds.BINARY))
    if kind == label_kinds.REGRESSION:
        stats = metadata["label_counts"][names.TRAIN]
        if not stats.get("std", 0) > 0:
            raise PipelineInputError(f"the regression label has no variance in the train split ({stats})")
        return Head(kind, (), float(stats["mean"]), float(stats["std"]))
    classes = tuple(metadata.get("classes") or ("0", "1"))
    return Head(kind, classes)


def class_weights(head: Head, label_counts: dict[str, int]) -> dict[int, float]:
    """n / (K * n_c) per class: each of the K classes weighs 1/K of the loss."""
    if head.kind == label_kinds.REGRESSION:
        raise PipelineInputError("class_weighting needs a classification label, not a regression one")
    counts = {int(k): int(v) for k, v in label_counts.items()}
    total, k = sum(counts.values()), len(head.classes)
    if set(counts) != set(range(k)) or min(counts.values()) == 0:
        raise PipelineInputError(f"the train split needs every class of {list(head.classes)}, got label counts {counts}")
    return {c: total / (k * n) for c, n in sorted(counts.items())}
