"""Drift + data validation on 1,000,000 rows × 20 columns: modelrail against evidently.

Generates the data once, deterministically (15 numeric and 5 categorical columns, a reference and
a current table with a few shifted columns), writes both to Parquet in a temporary directory,
then alternates fresh subprocesses:

* modelrail (this environment): open both tables, then the data gate (against the reference's
  inferred schema and fingerprint) and the drift gate in one pass over the columns;
* evidently's ``DataDriftPreset`` (the peers' own environment, ``benchmarks/peers``, since
  evidently needs pandas<3): read both tables into pandas, run the report.

Each side's clock starts after its imports and stops when its result is computed; wall and CPU
time are both recorded (CPU time is steadier on a shared machine); peak memory is the
subprocess's peak resident set size. Medians over the runs are printed with the ratios.

    uv run python benchmarks/drift_bench.py [--rows 1000000] [--runs 5] [--peer-runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / "peers"
NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CARDINALITIES = (3, 8, 20, 50, 100)


def generate(rows: int, directory: Path, seed: int = 20240501) -> tuple[Path, Path]:
    """Write ``reference.parquet`` and ``current.parquet``; the current shifts 3 numeric and 1 categorical column."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)

    def table(shifted: bool) -> pl.DataFrame:
        columns: dict[str, Any] = {}
        for i, name in enumerate(NUMERIC):
            kind = i % 5
            shift = 0.3 if shifted and i in (0, 5, 10) else 0.0
            if kind == 0:
                values = rng.normal(50 + shift * 10, 10, rows)
            elif kind == 1:
                values = rng.lognormal(3 + shift, 0.5, rows)
            elif kind == 2:
                values = rng.exponential(2 + shift, rows)
            elif kind == 3:
                values = rng.uniform(0, 1 + shift, rows)
            else:
                values = rng.poisson(4 + shift * 4, rows).astype(np.float64)
            if i % 4 == 0:
                values[rng.random(rows) < 0.01] = np.nan
            columns[name] = values
        for i, (name, size) in enumerate(zip(CATEGORICAL, CARDINALITIES, strict=True)):
            weights = 1.0 / np.arange(1, size + 1)
            if shifted and i == 1:
                weights = weights[::-1]
            labels = np.array([f"{name}_v{j}" for j in range(size)])
            columns[name] = labels[rng.choice(size, rows, p=weights / weights.sum())]
        return pl.DataFrame(columns)

    reference, current = directory / "reference.parquet", directory / "current.parquet"
    table(shifted=False).write_parquet(reference)
    table(shifted=True).write_parquet(current)
    return reference, current


def run_modelrail_side(reference: Path, current: Path) -> dict[str, Any]:
    """The measured modelrail work, run inside a fresh subprocess."""
    import resource

    # The libraries the gates import lazily are imported before the clock starts, as the peer
    # script imports pandas and evidently before its clock.
    import polars  # noqa: F401
    import scipy.spatial.distance
    import scipy.stats  # noqa: F401

    from pipelines.gates.combined import data_and_drift
    from pipelines.gates.frames import open_table
    from pipelines.gates.policy import load_policy

    policy = load_policy(stage="candidate")
    started = time.perf_counter()
    cpu_started = time.process_time()
    reference_table = open_table(reference, role="reference")
    current_table = open_table(current, role="current")
    data, drift = data_and_drift(reference_table, current_table, policy)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    drifted = sorted({check.column for check in drift.failures if check.column})
    return {
        "tool": "modelrail",
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "drifted_columns": len(drifted),
        "checks": len(drift.checks) + len(data.checks),
    }


def _measure(command: list[str]) -> dict[str, Any]:
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if completed.returncode != 0:
        sys.exit(f"benchmark run failed: {' '.join(command)}\n{completed.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="modelrail repetitions (median reported)")
    parser.add_argument("--peer-runs", type=int, default=3, help="evidently repetitions (median reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--side", choices=["modelrail"], help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--current", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side == "modelrail":
        print(json.dumps(run_modelrail_side(args.reference, args.current)))
        return

    uv = os.environ.get("UV", str(ROOT / ".tools" / "uv" / "bin" / "uv"))
    with tempfile.TemporaryDirectory(prefix="modelrail-bench-") as tmp:
        reference, current = generate(args.rows, Path(tmp))
        ours = [
            sys.executable,
            __file__,
            "--side",
            "modelrail",
            "--reference",
            str(reference),
            "--current",
            str(current),
        ]
        peer = [
            uv, "run", "--project", str(PEERS), "--frozen", "python", str(PEERS / "evidently_drift.py"),
            "--reference", str(reference), "--current", str(current),
            "--numeric", ",".join(NUMERIC), "--categorical", ",".join(CATEGORICAL),
        ]  # fmt: skip
        modelrail_runs, evidently_runs = [], []
        for run in range(max(args.runs, args.peer_runs)):
            if run < args.runs:
                modelrail_runs.append(_measure(ours))
            if run < args.peer_runs:
                evidently_runs.append(_measure(peer))
    figures = _summarise(args.rows, modelrail_runs, evidently_runs)
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
    else:
        _print(figures)


def _summarise(rows: int, ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, Any]:
    def side(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "runs": len(runs),
            "median_seconds": statistics.median(run["seconds"] for run in runs),
            "seconds": [run["seconds"] for run in runs],
            "median_cpu_seconds": statistics.median(run["cpu_seconds"] for run in runs),
            "median_peak_rss_mib": statistics.median(run["peak_rss_bytes"] for run in runs) / 2**20,
            "drifted_columns": runs[0].get("drifted_columns"),
        }

    modelrail, evidently = side(ours), side(theirs)
    return {
        "data": {"rows": rows, "numeric_columns": len(NUMERIC), "categorical_columns": len(CATEGORICAL)},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
        "modelrail": modelrail,
        "evidently": evidently,
        "speedup": evidently["median_seconds"] / modelrail["median_seconds"],
        "cpu_ratio": evidently["median_cpu_seconds"] / modelrail["median_cpu_seconds"],
        "memory_ratio": modelrail["median_peak_rss_mib"] / evidently["median_peak_rss_mib"],
    }


def _print(figures: dict[str, Any]) -> None:
    data = figures["data"]
    print(
        f"drift + data validation, {data['rows']:,} rows × "
        f"{data['numeric_columns'] + data['categorical_columns']} columns "
        f"({data['numeric_columns']} numeric, {data['categorical_columns']} categorical), "
        f"{figures['machine']['cpus']} CPUs"
    )
    for name in ("modelrail", "evidently"):
        side = figures[name]
        print(
            f"  {name:<10} median {side['median_seconds']:8.2f} s wall, {side['median_cpu_seconds']:8.2f} s CPU "
            f"over {side['runs']} run(s), "
            f"peak RSS {side['median_peak_rss_mib']:7.0f} MiB, drifted columns: {side['drifted_columns']}"
        )
    print(
        f"  speed-up   {figures['speedup']:.1f}× faster than evidently DataDriftPreset "
        f"(wall clock; {figures['cpu_ratio']:.1f}× less CPU time)"
    )
    print(f"  memory     {figures['memory_ratio']:.2f}× evidently's peak RSS")


if __name__ == "__main__":
    main()
