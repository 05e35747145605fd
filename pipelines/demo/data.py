"""The demo's data: the UCI Adult snapshot split into training and held-out rows, and a corrupted copy.

The corruption is what a broken upstream pipeline does: ages shifted by eighteen years for half
the rows and a third of the ``Private`` workclass relabelled ``Self-emp-inc``. It is real data
gone wrong, not a flag: the drift gate has to find it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

HOLDOUT_SHARE = 0.2
SEED = 7
AGE, WORKCLASS = 0, 1


@dataclass(frozen=True)
class DemoData:
    """Paths of the demo's data files (the Adult raw format: comma+space separated, no header)."""

    reference: Path
    """The full snapshot: what every version's training data must resemble."""
    train: Path
    holdout: Path
    """Rows no model trains on: the gates' evaluation data and the replayed live traffic."""
    corrupted: Path


def prepare(source: Path, directory: Path) -> DemoData:
    """Write the split and the corrupted copy under ``directory`` (deterministic for a given source)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    order = list(range(len(lines)))
    random.Random(SEED).shuffle(order)
    cut = int(len(order) * (1 - HOLDOUT_SHARE))
    train = [lines[i] for i in sorted(order[:cut])]
    holdout = [lines[i] for i in sorted(order[cut:])]
    data = DemoData(
        reference=source,
        train=directory / "train.data",
        holdout=directory / "holdout.data",
        corrupted=directory / "corrupted.data",
    )
    data.train.write_text("\n".join(train) + "\n", encoding="utf-8")
    data.holdout.write_text("\n".join(holdout) + "\n", encoding="utf-8")
    data.corrupted.write_text("\n".join(_corrupt(train)) + "\n", encoding="utf-8")
    return data


def _corrupt(lines: list[str]) -> list[str]:
    corrupted = []
    for index, line in enumerate(lines):
        fields = line.split(", ")
        if index % 2 == 0:
            fields[AGE] = str(min(90, int(fields[AGE]) + 18))
        if fields[WORKCLASS] == "Private" and index % 3 == 0:
            fields[WORKCLASS] = "Self-emp-inc"
        corrupted.append(", ".join(fields))
    return corrupted
