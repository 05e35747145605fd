"""A team's own request log, as JSON lines, read into the windows the canary judge steps through.

``modelrail canary judge`` replays a rollout offline: one file of the baseline's requests, one of
the canary's, each line one request::

    {"run": "7", "t": 12.5, "latency_ms": 41.0, "status": 200, "prediction": ">50K",
     "label": "<=50K", "label_t": 130.0}

``t`` and ``label_t`` are seconds since the rollout started; ``run`` (default ``"0"``) keeps
several replays in one file apart, and each run is judged on its own. The windows are what the
sandbox router would have counted over the same traffic, so the judge cannot tell a replay from
a live bake:

* a request counts in the interval of its ``t``: one invocation, a 4xx or a 5xx by its status,
  its latency in ``LatencyHistogram.of``'s buckets unless it failed with a 5xx (as at the router;
  ``latency_ms: null``: no answer, no latency), and its prediction in the histogram bin
  ``served_bin`` gives it;
* a label counts in the interval of its ``label_t`` (its ``t`` when ``label_t`` is null), on the
  side that served the prediction: correct when it is the predicted class (compared as the router
  compares them, ``normalise_label``) or, for a regression, within the tolerance of the prediction;
* a failed request (status 400 and above) served nothing: its prediction and label are not counted.

Every input is bounded (the file, the line, the number of requests, runs and intervals), and a
malformed line is refused with its file, its line number, the key, the bad value and what is
allowed, as the stack config reports its problems (``ConfigIssue``).
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

from infra.config import ConfigIssue
from pipelines.errors import BadInputError
from pipelines.metrics.stats import CanaryWindow, LatencyHistogram, VariantStats
from pipelines.sandbox.outputs import normalise_label
from pipelines.serving.metrics import served_bin
from pipelines.serving.model import MULTICLASS, REGRESSION
from pipelines.serving.series import PREDICTION_BINS

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from pipelines.contract.model import ServiceContract

Kind = Literal["classification", "regression"]
KINDS: tuple[Kind, ...] = ("classification", "regression")
Role = Literal["baseline", "canary"]

KEYS = ("run", "t", "latency_ms", "status", "prediction", "label", "label_t")
"""Every key a request line may have; ``t``, ``latency_ms`` and ``status`` are required."""
DEFAULT_RUN = "0"

MAX_FILE_BYTES = 1 << 30
"""Largest telemetry file read (1 GiB): a bound on the time and memory of a replay."""
MAX_LINE_BYTES = 4096
"""Longest line: a request is a few hundred bytes; a longer line is not one."""
MAX_REQUESTS = 2_000_000
"""Most requests per file (about 35 bytes each are kept while the file is read)."""
MAX_RUNS = 10_000
MAX_RUN_ID = 128
"""Longest run id, in characters."""
MAX_INTERVALS = 10_000
"""Most intervals one run may span: its last ``t`` or ``label_t`` below ``MAX_INTERVALS × interval``."""
MAX_TOTAL_INTERVALS = 500_000
"""Most intervals all runs together may span, so the judge's work stays bounded too."""
MAX_CLASSES = 1_000
"""Most distinct predicted classes when the classes are not declared."""
MAX_ISSUES = 20
"""Malformed lines reported per file before reading it stops."""
PROGRESS_EVERY = 1 << 20
"""Bytes between two progress reports."""


@dataclass(frozen=True)
class Predictions:
    """What a service predicts, which decides how a line's prediction is read, binned and judged."""

    kind: Kind
    classes: tuple[str, ...] | None = None
    """Classification: every class, in the order of the histogram's bins (the contract's
    ``classes``); ``None``: the classes seen in both files, sorted."""
    bins: tuple[float, ...] | None = None
    """Regression: the histogram's nine inner edges, ascending (a package schema's ``output.bins``,
    the training labels' deciles); ``None``: the deciles of each run's baseline predictions."""
    tolerance: float | None = None
    """Regression: how far from its label a prediction may be and count as correct (the
    contract's ``liveTolerance``)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: one of {', '.join(KINDS)}")
        if self.kind == "regression":
            if self.tolerance is None or not (math.isfinite(self.tolerance) and self.tolerance > 0):
                raise ValueError(f"tolerance {self.tolerance!r}: a regression needs a number above 0")
            if self.classes is not None:
                raise ValueError("a regression has no classes")
            if self.bins is not None and (
                len(self.bins) != PREDICTION_BINS - 1
                or not all(math.isfinite(edge) for edge in self.bins)
                or list(self.bins) != sorted(self.bins)
            ):
                raise ValueError(f"bins {list(self.bins)}: {PREDICTION_BINS - 1} ascending finite numbers")
        else:
            if self.tolerance is not None or self.bins is not None:
                raise ValueError("a classification has neither a tolerance nor bin edges")
            if self.classes is not None and (not self.classes or len(set(self.classes)) != len(self.classes)):
                raise ValueError(f"classes {list(self.classes)}: at least one, each once")

    @classmethod
    def of_contract(cls, contract: ServiceContract) -> Predictions:
        """A service's predictions as its contract declares them (its task, classes, live tolerance)."""
        if contract.task.is_classification:
            return cls("classification", classes=contract.classes)
        return cls("regression", tolerance=contract.live_tolerance)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "classes": None if self.classes is None else list(self.classes),
            "bins": None if self.bins is None else list(self.bins),
            "tolerance": self.tolerance,
        }


def parse_predictions(
    raw: Any, source: str, path: str = "prediction"
) -> tuple[Predictions | None, list[ConfigIssue]]:
    """A ``prediction:`` section of a judge policy file: ``kind`` and its fields, every problem at once.

    ``{kind: classification, classes: [a, b]}`` (classes optional) or ``{kind: regression,
    tolerance: 0.5, bins: [nine edges]}`` (bins optional).
    """
    issues: list[ConfigIssue] = []

    def add(key: str, value: Any, allowed: str) -> None:
        issues.append(ConfigIssue(source, f"{path}.{key}" if key else path, value, allowed))

    if not isinstance(raw, dict):
        add("", raw, "required: a mapping with `kind` (classification or regression) and its fields")
        return None, issues
    allowed_keys = {"kind", "classes", "bins", "tolerance"}
    for key in raw:
        if key not in allowed_keys:
            add(str(key), raw[key], f"unknown key; allowed keys: {', '.join(sorted(allowed_keys))}")
    kind = raw.get("kind")
    if kind not in KINDS:
        add("kind", kind, f"one of {', '.join(KINDS)}")
        return None, issues
    classes, bins, tolerance = raw.get("classes"), raw.get("bins"), raw.get("tolerance")
    if kind == "classification":
        if classes is not None and not (
            isinstance(classes, list)
            and classes
            and all(isinstance(name, str) and name for name in classes)
            and len(set(classes)) == len(classes)
        ):
            add("classes", classes, "a list of class names (text), each once, in the histogram's order")
        for key, value in (("bins", bins), ("tolerance", tolerance)):
            if value is not None:
                add(key, value, "only a regression has it")
        if issues:
            return None, issues
        return Predictions("classification", classes=None if classes is None else tuple(classes)), []
    if classes is not None:
        add("classes", classes, "only a classification has classes")
    above_zero = float(tolerance) if _is_number(tolerance) and tolerance > 0 else None
    if above_zero is None:
        add(
            "tolerance",
            tolerance,
            "required for a regression: a number above 0 (the contract's liveTolerance)",
        )
    if bins is not None and not (
        isinstance(bins, list)
        and len(bins) == PREDICTION_BINS - 1
        and all(_is_number(edge) for edge in bins)
        and sorted(bins) == bins
    ):
        add("bins", bins, f"{PREDICTION_BINS - 1} ascending numbers (the inner edges of the histogram)")
    if issues:
        return None, issues
    edges = None if bins is None else tuple(float(edge) for edge in bins)
    return Predictions("regression", bins=edges, tolerance=above_zero), []


class TelemetryError(BadInputError):
    """Telemetry that cannot be judged: malformed lines (each named by file and line), or too much of it."""

    def __init__(self, message: str, issues: Sequence[ConfigIssue] = ()) -> None:
        super().__init__(message, details=[str(issue) for issue in issues])
        self.issues = list(issues)


@dataclass(frozen=True)
class ReplayedRun:
    """One run's windows, interval by interval from the rollout's start, ready for the judge."""

    run: str
    windows: tuple[CanaryWindow, ...]
    requests: dict[str, int]
    """Requests per side over the whole run: ``{"baseline": n, "canary": m}``."""


@dataclass
class _Requests:
    """One side of one run, column by column: arrays keep two million requests in about 70 MB."""

    t: array[float] = field(default_factory=lambda: array("d"))
    latency_ms: array[float] = field(default_factory=lambda: array("d"))
    """NaN: the request had no answer."""
    status: array[int] = field(default_factory=lambda: array("H"))
    prediction: array[float] = field(default_factory=lambda: array("d"))
    """The number (regression) or the class's code (classification); NaN: none was served."""
    label_t: array[float] = field(default_factory=lambda: array("d"))
    """When the label came back; NaN: it never did (or the request failed)."""
    correct: array[int] = field(default_factory=lambda: array("b"))
    """1 or 0 for a label that came back, -1 for none."""

    def __len__(self) -> int:
        return len(self.t)


class _LineError(Exception):
    """One problem with one line: the key, the bad value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(key)
        self.key, self.value, self.allowed = key, value, allowed


def read_telemetry(
    baseline: Path,
    canary: Path,
    predictions: Predictions,
    interval_seconds: float,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> list[ReplayedRun]:
    """Every run in the two files, in order of first appearance, as windows of ``interval_seconds``.

    ``on_progress`` is told how many more bytes have been read, about every megabyte. Raises
    ``TelemetryError`` for a file too large, a malformed line (up to ``MAX_ISSUES`` per file, all
    at once) or telemetry spanning too many intervals.
    """
    if not (math.isfinite(interval_seconds) and interval_seconds > 0):
        raise ValueError(f"interval_seconds = {interval_seconds}: a positive number of seconds")
    reader = _Reader(predictions, interval_seconds, on_progress or (lambda _bytes: None))
    issues = reader.read(baseline, "baseline") + reader.read(canary, "canary")
    if issues:
        raise TelemetryError(
            f"{len(issues)} malformed line(s) in the telemetry; the first: {issues[0]}", issues
        )
    if not reader.runs:
        raise TelemetryError(f"no requests in {baseline} or {canary}: nothing to judge")
    return reader.replayed()


def _is_number(value: Any) -> TypeGuard[float]:
    """A finite JSON number (not a boolean, not an integer too large to be a float exactly)."""
    kind = type(value)
    return (kind is float and math.isfinite(value)) or (
        kind is int and -_LARGEST_INT <= value <= _LARGEST_INT
    )


_LARGEST_INT = 2**53


def _start(line: bytes) -> str:
    """The first bytes of a line that cannot be read, as text, to name it by."""
    return line[:40].decode("utf-8", "replace")


def _no_constants(name: str) -> float:
    """``NaN``, ``Infinity`` and ``-Infinity`` read as floats, so the key's check names them."""
    return float(name.replace("Infinity", "inf"))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once (``json`` would keep the last silently)."""
    record = dict(pairs)
    if len(record) < len(pairs):
        seen: set[str] = set()
        for key, value in pairs:
            if key in seen:
                raise _LineError(key, value, "each key once per line")
            seen.add(key)
    return record


_DECODER = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_unique_keys)
_KEY_SET = frozenset(KEYS)


class _Reader:
    """Reads the two files line by line into ``_Requests`` per run and side, then builds the windows."""

    def __init__(self, predictions: Predictions, interval: float, on_progress: Callable[[int], None]) -> None:
        self.predictions = predictions
        self.interval = interval
        self.horizon = interval * MAX_INTERVALS
        self.on_progress = on_progress
        self.runs: dict[str, dict[Role, _Requests]] = {}
        self.codes: dict[str, int] = {}
        """Classification: each class seen, by the code its predictions are kept as."""
        self.normalised: dict[str, str] = {}
        if predictions.classes is not None:
            self.codes = {name: code for code, name in enumerate(predictions.classes)}

    def read(self, path: Path, role: Role) -> list[ConfigIssue]:
        """Read one file; its malformed lines (at most ``MAX_ISSUES``) as issues named ``file:line``."""
        try:
            size = path.stat().st_size
            handle = path.open("rb")
        except OSError as error:
            raise TelemetryError(f"{role} telemetry {path} cannot be read: {error}") from None
        if size > MAX_FILE_BYTES:
            handle.close()
            raise TelemetryError(
                f"{role} telemetry {path} is {size:,} bytes; at most {MAX_FILE_BYTES:,} per file "
                "(split the runs into several replays)"
            )
        issues: list[ConfigIssue] = []
        requests, pending = 0, 0
        add, record = self._add, self._record
        with handle:
            lines = iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b"")
            for number, line in enumerate(lines, start=1):
                pending += len(line)
                if pending >= PROGRESS_EVERY:
                    self.on_progress(pending)
                    pending = 0
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    allowed = f"a line of at most {MAX_LINE_BYTES} bytes"
                    issues.append(ConfigIssue(f"{path}:{number}", "<line>", f"{_start(line)}…", allowed))
                    break  # the rest of the line would be read as lines of its own
                if number == 1:
                    line = line.removeprefix(b"\xef\xbb\xbf")  # noqa: PLW2901  # a byte-order mark
                if line.isspace() or not line:
                    continue
                try:
                    add(record(line), role)
                except _LineError as problem:
                    issues.append(
                        ConfigIssue(f"{path}:{number}", problem.key, problem.value, problem.allowed)
                    )
                    if len(issues) >= MAX_ISSUES:
                        break
                    continue
                requests += 1
                if requests > MAX_REQUESTS:
                    raise TelemetryError(f"{path}:{number}: more than {MAX_REQUESTS:,} requests in one file")
        self.on_progress(pending)
        return issues

    def _record(self, line: bytes) -> dict[str, Any]:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _LineError(
                "<line>", _start(line), f"UTF-8 text ({error.reason} at byte {error.start})"
            ) from None
        try:
            record = _DECODER.decode(text)
        except RecursionError:
            raise _LineError("<line>", text[:40], "one JSON object per line, not nested") from None
        except ValueError as error:  # not JSON, or a number too long to read
            raise _LineError("<line>", text.strip(), f"one JSON object per line ({error})") from None
        if not isinstance(record, dict):
            raise _LineError("<line>", record, "one JSON object per line, a request")
        return record

    def _add(self, record: dict[str, Any], role: Role) -> None:
        """Check one request and keep it in its run's columns."""
        if not record.keys() <= _KEY_SET:
            key = next(key for key in record if key not in _KEY_SET)
            raise _LineError(key, record[key], f"unknown key; allowed keys: {', '.join(KEYS)}")
        run = record.get("run", DEFAULT_RUN)
        if not (isinstance(run, str) and 0 < len(run) <= MAX_RUN_ID):
            raise _LineError("run", run, f"text of 1 to {MAX_RUN_ID} characters; quote a number")
        t = self._time(record, "t")
        latency = record.get("latency_ms", ...)
        if latency is ...:
            raise _LineError("latency_ms", None, "required key is missing: the request's model latency in ms")
        if latency is not None and not (_is_number(latency) and latency >= 0):
            raise _LineError(
                "latency_ms", latency, "a finite number of milliseconds ≥ 0, or null for no answer"
            )
        status = record.get("status")
        if type(status) is float and status.is_integer():
            status = int(status)
        if not (type(status) is int and 100 <= status <= 599):
            raise _LineError("status", status, "an HTTP status: a whole number from 100 to 599")
        prediction = self._prediction(record.get("prediction"), "prediction")
        label = self._prediction(record.get("label"), "label", declared_only=False)
        label_t = record.get("label_t")
        if label_t is not None:
            if label is None:
                raise _LineError("label_t", label_t, "null when the request has no label")
            label_t = self._time(record, "label_t")
            if label_t < t:
                raise _LineError("label_t", label_t, f"a label comes back after its request: ≥ t ({t:g})")
        requests = self._side(run, role)
        served = status < 400 and prediction is not None
        requests.t.append(t)
        requests.latency_ms.append(math.nan if latency is None else float(latency))
        requests.status.append(status)
        requests.prediction.append(self._code(prediction) if served else math.nan)
        judged = served and label is not None
        requests.label_t.append((t if label_t is None else label_t) if judged else math.nan)
        requests.correct.append(int(self._correct(prediction, label)) if judged else -1)

    def _time(self, record: dict[str, Any], key: str) -> float:
        value = record.get(key)
        if value is None and key == "t":
            raise _LineError(key, None, "required key is missing: seconds since the rollout started")
        if not (_is_number(value) and value >= 0):
            raise _LineError(key, value, "a finite number of seconds since the rollout started, ≥ 0")
        if value >= self.horizon:
            raise _LineError(
                key,
                value,
                f"below {self.horizon:g}: at most {MAX_INTERVALS:,} intervals of {self.interval:g} s per run",
            )
        return float(value)

    def _prediction(self, value: Any, key: str, *, declared_only: bool = True) -> Any:
        """A prediction or a label as the service's kind has it; ``None`` when it is null or absent."""
        if value is None:
            return None
        if self.predictions.kind == "regression":
            if not _is_number(value):
                raise _LineError(key, value, "a finite number (the service is a regression), or null")
            return float(value)
        if type(value) is not str:
            raise _LineError(key, value, "a class name as text (the service is a classification), or null")
        if declared_only and self.predictions.classes is not None and value not in self.codes:
            raise _LineError(key, value, f"one of the classes: {', '.join(self.predictions.classes)}")
        return value

    def _code(self, prediction: Any) -> float:
        if self.predictions.kind == "regression":
            return float(prediction)
        code = self.codes.get(prediction)
        if code is None:
            if len(self.codes) >= MAX_CLASSES:
                raise _LineError(
                    "prediction", prediction, f"at most {MAX_CLASSES} distinct classes; is this a regression?"
                )
            code = self.codes[prediction] = len(self.codes)
        return float(code)

    def _correct(self, prediction: Any, label: Any) -> bool:
        if self.predictions.kind == "regression":
            assert self.predictions.tolerance is not None
            return bool(abs(prediction - label) <= self.predictions.tolerance)
        return self._normalised(label) == self._normalised(prediction)

    def _normalised(self, name: str) -> str:
        """``normalise_label``, once per distinct name (a log repeats a few classes a million times)."""
        normal = self.normalised.get(name)
        if normal is None:
            if len(self.normalised) >= MAX_CLASSES:
                self.normalised.clear()
            normal = self.normalised[name] = normalise_label(name)
        return normal

    def _side(self, run: str, role: Role) -> _Requests:
        sides = self.runs.get(run)
        if sides is None:
            if len(self.runs) >= MAX_RUNS:
                raise _LineError("run", run, f"at most {MAX_RUNS:,} runs in one replay")
            sides = self.runs[run] = {"baseline": _Requests(), "canary": _Requests()}
        return sides[role]

    def replayed(self) -> list[ReplayedRun]:
        """Every run as its windows, once both files are read (classes and deciles need them whole)."""
        spans = {run: self._intervals(sides) for run, sides in self.runs.items()}
        total = sum(spans.values())
        if total > MAX_TOTAL_INTERVALS:
            raise TelemetryError(
                f"the runs span {total:,} intervals of {self.interval:g} s in all; at most "
                f"{MAX_TOTAL_INTERVALS:,} (a longer --interval-seconds, or fewer runs per replay)"
            )
        table = self._class_bins()
        return [
            ReplayedRun(
                run,
                tuple(self._windows(sides, spans[run], table)),
                {role: len(requests) for role, requests in sides.items()},
            )
            for run, sides in self.runs.items()
        ]

    def _intervals(self, sides: dict[Role, _Requests]) -> int:
        """How many intervals a run spans: up to the one holding its last request or label."""
        latest = max(
            (max(max(side.t, default=0.0), _finite_max(side.label_t)) for side in sides.values()),
            default=0.0,
        )
        return int(latest // self.interval) + 1

    def _class_bins(self) -> NDArray[np.int64] | None:
        """Classification: each class code's bin, as ``served_bin`` places a served class."""
        import numpy as np

        if self.predictions.kind == "regression":
            return None
        classes = self.predictions.classes or tuple(sorted(self.codes))
        return np.asarray(
            [served_bin({"label": name}, MULTICLASS, classes, ()) for name in self.codes], dtype=np.int64
        )

    def _windows(
        self, sides: dict[Role, _Requests], intervals: int, class_bins: NDArray[np.int64] | None
    ) -> Iterator[CanaryWindow]:
        edges = self.predictions.bins
        if self.predictions.kind == "regression" and edges is None:
            edges = _deciles(sides["baseline"]) or _deciles(sides["canary"]) or (0.0,) * (PREDICTION_BINS - 1)
        baseline = _per_interval(sides["baseline"], self.interval, intervals, class_bins, edges)
        canary = _per_interval(sides["canary"], self.interval, intervals, class_bins, edges)
        for index, (ours, theirs) in enumerate(zip(canary, baseline, strict=True)):
            yield CanaryWindow(
                start=index * self.interval, end=(index + 1) * self.interval, baseline=theirs, canary=ours
            )


def _finite_max(values: array[float]) -> float:
    import numpy as np

    finite = np.asarray(values)
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def _deciles(requests: _Requests) -> tuple[float, ...] | None:
    """The nine inner deciles of one side's served predictions (a regression without declared bins)."""
    import numpy as np

    values = np.asarray(requests.prediction)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    return tuple(float(edge) for edge in np.quantile(values, np.arange(1, PREDICTION_BINS) / PREDICTION_BINS))


def _per_interval(
    requests: _Requests,
    interval: float,
    intervals: int,
    class_bins: NDArray[np.int64] | None,
    edges: tuple[float, ...] | None,
) -> list[VariantStats]:
    """One side's ``VariantStats`` for each interval: requests by their ``t``, labels by their ``label_t``."""
    import numpy as np

    t = np.asarray(requests.t)
    at = (t // interval).astype(np.int64)
    status = np.asarray(requests.status, dtype=np.int64)
    latency = np.asarray(requests.latency_ms)
    prediction = np.asarray(requests.prediction)
    label_t = np.asarray(requests.label_t)
    correct = np.asarray(requests.correct, dtype=np.int64)

    def count(where: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.bincount(where, minlength=intervals)

    invocations = count(at)
    errors_4xx = count(at[(status >= 400) & (status < 500)])
    errors_5xx = count(at[status >= 500])
    answered = np.isfinite(latency) & (status < 500)  # as the router: a failed request has no model latency
    order = np.argsort(at[answered], kind="stable")
    latencies = np.split(
        latency[answered][order], np.searchsorted(at[answered][order], np.arange(1, intervals))
    )
    served = np.isfinite(prediction)
    if class_bins is not None:
        bins = class_bins[prediction[served].astype(np.int64)]
    else:
        assert edges is not None
        bins = np.asarray(
            [
                served_bin({"prediction": value}, REGRESSION, (), edges)
                for value in prediction[served].tolist()
            ],
            dtype=np.int64,
        )
    histogram = np.bincount(at[served] * PREDICTION_BINS + bins, minlength=intervals * PREDICTION_BINS)
    histogram = histogram.reshape(intervals, PREDICTION_BINS)
    labelled = np.isfinite(label_t)
    label_at = (label_t[labelled] // interval).astype(np.int64)
    labels = count(label_at)
    right = count(label_at[correct[labelled] == 1])
    return [
        VariantStats.from_histogram(
            invocations=int(invocations[index]),
            errors_4xx=int(errors_4xx[index]),
            errors_5xx=int(errors_5xx[index]),
            latency=LatencyHistogram.of(latencies[index]),
            predictions=tuple(int(n) for n in histogram[index]),
            labelled=int(labels[index]),
            correct=int(right[index]),
        )
        for index in range(intervals)
    ]
