"""A tiny model server with the SageMaker contract, for sandbox tests that need no trained model.

``python tests/integration/standin_server.py --model-dir DIR --port N`` reads
``DIR/behaviour.json``: ``{"probability": 0.8, "label": ">50K", "delay_ms": 0}``. Every row
of an invocation gets that prediction after that delay, so a test can make one version slow
or make its predictions differ, and tell the versions apart by their answers. A directory
without ``behaviour.json`` (any real model directory) gets ``DEFAULT_BEHAVIOUR``: fleets of
registered packages then start in well under a second, without loading the model. A registered
package's directory is named after its version, and cannot hold an extra file (it is verified
file by file): ``$STANDIN_BEHAVIOURS/<version>.json``, when it exists, is that version's behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BEHAVIOURS_ENV = "STANDIN_BEHAVIOURS"
DEFAULT_BEHAVIOUR = {"probability": 0.2, "label": "<=50K", "delay_ms": 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    described = args.model_dir / "behaviour.json"
    by_version = Path(os.environ.get(BEHAVIOURS_ENV, "")) / f"{args.model_dir.name}.json"
    if os.environ.get(BEHAVIOURS_ENV) and by_version.is_file():
        described = by_version
    behaviour: dict[str, Any] = (
        json.loads(described.read_text()) if described.is_file() else DEFAULT_BEHAVIOUR
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._reply(200 if self.path == "/ping" else 404, b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            rows = [line for line in body.splitlines() if line.strip()]
            time.sleep(behaviour.get("delay_ms", 0) / 1000)
            prediction = {"probability": behaviour["probability"], "label": behaviour["label"]}
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
