"""The SageMaker inference container contract over the standard library's HTTP server.

``GET /ping`` answers 200 once the model is loaded (it is loaded before the socket opens).
``POST /invocations`` takes ``text/csv`` (rows in schema order, an optional header line) or
``application/json`` (a list of rows, or ``{"instances": [...]}``; a row is an object by
column name or a list in column order) and answers one row per input row, as JSON or, with
``Accept: text/csv``, as CSV, by the model's task (``schema.json`` ``output.task``):

* binary classification: ``probability`` (of the positive class) and ``label``;
* multiclass classification: ``label`` (the most likely class), its ``probability`` and
  ``probabilities`` by class (CSV: ``label,probability`` then a column per class, in the
  schema's class order);
* regression: ``prediction``.

A request the model cannot use is a 400; a model that fails or answers something unservable
is a 500, so the router counts it against the version as a server error.

``GET /metrics`` is what the server itself counted of its ``/invocations``, in the router's
Prometheus exposition (``pipelines.serving.metrics``): on a cluster, where no router counts,
Prometheus scrapes it for the canary analysis.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipelines.errors import BadInputError
from pipelines.serving.metrics import CONTENT_TYPE, ServingMetrics
from pipelines.serving.model import BINARY, REGRESSION, LoadedPackage

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""SageMaker's limit on a real-time invocation payload."""

VERSION_HEADER = "X-Modelrail-Model-Version"
"""Every response names the package id that answered, so callers can see which model served."""
ROUTES = "use GET /ping, GET /metrics or POST /invocations"


def parse_rows(model: LoadedPackage, body: bytes, content_type: str) -> list[Any]:
    """The request body as a list of rows; ``BadInputError`` if it cannot be read."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError("the body is not UTF-8") from None
    if content_type == "text/csv":
        rows = [row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if row]
        if rows and [cell.strip().lower() for cell in rows[0]] == [c.lower() for c in model.columns]:
            rows = rows[1:]
        return rows
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInputError(f"the body is not JSON: {error}") from None
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    elif isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise BadInputError("expected a JSON list of rows, or an object with an `instances` list")
    return payload


def render(predictions: list[dict[str, Any]], model: LoadedPackage, accept: str) -> tuple[bytes, str]:
    """Predictions as (body, content type) in the format the client accepts."""
    if accept == "text/csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if model.task == REGRESSION:
            writer.writerow(["prediction"])
            writer.writerows([p["prediction"]] for p in predictions)
        elif model.task == BINARY:
            writer.writerow(["probability", "label"])
            writer.writerows([p["probability"], p["label"]] for p in predictions)
        else:
            classes = model.classes
            writer.writerow(["label", "probability", *classes])
            writer.writerows(
                [p["label"], p["probability"], *(p["probabilities"][name] for name in classes)]
                for p in predictions
            )
        return out.getvalue().encode("utf-8"), "text/csv"
    body = {"model_version": model.package_id, "predictions": predictions}
    return json.dumps(body, sort_keys=True).encode("utf-8"), "application/json"


class InvocationHandler(BaseHTTPRequestHandler):
    """One request; the model lives on the server object (``ModelServer.model``)."""

    server: ModelServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._reply(HTTPStatus.OK, b"", "text/plain")
        elif self.path == "/metrics":
            self._reply(HTTPStatus.OK, self.server.metrics.exposition().encode("utf-8"), CONTENT_TYPE)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}; {ROUTES}")

    def do_POST(self) -> None:
        if self.path != "/invocations":
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}; {ROUTES}")
            return
        started = time.perf_counter()
        status, predictions = self._invoke()
        self.server.metrics.invocation(status, time.perf_counter() - started, predictions)

    def _invoke(self) -> tuple[HTTPStatus, list[dict[str, Any]]]:
        """Answer one ``POST /invocations``; the status sent and the rows served (none on an error)."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"payload over {MAX_PAYLOAD_BYTES} bytes")
        body = self.rfile.read(length)
        content_type = _media_type(self.headers.get("Content-Type"), "application/json")
        if content_type not in ("text/csv", "application/json"):
            return self._error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"content type {content_type!r}; supported: text/csv, application/json",
            )
        accept = _media_type(self.headers.get("Accept"), "application/json")
        model = self.server.model
        try:
            rows = parse_rows(model, body, content_type)
            predictions = model.predict(model.frame(rows)) if rows else []
        except BadInputError as error:
            return self._error(HTTPStatus.BAD_REQUEST, error.message)
        except Exception as error:  # the model's own failure, or a PredictionError
            traceback.print_exc()
            message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the model failed to predict: {message}")
        payload, media = render(predictions, model, accept)
        self._reply(HTTPStatus.OK, payload, media)
        return HTTPStatus.OK, predictions

    def _error(self, status: HTTPStatus, message: str) -> tuple[HTTPStatus, list[dict[str, Any]]]:
        """Send an error; returns what ``_invoke`` reports of it: the status and no predictions."""
        self._reply(status, json.dumps({"error": message}).encode("utf-8"), "application/json")
        return status, []

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(VERSION_HEADER, self.server.model.package_id)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)


class ModelServer(ThreadingHTTPServer):
    """A threading HTTP server that holds one verified model and what it served (``metrics``)."""

    daemon_threads = True

    def __init__(self, model: LoadedPackage, host: str, port: int, *, access_log: bool = False) -> None:
        self.model = model
        self.access_log = access_log
        self.metrics = ServingMetrics(model, os.environ)
        super().__init__((host, port), InvocationHandler)


def _media_type(header: str | None, default: str) -> str:
    if not header or header.strip() in ("*/*", ""):
        return default
    first = header.split(",")[0].split(";")[0].strip().lower()
    return default if first == "*/*" else first
