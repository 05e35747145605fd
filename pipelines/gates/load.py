"""Load generation for the latency gate: a real model server, real rows, concurrent clients.

The server is started the way every model server is (``pipelines.serving.launch``): verified by
the platform's code, then run from the package's own ``code/``, isolated from this repository,
with the service's OpenMP/BLAS thread bound. So the latency measured is the latency of the code
that ships, at the thread count it ships with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import RefusedError
from pipelines.gates.policy import LatencyPolicy
from pipelines.serving.launch import launcher_command, serving_environment
from pipelines.serving.threads import DEFAULT_SERVING_THREADS

SERVER_START_SECONDS = 60.0
_SERVING_LINE = re.compile(r"on http://([^:\s]+):(\d+)")
_CODE_FROM = re.compile(r"code from (.+?)\)?$")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    throughput_rps: float
    peak_rss_mb: float
    served_from: str = ""
    """The serving code's directory, as the server reported it: the package's ``code/``."""


def drive(
    model_dir: Path,
    rows: list[dict[str, Any]],
    policy: LatencyPolicy,
    *,
    serving_threads: int = DEFAULT_SERVING_THREADS,
) -> LoadResult:
    """Launch the package's own server on a free port, warm it up, then measure.

    ``serving_threads`` is the service's ``servingThreads`` (OpenMP/BLAS threads per request).
    """
    server = subprocess.Popen(
        launcher_command(Path(model_dir).resolve(), port=0, python=sys.executable),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=serving_environment(os.environ, serving_threads),
        text=True,
    )
    try:
        host, port, served_from = _wait_until_serving(server)
        bodies = [
            json.dumps(
                {
                    "instances": [
                        rows[(i * policy.rows_per_request + j) % len(rows)]
                        for j in range(policy.rows_per_request)
                    ]
                }
            ).encode()
            for i in range(policy.requests + policy.warmup_requests)
        ]
        for body in bodies[: policy.warmup_requests]:
            _post(host, port, body)
        result = _measure(host, port, bodies[policy.warmup_requests :], policy.concurrency, server.pid)
        return dataclasses.replace(result, served_from=served_from)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_serving(server: subprocess.Popen[str]) -> tuple[str, int, str]:
    assert server.stderr is not None
    deadline = time.monotonic() + SERVER_START_SECONDS
    lines = []
    while time.monotonic() < deadline:
        line = server.stderr.readline()
        if not line and server.poll() is not None:
            break
        lines.append(line.rstrip())
        match = _SERVING_LINE.search(line)
        if match:
            code = _CODE_FROM.search(line.rstrip())
            return match.group(1), int(match.group(2)), code.group(1) if code else ""
    raise RefusedError("the model server did not start", details=[line for line in lines if line][-10:])


def _post(host: str, port: int, body: bytes) -> int:
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _measure(host: str, port: int, bodies: list[bytes], concurrency: int, pid: int) -> LoadResult:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    def timed(body: bytes) -> tuple[float, int]:
        started = time.perf_counter()
        status = _post(host, port, body)
        return (time.perf_counter() - started) * 1000.0, status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(timed, bodies))
    wall = time.perf_counter() - started
    latencies = np.array([latency for latency, _ in results])
    return LoadResult(
        requests=len(results),
        errors=sum(status != 200 for _, status in results),
        p50_ms=float(np.percentile(latencies, 50)),
        p99_ms=float(np.percentile(latencies, 99)),
        throughput_rps=len(results) / wall,
        peak_rss_mb=_peak_rss_mb(pid),
    )


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), or its current RSS where /proc has no peak."""
    status = Path(f"/proc/{pid}/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20
