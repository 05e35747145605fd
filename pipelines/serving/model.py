"""A verified model in memory: load it from a model directory and turn rows into predictions.

Loading goes in a fixed order: verify every file against ``manifest.json``, then ask skops
which types the model needs beyond its defaults, refuse any that are not on
``TRUSTED_TYPES``, and only then build the objects. No pickle is ever involved. A package whose
contract names its own ``predict`` carries that module under ``code/service/``; it is imported
last, from the verified directory, so what serves is exactly what the gates ran.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError, ModelrailError, RefusedError
from pipelines.serving.verify import (
    MANIFEST,
    SERVICE_CODE_DIR,
    module_file,
    sha256_file,
    verify_model_dir,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_FILE = "model.skops"
SCHEMA_FILE = "schema.json"

BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
"""``schema.json``'s ``output.task`` values (``pipelines.contract.tasks.Task``), spelled out here
because the serving code imports nothing outside ``pipelines.serving``. A schema without one is
binary: packages built before tasks existed."""

SERVICE_PACKAGE = "modelrail_package"
"""The service's modules import as ``modelrail_package_<id>.<module>``: one package per package
id, so a candidate and its baseline loaded in one process never share a module, and the module
may import its siblings relatively."""

TRUSTED_TYPES = (
    "numpy.dtype",
    "pipelines.serving.transformers.SlowLookup",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types a model may contain beyond the ones skops trusts by default."""

ServicePredict = Callable[[Any, "pd.DataFrame"], Any]
"""The contract's ``predict(estimator, frame)``: a probability matrix (rows x classes, in the
schema's class order) for a classifier, one number per row for a regressor."""


class UntrustedTypeError(RefusedError):
    """The model file asks for a type that is neither skops-trusted nor on ``TRUSTED_TYPES``."""


class PredictionError(ModelrailError):
    """The model answered something that cannot be served: the wrong shape, a value that is not
    a finite number, a probability outside [0, 1]. The server answers 500: the fault is the
    model's, not the request's."""


@dataclass(frozen=True)
class LoadedPackage:
    """A model whose every file was verified, with its manifest and input/output schema."""

    package_id: str
    """sha256 of ``manifest.json``: the model version."""
    manifest: dict[str, Any]
    schema: dict[str, Any]
    pipeline: Any
    """The scikit-learn pipeline, preprocessing included."""
    service_predict: ServicePredict | None = None
    """The service's own ``predict`` the package carries, when its contract names one."""

    @property
    def columns(self) -> list[str]:
        """Input columns, in the order the model expects them."""
        return [column["name"] for column in self.schema["input"]["columns"]]

    @property
    def task(self) -> str:
        """What the model predicts: one of ``TASKS``."""
        return str(self.schema["output"].get("task", BINARY))

    @property
    def classes(self) -> list[str]:
        """Output labels of a classifier; ``predict_proba`` columns follow this order. Empty for a regressor."""
        return list(self.schema["output"].get("classes", []))

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """What the model computes for the rows: a classifier's probabilities (a column per class,
        in ``classes`` order), a regressor's numbers (one per row).

        The service's ``predict`` when the package carries one, the estimator's own
        ``predict_proba``/``predict`` otherwise; checked either way (``PredictionError``), so
        nothing unservable reaches a response or a gate.
        """
        rows = frame[self.columns]
        if self.service_predict is not None:
            source = f"the service's predict {self.manifest['serving']['predict']['entry_point']}"
            raw = self.service_predict(self.pipeline, rows)
        elif self.task == REGRESSION:
            source = f"{type(self.pipeline).__name__}.predict"
            raw = self.pipeline.predict(rows)
        else:
            source = f"{type(self.pipeline).__name__}.predict_proba"
            raw = self.pipeline.predict_proba(rows)
        return self._checked(raw, len(rows), source)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one row per input row, columns in ``classes`` order."""
        if self.task == REGRESSION:
            raise PredictionError(
                f"package {self.package_id[:12]}: a regression model has no class probabilities"
            )
        return self.scores(frame)

    def predict(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """The served rows, per task.

        Binary: the positive class's probability and the more likely label. Multiclass: the most
        likely label, its probability and every class's. Regression: the predicted number.
        """
        values = self.scores(frame)
        if self.task == REGRESSION:
            return [{"prediction": float(value)} for value in values]
        classes = self.classes
        if self.task == BINARY:
            positive = classes.index(self.schema["output"]["positive_class"])
            return [
                {"probability": round(float(row[positive]), 6), "label": classes[int(row.argmax())]}
                for row in values
            ]
        served = []
        for row in values:
            best = int(row.argmax())
            served.append(
                {
                    "label": classes[best],
                    "probability": round(float(row[best]), 6),
                    "probabilities": {name: round(float(p), 6) for name, p in zip(classes, row, strict=True)},
                }
            )
        return served

    def _checked(self, raw: Any, rows: int, source: str) -> np.ndarray:
        import numpy as np

        try:
            values = np.asarray(raw, dtype=float)
        except (TypeError, ValueError) as error:
            raise PredictionError(f"{source}: returned {type(raw).__name__}, not numbers: {error}") from None
        expected: tuple[int, ...]
        if self.task == REGRESSION:
            if values.ndim == 2 and values.shape[1] == 1:
                values = values[:, 0]
            expected, meaning = (rows,), "one number per row"
        else:
            classes = self.classes
            expected, meaning = (
                (rows, len(classes)),
                f"a probability per class, in order: {', '.join(classes)}",
            )
        if values.shape != expected:
            raise PredictionError(
                f"{source}: returned shape {values.shape} for {rows} row(s); expected {expected}, {meaning}"
            )
        bad = ~np.isfinite(values)
        if self.task != REGRESSION:
            bad |= (values < 0) | (values > 1)
        if bad.any():
            index = int(np.argwhere(bad)[0][0])
            allowed = "a finite number" if self.task == REGRESSION else "a probability in [0, 1]"
            raise PredictionError(f"{source}: row {index}: {values[index].tolist()} is not {allowed}")
        return values

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
    check_output(schema, schema_path)
    pipeline = load_skops(model_dir / MODEL_FILE)
    package_id = sha256_file(model_dir / MANIFEST)
    return LoadedPackage(
        package_id=package_id,
        manifest=manifest,
        schema=schema,
        pipeline=pipeline,
        service_predict=load_service_predict(model_dir, manifest, package_id),
    )


def check_output(schema: Any, path: Path) -> None:
    """Refuse a schema whose ``output`` the server could not answer by (``BadInputError``)."""
    output = schema.get("output") if isinstance(schema, dict) else None
    if not isinstance(output, dict):
        raise BadInputError(f"{path}: output = {output!r}; expected an object with the task and its fields")
    task = output.get("task", BINARY)
    if task not in TASKS:
        raise BadInputError(f"{path}: output.task = {task!r}; allowed: {', '.join(TASKS)}")
    if task == REGRESSION:
        return
    classes = output.get("classes")
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        raise BadInputError(
            f"{path}: output.classes = {classes!r}; a {task} model lists its classes (2 or more)"
        )
    if task == BINARY and output.get("positive_class") not in classes:
        raise BadInputError(
            f"{path}: output.positive_class = {output.get('positive_class')!r}; "
            f"allowed: one of the classes {', '.join(classes)}"
        )


def load_service_predict(model_dir: Path, manifest: dict[str, Any], package_id: str) -> ServicePredict | None:
    """Import the service's ``predict`` from the package's ``code/service/``, if it carries one.

    Called only on a verified directory, so the module is the file the manifest pins (and
    ``verify_serving_code`` has checked that the entry point's module is among the declared
    files). No bytecode is written: a ``__pycache__`` would be an unlisted file, and the
    directory would fail its next verification.
    """
    serving = manifest.get("serving")
    declared = serving.get("predict") if isinstance(serving, dict) else None
    if declared is None:
        return None
    entry = str(declared["entry_point"])
    module_name, function_name = entry.split(":", 1)
    path = model_dir / module_file(entry)
    package = f"{SERVICE_PACKAGE}_{package_id[:16]}"
    for loaded in [name for name in sys.modules if name == package or name.startswith(package + ".")]:
        del sys.modules[loaded]
    parent = types.ModuleType(package)
    parent.__path__ = [str((model_dir / SERVICE_CODE_DIR).resolve())]
    parent.__package__ = package
    sys.modules[package] = parent
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        module = importlib.import_module(f"{package}.{module_name}")
    except Exception as error:
        raise BadInputError(
            f"{path}: cannot import the service's predict {entry!r}: {type(error).__name__}: {error}"
        ) from None
    finally:
        sys.dont_write_bytecode = writes_bytecode
    function = getattr(module, function_name, None)
    if not callable(function):
        raise BadInputError(
            f"{path}: the service's predict {entry!r}: the module has no function {function_name!r}"
        )
    return function  # type: ignore[no-any-return]


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
