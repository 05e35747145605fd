"""A verified model in memory: load it from a model directory and turn rows into predictions.

Loading goes in a fixed order: verify every file against ``manifest.json``, then ask skops
which types the model needs beyond its defaults, refuse any that are not on
``TRUSTED_TYPES``, and only then build the objects. No pickle is ever involved.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError, RefusedError
from pipelines.serving.verify import MANIFEST, sha256_file, verify_model_dir

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_FILE = "model.skops"
SCHEMA_FILE = "schema.json"

TRUSTED_TYPES = (
    "numpy.dtype",
    "pipelines.serving.transformers.SlowLookup",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types a model may contain beyond the ones skops trusts by default."""


class UntrustedTypeError(RefusedError):
    """The model file asks for a type that is neither skops-trusted nor on ``TRUSTED_TYPES``."""


@dataclass(frozen=True)
class LoadedPackage:
    """A model whose every file was verified, with its manifest and input/output schema."""

    package_id: str
    """sha256 of ``manifest.json``: the model version."""
    manifest: dict[str, Any]
    schema: dict[str, Any]
    pipeline: Any
    """The scikit-learn pipeline, preprocessing included."""

    @property
    def columns(self) -> list[str]:
        """Input columns, in the order the model expects them."""
        return [column["name"] for column in self.schema["input"]["columns"]]

    @property
    def classes(self) -> list[str]:
        """Output labels; ``predict_proba`` columns follow this order."""
        return list(self.schema["output"]["classes"])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one row per input row, columns in ``classes`` order."""
        import numpy as np

        result: np.ndarray = np.asarray(self.pipeline.predict_proba(frame[self.columns]))
        return result

    def predict(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """Per row: the positive class's probability and the predicted label."""
        probabilities = self.predict_proba(frame)
        classes = self.classes
        positive = classes.index(self.schema["output"]["positive_class"])
        return [
            {"probability": round(float(row[positive]), 6), "label": classes[int(row.argmax())]}
            for row in probabilities
        ]

    def frame(self, rows: Sequence[Mapping[str, Any] | Sequence[Any]]) -> pd.DataFrame:
        """Rows (mappings by column name, or sequences in column order) as a typed frame.

        Raises ``BadInputError`` naming the row, the column and the value that cannot be used.
        """
        import pandas as pd

        columns = self.schema["input"]["columns"]
        names = [column["name"] for column in columns]
        records: list[list[Any]] = []
        for index, row in enumerate(rows):
            if isinstance(row, Mapping):
                missing = [name for name in names if name not in row]
                if missing:
                    raise BadInputError(f"row {index}: missing column(s) {', '.join(missing)}")
                values = [row[name] for name in names]
            else:
                if len(row) != len(names):
                    raise BadInputError(
                        f"row {index}: {len(row)} values; expected {len(names)} ({', '.join(names)})"
                    )
                values = list(row)
            records.append(
                [_cell(index, column, value) for column, value in zip(columns, values, strict=True)]
            )
        frame = pd.DataFrame(records, columns=names)
        for column in columns:
            frame[column["name"]] = frame[column["name"]].astype(
                "float64" if column["type"] == "number" else "object"
            )
        return frame


def _cell(index: int, column: Mapping[str, Any], value: Any) -> Any:
    if value is None or (isinstance(value, str) and value.strip() in ("", "?")):
        return math.nan if column["type"] == "number" else None
    if column["type"] == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BadInputError(
                f"row {index}: column {column['name']!r} = {value!r}: expected a number"
            ) from None
    return str(value).strip()


def load_model_dir(model_dir: Path, *, expected_package_id: str | None = None) -> LoadedPackage:
    """Verify and load a model directory (the ``/opt/ml/model`` layout)."""
    model_dir = Path(model_dir)
    manifest = verify_model_dir(model_dir, expected_package_id=expected_package_id)
    schema_path = model_dir / SCHEMA_FILE
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"{schema_path}: unreadable schema: {error}") from None
    pipeline = load_skops(model_dir / MODEL_FILE)
    return LoadedPackage(
        package_id=sha256_file(model_dir / MANIFEST), manifest=manifest, schema=schema, pipeline=pipeline
    )


def load_skops(path: Path) -> Any:
    """Load a skops file, refusing every type that is not trusted."""
    sio = import_skops()
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as error:
        raise BadInputError(f"{path}: not a readable skops file: {error}") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise UntrustedTypeError(
            f"{path}: the model needs types that are not trusted: {', '.join(refused)}",
            details=[f"trusted beyond skops' defaults: {', '.join(TRUSTED_TYPES)}"],
        )
    return sio.load(path, trusted=list(untrusted))


def import_skops() -> Any:
    """``skops.io``, imported without the lazily loaded modules of the Pulumi SDK in view.

    At import time skops looks up every type it trusts in every module of ``sys.modules``.
    Each lookup in a lazily loaded Pulumi provider module imports a submodule, which turns
    the import into minutes when the controller has already run the offline plan.
    """
    import sys

    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if name.startswith("pulumi")}
    try:
        import skops.io
    finally:
        sys.modules.update(hidden)
    return skops.io
