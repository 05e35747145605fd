"""``python -P -m pipelines.serving.launch``: verify a model directory, then serve it with its own code.

Every model server starts here: the latency gate's, the sandbox's fleets and the serving
container's (``docker/serve``). The launcher is the platform's code (the repository's in the
controller, the image's in the container). It verifies the model directory, every file against
the manifest and the serving code against its own copy (``verify_model_dir``), and only then
replaces itself (``exec``, same process id) with the package's serving code, run isolated:

* ``-I``: no ``PYTHONPATH``, no other ``PYTHON*`` variable, no user site-packages, neither the
  working directory nor a script directory on ``sys.path``;
* ``sys.path`` is then cut down to the package's ``code/``, the standard library and the
  site-packages directories. Paths that ``.pth`` files add (an editable install of this
  repository puts the checkout there) are dropped, so the repository cannot shadow the
  package or be imported by it;
* ``-B``: no bytecode written into the verified directory;
* the working directory is the model directory.

The launcher itself must not be shadowed either: ``-P`` keeps the working directory off its
``sys.path``. What runs is therefore exactly the code the package carries, which is exactly the
code the platform builds packages with.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipelines.errors import ModelrailError
from pipelines.serving.threads import THREADS_ENV
from pipelines.serving.verify import CODE_DIR, verify_model_dir

LAUNCHER_MODULE = "pipelines.serving.launch"
SERVING_MODULE = "pipelines.serving"
MODEL_VERSION_ENV = "MODELRAIL_MODEL_VERSION"
"""Set on the SageMaker Model by ``components/endpoint.py``: the package id the stack pins."""

BOOTSTRAP = """\
import os, runpy, site, sys, sysconfig
code = os.path.realpath(sys.argv.pop(1))
stdlib = os.path.realpath(sysconfig.get_path("stdlib"))
sites = [os.path.realpath(p) for p in site.getsitepackages()]
def kept(entry):
    real = os.path.realpath(entry)
    inside = real == stdlib or real.startswith(stdlib + os.sep)
    archive = real.endswith(".zip") and os.path.dirname(real) == os.path.dirname(stdlib)
    return bool(entry) and (inside or archive or real in sites)
sys.path[:] = [code] + [entry for entry in sys.path if kept(entry)]
runpy.run_module("pipelines.serving", run_name="__main__", alter_sys=True)
"""
"""Run with ``python -I -B -c BOOTSTRAP CODE_DIR ARGS...``: serve ``CODE_DIR``'s ``pipelines.serving``."""


def launcher_command(
    model_dir: Path, *, port: int | str, host: str = "127.0.0.1", python: str = sys.executable
) -> list[str]:
    """The argv that verifies ``model_dir`` and serves it with its own code on ``host:port``."""
    return [
        python, "-P", "-m", LAUNCHER_MODULE,
        "--model-dir", str(model_dir), "--port", str(port), "--host", host,
    ]  # fmt: skip


def isolated_command(
    code_dir: Path, server_args: Sequence[str], *, python: str = sys.executable
) -> list[str]:
    """The argv that runs ``code_dir``'s ``python -m pipelines.serving`` and nothing else's."""
    return [python, "-I", "-B", "-c", BOOTSTRAP, str(code_dir), *server_args]


def serving_environment(
    base: Mapping[str, str], serving_threads: int, *, package_id: str | None = None
) -> dict[str, str]:
    """The launcher's environment: ``base`` with the thread bound and no bytecode or unsafe path.

    ``base`` passes through otherwise: the launcher is the platform's code and may need the
    controller's ``PYTHONPATH`` to be found; the server it becomes ignores every ``PYTHON*``
    variable (``-I``), while ``MODELRAIL_SERVING_THREADS`` reaches it. ``package_id``, when the
    caller knows which version it serves, becomes ``MODELRAIL_MODEL_VERSION`` as on SageMaker;
    an inherited one is dropped, since it names no package of this caller's.
    """
    environment = {name: value for name, value in base.items() if name != MODEL_VERSION_ENV}
    environment.update(
        {THREADS_ENV: str(serving_threads), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONSAFEPATH": "1"}
    )
    if package_id is not None:
        environment[MODEL_VERSION_ENV] = package_id
    return environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -P -m {LAUNCHER_MODULE}",
        description=__doc__,
        epilog=f"Every other argument goes to `python -m {SERVING_MODULE}` (--port, --host, --access-log).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    )
    parser.add_argument(
        "--expected-package-id",
        default=os.environ.get(MODEL_VERSION_ENV) or None,
        help=f"refuse a manifest whose sha256 is not this (default: ${MODEL_VERSION_ENV}, if set)",
    )
    args, server_args = parser.parse_known_args(argv)
    model_dir = Path(args.model_dir).resolve()
    try:
        verify_model_dir(model_dir, expected_package_id=args.expected_package_id)
    except ModelrailError as error:
        print(f"refusing to serve {model_dir}: {error.message}", file=sys.stderr)
        for detail in error.details:
            print(f"  - {detail}", file=sys.stderr)
        return 1
    os.chdir(model_dir)
    command = isolated_command(model_dir / CODE_DIR, ["--model-dir", str(model_dir), *server_args])
    sys.stderr.flush()
    os.execv(command[0], command)
    return 0  # not reached: execv replaces the process


if __name__ == "__main__":
    sys.exit(main())
