"""The one table that binds each serving runtime's adapters: ``{runtime: Runtime}``.

A stack's services name their ``runtime``; the controller gets the adapters of every runtime its
stack uses, bound once per stack and looked up per service, so SageMaker and KServe services
share one stack. Adding a runtime is a component (``components/``), one adapter module
(``pipelines/runtimes/<runtime>``, a ``RuntimeModule``) and one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol, cast

from pipelines.runtimes.ports import RuntimeAdapters

if TYPE_CHECKING:
    from infra.config import StackConfig
    from pipelines.runners.base import EndpointInspector
    from pipelines.sandbox.client import SandboxClient


@dataclass
class Binding:
    """What a runtime's adapters are built from, each part made on first use."""

    stack: str
    config: StackConfig
    start_sandbox: Callable[[], SandboxClient]
    """The running local sandbox (started when it is not): the embedded default's endpoints."""
    aws_client: Callable[[str], Any]
    """A boto3 client of a real AWS service in the stack's region (retries and typed errors)."""
    _sandbox: SandboxClient | None = field(default=None, repr=False)

    @property
    def sandbox(self) -> SandboxClient:
        if self._sandbox is None:
            self._sandbox = self.start_sandbox()
        return self._sandbox


class RuntimeModule(Protocol):
    """What a runtime's adapter module defines (``pipelines.runtimes.sagemaker`` is one)."""

    def adapters(self, binding: Binding, *, embedded: bool) -> RuntimeAdapters:
        """Everything the controller needs to roll a service out on this runtime."""
        ...

    def inspector(self, binding: Binding, *, embedded: bool) -> EndpointInspector:
        """Only the endpoint inspector (``modelrail verify`` and ``status --live`` read no metrics)."""
        ...


@dataclass(frozen=True)
class Runtime:
    """One runtime's adapter module, imported on first use (the CLI's start-up stays cheap)."""

    module: str

    def load(self) -> RuntimeModule:
        return cast(RuntimeModule, import_module(self.module))


RUNTIMES: dict[str, Runtime] = {
    "sagemaker": Runtime("pipelines.runtimes.sagemaker"),
    "kserve": Runtime("pipelines.runtimes.kserve.bindings"),
}
"""Every runtime a service may name (``infra.config.Service.runtime``), with its adapter module."""


def runtimes_of(config: StackConfig) -> list[str]:
    """The runtimes a stack's services use, sorted."""
    return sorted({service.runtime for service in config.services.values()})


def bind(binding: Binding, *, embedded: bool) -> dict[str, RuntimeAdapters]:
    """The adapters of each runtime the stack's services use, bound once per stack."""
    return {
        name: RUNTIMES[name].load().adapters(binding, embedded=embedded)
        for name in runtimes_of(binding.config)
    }


def inspectors(binding: Binding, *, embedded: bool) -> dict[str, EndpointInspector]:
    """The endpoint inspector of each runtime the stack's services use."""
    return {
        name: RUNTIMES[name].load().inspector(binding, embedded=embedded)
        for name in runtimes_of(binding.config)
    }
