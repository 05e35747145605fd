"""Start-up cost of ``modelrail``: cold ``--help`` against a bare interpreter, in the same run.

The peer is ``python -c pass`` on the same interpreter: the price of starting Python at all,
which no command can go below. Two floors are measured beside it, so the ratio can be read
against what the CLI framework alone costs: a minimal typer app (two commands, nothing
imported) printing its ``--help``, once with plain help and once with typer's default rich help.

Ours are fresh processes that run exactly what the ``modelrail`` console script runs, with
``--help``, ``config validate --help`` and a real ``config validate --stack prod`` (which has
to load the config schema, so it shows what a light command pays beyond the help path).

Every case is started in turn within each round, so a noisy neighbour hits all of them alike;
medians of wall time and of the child's CPU time (user + system, steadier on a shared machine)
are printed with the ratio over the peer.

    uv run python benchmarks/startup_bench.py [--runs 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

MINIMAL_TYPER_APP = textwrap.dedent(
    """
    import sys

    import typer

    app = typer.Typer(add_completion=False, rich_markup_mode={markup!r})


    @app.command()
    def hello(name: str = "world") -> None:
        \"\"\"Say hello.\"\"\"


    @app.command()
    def bye() -> None:
        \"\"\"Say goodbye.\"\"\"


    app(sys.argv[1:])
    """
)

MODELRAIL = "import sys; from pipelines.cli import main; sys.exit(main())"
"""What the ``modelrail`` console script does, without depending on the script being installed."""


def _cases(scratch: Path) -> dict[str, list[str]]:
    plain, rich = scratch / "typer_plain.py", scratch / "typer_rich.py"
    plain.write_text(MINIMAL_TYPER_APP.format(markup=None), encoding="utf-8")
    rich.write_text(MINIMAL_TYPER_APP.format(markup="rich"), encoding="utf-8")
    python = sys.executable
    return {
        "python -c pass": [python, "-c", "pass"],
        "typer floor, plain help": [python, str(plain), "--help"],
        "typer floor, rich help": [python, str(rich), "--help"],
        "modelrail --help": [python, "-c", MODELRAIL, "--help"],
        "modelrail config validate --help": [python, "-c", MODELRAIL, "config", "validate", "--help"],
        "modelrail config validate --stack prod": [
            python, "-c", MODELRAIL, "config", "validate", "--stack", "prod",
        ],
    }  # fmt: skip


def _run_once(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process; a failing command stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        sys.exit(f"benchmark run failed: {' '.join(command)}\n{completed.stderr.decode()[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(runs: int) -> dict[str, Any]:
    """Every case ``runs`` times, round-robin, after one unmeasured warm-up round (disk cache)."""
    with tempfile.TemporaryDirectory(prefix="modelrail-startup-") as tmp:
        cases = _cases(Path(tmp))
        for command in cases.values():
            _run_once(command)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, command in cases.items():
                samples[name].append(_run_once(command))
    peer = "python -c pass"
    peer_wall = statistics.median(wall for wall, _ in samples[peer])
    peer_cpu = statistics.median(cpu for _, cpu in samples[peer])
    rows = {}
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        rows[name] = {
            "median_wall_ms": 1000 * wall,
            "median_cpu_ms": 1000 * cpu,
            "wall_ratio_over_peer": wall / peer_wall,
            "cpu_ratio_over_peer": cpu / peer_cpu,
        }
    return {
        "peer": peer,
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
        "cases": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = measure(args.runs)
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
        return
    print(
        f"start-up, median of {figures['runs']} runs each, round-robin "
        f"(peer: {figures['peer']}, Python {figures['machine']['python']}, {figures['machine']['cpus']} CPUs)"
    )
    for name, row in figures["cases"].items():
        print(
            f"  {name:<40} {row['median_wall_ms']:7.1f} ms wall ({row['wall_ratio_over_peer']:5.1f}x)"
            f" | {row['median_cpu_ms']:7.1f} ms CPU ({row['cpu_ratio_over_peer']:5.1f}x)"
        )


if __name__ == "__main__":
    main()
