"""Offline plan cost per resource, against Pulumi's stock mock runtime, in the same run.

The peer is what a Pulumi user gets out of the box for testing a program: the SDK's own
``MockMonitor`` with ``Mocks`` that echo inputs (no recording, no rendering). Ours is
``build_plan``: the same program, plus validation of the stack file, the recording monitor,
deterministic outputs and the preview-shaped JSON. The ratio is our cost over the peer's.
A cold ``modelrail plan --json`` (process start, imports and all) is timed too, since that is
what CI and a person pay.

    uv run python benchmarks/plan_bench.py [--runs 5] [--stack prod] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _stock_mock_run(stack: str) -> int:
    """Run infra/__main__.py under the SDK's stock MockMonitor; return the resource count."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from infra.config import load_stack_file
    from pipelines.plan.engine import _engine_config

    path = REPO / "stacks" / f"Pulumi.{stack}.yaml"
    load_stack_file(path)  # the peer gets a valid file too, but pays nothing for checking it
    values, secret_keys = _engine_config(path)

    class EchoMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs, arn=f"arn:aws:mock:::{args.name}", name=args.name)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
            return {"accountId": "123456789012", "name": "us-east-1", "partition": "aws"}, []

    settings.reset_options(project="modelrail", stack=stack, preview=True)
    set_all_config(values, secret_keys)
    monitor = MockMonitor(EchoMocks())
    pulumi.runtime.set_mocks(monitor.mocks, project="modelrail", stack=stack, preview=True, monitor=monitor)
    from pipelines.plan.engine import _run_file

    _sync_await(run_pulumi_func(lambda: _run_file(REPO / "infra" / "__main__.py")))
    return len(monitor.resources) + 1  # the root stack is not kept by the stock monitor


def _ours(stack: str) -> int:
    from pipelines.plan import build_plan

    return len(build_plan(stack, project_dir=REPO)["steps"])


def _median_seconds(func: Any, runs: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def _cli_seconds(stack: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "plan", "--stack", stack, "--json"],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stack", action="append", help="stacks to measure (default: local and prod)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    stacks = args.stack or ["local", "prod"]
    _ours(stacks[0])  # warm imports once, for both sides alike
    rows = []
    for stack in stacks:
        peer_s, peer_n = _median_seconds(lambda s=stack: _stock_mock_run(s), args.runs)
        ours_s, ours_n = _median_seconds(lambda s=stack: _ours(s), args.runs)
        cli_s = _cli_seconds(stack, args.runs)
        rows.append(
            {
                "stack": stack,
                "resources": ours_n,
                "peer_resources": peer_n,
                "peer_ms_per_resource": 1000 * peer_s / peer_n,
                "ours_ms_per_resource": 1000 * ours_s / ours_n,
                "ratio_ours_over_peer": ours_s / peer_s,
                "cli_cold_seconds": cli_s,
                "cli_cold_ms_per_resource": 1000 * cli_s / ours_n,
                "runs": args.runs,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return
    print(f"offline plan, median of {args.runs} runs (peer: Pulumi SDK stock MockMonitor, same program)")
    for row in rows:
        print(
            f"  {row['stack']:>8}: {row['resources']} resources"
            f" | peer {row['peer_ms_per_resource']:.2f} ms/res"
            f" | modelrail {row['ours_ms_per_resource']:.2f} ms/res"
            f" | ratio {row['ratio_ours_over_peer']:.2f}x"
            f" | cold CLI {row['cli_cold_seconds']:.2f} s"
            f" ({row['cli_cold_ms_per_resource']:.1f} ms/res)"
        )


if __name__ == "__main__":
    main()
