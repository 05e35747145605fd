"""The local record of every write to the embedded AWS, and its replay into a fresh server.

Layout under ``<state_dir>/embedded/``::

    objects/<bucket>/<key>        the bytes of every uploaded object
    packages/<group>.json         per model package group, in version order, the
                                  CreateModelPackage request that recreates each package
                                  in its current state (approval, metadata), and its region
    regions.json                  the region of every recorded bucket (dev, staging and
                                  prod live outside us-east-1, and so must their replay)

The registry adapter writes through ``LocalRecord`` (it implements the registry's
``RegistryJournal``); ``replay`` rebuilds a server from it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

RECORD_DIR = "embedded"
REGIONS_FILE = "regions.json"
DEFAULT_REGION = "us-east-1"
"""Where a record written before regions were kept was written: the embedded default's region."""


class LocalRecord:
    """Objects and model packages written to the embedded AWS, kept on disk."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / RECORD_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.root / "record.lock"))

    def object_written(self, bucket: str, key: str, data: bytes, region: str) -> None:
        with self._lock:
            regions = self.bucket_regions()
            if regions.get(bucket) != region:
                regions[bucket] = region
                _atomic_write(
                    self.root / REGIONS_FILE, (json.dumps(regions, indent=2, sort_keys=True) + "\n").encode()
                )
        _atomic_write(self.root / "objects" / bucket / key, data)

    def bucket_regions(self) -> dict[str, str]:
        """Bucket → region of every bucket written to (a record from before regions were kept: none)."""
        path = self.root / REGIONS_FILE
        regions: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return regions

    def package_written(self, group: str, package_sha: str, request: dict[str, Any], region: str) -> None:
        """Remember the request that recreates this package as it is now (replaces an older one)."""
        with self._lock:
            entries = self.packages(group)
            for entry in entries:
                if entry["package_sha"] == package_sha:
                    entry["request"] = request
                    entry["region"] = region
                    break
            else:
                entries.append({"package_sha": package_sha, "request": request, "region": region})
            _atomic_write(
                self._group_file(group), (json.dumps(entries, indent=2, sort_keys=True) + "\n").encode()
            )

    def packages(self, group: str) -> list[dict[str, Any]]:
        path = self._group_file(group)
        if not path.is_file():
            return []
        entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        return entries

    def groups(self) -> list[str]:
        directory = self.root / "packages"
        return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []

    def objects(self) -> list[tuple[str, str, Path]]:
        """Every recorded object as (bucket, key, local file)."""
        base = self.root / "objects"
        if not base.is_dir():
            return []
        found = []
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")):
            bucket, _, key = path.relative_to(base).as_posix().partition("/")
            found.append((bucket, key, path))
        return found

    def replay(self, client: Callable[[str, str], Any]) -> tuple[int, int]:
        """Recreate every recorded bucket, object, group and package, each in the region it was
        written in; ``client(service, region)`` makes the clients. Returns (objects, packages)."""
        from pipelines.embedded.seed import ensure_bucket, ensure_group

        objects = self.objects()
        regions = self.bucket_regions()
        for bucket in sorted({bucket for bucket, _, _ in objects}):
            ensure_bucket(client("s3", regions.get(bucket, DEFAULT_REGION)), bucket)
        for bucket, key, path in objects:
            s3 = client("s3", regions.get(bucket, DEFAULT_REGION))
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        packages = 0
        for group in self.groups():
            entries = self.packages(group)
            region = entries[0].get("region", DEFAULT_REGION) if entries else DEFAULT_REGION
            sagemaker = client("sagemaker", region)
            ensure_group(sagemaker, group)
            for entry in entries:
                sagemaker.create_model_package(**entry["request"])
                packages += 1
        return len(objects), packages

    def _group_file(self, group: str) -> Path:
        return self.root / "packages" / f"{group}.json"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as target:
            target.write(data)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
