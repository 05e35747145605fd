"""Replay's delayed labels: class names as they are, a regression service's labels as JSON numbers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipelines.errors import BadInputError
from pipelines.sandbox.replay import load_rows, replay

DIABETES_LIKE = "age,bmi,progression\n59,32.1,151\n48,21.6,75.5\n72,30.5,\n"


class Recorder(BaseHTTPRequestHandler):
    """A router stand-in: every invocation gets a request id; every label batch is kept."""

    labels: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.endswith("/labels"):
            Recorder.labels.extend(json.loads(body))
            reply, headers = json.dumps({"matched": len(json.loads(body))}).encode(), {}
        else:
            reply, headers = b"{}", {"X-Modelrail-Request-Id": f"r-{json.loads(body)['age']}"}
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    Recorder.labels = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_numeric_labels_are_numbers_and_an_empty_one_is_not_sent(tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text(DIABETES_LIKE)
    rows = load_rows(data, has_header=True, numeric_labels=True)
    assert [row.label for row in rows] == [151.0, 75.5, None]
    assert json.loads(rows[0].body) == {"age": "59", "bmi": "32.1"}
    assert [row.label for row in load_rows(data, has_header=True)] == ["151", "75.5", ""]


def test_a_label_that_is_not_a_number_is_refused_naming_its_row(tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("age,progression\n59,151\n48,high\n")
    with pytest.raises(
        BadInputError, match=r"rows.csv: row 2 \(header and blank lines not counted\): label 'high'"
    ):
        load_rows(data, has_header=True, numeric_labels=True)


def test_the_delayed_feed_posts_regression_labels_as_json_numbers(endpoint: str, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text(DIABETES_LIKE)
    rows = load_rows(data, has_header=True, numeric_labels=True)
    summary = replay(endpoint, rows, rps=100, duration=0.03, labels_after=0)
    assert summary.sent == 3 and summary.labels_sent == 2 == summary.labels_matched
    assert sorted(Recorder.labels, key=lambda item: item["label"]) == [
        {"request_id": "r-48", "label": 75.5},
        {"request_id": "r-59", "label": 151.0},
    ]
