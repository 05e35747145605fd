"""How many OpenMP/BLAS threads one model server gives each prediction (``MODELRAIL_SERVING_THREADS``).

The server answers every request on its own thread (``ThreadingHTTPServer``), and by default
scikit-learn's OpenMP loops and the BLAS start one worker per core for each of them. On a
2-core machine that oversubscribes the cores as soon as requests overlap: the v1 model's p99
went from about 125 ms to 1.3 s at concurrency 1 with the default threads.

The bound has to come from the environment, set before numpy and scikit-learn are imported.
OpenMP reads ``OMP_NUM_THREADS`` once, when the runtime loads, as the default for every thread;
``omp_set_num_threads`` (what ``threadpoolctl.threadpool_limits`` calls) changes only the
calling thread's setting, so a limit set in the main thread does not reach the handler threads.
Measured with ``threadpoolctl.threadpool_info()`` in a fresh thread after
``threadpool_limits(1)`` in the main thread: OpenMP still reports 2 threads; with the
environment variables set before the import it reports 1 in every thread.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

from pipelines.errors import BadInputError

THREADS_ENV = "MODELRAIL_SERVING_THREADS"
"""The platform's one knob; stack config ``servingThreads`` reaches the server through it."""

DEFAULT_SERVING_THREADS = 1
"""One OpenMP/BLAS thread per request: concurrency comes from the request threads."""

MAX_SERVING_THREADS = 256

LIBRARY_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""What OpenMP, OpenBLAS and MKL read when they load; all three are set from ``THREADS_ENV``."""

_NUMERIC_MODULES = ("numpy", "scipy", "sklearn", "pandas")


def serving_threads(environ: Mapping[str, str]) -> int:
    """The thread count ``environ`` asks for; ``BadInputError`` naming the value and what is allowed."""
    raw = environ.get(THREADS_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_SERVING_THREADS
    try:
        threads = int(raw.strip())
    except ValueError:
        threads = 0
    if not 1 <= threads <= MAX_SERVING_THREADS:
        raise BadInputError(
            f"{THREADS_ENV}={raw!r}: expected a whole number from 1 to {MAX_SERVING_THREADS} "
            f"(OpenMP/BLAS threads per request; unset means {DEFAULT_SERVING_THREADS})"
        )
    return threads


def bound_library_threads(environ: MutableMapping[str, str] | None = None) -> int:
    """Set every ``LIBRARY_THREAD_VARIABLES`` from ``THREADS_ENV``; return the bound.

    Called once, by the server's entrypoint, before it imports anything numeric. The platform's
    setting overrides an inherited ``OMP_NUM_THREADS`` so the latency gate, the sandbox and the
    endpoint run a model with the same threads whatever shell started them. ``environ`` other
    than the process's own (a test's dict) is only written to. In a process that has already
    loaded numpy or scikit-learn (the entrypoint called in-process), the libraries have read
    their settings, so the environment is left alone and a warning on stderr says so.
    """
    target = os.environ if environ is None else environ
    threads = serving_threads(target)
    loaded = [name for name in _NUMERIC_MODULES if name in sys.modules]
    if environ is None and loaded:
        print(
            f"warning: {', '.join(loaded)} already imported; {THREADS_ENV}={threads} cannot "
            "bound their threads in this process",
            file=sys.stderr,
        )
        return threads
    for variable in LIBRARY_THREAD_VARIABLES:
        target[variable] = str(threads)
    return threads
