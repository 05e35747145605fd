"""The local sandbox: SageMaker-style endpoints and KServe-style InferenceServices as model server
processes on loopback.

A detached daemon runs a weighted router per service that follows the service's blue/green
policy (SageMaker) or its revisions' traffic split (KServe), mirrors a share of an endpoint's
production requests to its shadow variant, restarts crashed model servers, and counts
everything per version on ``/metrics``.
``SandboxClient`` drives it from any process; ``sandbox_session`` starts one that is always
stopped again.
"""

from pipelines.sandbox.client import (
    EndpointNotFoundError,
    SandboxClient,
    SandboxNotRunningError,
    SandboxTimeoutError,
    StopReport,
    sandbox_session,
    stop_sandbox,
)
from pipelines.sandbox.description import DeploymentPhase, EndpointDescription, EndpointStatus
from pipelines.sandbox.shadow import ShadowSpec

__all__ = [
    "DeploymentPhase",
    "EndpointDescription",
    "EndpointNotFoundError",
    "EndpointStatus",
    "SandboxClient",
    "SandboxNotRunningError",
    "SandboxTimeoutError",
    "ShadowSpec",
    "StopReport",
    "sandbox_session",
    "stop_sandbox",
]
