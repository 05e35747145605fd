"""Label leakage: features that give the label away.

A feature leaks when it is a deterministic function of the label (the label itself, re-encoded,
counts as one), or when it alone separates the label's values: single-feature ROC AUC at or above
the policy's bound. What is separated depends on the label:

- two classes: the one class from the other;
- more classes: each class from the rest (one-vs-rest), the strongest reported;
- a number (regression): the rows above the label's median from the others. A copy or a noisy
  proxy of the label splits them as cleanly as it ranks the rows, and the function-of-label test
  is left out, since nearly every value of a continuous label is unique (any feature would "map"
  each to one value).

Numeric features are scored by their value; categorical ones by their category's rate of the
target, which is only meaningful with few categories, so columns with more categories than the
policy keeps get an informational result instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.contract.tasks import Task
from pipelines.gates.checks import Check
from pipelines.gates.frames import Kind, column_kind
from pipelines.gates.policy import DataPolicy

if TYPE_CHECKING:
    import polars as pl

CLASS_LIMIT = 20
"""Told no task, a numeric label with more distinct values than this is a number to predict;
one with fewer (0/1, digit codes) is a set of classes."""


def leakage_checks(
    frame: pl.DataFrame, label: str, policy: DataPolicy, *, task: Task | None = None
) -> list[Check]:
    """One ``data.leakage`` check per feature of ``frame`` against the ``label`` column.

    ``task`` is the label's (the service contract's); ``None`` infers it from the label's values
    (``CLASS_LIMIT``).
    """
    import polars as pl

    labelled = frame.filter(pl.col(label).is_not_null())
    if labelled[label].dtype.is_float():
        labelled = labelled.filter(pl.col(label).is_not_nan())
    values = labelled[label]
    if task is None:
        regression = values.dtype.is_numeric() and values.n_unique() > CLASS_LIMIT
    else:
        regression = task is Task.regression
    if regression:
        numbers = values.cast(pl.Float64)
        median = numbers.quantile(0.5, interpolation="linear") or 0.0
        targets = {f"the rows above its median ({median:g})": numbers > median}
        if numbers.n_unique() < 2:
            return [_not_measured(label, "values", numbers.n_unique(), "the label is constant")]
    else:
        classes = values.unique().sort().to_list()
        if len(classes) < 2:
            return [_not_measured(label, "classes", len(classes), "the label has fewer than two classes")]
        if len(classes) == 2:
            targets = {"": values == classes[-1]}
        else:
            targets = {f"class {value!r} against the rest": values == value for value in classes}
    names = {target: f"y{index}" for index, target in enumerate(targets)}
    checks = []
    for name in labelled.columns:
        if name == label:
            continue
        feature = labelled[name]
        if feature.dtype.is_float():
            feature = feature.fill_nan(None)
        pairs = pl.DataFrame(
            {"x": feature, "label": values, **{names[target]: y for target, y in targets.items()}}
        ).drop_nulls()
        if pairs.height == 0:
            checks.append(Check("data.leakage", name, None, None, None, None, None, "no labelled values"))
        elif not regression and _is_function_of_label(pairs):
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
        else:
            checks.append(_auc_check(name, pairs, names, column_kind(feature.dtype), policy))
    return checks


def _not_measured(label: str, method: str, count: int, why: str) -> Check:
    return Check(
        "data.leakage", label, method, float(count), None, None, None, f"{why}: leakage cannot be measured"
    )


def _is_function_of_label(pairs: pl.DataFrame) -> bool:
    import polars as pl

    if pairs["x"].n_unique() < 2:
        return False
    per_class = pairs.group_by("label").agg(pl.col("x").n_unique().alias("distinct"))
    return bool((per_class["distinct"] == 1).all())


def _auc_check(
    name: str, pairs: pl.DataFrame, targets: dict[str, str], kind: Kind, policy: DataPolicy
) -> Check:
    """The strongest single-feature ROC AUC of ``name`` over the targets (columns of ``pairs``)."""
    categories = pairs["x"].n_unique()
    if kind is Kind.CATEGORICAL and categories > policy.max_categories:
        return Check(
            "data.leakage",
            name,
            "roc_auc",
            None,
            None,
            policy.leakage_auc,
            None,
            f"{categories} categories (> {policy.max_categories}): single-feature AUC not measured",
        )
    strongest, against = max((_strength(pairs, column, kind), target) for target, column in targets.items())
    how = "by value" if kind is Kind.NUMERIC else "by its categories' rate of the target"
    what = f"scoring {against} " if against else "scoring the label "
    return Check(
        "data.leakage",
        name,
        "roc_auc",
        strongest,
        None,
        policy.leakage_auc,
        strongest < policy.leakage_auc,
        f"{what}with {name!r} alone ({how}) gives ROC AUC {strongest:.4f}",
    )


def _strength(pairs: pl.DataFrame, target: str, kind: Kind) -> float:
    """How well the feature ``x`` alone separates the ``target`` rows, either way round."""
    import polars as pl

    groups = pairs.group_by("x").agg(pl.col(target).sum().alias("pos"), pl.len().alias("n"))
    score = pl.col("pos") / pl.col("n") if kind is Kind.CATEGORICAL else pl.col("x").cast(pl.Float64)
    auc = grouped_roc_auc(groups.select(score.alias("score"), "pos", "n"))
    return max(auc, 1.0 - auc)


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
