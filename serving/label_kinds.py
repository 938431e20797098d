"""The label kinds and the output each kind's model answers: components/common/label_kinds.py's,
which the serving image does not ship (serving/tests/test_contract.py keeps them equal). Standard
library only: the log sink imports it in the pipeline's environment too."""

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
OUTPUT_NAMES = {BINARY: "probability", MULTICLASS: "probabilities", REGRESSION: "value"}
