"""What one served version answers, and the router's per-task rules for it.

The router keeps the same counters for every task (a 10-bin prediction histogram, labelled and
correct delayed labels), so the canary's drift and live-accuracy checks need no task of their
own. What differs is how a response row becomes a bin and what makes a delayed label correct;
this module says so, from the version's ``schema.json`` ``output``, with the bin itself from
``pipelines.serving.metrics.served_bin``, which the model server's own ``/metrics`` counts by too:

* binary: the bin of the positive class's probability; correct when the label is the truth;
* multiclass: the predicted class's position in the schema's classes (9 and beyond share the
  last bin); correct when the label is the truth;
* regression: how many of the schema's ``bins`` edges (the training labels' deciles) are at or
  below the prediction; correct when the prediction is within the schema's ``tolerance`` of
  the truth.

A shadow's answer to a mirrored request agrees with production's by the same rules, with
production's answer as the truth (``ServedOutput.agreed``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError
from pipelines.serving.metrics import served_bin
from pipelines.serving.model import BINARY, REGRESSION, SCHEMA_FILE, TASKS
from pipelines.serving.series import PREDICTION_BINS

Guess = str | float
"""A served prediction as the router remembers it: a label, or a regressor's number."""


def normalise_label(label: object) -> str:
    """Labels compare without surrounding space or a trailing dot (Adult's test file writes ``>50K.``)."""
    return str(label).strip().rstrip(".").strip()


@dataclass(frozen=True)
class ServedOutput:
    """A version's ``schema.json`` ``output``, as much of it as the router needs."""

    task: str = BINARY
    classes: tuple[str, ...] = ()
    bins: tuple[float, ...] = ()
    """Regression: the inner edges of the prediction histogram, ascending."""
    tolerance: float | None = None
    """Regression: how far from its label a prediction may be and still count as correct."""

    @classmethod
    def from_schema(cls, schema: Any, source: str) -> ServedOutput:
        """The output section of a parsed schema; ``BadInputError`` names the key, value and what is allowed.

        A schema without ``output.task`` is a binary classifier's (packages older than tasks).
        """
        output = schema.get("output") if isinstance(schema, Mapping) else None
        if not isinstance(output, Mapping):
            raise BadInputError(
                f"{source}: output = {output!r}; expected an object with the task and its fields"
            )
        task = output.get("task", BINARY)
        if task not in TASKS:
            raise BadInputError(f"{source}: output.task = {task!r}; allowed: {', '.join(TASKS)}")
        if task != REGRESSION:
            classes = output.get("classes", [])
            if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
                raise BadInputError(f"{source}: output.classes = {classes!r}; expected a list of class names")
            return cls(task=task, classes=tuple(classes))
        bins, tolerance = output.get("bins"), output.get("tolerance")
        if (
            not isinstance(bins, list)
            or len(bins) != PREDICTION_BINS - 1
            or not all(_is_number(edge) for edge in bins)
            or sorted(bins) != bins
        ):
            raise BadInputError(
                f"{source}: output.bins = {bins!r}; expected {PREDICTION_BINS - 1} ascending numbers "
                "(the inner edges of the prediction histogram)"
            )
        if not (_is_number(tolerance) and isinstance(tolerance, int | float) and tolerance > 0):
            raise BadInputError(
                f"{source}: output.tolerance = {tolerance!r}; expected a number above 0 "
                "(the contract's liveTolerance)"
            )
        return cls(task=task, bins=tuple(float(edge) for edge in bins), tolerance=float(tolerance))

    @classmethod
    def read(cls, model_dir: Path) -> ServedOutput:
        """The output of the model directory's ``schema.json``.

        A directory without one is served by a stand-in (the sandbox's own tests), which answers
        like a binary classifier; a real package always has one, and its server refuses to start
        without it.
        """
        path = model_dir / SCHEMA_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as error:
            raise BadInputError(f"{path}: unreadable schema: {error}") from None
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as error:
            raise BadInputError(f"{path}: not JSON: {error}") from None
        return cls.from_schema(schema, str(path))

    def read_predictions(self, body: bytes, content_type: str) -> tuple[list[int], list[Guess]]:
        """The histogram bin and the remembered guess of every row of a serving response.

        A response the router cannot read (not JSON or CSV, a field missing, a label that is not
        one of the classes) counts as no predictions at all, not as some of them.
        """
        try:
            if content_type.startswith("text/csv"):
                reader = csv.reader(io.StringIO(body.decode("utf-8")))
                header = next(reader)
                # A class may be named like a field ("label"); the field is the first column of that name.
                index = {name: header.index(name) for name in header}
                rows = [{name: row[position] for name, position in index.items()} for row in reader if row]
            else:
                rows = json.loads(body).get("predictions", [])
            bins: list[int] = []
            guesses: list[Guess] = []
            for row in rows:
                bin_, guess = self._row(row)
                bins.append(bin_)
                guesses.append(guess)
        except (ValueError, KeyError, TypeError, AttributeError, StopIteration, UnicodeDecodeError):
            return [], []
        return bins, guesses

    def _row(self, row: Mapping[str, Any]) -> tuple[int, Guess]:
        bin_ = served_bin(row, self.task, self.classes, self.bins)
        guess = float(row["prediction"]) if self.task == REGRESSION else normalise_label(row["label"])
        return bin_, guess

    def correct(self, guess: Guess, truth: object) -> bool | None:
        """Whether a delayed label confirms the guess; ``None`` when the label cannot be judged
        (a regression label that is not a number)."""
        if self.task != REGRESSION:
            return normalise_label(truth) == guess
        assert isinstance(guess, float) and self.tolerance is not None
        if isinstance(truth, bool):
            return None
        try:
            value = float(truth)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        if not math.isfinite(value):
            return None
        return abs(guess - value) <= self.tolerance

    def agreed(self, production: Sequence[Guess], shadow: Sequence[Guess]) -> int:
        """How many of production's predictions for one request the shadow's answer to the same
        request agrees with, row by row, by this (production's) output: the same label for a
        classifier; for a regression, a number within the ``tolerance`` (the contract's
        ``liveTolerance``) of production's. A row the shadow did not answer, or answered with
        another kind of prediction, disagrees."""
        if self.task != REGRESSION:
            return sum(ours == theirs for ours, theirs in zip(production, shadow, strict=False))
        assert self.tolerance is not None
        return sum(
            isinstance(ours, float) and isinstance(theirs, float) and abs(ours - theirs) <= self.tolerance
            for ours, theirs in zip(production, shadow, strict=False)
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
