"""The model card: what a model is for, what it was trained and judged on, how it did (overall, per
slice, against the champion), which gates it met, whether the model server served it, what the card
cannot vouch for, and the versions that identify it. JSON for tools, Markdown for people and the
KFP UI; both built from records push already holds (the blessing, the lineage dict, the infra
blessing and the data validation summary), never from figures of its own.

Every push outcome gets a card, because the most useful card is often the one of a model that was
not published: it opens with why (the failed gates, the infra failure, or that the model already is
the champion), so the UI explains a rejection without a reader opening three other artifacts.

* Pushed: the card of the new registry version; push writes model_card.json and model_card.md
  into the version directory next to lineage.json, before the version is published, so no
  published version is without its card.
* Not blessed, or refused by infra validation: the candidate's card, for the UI only (nothing is
  written to the registry). It has no model version (versions are registry names) and carries the
  versions push knows without hashing the candidate: the code version and the data's.
* Already the champion: this run's evaluation of it, with the versions of the registry's copy
  (the champion's lineage); nothing new is written to the registry.

Figures are shown as the blessing records them. The blessing holds point estimates: a card shows a
metric's interval only when the blessing has one (`intervals`: {metric: {"lower", "upper"}}) and
otherwise says that intervals were not computed.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Mapping
from typing import Any

from components.common import io as fio
from components.common import label_kinds, names

CARD_FORMAT = 1

# Metrics in the order a reader looks for them; others the blessing has follow, sorted.
METRIC_ORDER = ("auc", "macro_auc", "r2", "accuracy", "macro_f1", "precision", "recall", "false_positive_rate",
                "false_negative_rate", "mean_absolute_error", "root_mean_squared_error", "mean_squared_error",
                "calibration", "expected_calibration_error", "mean_confidence", "brier_score", "log_loss",
                "mean_label", "mean_prediction", "example_count")


@dataclasses.dataclass(frozen=True)
class KindFigures:
    """What the card shows for one label kind (names as components/evaluate records them)."""

    primary: str
    """The gates' metric, in words."""
    slice_metrics: tuple[tuple[str, str], ...]
    """(metric, column header) per slice value."""
    baseline_metrics: tuple[tuple[str, str], ...]
    """(metric, column header) of the simple-baselines table (the candidate's from its eval metrics)."""
    calibration_rule: str


KIND_FIGURES = {
    label_kinds.BINARY: KindFigures(
        "AUC", (("auc", "AUC"), ("false_positive_rate", "FPR"), ("false_negative_rate", "FNR"), ("accuracy", "accuracy")),
        (("auc", "AUC"), ("brier", "Brier score")), "calibration in band, ECE <= {t:g}"),
    label_kinds.MULTICLASS: KindFigures(
        "macro AUC", (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("macro_auc", "macro AUC"),
                      ("log_loss", "log-loss")),
        (("macro_auc", "macro AUC"), ("accuracy", "accuracy"), ("log_loss", "log-loss")),
        "top-class ECE <= {t:g}"),
    label_kinds.REGRESSION: KindFigures(
        "R²", (("mean_absolute_error", "MAE"), ("root_mean_squared_error", "RMSE"), ("r2", "R²"),
               ("mean_prediction", "mean prediction"), ("mean_label", "mean label")),
        (("r2", "R²"), ("mean_absolute_error", "MAE"), ("mean_squared_error", "MSE")),
        "mean prediction / mean label in band (upper {t:g})"),
}
# A baseline records the Brier score as "brier"; the candidate's eval metrics as "brier_score".
CANDIDATE_METRIC = {"brier": "brier_score"}


def gate_rules(kind: str) -> dict[str, str]:
    """What each gate of components/evaluate demands, in the kind's metric."""
    figures = KIND_FIGURES[kind]
    simple = "logistic regression" if kind == label_kinds.BINARY else "the best simple model"
    return {
        "metric_floor": f"candidate {figures.primary} >= {{t:g}}",
        "no_regression": f"{figures.primary} change vs champion >= -{{t:g}}",
        "fairness": "largest slice gap <= {t:g}",
        "calibration": figures.calibration_rule,
        "baseline": f"{figures.primary} change vs {simple} >= -{{t:g}}",
    }
INTERVALS_NOT_COMPUTED = ("Intervals: not computed. The blessing records point estimates on the eval split; "
                          "no confidence intervals were computed, so none are shown.")
INTERVALS_COMPUTED = "Intervals: TFMA's 95% jackknife intervals on the eval split."
# The summary validate_data records on its statistics artifact (components/validate_data/component.py).
DATA_VALIDATION_KEYS = ("passed", "anomaly_count", "schema_source", "row_counts")


def gate_verdict(gate: Mapping[str, Any]) -> str:
    """PASS, FAIL or N/A (a gate with nothing to judge), as evaluate's Gate.verdict; a blessing
    written before gates carried "applicable" has only applicable gates."""
    if not gate.get("applicable", True):
        return "N/A"
    return "PASS" if gate.get("passed") else "FAIL"


def data_validation_summary(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """validate_data's summary from its statistics artifact's metadata (counts arrive as floats
    through KFP's metadata), or None when the artifact carries none."""
    summary = {k: metadata[k] for k in DATA_VALIDATION_KEYS if k in (metadata or {})}
    if not summary:
        return None
    if summary.get("anomaly_count") is not None:
        summary["anomaly_count"] = int(summary["anomaly_count"])
    if isinstance(summary.get("row_counts"), Mapping):
        summary["row_counts"] = {k: int(v) for k, v in summary["row_counts"].items()}
    return summary


def cell(value: object) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened, None as n/a, floats to 4 places."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _metric_keys(*metric_dicts: Mapping[str, Any] | None) -> list[str]:
    present = {k for m in metric_dicts if m for k in m}
    return [k for k in METRIC_ORDER if k in present] + sorted(present - set(METRIC_ORDER))


def _intended_use(data: Mapping[str, Any], ingest: Mapping[str, Any], blessing: Mapping[str, Any]) -> dict[str, Any]:
    source = data.get("source")
    kind = data.get("label_kind") or label_kinds.BINARY
    evaluated_on = data.get("eval_source") or "a held-out split of the same source"
    if blessing.get("skipped_slices"):
        groups = "Slice values the fairness gate left out (see caveats): the model's quality there was not judged."
    elif not blessing.get("slices"):
        groups = "Use where quality per group matters: no slice column was evaluated, so it was not measured."
    else:
        groups = None
    return {
        "use": f"{_what_it_answers(data)}, for one row with the feature columns listed, from data like "
               f"`{source or 'the training data (source not recorded)'}`.",
        "feature_columns": list(ingest.get("feature_columns") or []),
        "slice_columns": list(ingest.get("slices") or []),
        "out_of_scope": [item for item in (
            f"Rows from another source or population: the model was evaluated only on {evaluated_on}.",
            groups,
            f"Decisions on the {'value' if kind == label_kinds.REGRESSION else 'score'} alone: the gates judge "
            f"{JUDGED_QUALITY[kind]}, regression against the champion and gaps between slice values, not what "
            "a wrong decision costs.",
        ) if item],
    }


JUDGED_QUALITY = {label_kinds.BINARY: "ranking quality (AUC)",
                  label_kinds.MULTICLASS: "ranking quality per class (macro-averaged AUC)",
                  label_kinds.REGRESSION: "the share of variance explained (R²)"}


def _what_it_answers(data: Mapping[str, Any]) -> str:
    """The model's answer in words, for its label's kind (an older lineage without one: binary)."""
    label, meaning = data.get("label"), data.get("label_meaning")
    kind = data.get("label_kind") or label_kinds.BINARY
    if kind == label_kinds.MULTICLASS:
        classes = ", ".join(f"`{c}`" for c in data.get("classes") or [])
        return f"Multi-class classifier: the probability of each class of `{label}` ({classes})"
    if kind == label_kinds.REGRESSION:
        return f"Regressor: the expected value of `{label}`"
    target = f"`{label}` is positive ({meaning})" if meaning else f"`{label}` is positive" if label else \
        "the positive class (label not recorded)"
    return f"Binary classifier: the probability that {target}"


def _caveats(blessing: Mapping[str, Any], lineage: Mapping[str, Any], published: bool,
             infra: Mapping[str, Any] | None, data_validation: Mapping[str, Any] | None) -> list[str]:
    caveats = []
    if not blessing.get("intervals"):
        caveats.append("Metrics are point estimates on the eval split: no confidence intervals were computed.")
    for skipped in blessing.get("skipped_slices") or []:
        caveats.append(f"Slice {skipped.get('slice')} left out of the fairness gate: {skipped.get('reason')}.")
    for gate in blessing.get("gates") or []:
        if gate_verdict(gate) == "N/A":
            detail = str(gate.get("detail", "")).removeprefix("not applicable: ")
            caveats.append(f"Gate {gate['name']} not applicable: {detail}.")
        elif gate.get("value") is None:
            caveats.append(f"Gate {gate['name']} has no value ({gate_verdict(gate)}): {gate.get('detail', '')}.")
    if not blessing.get("baseline_metrics"):
        caveats.append("No champion was in the registry when the model was evaluated: nothing to compare against.")
    evaluated_against, registry_champion = blessing.get("baseline_version"), lineage.get("previous_champion")
    if published and evaluated_against and evaluated_against != registry_champion:
        caveats.append(f"Evaluated against champion {evaluated_against}, but the champion at push time was "
                       f"{registry_champion or 'none'}: the comparison is with {evaluated_against}.")
    if not (lineage.get("data") or {}).get("eval_source"):
        caveats.append("The eval split is a random held-out part of the training source, not an independent "
                       "sample: the figures describe data like the training data.")
    if infra is None:
        caveats.append("Infra validation did not run: no infra blessing was given to push.")
    if data_validation is None:
        caveats.append("No data validation summary was recorded for the training data.")
    return caveats


def build_card(
    *,
    model_name: str,
    published: bool,
    reason: str,
    model_uri: str | None,
    blessing: Mapping[str, Any],
    lineage: Mapping[str, Any],
    infra: Mapping[str, Any] | None,
    data_validation: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The card as a JSON-able dict. `lineage`: the dict push builds for lineage.json (for a model
    it did not publish, the part it knows: code_version, data, parameters.ingest); `infra`: the
    infra blessing, None when infra validation did not run; `data_validation`: see
    data_validation_summary."""
    data = dict(lineage.get("data") or {})
    ingest = (lineage.get("parameters") or {}).get("ingest") or {}
    metrics = dict(blessing.get("metrics") or {})
    baseline = blessing.get("baseline_metrics")
    comparison = None
    if baseline:
        comparison = {
            "champion_version": blessing.get("baseline_version"),
            "champion_metrics": dict(baseline),
            "change": {k: (metrics[k] - baseline[k]) if _number(metrics.get(k)) is not None
                       and _number(baseline.get(k)) is not None else None for k in _metric_keys(metrics, baseline)},
        }
    environment = lineage.get("environment") or {}
    return {
        "card_format": CARD_FORMAT,
        "label_kind": data.get("label_kind") or blessing.get("label_kind") or label_kinds.BINARY,
        "model_name": model_name,
        "model_version": lineage.get("model_version"),
        "published": bool(published),
        "reason": reason,
        "registry_uri": model_uri,
        "created_at": lineage.get("created_at"),
        "intended_use": _intended_use(data, ingest, blessing),
        "data": data,
        "data_validation": None if data_validation is None else dict(data_validation),
        "training": _training(lineage),
        "blessed": bool(blessing.get("blessed")),
        "gates": [{"name": g["name"], "verdict": gate_verdict(g), "passed": bool(g.get("passed")),
                   "applicable": bool(g.get("applicable", True)), "value": g.get("value"),
                   "lower": g.get("lower"), "upper": g.get("upper"), "n": g.get("n"), "rule": g.get("rule"),
                   "threshold": g.get("threshold"), "detail": g.get("detail", "")}
                  for g in blessing.get("gates") or []],
        "simple_baselines": dict(blessing.get("simple_baselines") or {}),
        "decision_threshold": blessing.get("decision_threshold"),
        "metrics": {
            "eval_split": metrics,
            # evaluate records them per slice name; the card's metric table is the overall one
            "intervals": (blessing.get("intervals") or {}).get("overall") or None,
            "intervals_note": INTERVALS_COMPUTED if blessing.get("intervals") else INTERVALS_NOT_COMPUTED,
        },
        "comparison": comparison,
        "slices": blessing.get("slices") or {},
        "skipped_slices": list(blessing.get("skipped_slices") or []),
        "infra_validation": None if infra is None else {
            k: infra.get(k) for k in ("blessed", "reason", "load_seconds", "rows", "v1", "v2") if k in infra},
        "caveats": _caveats(blessing, lineage, published, infra, data_validation),
        "versions": {
            "model_version": lineage.get("model_version"),
            "code_version": lineage.get("code_version"),
            "data_sha256": data.get("sha256"),
            "schema_sha256": lineage.get("schema_sha256"),
            "statistics_sha256": lineage.get("statistics_sha256"),
            "artifacts_sha256": dict(lineage.get("artifacts_sha256") or {}),
            "previous_champion": lineage.get("previous_champion"),
            "python": environment.get("python"),
            "packages": dict(environment.get("packages") or {}),
        },
    }


TRAINING_KEYS = ("hidden_units", "learning_rate", "dropout", "l2_regularization", "linear_path", "class_weighting",
                 "epochs", "batch_size", "seed")


def _training(lineage: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings the model was trained with and, when they were tuned, the trials."""
    parameters = (lineage.get("parameters") or {}).get("train") or {}
    if not parameters:
        return None
    training = lineage.get("training") or {}
    return {"parameters": {k: parameters[k] for k in TRAINING_KEYS if k in parameters},
            "epochs_run": training.get("epochs_run"), "tuning": training.get("tuning")}


def _interval(intervals: Mapping[str, Any] | None, key: str) -> str | None:
    bounds = (intervals or {}).get(key)
    if not isinstance(bounds, Mapping):
        return None
    lower, upper = bounds.get("lower", bounds.get("lower_bound")), bounds.get("upper", bounds.get("upper_bound"))
    return None if lower is None or upper is None else f"[{cell(float(lower))}, {cell(float(upper))}]"


def _rows(counts: Mapping[str, Any]) -> str:
    """Row counts per split, train first: "train 8, eval 2"."""
    order = sorted(counts, key=lambda s: (names.SPLITS.index(s) if s in names.SPLITS else len(names.SPLITS), s))
    return ", ".join(f"{split} {counts[split]}" for split in order)


def _figure(key: str, value: Any) -> Any:
    return int(value) if key == "example_count" and _number(value) is not None else value


def card_markdown(card: Mapping[str, Any]) -> str:
    """The card for people (and the KFP UI's Markdown viewer)."""
    version = card.get("model_version")
    title = (f"`{version}`" if card["published"] else f"`{version}` (nothing new published)" if version
             else "(candidate, not published)")
    lines = [f"# Model card: {card['model_name']} {title}", ""]
    if card["published"]:
        lines += [f"**Published** to `{card.get('registry_uri')}`: {card['reason']}"]
    else:
        lines += [f"**Not published:** {card['reason']}"]
        if version:
            lines += ["", f"This card describes the registry's copy, `{version}`, with this run's evaluation of it."]

    versions = card["versions"]
    lines += ["", "## Model details", "", "| field | value |", "|---|---|"]
    facts = [
        ("model version", f"`{version}`" if version else "none (not published)"),
        ("created at", card.get("created_at")),
        ("code version", f"`{versions['code_version']}`" if versions.get("code_version") else None),
        ("data sha256", f"`{versions['data_sha256']}`" if versions.get("data_sha256") else None),
        ("schema sha256", f"`{versions['schema_sha256']}`" if versions.get("schema_sha256") else None),
        ("statistics sha256", f"`{versions['statistics_sha256']}`" if versions.get("statistics_sha256") else None),
        *[(f"{name} sha256", f"`{digest}`") for name, digest in sorted(versions["artifacts_sha256"].items())],
        ("parent champion", f"`{versions['previous_champion']}`" if versions.get("previous_champion")
         else "none (first push)" if card["published"] else None),
        ("python", versions.get("python")),
        *[(name, versions["packages"][name]) for name in ("tensorflow", "tensorflow-model-analysis", "kfp")
          if name in versions["packages"]],
    ]
    lines += [f"| {name} | {cell(value)} |" for name, value in facts if value not in (None, "")]

    use = card["intended_use"]
    lines += ["", "## Intended use", "", use["use"], ""]
    if use["feature_columns"]:
        lines += [f"Features: {', '.join(f'`{c}`' for c in use['feature_columns'])}.", ""]
    if use["slice_columns"]:
        lines += [f"Judged per slice of: {', '.join(f'`{c}`' for c in use['slice_columns'])}.", ""]
    lines += ["Out of scope:", ""] + [f"- {item}" for item in use["out_of_scope"]]

    data = card["data"]
    rows = data.get("row_counts") or {}
    lines += ["", "## Data", "", "| field | value |", "|---|---|"]
    data_facts = [
        ("source", data.get("source")),
        ("eval source", data.get("eval_source") or "held-out split of the source"),
        ("rows", _rows(rows) or None),
        ("label", f"{data.get('label')} ({data.get('label_meaning')})" if data.get("label_meaning")
         else data.get("label")),
        ("sha256", f"`{data['sha256']}`" if data.get("sha256") else None),
    ]
    lines += [f"| {name} | {cell(value)} |" for name, value in data_facts if value not in (None, "")]

    validation = card.get("data_validation")
    lines += ["", "## Data validation", ""]
    if validation is None:
        lines += ["No data validation summary was recorded."]
    else:
        counts = validation.get("row_counts") or {}
        passed = validation.get("passed")
        lines += [
            f"{'Passed' if passed else 'FAILED' if passed is not None else 'Result not recorded'}: "
            f"{cell(validation.get('anomaly_count'))} anomalies; schema {cell(validation.get('schema_source'))}"
            + (f"; rows {_rows(counts)}" if counts else "") + "."
        ]

    training = card.get("training")
    if training:
        lines += ["", "## Training", "", "| setting | value |", "|---|---|"]
        lines += [f"| {name.replace('_', ' ')} | {cell(value)} |" for name, value in training["parameters"].items()]
        lines += [f"| epochs run (early stopping on the validation loss) | {cell(training.get('epochs_run'))} |"]
        tuning = training.get("tuning")
        if tuning:
            chosen = tuning["chosen"]
            lines += ["", f"Tuned: {len(tuning['trials'])} trials ({cell(tuning.get('tuner'))}), each scored by its best "
                      f"validation loss; chosen: {cell(chosen.get('trial'))}, validation loss "
                      f"{cell(chosen.get('val_loss'))} against the untuned default's {cell(tuning['default'].get('val_loss'))}.",
                      "", "| trial | hidden units | learning rate | dropout | validation loss | epochs |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {cell(t['trial'])} | {cell(t['hidden_units'])} | {cell(t['learning_rate'])} | "
                      f"{cell(t['dropout'])} | {cell(t['val_loss'])} | {cell(t['epochs_run'])} |"
                      for t in tuning["trials"]]

    lines += ["", f"## Gates: {'BLESSED' if card['blessed'] else 'NOT BLESSED'}", "",
              "| gate | verdict | value | 95% interval | n | rule | judged on | detail |",
              "|---|---|---|---|---|---|---|---|"]
    kind = card.get("label_kind") or label_kinds.BINARY
    figures, rules = KIND_FIGURES[kind], gate_rules(kind)
    for gate in card["gates"]:
        threshold = gate.get("threshold")
        rule = rules.get(gate["name"], "threshold {t:g}").format(t=threshold) if threshold is not None else None
        verdict = "**FAIL**" if gate["verdict"] == "FAIL" else gate["verdict"]
        interval = _interval({"g": gate}, "g")
        lines.append(f"| {cell(gate['name'])} | {verdict} | {cell(gate.get('value'))} | {cell(interval)} | "
                     f"{cell(gate.get('n'))} | {cell(rule)} | {cell((gate.get('rule') or '').replace('_', ' '))} | "
                     f"{cell(gate.get('detail'))} |")
    baselines, evaluated = card.get("simple_baselines") or {}, card["metrics"]["eval_split"]
    if baselines:
        columns = figures.baseline_metrics
        lines += ["", "## Against simple baselines (same splits)", "",
                  "| model | " + " | ".join(header for _, header in columns) + " |", "|---|" + "---|" * len(columns),
                  "| candidate | " + " | ".join(cell(evaluated.get(CANDIDATE_METRIC.get(k, k))) for k, _ in columns) + " |"]
        lines += [f"| {cell(name)} | " + " | ".join(cell(b.get(k)) for k, _ in columns) + " |"
                  for name, b in baselines.items()]
    if kind == label_kinds.BINARY and card.get("decision_threshold") is not None:
        lines += ["", f"Rates (FPR, FNR, accuracy) at decision threshold {cell(card['decision_threshold'])}."]

    metrics, intervals, comparison = card["metrics"]["eval_split"], card["metrics"]["intervals"], card["comparison"]
    lines += ["", "## Metrics on the eval split", ""]
    if metrics:
        header = ["metric", "candidate"] + (["interval"] if intervals else [])
        if comparison:
            header += [f"champion {comparison.get('champion_version') or ''}".strip(), "change"]
        lines += ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
        for key in _metric_keys(metrics):
            row = [key, cell(_figure(key, metrics.get(key)))]
            if intervals:
                row.append(cell(_interval(intervals, key)))
            if comparison:
                change = comparison["change"].get(key)
                row += [cell(_figure(key, comparison["champion_metrics"].get(key))),
                        cell(None if change is None else f"{change:+.4f}")]
            lines.append("| " + " | ".join(row) + " |")
        lines += [""]
    else:
        lines += ["The blessing records no metrics.", ""]
    lines += [card["metrics"]["intervals_note"]]
    if not comparison:
        lines += ["", "No champion to compare against."]

    skipped = {(s.get("column"), s.get("value")) for s in card["skipped_slices"]}
    lines += ["", "## Per-slice results"]
    for column, values in sorted(card["slices"].items()):
        headers = [header for _, header in figures.slice_metrics]
        lines += ["", f"### `{column}`", "",
                  "| value | n | " + " | ".join(headers) + " | in fairness gate |", "|---|---|" + "---|" * (len(headers) + 1)]
        for value, m in sorted(values.items()):
            row = " | ".join(cell(m.get(k)) for k, _ in figures.slice_metrics)
            lines.append(f"| {cell(value)} | {cell(_figure('example_count', m.get('example_count')))} | {row} | "
                         f"{'no (skipped)' if (column, value) in skipped else 'yes'} |")
    if not card["slices"]:
        lines += ["", "The blessing has no per-slice results (no slice column was evaluated)."]

    infra = card.get("infra_validation")
    lines += ["", "## Infra validation", ""]
    if infra is None:
        lines += ["Not run."]
    else:
        lines += [f"{'Passed' if infra.get('blessed') else 'FAILED'}: {infra.get('reason')}"]
        v1, v2 = infra.get("v1") or {}, infra.get("v2") or {}
        if infra.get("load_seconds") is not None:
            lines += ["", f"- load: {infra['load_seconds']} s"]
        if v1.get("p50_ms") is not None:
            lines += [f"- V1: {v1.get('requests')} requests, p50 {v1['p50_ms']} ms, p99 {v1.get('p99_ms')} ms"]
        if v2.get("rows") is not None:
            lines += [f"- V2: {v2['rows']} rows in one request"
                      + (f", max abs diff vs V1 {v2['max_abs_diff_vs_v1']:.2e}" if _number(v2.get("max_abs_diff_vs_v1"))
                         is not None else "")]

    lines += ["", "## Caveats", ""] + [f"- {c}" for c in card["caveats"]]
    return "\n".join(lines) + "\n"


def write_card(directory: str, card: Mapping[str, Any]) -> dict[str, str]:
    """model_card.json and model_card.md in `directory` (each written atomically); their URIs."""
    uris = {"json": fio.join(directory, names.MODEL_CARD_JSON_FILE),
            "markdown": fio.join(directory, names.MODEL_CARD_MD_FILE)}
    fio.write_json_atomic(uris["json"], card)
    fio.write_text_atomic(uris["markdown"], card_markdown(card))
    return uris
