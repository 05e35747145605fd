"""OpenLineage run events, so Marquez (or any OpenLineage consumer) can ingest modelrail's lineage.

Transport: with ``OPENLINEAGE_URL`` or ``OPENLINEAGE_CONFIG`` set, openlineage-python's own
configuration applies (HTTP to Marquez, for example); otherwise events are appended, one JSON
object per line, to ``<state_dir>/openlineage/events.jsonl``, so nothing leaves the machine.

Jobs are ``<service>.train``, ``<service>.register``, ``<service>.gate`` and so on, in the
namespace ``modelrail.<stack>``. The training run's id is derived from the training manifest,
so the run that made a model is the same run wherever the model is registered.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PRODUCER = "https://github.com/modelrail/modelrail"
EVENTS_FILE = "openlineage/events.jsonl"
_TRAINING_NAMESPACE = uuid.UUID("5b0c3c52-6f1e-4a5e-9d8e-2f7c9b1d4a10")


def training_run_id(manifest: dict[str, Any]) -> str:
    """The run that trained a package: a UUID derived from its training manifest's sha256."""
    training_sha = manifest["files"]["training-manifest.json"]["sha256"]
    return str(uuid.uuid5(_TRAINING_NAMESPACE, training_sha))


def new_run_id() -> str:
    from openlineage.client.uuid import generate_new_uuid

    return str(generate_new_uuid())


class RunEmitter:
    """Emits run events through the configured OpenLineage transport."""

    def __init__(self, state_dir: Path) -> None:
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.file import FileConfig, FileTransport

        if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
            self.client = OpenLineageClient()
            self.target = os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG", "")
        else:
            path = state_dir / EVENTS_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            self.client = OpenLineageClient(
                transport=FileTransport(FileConfig(log_file_path=str(path), append=True))
            )
            self.target = str(path)

    def registration(
        self, *, manifest: dict[str, Any], package_sha: str, stack: str, artifact_uri: str, run_id: str
    ) -> None:
        """The training run (input: the dataset; output: the model) and the register run under it."""
        from openlineage.client.event_v2 import RunState

        service = manifest["service"]
        namespace = f"modelrail.{stack}"
        training = training_run_id(manifest)
        dataset = self._dataset_input(manifest)
        model = self._model_output(artifact_uri, package_sha, manifest)
        self._emit(
            RunState.COMPLETE,
            namespace,
            f"{service}.train",
            training,
            [dataset],
            [model],
            parent=None,
            facets=self._training_facets(manifest),
        )
        for state in (RunState.START, RunState.COMPLETE):
            self._emit(
                state,
                namespace,
                f"{service}.register",
                run_id,
                [model],
                [],
                parent=(f"{service}.train", training),
            )

    def event(
        self,
        *,
        kind: str,
        service: str,
        stack: str,
        version: str,
        run_id: str,
        parent_run_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """A gate, approval, promotion or rollback as a completed run under the version's register run."""
        from openlineage.client.event_v2 import InputDataset, RunState
        from openlineage.client.facet_v2 import dataset_version_dataset

        model = InputDataset(
            namespace="modelrail",
            name=f"{service}/{version}",
            facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)},
        )
        parent = (f"{service}.register", parent_run_id) if parent_run_id else None
        facets = {
            "executionParameters": _params_facet({"kind": kind, **{k: str(v) for k, v in payload.items()}})
        }
        self._emit(
            RunState.COMPLETE,
            f"modelrail.{stack}",
            f"{service}.{kind}",
            run_id,
            [model],
            [],
            parent=parent,
            facets=facets,
        )

    def _emit(
        self,
        state: Any,
        namespace: str,
        job: str,
        run_id: str,
        inputs: list[Any],
        outputs: list[Any],
        *,
        parent: tuple[str, str] | None,
        facets: dict[str, Any] | None = None,
    ) -> None:
        from openlineage.client.event_v2 import Job, Run, RunEvent
        from openlineage.client.facet_v2 import parent_run

        run_facets: dict[str, Any] = dict(facets or {})
        if parent is not None:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent[1]), job=parent_run.Job(namespace=namespace, name=parent[0])
            )
        self.client.emit(
            RunEvent(
                eventType=state,
                eventTime=datetime.now(UTC).isoformat(),
                run=Run(runId=run_id, facets=run_facets),
                job=Job(namespace=namespace, name=job),
                inputs=inputs,
                outputs=outputs,
                producer=PRODUCER,
            )
        )

    def _dataset_input(self, manifest: dict[str, Any]) -> Any:
        from openlineage.client.event_v2 import InputDataset
        from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

        fields = [schema_dataset.SchemaDatasetFacetFields(name=name) for name in manifest.get("features", [])]
        return InputDataset(
            namespace="file",
            name=manifest["dataset"]["uri"],
            facets={
                "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                    datasetVersion=manifest["dataset"]["sha256"]
                ),
                "schema": schema_dataset.SchemaDatasetFacet(fields=fields),
            },
        )

    def _model_output(self, artifact_uri: str, package_sha: str, manifest: dict[str, Any]) -> Any:
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import dataset_version_dataset

        bucket, _, key = artifact_uri.removeprefix("s3://").partition("/")
        return OutputDataset(
            namespace=f"s3://{bucket}",
            name=key,
            facets={
                "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=package_sha)
            },
        )

    def _training_facets(self, manifest: dict[str, Any]) -> dict[str, Any]:
        parameters = {f"param.{k}": str(v) for k, v in sorted(manifest["parameters"].items())}
        parameters["seed"] = str(manifest["seed"])
        parameters["code.git_sha"] = str(manifest["code"]["git_sha"])
        parameters["python"] = str(manifest["environment"]["python"]["version"])
        return {"executionParameters": _params_facet(parameters)}


def _params_facet(values: dict[str, str]) -> Any:
    from openlineage.client.facet_v2 import execution_parameters_run

    return execution_parameters_run.ExecutionParametersRunFacet(
        parameters=[
            execution_parameters_run.ExecutionParameter(key=key, name=key, value=value)
            for key, value in sorted(values.items())
        ]
    )
