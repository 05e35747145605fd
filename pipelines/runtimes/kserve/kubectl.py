"""A thin adapter over the ``kubectl`` CLI: read an InferenceService, patch its canary share.

The CLI, not a Kubernetes client library: it already speaks every kubeconfig auth plugin
(``aws eks get-token``, ``gke-gcloud-auth-plugin``, OIDC) that the platform team's contexts use,
and it adds no dependency. Every call has a timeout, and its failures are typed: a cluster that
does not answer is ``DependencyUnavailableError`` (``modelrail resume`` converges once it is
back), anything the API server or kubectl refuses is ``KubectlError`` with kubectl's stderr.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from pipelines.dependencies import DependencyUnavailableError
from pipelines.errors import ModelrailError

DEFAULT_TIMEOUT_SECONDS = 30.0
"""How long one kubectl call may take, API round trips included (``--request-timeout`` is set a
little below it, so kubectl usually gives up first and says why)."""

UNREACHABLE = (
    "Unable to connect to the server",
    "was refused - did you specify the right host or port",
    "connect: connection refused",
    "i/o timeout",
    "no such host",
    "TLS handshake timeout",
    "context deadline exceeded",
    "Client.Timeout exceeded",
    "the server is currently unable to handle the request",
    "http2: server sent GOAWAY",
)
"""kubectl's stderr when the API server did not answer (as opposed to answering no)."""


class KubectlError(ModelrailError):
    """kubectl, or the API server through it, refused a request: an unknown context, no
    permission, no InferenceService CRD on the cluster, an invalid patch. ``details`` carry the
    command and kubectl's stderr."""


class Kubectl:
    """Runs ``kubectl`` against one kubeconfig context (``None``: the kubeconfig's current one)."""

    def __init__(
        self,
        context: str | None,
        kubeconfig: Path | None = None,
        *,
        executable: str = "kubectl",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.context = context
        self.kubeconfig = kubeconfig
        self.executable = executable
        self.timeout_seconds = timeout_seconds

    @property
    def cluster(self) -> str:
        """The cluster for people: its context, and the kubeconfig when it is not the default."""
        name = (
            f"the Kubernetes cluster of context {self.context!r}"
            if self.context
            else "the current kubectl context"
        )
        return f"{name} ({self.kubeconfig})" if self.kubeconfig else name

    def get_inference_service(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The InferenceService document (``kubectl get -o json``), or None when there is none."""
        result = self._run(["get", "inferenceservice", name, "-n", namespace, "-o", "json"], missing_ok=True)
        if result is None:
            return None
        try:
            document = json.loads(result)
        except json.JSONDecodeError as error:
            raise KubectlError(
                f"kubectl printed no JSON for inferenceservice {namespace}/{name}",
                details=[f"{error}", result[:500]],
            ) from error
        if not isinstance(document, dict):
            raise KubectlError(
                f"kubectl printed {type(document).__name__} for inferenceservice {namespace}/{name}"
            )
        return document

    def patch_canary_percent(self, name: str, namespace: str, percent: int) -> None:
        """Set ``spec.predictor.canaryTrafficPercent`` (a merge patch); 0 takes the canary's traffic
        away and pins the latest rolled-out revision."""
        if not 0 <= percent <= 100:
            raise ValueError(f"canaryTrafficPercent must be 0 to 100, not {percent}")
        patch = json.dumps({"spec": {"predictor": {"canaryTrafficPercent": percent}}})
        self._run(["patch", "inferenceservice", name, "-n", namespace, "--type", "merge", "-p", patch])

    def _command(self, args: list[str]) -> list[str]:
        command = [self.executable]
        if self.kubeconfig is not None:
            command += ["--kubeconfig", str(self.kubeconfig)]
        if self.context is not None:
            command += ["--context", self.context]
        request_timeout = max(1, int(self.timeout_seconds) - 1)
        return [*command, f"--request-timeout={request_timeout}s", *args]

    def _run(self, args: list[str], *, missing_ok: bool = False) -> str | None:
        """kubectl's stdout; None for a NotFound when ``missing_ok``; typed errors otherwise."""
        command = self._command(args)
        shown = " ".join(command)
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout_seconds, check=False
            )
        except FileNotFoundError as error:
            raise KubectlError(
                f"{self.executable!r} is not on PATH: the KServe runtime needs kubectl",
                details=["install kubectl (https://kubernetes.io/docs/tasks/tools/)"],
            ) from error
        except subprocess.TimeoutExpired as error:
            raise DependencyUnavailableError(
                f"{self.cluster} did not answer within {self.timeout_seconds:g}s",
                details=[shown],
            ) from error
        if completed.returncode == 0:
            return completed.stdout
        stderr = completed.stderr.strip()
        if missing_ok and "(NotFound)" in stderr and "inferenceservices" in stderr:
            return None  # not "the server could not find the requested resource": no CRD is an error
        if any(marker in stderr for marker in UNREACHABLE):
            raise DependencyUnavailableError(
                f"{self.cluster} is not answering", details=[shown, _last_line(stderr)]
            )
        raise KubectlError(
            f"kubectl {args[0]} failed on {self.cluster} (exit {completed.returncode}): {_last_line(stderr)}",
            details=[shown, stderr],
        )


def _last_line(stderr: str) -> str:
    """kubectl's own message: its last stderr line (client-go logs its retries above it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no output on stderr"
