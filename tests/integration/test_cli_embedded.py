"""From a fresh state directory: train → package → register → versions → lineage, on the embedded default.

Also: the embedded server survives between commands, a killed server is restored from the
local record, and ``modelrail embedded stop`` stops it (the test stops it whatever happens).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipelines.embedded import server
from pipelines.embedded.session import stop

from .conftest import REPO, small_manifest

pytestmark = pytest.mark.integration


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(REPO))
    monkeypatch.delenv("MODELRAIL_AWS", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    try:
        yield state
    finally:
        stop(state)


def modelrail(*args: str, expect: int = 0) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args, "--json"],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=600,
    )  # fmt: skip
    assert result.returncode == expect, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_the_whole_path_on_the_embedded_default(state: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(small_manifest().canonical_json())
    model_dir, tarball = tmp_path / "model", tmp_path / "model.tar.gz"

    trained = modelrail(
        "train", "--service", "adult-income", "--manifest", str(manifest), "--out", str(model_dir)
    )
    assert trained["metrics"]["accuracy"] > 0.7
    packaged = modelrail(
        "package", "--service", "adult-income", "--model-dir", str(model_dir), "--out", str(tarball)
    )
    sha = packaged["package_id"]

    registered = modelrail("register", "--service", "adult-income", "--package", str(tarball), "--stack", "local",
                           "--as", "alice@example.com")  # fmt: skip
    assert registered["created"] and registered["version"]["package_sha"] == sha

    [version] = modelrail("versions", "--service", "adult-income", "--stack", "local")["versions"]
    assert (version["package_sha"], version["stage"], version["approval"], version["registrant"]) == (
        sha, "experimental", "PendingManualApproval", "alice@example.com",
    )  # fmt: skip

    lineage = modelrail("lineage", "model", sha[:12])
    assert lineage["dataset"]["sha256"] == trained["manifest"]["data_sha256"]
    assert [run["kind"] for run in lineage["parent_runs"]] == ["training", "register"]
    dataset = modelrail("lineage", "dataset", trained["manifest"]["data_sha256"])
    assert [m["version"] for m in dataset["models"]] == [sha]
    assert [m["version"] for m in modelrail("lineage", "feature", "age")["models"]] == [sha]

    from pipelines.lineage import record_event
    from pipelines.registry.factory import registry_for_stack

    promoted = record_event(
        "promotion",
        "adult-income",
        sha,
        "local",
        "bob",
        {"stage": "production"},
        registry=registry_for_stack("local", "adult-income"),
    )
    production = modelrail("lineage", "production", "--service", "adult-income", "--stack", "local",
                           "--at", promoted.at)  # fmt: skip
    assert production["version"] == sha

    # The server lives on between commands; killed, it comes back with everything restored.
    info = server.recorded(state)
    assert info is not None and server.is_alive(info)
    psutil.Process(info.pid).kill()
    psutil.Process(info.pid).wait(timeout=10)
    [restored] = modelrail("versions", "--service", "adult-income", "--stack", "local")["versions"]
    assert restored["package_sha"] == sha and restored["registrant"] == "alice@example.com"
    assert modelrail("embedded", "status")["running"] is True

    # A tampered artifact is refused through the CLI too, exit 1, naming the file.
    tampered = tmp_path / "tampered"
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(tmp_path)], check=True)
    (tmp_path / "evaluation.json").write_text("{}", encoding="utf-8")
    subprocess.run(["tar", "-czf", str(tampered), "-C", str(tmp_path), "manifest.json", "model.skops",
                    "schema.json", "evaluation.json", "training-manifest.json", "requirements.lock", "code"],
                   check=True)  # fmt: skip
    refused = modelrail("register", "--service", "adult-income", "--package", str(tampered), "--stack", "local",
                        expect=1)  # fmt: skip
    assert refused["error"] == "TamperedArtifactError"
    assert "evaluation.json" in refused["message"]

    assert modelrail("embedded", "stop") == {"stopped": True}
    assert modelrail("embedded", "status")["running"] is False
