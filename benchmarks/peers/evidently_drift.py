"""Run evidently's DataDriftPreset on two Parquet files and report its time and peak memory.

This script runs inside the benchmark peers' own environment (``benchmarks/peers``), because
evidently needs pandas<3 and must stay out of modelrail's. ``benchmarks/drift_bench.py`` starts
it in a subprocess once per repetition and reads the one JSON line it prints.

Timed, as wall clock and as the process's CPU time: reading both Parquet files into pandas,
then ``Report([DataDriftPreset()]).run(...)`` with the column roles declared, so evidently
spends no time guessing them. Peak memory is the process's peak resident set size, read from
the kernel at exit.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--numeric", required=True, help="comma-separated numeric columns")
    parser.add_argument("--categorical", required=True, help="comma-separated categorical columns")
    args = parser.parse_args()

    started = time.perf_counter()
    cpu_started = time.process_time()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    definition = DataDefinition(
        numerical_columns=args.numeric.split(","),
        categorical_columns=args.categorical.split(","),
    )
    report = Report([DataDriftPreset()])
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    drifted = _drifted_count(result)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump(
        {
            "tool": "evidently",
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "peak_rss_bytes": peak_kib * 1024,
            "drifted_columns": drifted,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


def _drifted_count(result: dict[str, object]) -> float | None:
    """The preset's own 'drifted columns' count, as a sanity check that the report ran."""
    for metric in result.get("metrics", []):  # type: ignore[union-attr]
        if "DriftedColumnsCount" in str(metric.get("metric_name", "")):
            value = metric.get("value")
            if isinstance(value, dict):
                return float(value.get("count", 0.0))
    return None


if __name__ == "__main__":
    main()
