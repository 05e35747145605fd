"""The production StackRunner: the Pulumi Automation API over the project's stacks.

Thin on purpose: it selects the stack in the project directory and maps the Automation API's
typed errors onto modelrail's (``ConcurrentUpdateError`` becomes a clear "stack locked" with its
own exit code). The per-resource preview diff is built from the engine's step events.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.errors import BadInputError, LockedError
from pipelines.runners.base import Preview, ResourceChange, StackUpdateError

if TYPE_CHECKING:
    from pulumi import automation as auto

_T = TypeVar("_T")


class PulumiStackRunner:
    """Runs ``refresh``/``preview``/``up`` on one stack through the Automation API."""

    def __init__(
        self,
        stack: str,
        project_dir: Path,
        *,
        organization: str | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> None:
        self.stack = stack
        self.project_dir = project_dir
        self.qualified_name = f"{organization}/{stack}" if organization else stack
        self.on_output = on_output

    def _select(self) -> auto.Stack:
        from pulumi import automation as auto

        return self._guard(
            lambda: auto.select_stack(stack_name=self.qualified_name, work_dir=str(self.project_dir))
        )

    def _guard(self, operation: Callable[[], _T]) -> _T:
        from pulumi import automation as auto

        try:
            return operation()
        except auto.ConcurrentUpdateError as error:
            raise LockedError(
                f"stack {self.qualified_name} is locked by another update",
                details=[_last_line(error), "wait for it to finish, or `pulumi cancel` a stuck update"],
            ) from None
        except auto.StackNotFoundError:
            raise BadInputError(
                f"stack {self.qualified_name} does not exist in the current Pulumi backend",
                details=[f"create it with `pulumi stack init {self.qualified_name}` in {self.project_dir}"],
            ) from None
        except auto.CommandError as error:
            raise StackUpdateError(
                f"pulumi failed on stack {self.qualified_name}", details=[_last_line(error)]
            ) from None

    def refresh(self) -> None:
        stack = self._select()
        self._guard(lambda: stack.refresh(on_output=self.on_output, message="modelrail: refresh"))

    def preview(self) -> Preview:
        from pulumi.automation import EngineEvent, OpType

        changes: list[ResourceChange] = []

        def collect(event: EngineEvent) -> None:
            pre = event.resource_pre_event
            if pre is None or pre.metadata.op in (OpType.SAME, OpType.READ, OpType.REFRESH):
                return
            metadata = pre.metadata
            paths = tuple(sorted(metadata.detailed_diff or {})) or tuple(sorted(metadata.diffs or ()))
            changes.append(ResourceChange(metadata.urn, metadata.type, str(metadata.op.value), paths))

        stack = self._select()
        result = self._guard(lambda: stack.preview(on_event=collect, on_output=self.on_output, diff=True))
        summary = {str(getattr(op, "value", op)): int(count) for op, count in result.change_summary.items()}
        return Preview(changes=tuple(sorted(changes, key=lambda c: c.urn)), summary=summary)

    def up(self, message: str) -> dict[str, Any]:
        stack = self._select()
        result = self._guard(lambda: stack.up(message=message, on_output=self.on_output))
        return {key: output.value for key, output in result.outputs.items()}

    def outputs(self) -> dict[str, Any]:
        stack = self._select()
        return {key: output.value for key, output in self._guard(stack.outputs).items()}


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(no output)"])[-1]
