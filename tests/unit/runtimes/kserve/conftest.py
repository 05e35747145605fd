"""A stand-in ``kubectl`` on PATH, and KServe's own InferenceService status documents."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

STATUS_FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "kserve" / "status"
"""Status documents from KServe's docs and controller (their README names each source)."""

FAKE_KUBECTL = '''\
"""A stand-in kubectl: logs its argv as a JSON line to $FAKE_KUBECTL_LOG, then answers as
$FAKE_KUBECTL_SCENARIO says: "ok" prints $FAKE_KUBECTL_DOCUMENT (a file) or nothing, the others
print what the real kubectl prints on stderr and exit 1 ("sleep" hangs)."""
import json, os, sys, time

with open(os.environ["FAKE_KUBECTL_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
scenario = os.environ.get("FAKE_KUBECTL_SCENARIO", "ok")
if scenario == "sleep":
    time.sleep(30)
stderr = {
    "not-found": 'Error from server (NotFound): inferenceservices.serving.kserve.io "dev-diabetes" not found',
    "refused": "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?",
    "forbidden": 'Error from server (Forbidden): inferenceservices.serving.kserve.io "dev-diabetes" is forbidden: '
    'User "ci" cannot patch resource "inferenceservices" in API group "serving.kserve.io" in the namespace "ml"',
    "no-context": 'error: context "dev" does not exist',
    "no-resource": "Error from server (NotFound): the server could not find the requested resource",
    "garbage": None,
}
if scenario == "garbage":
    print("not json")
elif scenario in stderr:
    sys.stderr.write(stderr[scenario] + "\\n")
    sys.exit(1)
elif os.environ.get("FAKE_KUBECTL_DOCUMENT"):
    print(open(os.environ["FAKE_KUBECTL_DOCUMENT"], encoding="utf-8").read())
'''


def status_document(name: str) -> dict[str, Any]:
    """One of ``tests/fixtures/kserve/status/<name>.json``."""
    document: dict[str, Any] = json.loads((STATUS_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return document


class FakeKubectl:
    """Controls the stand-in and reads back what it was asked."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log = tmp_path / "kubectl.jsonl"
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("FAKE_KUBECTL_LOG", str(self.log))

    def answer(self, scenario: str = "ok", document: str | None = None) -> None:
        self.monkeypatch.setenv("FAKE_KUBECTL_SCENARIO", scenario)
        if document is not None:
            self.monkeypatch.setenv("FAKE_KUBECTL_DOCUMENT", str(STATUS_FIXTURES / f"{document}.json"))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    """``tmp_path/bin/kubectl`` first on PATH, answering "ok" with no document until told."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}", encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FAKE_KUBECTL_DOCUMENT", raising=False)
    fake = FakeKubectl(tmp_path, monkeypatch)
    fake.answer("ok")
    return fake
