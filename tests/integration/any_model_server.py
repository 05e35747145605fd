"""A stand-in model server for any model directory: the SageMaker contract, one fixed prediction.

``python tests/integration/any_model_server.py --model-dir DIR --port N`` answers ``GET /ping``
and ``POST /invocations`` (every row ``{"probability": 0.2, "label": "<=50K"}``) without loading
the model, so tests that exercise the controller and the sandbox start fleets in well under a
second instead of loading the real serving stack.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._reply(200 if self.path == "/ping" else 404, b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            rows = [line for line in body.splitlines() if line.strip()]
            prediction = {"probability": 0.2, "label": "<=50K"}
            self._reply(200, json.dumps({"predictions": [prediction] * len(rows)}).encode())

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
