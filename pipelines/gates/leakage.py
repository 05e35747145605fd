"""Label leakage: features that give the label away.

A feature leaks when it is a deterministic function of the label (the label itself, re-encoded,
counts as one), or when it alone separates the classes: single-feature ROC AUC at or above the
policy's bound. Numeric features are scored by their value; categorical ones by their category's
positive rate, which is only meaningful with few categories, so columns with more categories than
the policy keeps get an informational result instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.gates.checks import Check
from pipelines.gates.frames import Kind, column_kind
from pipelines.gates.policy import DataPolicy

if TYPE_CHECKING:
    import polars as pl


def leakage_checks(frame: pl.DataFrame, label: str, policy: DataPolicy) -> list[Check]:
    """One ``data.leakage`` check per feature of ``frame`` against the ``label`` column."""
    import polars as pl

    labelled = frame.filter(pl.col(label).is_not_null())
    classes = labelled[label].unique().sort().to_list()
    if len(classes) < 2:
        return [
            Check(
                "data.leakage",
                label,
                "classes",
                float(len(classes)),
                None,
                None,
                None,
                "the label has fewer than two classes: leakage cannot be measured",
            )
        ]
    positive = labelled[label] == classes[-1]
    checks = []
    for name in labelled.columns:
        if name == label:
            continue
        feature = labelled[name]
        if feature.dtype.is_float():
            feature = feature.fill_nan(None)
        pairs = pl.DataFrame({"x": feature, "label": labelled[label], "y": positive}).drop_nulls()
        if pairs.height == 0:
            checks.append(Check("data.leakage", name, None, None, None, None, None, "no labelled values"))
            continue
        if _is_function_of_label(pairs):
            checks.append(
                Check(
                    "data.leakage",
                    name,
                    "function_of_label",
                    1.0,
                    None,
                    None,
                    False,
                    f"each label value maps to exactly one value of {name!r}: it encodes the label",
                )
            )
        elif len(classes) == 2:
            checks.append(_auc_check(name, pairs, column_kind(feature.dtype), policy))
    return checks


def _is_function_of_label(pairs: pl.DataFrame) -> bool:
    import polars as pl

    if pairs["x"].n_unique() < 2:
        return False
    per_class = pairs.group_by("label").agg(pl.col("x").n_unique().alias("distinct"))
    return bool((per_class["distinct"] == 1).all())


def _auc_check(name: str, pairs: pl.DataFrame, kind: Kind, policy: DataPolicy) -> Check:
    import polars as pl

    groups = pairs.group_by("x").agg(pl.col("y").sum().alias("pos"), pl.len().alias("n"))
    if kind is Kind.CATEGORICAL:
        if groups.height > policy.max_categories:
            return Check(
                "data.leakage",
                name,
                "roc_auc",
                None,
                None,
                policy.leakage_auc,
                None,
                f"{groups.height} categories (> {policy.max_categories}): single-feature AUC not measured",
            )
        score = pl.col("pos") / pl.col("n")
    else:
        score = pl.col("x").cast(pl.Float64)
    auc = grouped_roc_auc(groups.select(score.alias("score"), "pos", "n"))
    strength = max(auc, 1.0 - auc)
    how = "by value" if kind is Kind.NUMERIC else "by its categories' positive rate"
    return Check(
        "data.leakage",
        name,
        "roc_auc",
        strength,
        None,
        policy.leakage_auc,
        strength < policy.leakage_auc,
        f"scoring the label with {name!r} alone ({how}) gives ROC AUC {strength:.4f}",
    )


def grouped_roc_auc(groups: pl.DataFrame) -> float:
    """ROC AUC from ``score``, ``pos`` (positives) and ``n`` (rows) per distinct score.

    The Mann–Whitney form: each positive wins against the negatives scored below it and half-wins
    against those with the same score, so ties are handled as ``sklearn.metrics.roc_auc_score``
    handles them.
    """
    import polars as pl

    merged = groups.group_by("score").agg(pl.col("pos").sum(), pl.col("n").sum()).sort("score")
    pos = merged["pos"].cast(pl.Float64).to_numpy()
    neg = merged["n"].cast(pl.Float64).to_numpy() - pos
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return 0.5
    below = neg.cumsum() - neg
    return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))
