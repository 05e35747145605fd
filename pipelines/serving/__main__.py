"""``python -m pipelines.serving``: verify and load a model directory, then serve it.

The model directory defaults to ``SM_MODEL_DIR``, then ``/opt/ml/model`` (SageMaker's
layout); the port to ``SAGEMAKER_BIND_TO_PORT``, then 8080. A model that fails verification
(a file against the manifest, or serving code that is not the platform's) is never served:
the process exits 1 with the reason on stderr. ``MODELRAIL_SERVING_THREADS`` (default 1) bounds
the OpenMP/BLAS threads of each prediction; it is applied here, before numpy loads.

Start it through ``pipelines.serving.launch``, which verifies the directory with the platform's
own code first and then runs this module from the package's ``code/``, isolated.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serving", description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a container")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    # Imported code must not leave bytecode inside a verified model directory.
    sys.dont_write_bytecode = True
    from pipelines.errors import ModelrailError
    from pipelines.serving.threads import bound_library_threads

    try:
        # Before anything imports numpy or scikit-learn: they read their thread counts at load.
        threads = bound_library_threads()
        from pipelines.serving.model import load_model_dir
        from pipelines.serving.server import ModelServer

        model = load_model_dir(args.model_dir)
    except ModelrailError as error:
        print(f"refusing to serve {args.model_dir}: {error.message}", file=sys.stderr)
        for detail in error.details:
            print(f"  - {detail}", file=sys.stderr)
        return 1
    server = ModelServer(model, args.host, args.port, access_log=args.access_log)
    host, port = server.server_address[:2]
    code = Path(__file__).resolve().parent
    print(
        f"serving {model.package_id} on http://{host!s}:{port} "
        f"({threads} OpenMP/BLAS thread(s) per request; code from {code})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
