"""Integrity of a model directory: every file's sha256 against ``manifest.json``, and its
serving code against the platform's own.

A model directory is what SageMaker extracts from ``model.tar.gz`` into ``/opt/ml/model``.
Nothing in it is trusted until this check passes, so the server, the sandbox and every
deployment call ``verify_model_dir`` before they read anything else.

A consistent manifest proves only that the files are the ones its author listed; whoever
builds a package writes its manifest. The serving code under ``code/`` is what runs, so it
must also be byte for byte the code this platform builds packages with
(``verify_serving_code``). The one exception is a service's own prediction code (the contract's
``predict``), which no platform can hold a copy of: it travels under ``code/service/``, and is
accepted only as the files the manifest's ``serving.predict`` names, each with its sha256. The
package id pins the manifest, so the code served is the code the gates ran under that id.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError, RefusedError

MANIFEST = "manifest.json"
PACKAGE_FORMAT = "modelrail.package/1"
CODE_DIR = "code"
"""Where a package carries its serving code (``code/pipelines/...``, importable as ``pipelines``)."""
SERVICE_CODE_DIR = f"{CODE_DIR}/service"
"""Where a package carries the service's own prediction module(s), when its contract names ``predict``."""
ENTRY_POINT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
"""``module:function``, the contract's spelling (``pipelines.contract.model.ENTRY_POINT_PATTERN``),
repeated here because the serving code imports nothing outside ``pipelines.serving``."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SERVICE_FILE = re.compile(rf"^{re.escape(SERVICE_CODE_DIR)}/([A-Za-z_]\w*/)*[A-Za-z_]\w*\.py$", re.ASCII)
"""A module file under ``code/service/``: importable names only, so no ``..`` or ``.`` spelling."""
_CHUNK = 1 << 20


class TamperedArtifactError(RefusedError):
    """A file whose bytes are not the bytes the manifest recorded (or a file the manifest lacks)."""


class ForeignServingCodeError(RefusedError):
    """The package's serving code is not the code this platform builds packages with."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a model directory; ``BadInputError`` if it is unreadable."""
    path = model_dir / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BadInputError(f"{path}: no manifest.json; not a modelrail model package") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"{path}: unreadable manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
        raise BadInputError(f"{path}: format is not {PACKAGE_FORMAT!r}; not a modelrail model package")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str) for entry in files.values()
    ):
        raise BadInputError(f"{path}: `files` must map each path to an object with a `sha256`")
    return manifest


def verify_model_dir(model_dir: Path, *, expected_package_id: str | None = None) -> dict[str, Any]:
    """Check every file of ``model_dir`` against its manifest; return the manifest.

    Refuses (``TamperedArtifactError``) a file whose sha256 differs, naming the file and both
    hashes; a missing file; a file the manifest does not list; and, when ``expected_package_id``
    is given, a manifest that is not the one the package id names. Then refuses
    (``ForeignServingCodeError``) serving code that is not the platform's (``verify_serving_code``).
    """
    model_dir = Path(model_dir)
    if expected_package_id is not None:
        actual_id = sha256_file(model_dir / MANIFEST) if (model_dir / MANIFEST).is_file() else "missing"
        if actual_id != expected_package_id:
            raise TamperedArtifactError(
                f"{model_dir / MANIFEST}: sha256 {actual_id} but the package id is {expected_package_id}",
                details=[
                    f"file: {MANIFEST}",
                    f"expected sha256: {expected_package_id}",
                    f"actual sha256: {actual_id}",
                ],
            )
    manifest = read_manifest(model_dir)
    listed: dict[str, Any] = manifest["files"]
    for name in sorted(listed):
        expected = listed[name]["sha256"]
        path = model_dir / name
        if not _inside(model_dir, path):
            raise TamperedArtifactError(
                f"{model_dir / MANIFEST}: lists {name!r}, which lies outside the package"
            )
        if not path.is_file():
            raise TamperedArtifactError(
                f"{path}: missing; the manifest records sha256 {expected}",
                details=[f"file: {name}", f"expected sha256: {expected}", "actual: missing"],
            )
        actual = sha256_file(path)
        if actual != expected:
            raise TamperedArtifactError(
                f"{path}: sha256 {actual} does not match the manifest's {expected}; refusing a tampered file",
                details=[f"file: {name}", f"expected sha256: {expected}", f"actual sha256: {actual}"],
            )
    present = (p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    extra = sorted(name for name in present if name not in listed and name != MANIFEST)
    if extra:
        raise TamperedArtifactError(
            f"{model_dir}: files not listed in the manifest: {', '.join(extra)}",
            details=[f"unlisted file: {name}" for name in extra],
        )
    verify_serving_code(model_dir, manifest)
    return manifest


def platform_serving_code() -> dict[str, Path]:
    """The serving code this platform packages, keyed by its path inside a package.

    The serving package itself and what it imports from ``pipelines``: the files next to this
    module, so the reference is whichever copy is running (the repository's in the controller,
    the image's in the serving container). ``pipelines.packaging.build`` packages exactly these.
    """
    serving = Path(__file__).resolve().parent
    root = serving.parent
    sources = [root / "__init__.py", root / "errors.py", *sorted(serving.glob("*.py"))]
    return {f"{CODE_DIR}/pipelines/{source.relative_to(root).as_posix()}": source for source in sources}


def verify_serving_code(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Refuse a package whose ``code/`` is not exactly the platform's serving code.

    Why compare hashes with the platform's own files rather than sign the code at build time:
    a signature is only as good as the custody of its key, and the builder (an engineer's
    laptop, a CI job) is exactly who could alter the code, so the key would sit next to the
    attacker. The running platform's copy needs no key and no key rotation: the verifier holds
    the reference itself. The price is that a package built by another version of the serving
    code is refused until it is rebuilt with this one; the error says so.

    Runs after the manifest check, so the manifest's hashes are the files' hashes. Collects
    every difference (changed, missing, extra files) and raises ``ForeignServingCodeError``
    once, naming the first file in the message and every file in the details.
    """
    reference = {name: sha256_file(path) for name, path in platform_serving_code().items()}
    files: dict[str, Any] = manifest["files"]
    service_code = _declared_service_code(model_dir, manifest)
    details: list[str] = []
    packaged = {
        name: str(entry["sha256"])
        for name, entry in files.items()
        if name.startswith(f"{CODE_DIR}/") and name not in service_code
    }
    for name in sorted(set(reference) | set(packaged)):
        expected, actual = reference.get(name), packaged.get(name)
        if actual is None:
            details.append(f"{name}: missing; the platform's serving code has it")
        elif expected is None:
            details.append(f"{name}: not part of the platform's serving code")
        elif actual != expected:
            details.append(f"{name}: sha256 {actual}, the platform's is {expected}")
    if details:
        first = details[0].split(":", 1)[0]
        raise ForeignServingCodeError(
            f"{model_dir / first}: the package's serving code is not the code this platform "
            f"builds packages with ({len(details)} file(s) differ); refusing to run it",
            details=[
                *details,
                "a package runs only the serving code the platform packaged; rebuild it with "
                "`modelrail package` from this version of the platform",
            ],
        )


def module_file(entry_point: str) -> str:
    """The package file an entry point's module is, e.g. ``model:predict`` -> ``code/service/model.py``."""
    return f"{SERVICE_CODE_DIR}/{entry_point.split(':', 1)[0].replace('.', '/')}.py"


def _declared_service_code(model_dir: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """The service code files ``serving.predict`` declares, name -> sha256.

    Accepted only when the declaration is whole: an entry point, every file a ``.py`` under
    ``code/service/`` listed in ``files`` with the same sha256, and the entry point's module
    among them; otherwise ``ForeignServingCodeError`` lists every problem. Files under ``code/``
    that are neither declared here nor the platform's stay foreign code.
    """
    serving = manifest.get("serving")
    raw = serving.get("predict") if isinstance(serving, dict) else None
    if raw is None:
        return {}
    where = "serving.predict"
    if not isinstance(raw, dict):
        raw = {"entry_point": None, "files": raw}
    entry, declared = raw.get("entry_point"), raw.get("files")
    problems: list[str] = []
    if not isinstance(entry, str) or not ENTRY_POINT.match(entry):
        problems.append(f"{where}.entry_point: {entry!r} is not `module:function`")
    if not isinstance(declared, dict) or not declared:
        problems.append(f"{where}.files: {declared!r} is not an object of file -> sha256")
        declared = {}
    files: dict[str, Any] = manifest["files"]
    accepted: dict[str, str] = {}
    for name, digest in sorted(declared.items()):
        if not _SERVICE_FILE.match(name):
            problems.append(
                f"{where}.files: {name!r} is not a module file under {SERVICE_CODE_DIR}/ "
                "(folders and file names that Python can import, ending in .py)"
            )
        elif not isinstance(digest, str) or not _SHA256.match(digest):
            problems.append(f"{where}.files.{name}: {digest!r} is not a sha256")
        elif name not in files:
            problems.append(f"{where}.files: {name} is not in the manifest's files")
        elif files[name]["sha256"] != digest:
            problems.append(
                f"{where}.files.{name}: sha256 {digest}, but the file's is {files[name]['sha256']}"
            )
        else:
            accepted[name] = digest
    if isinstance(entry, str) and ENTRY_POINT.match(entry) and module_file(entry) not in declared:
        problems.append(f"{where}.entry_point: {entry!r} needs {module_file(entry)}, which is not listed")
    if problems:
        raise ForeignServingCodeError(
            f"{model_dir / MANIFEST}: serving.predict does not declare the service's prediction code "
            f"the platform can accept ({len(problems)} problem(s)); refusing to run it",
            details=[
                *problems,
                f"a package's own code is only the .py files under {SERVICE_CODE_DIR}/ that "
                "`modelrail package` lists there, with their sha256",
            ],
        )
    return accepted


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
