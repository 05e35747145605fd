"""Serving latency with OpenMP/BLAS bounded to one thread per request, against the libraries' defaults.

The model is the example service's, trained on the full Adult snapshot as ``modelrail train``
does, then packaged. Each round starts fresh servers, sends 20 warm-up requests and then 400
one-row requests at concurrency 1 and 4:

* ours: the package served as the latency gate, the sandbox and the image serve it (the
  launcher, ``MODELRAIL_SERVING_THREADS`` unset, so one thread per request);
* peer: the same ``ModelServer`` over the same verified model in a process where nothing bounds
  the libraries (no ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` or ``MKL_NUM_THREADS``): what
  scikit-learn's OpenMP loops and OpenBLAS do by default, one worker per core per request.

Both run in turn within each round, so a noisy neighbour hits them alike. Medians over rounds of
p50 and p99 are printed with the ratio peer/ours, and ours' p99/p50 at concurrency 4.

    uv run python benchmarks/serving_bench.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.serving.launch import launcher_command  # noqa: E402
from pipelines.serving.threads import LIBRARY_THREAD_VARIABLES, THREADS_ENV  # noqa: E402

SERVICE = "adult-income"
WARMUP, REQUESTS = 20, 400
SERVING = re.compile(r"on http://([^:\s]+):(\d+)")
UNBOUNDED_SERVER = (
    "import sys\n"
    "from pipelines.serving.model import load_model_dir\n"
    "from pipelines.serving.server import ModelServer\n"
    "server = ModelServer(load_model_dir(sys.argv[1]), '127.0.0.1', 0)\n"
    "print('serving on http://%s:%d' % server.server_address[:2], file=sys.stderr, flush=True)\n"
    "server.serve_forever()\n"
)
"""The peer: the platform's server and model loading, minus the thread bound of its entrypoint."""


def _start(kind: str, model_dir: Path) -> subprocess.Popen[str]:
    unbounded = {k: v for k, v in os.environ.items() if k not in (*LIBRARY_THREAD_VARIABLES, THREADS_ENV)}
    if kind == "ours":
        argv = launcher_command(model_dir, port=0)
    else:
        argv = [sys.executable, "-c", UNBOUNDED_SERVER, str(model_dir)]
        unbounded["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=unbounded)


def _post(port: int, body: bytes) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}")
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000.0


def _measure(kind: str, model_dir: Path, bodies: list[bytes], concurrency: int) -> tuple[float, float]:
    """(p50, p99) in ms of one fresh server of ``kind``."""
    import numpy as np

    server = _start(kind, model_dir)
    try:
        assert server.stderr is not None
        port = 0
        for line in server.stderr:
            match = SERVING.search(line)
            if match:
                port = int(match.group(2))
                break
        if not port:
            raise RuntimeError(f"the {kind} server did not start")
        for body in bodies[:WARMUP]:
            _post(port, body)
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = np.array(list(pool.map(lambda body: _post(port, body), bodies[WARMUP:])))
        return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))
    finally:
        server.terminate()
        server.wait()


def _package(scratch: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Train and package the example model; return the model directory and held-out rows."""
    from pipelines.gates.versions import read_evaluation_data
    from pipelines.packaging.build import build_package
    from pipelines.packaging.load import extract_package, load_package
    from pipelines.training.trainer import default_manifest, train

    result = train(default_manifest(SERVICE, REPO), scratch / "trained", root=REPO)
    built = build_package(SERVICE, result.out_dir, scratch / "model.tar.gz")
    model_dir = extract_package(built.path, scratch / "model")
    columns = load_package(model_dir).columns
    from pipelines.contract.load import load_contract

    data = read_evaluation_data(load_contract(SERVICE, REPO), REPO / "data" / "adult" / "adult.data", REPO)
    sample = data[columns].tail(500)
    records: list[dict[str, Any]] = sample.astype(object).where(sample.notna(), None).to_dict("records")  # type: ignore[assignment]
    return model_dir, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="modelrail-serving-bench-") as scratch:
        model_dir, rows = _package(Path(scratch))
        bodies = [json.dumps({"instances": [rows[i % len(rows)]]}).encode() for i in range(WARMUP + REQUESTS)]
        for _ in range(args.rounds):
            for concurrency in (1, 4):
                for kind in ("peer", "ours"):
                    runs.setdefault(f"{kind}_c{concurrency}", []).append(
                        _measure(kind, model_dir, bodies, concurrency)
                    )
    summary = {
        key: {
            "p50_ms": round(statistics.median(p50 for p50, _ in values), 1),
            "p99_ms": round(statistics.median(p99 for _, p99 in values), 1),
        }
        for key, values in sorted(runs.items())
    }
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"rounds": args.rounds, "load1": load, "results": summary}, indent=2))
        return
    print(f"serving latency, median of {args.rounds} rounds, {os.cpu_count()} cores, load average {load:.1f}")
    for concurrency in (1, 4):
        ours, peer = summary[f"ours_c{concurrency}"], summary[f"peer_c{concurrency}"]
        print(
            f"  concurrency {concurrency}: ours p50 {ours['p50_ms']:.0f} ms p99 {ours['p99_ms']:.0f} ms | "
            f"library defaults p50 {peer['p50_ms']:.0f} ms p99 {peer['p99_ms']:.0f} ms | "
            f"p99 defaults/ours {peer['p99_ms'] / ours['p99_ms']:.1f}x"
        )
    ours4 = summary["ours_c4"]
    print(f"  ours at concurrency 4: p99/p50 = {ours4['p99_ms'] / ours4['p50_ms']:.2f}")


if __name__ == "__main__":
    main()
