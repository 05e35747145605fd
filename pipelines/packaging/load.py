"""Load a package for serving or deployment: extract, verify every sha256, then deserialise."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pipelines.packaging.tarball import extract_tarball
from pipelines.serving.model import LoadedPackage, load_model_dir
from pipelines.serving.verify import verify_model_dir


def load_package(path: Path, *, expected_package_id: str | None = None) -> LoadedPackage:
    """A verified model from a ``model.tar.gz`` or an extracted model directory.

    Raises ``TamperedArtifactError`` (naming the file and both hashes) if any file differs from
    the manifest, or if ``expected_package_id`` is given and the manifest is not that package's;
    ``ForeignServingCodeError`` (naming every differing file) if the serving code under ``code/``
    is not the platform's own. Registration calls this before it uploads anything, so a package
    that could not be served is never registered.
    """
    path = Path(path)
    if path.is_dir():
        return load_model_dir(path, expected_package_id=expected_package_id)
    with tempfile.TemporaryDirectory(prefix="modelrail-package-") as scratch:
        extract_tarball(path, Path(scratch))
        return load_model_dir(Path(scratch), expected_package_id=expected_package_id)


def extract_package(path: Path, dest: Path, *, expected_package_id: str | None = None) -> Path:
    """Extract a package into the new directory ``dest`` and verify it there (for a model server).

    The same checks as ``load_package``, files and serving code, without deserialising the model.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        extract_tarball(path, staging)
        verify_model_dir(staging, expected_package_id=expected_package_id)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest
