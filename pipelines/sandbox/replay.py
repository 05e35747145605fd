"""Replay held-out rows against a sandbox endpoint at a bounded rate, with an optional delayed-label feed.

Each row is sent as one invocation without its label column; the label is kept
and, with ``labels_after``, posted to the endpoint's ``/labels`` that many seconds later,
joined by the request id the router returned: a class name for a classifier, a JSON number for
a regression service (``numeric_labels``). The rate is open-loop (request ``i`` leaves at
``i / rps``) with a cap on requests in flight, so a slow canary shows up as latency rather
than as a slower replay hiding it.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import BadInputError

MAX_RPS = 1000.0
MAX_DURATION_SECONDS = 24 * 3600.0
MAX_IN_FLIGHT = 32
REQUEST_TIMEOUT_SECONDS = 10.0
LABEL_BATCH = 200


@dataclass(frozen=True)
class ReplayRow:
    """One row to send: the invocation body and its content type, and its label for the delayed feed."""

    body: bytes
    content_type: str
    label: str | float | None
    """A class name, or a regression label's number; ``None`` when the row has none to send."""


def load_rows(
    path: Path,
    *,
    columns: Sequence[str] | None = None,
    label_column: int = -1,
    has_header: bool = False,
    numeric_labels: bool = False,
) -> list[ReplayRow]:
    """Read a CSV (comma, optional spaces) and split off the label column; ``BadInputError`` names the problem.

    With column names (``columns``, or the header line) each row is sent as a JSON object by
    name, so the model picks the columns it was trained on and ignores the rest; without them
    the row goes as a ``text/csv`` line in file order. ``numeric_labels`` (a regression
    service) reads each label as a number, so the router judges it by distance; an empty label
    is not sent, and one that is not a number is refused naming its line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"--data {path}: cannot read the file: {error}") from None
    records = [
        row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if any(c.strip() for c in row)
    ]
    if has_header and records:
        header, records = records[0], records[1:]
        columns = columns or [name.strip() for name in header]
    if not records:
        raise BadInputError(f"--data {path}: no rows to replay")
    width = len(records[0])
    if width < 2:
        raise BadInputError(f"--data {path}: rows have {width} column; need features and a label column")
    if not -width <= label_column < width:
        raise BadInputError(f"label column {label_column} does not exist; rows have {width} columns")
    if columns is not None and len(columns) != width:
        raise BadInputError(
            f"--columns: {len(columns)} names ({', '.join(columns)}) for rows of {width} values in {path}"
        )
    index = label_column % width
    rows = []
    for number, record in enumerate(records, start=1):
        if len(record) != width:
            continue  # ragged lines (a truncated last line) are not replayable rows
        label = _label(path, number, record[index].strip()) if numeric_labels else record[index].strip()
        if columns is not None:
            named = {name: value for position, (name, value) in enumerate(zip(columns, record, strict=True))
                     if position != index}  # fmt: skip
            rows.append(ReplayRow(json.dumps(named).encode(), "application/json", label))
            continue
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(record[:index] + record[index + 1 :])
        rows.append(ReplayRow(out.getvalue().encode(), "text/csv", label))
    return rows


def _label(path: Path, number: int, text: str) -> float | None:
    """A regression label as a number (``None`` when empty); ``BadInputError`` names the row."""
    if text in ("", "?"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadInputError(
            f"--data {path}: row {number} (header and blank lines not counted): label {text!r} is "
            "not a number; a regression service's labels are numbers"
        )
    return value


@dataclass
class ReplaySummary:
    """What a replay sent and what came back."""

    sent: int = 0
    ok: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    unreachable: int = 0
    """Requests that got no HTTP answer at all."""
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    by_version: dict[str, int] = field(default_factory=dict)
    labels_sent: int = 0
    labels_matched: int = 0
    duration_seconds: float = 0.0
    stopped_early: bool = False

    def quantile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    def to_json(self) -> dict[str, object]:
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return {
            "sent": self.sent,
            "status": {"2xx": self.ok, "4xx": self.errors_4xx, "5xx": self.errors_5xx},
            "unreachable": self.unreachable,
            "latency_p50_ms": None if p50 is None else round(p50, 3),
            "latency_p99_ms": None if p99 is None else round(p99, 3),
            "by_version": dict(sorted(self.by_version.items())),
            "labels_sent": self.labels_sent,
            "labels_matched": self.labels_matched,
            "duration_seconds": round(self.duration_seconds, 3),
            "stopped_early": self.stopped_early,
        }


def check_rate(rps: float, duration: float, labels_after: float | None) -> None:
    """Refuse rates and durations the replay will not attempt, naming the flag."""
    if not 0 < rps <= MAX_RPS:
        raise BadInputError(f"--rps {rps:g}: between 0 (exclusive) and {MAX_RPS:g}")
    if not 0 < duration <= MAX_DURATION_SECONDS:
        raise BadInputError(
            f"--duration {duration:g}: between 0 (exclusive) and {MAX_DURATION_SECONDS:g} seconds"
        )
    if labels_after is not None and not 0 <= labels_after <= 3600:
        raise BadInputError(f"--labels-after {labels_after:g}: between 0 and 3600 seconds")


def replay(
    url: str,
    rows: Sequence[ReplayRow],
    *,
    rps: float,
    duration: float,
    labels_after: float | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[ReplaySummary, int], None] | None = None,
    seed: int = 0,
) -> ReplaySummary:
    """Send ``rps × duration`` rows (shuffled, cycled) to ``{url}/invocations``; safe to run in a thread.

    ``stop`` ends it early (the summary says so). ``on_progress(summary, total)`` is called from
    the pacing loop after every send.
    """
    check_rate(rps, duration, labels_after)
    if not rows:
        raise BadInputError("no rows to replay")
    stop = stop or threading.Event()
    order = list(rows)
    random.Random(seed).shuffle(order)
    total = max(1, int(rps * duration))
    summary = ReplaySummary()
    lock = threading.Lock()
    pending_labels: list[tuple[float, str, str | float]] = []
    slots = threading.Semaphore(MAX_IN_FLIGHT)

    def send(row: ReplayRow) -> None:
        try:
            request = urllib.request.Request(
                f"{url}/invocations", data=row.body, headers={"Content-Type": row.content_type}
            )
            started = time.perf_counter()
            status, headers = _post(request)
            latency = (time.perf_counter() - started) * 1000
            with lock:
                if status is None:
                    summary.unreachable += 1
                    return
                summary.latencies_ms.append(latency)
                if status < 300:
                    summary.ok += 1
                elif status < 500:
                    summary.errors_4xx += 1
                else:
                    summary.errors_5xx += 1
                version = headers.get("X-Modelrail-Variant")
                if version:
                    summary.by_version[version] = summary.by_version.get(version, 0) + 1
                request_id = headers.get("X-Modelrail-Request-Id")
                if labels_after is not None and request_id and row.label is not None:
                    heapq.heappush(pending_labels, (time.monotonic() + labels_after, request_id, row.label))
        finally:
            slots.release()

    def flush_labels(until: float) -> None:
        with lock:
            due: list[dict[str, str | float]] = []
            while pending_labels and pending_labels[0][0] <= until and len(due) < LABEL_BATCH:
                _, request_id, label = heapq.heappop(pending_labels)
                due.append({"request_id": request_id, "label": label})
        if due:
            matched = _post_labels(url, due)
            with lock:
                summary.labels_sent += len(due)
                summary.labels_matched += matched

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT, thread_name_prefix="replay") as pool:
        for index in range(total):
            delay = started + index / rps - time.monotonic()
            if (delay > 0 and stop.wait(delay)) or stop.is_set():
                summary.stopped_early = True
                break
            if not _acquire(slots, stop):
                summary.stopped_early = True
                break
            summary.sent += 1
            pool.submit(send, order[index % len(order)])
            flush_labels(time.monotonic())
            if on_progress is not None:
                on_progress(summary, total)
    if labels_after is not None:
        deadline = time.monotonic() + labels_after + 1.0
        while pending_labels and time.monotonic() < deadline and not stop.is_set():
            flush_labels(time.monotonic())
            stop.wait(0.1)
    summary.duration_seconds = time.monotonic() - started
    return summary


def _acquire(slots: threading.Semaphore, stop: threading.Event) -> bool:
    """Wait for a free in-flight slot; False if the replay is stopped meanwhile."""
    while not stop.is_set():
        if slots.acquire(timeout=0.2):
            return True
    return False


def _post(request: urllib.request.Request) -> tuple[int | None, dict[str, str]]:
    """(status, headers) of a request; ``(None, {})`` when nothing answered."""
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            response.read()
            return int(response.status), dict(response.headers.items())
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code), dict(error.headers.items())
    except (OSError, urllib.error.URLError):
        return None, {}


def _post_labels(url: str, labels: list[dict[str, str | float]]) -> int:
    request = urllib.request.Request(
        f"{url}/labels", data=json.dumps(labels).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return int(json.loads(response.read()).get("matched", 0))
    except (OSError, urllib.error.URLError, ValueError):
        return 0
