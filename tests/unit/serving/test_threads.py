"""The model server bounds OpenMP/BLAS threads in every request thread, from MODELRAIL_SERVING_THREADS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.errors import BadInputError
from pipelines.serving.threads import (
    LIBRARY_THREAD_VARIABLES,
    THREADS_ENV,
    bound_library_threads,
    serving_threads,
)

# What a request sees: the thread counts of the loaded libraries, asked from a fresh thread,
# the way ThreadingHTTPServer runs each request.
IN_A_REQUEST_THREAD = """\
import json, sys, threading
{setup}
import sklearn.ensemble  # loads OpenMP, as the model does
from threadpoolctl import threadpool_info, threadpool_limits
{main_thread}
seen = {{}}
def request():
    seen.update((info["user_api"], info["num_threads"]) for info in threadpool_info())
worker = threading.Thread(target=request)
worker.start()
worker.join()
print(json.dumps(seen))
"""


def _threads_in_a_request(setup: str = "", main_thread: str = "", **environment: str) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in (*LIBRARY_THREAD_VARIABLES, THREADS_ENV)}
    script = IN_A_REQUEST_THREAD.format(setup=setup, main_thread=main_thread)
    ran = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env, **environment},
        timeout=120,
        check=True,
    )
    seen: dict[str, int] = json.loads(ran.stdout)
    return seen


def test_unset_means_one_thread() -> None:
    assert serving_threads({}) == 1
    assert serving_threads({THREADS_ENV: " "}) == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "257"])
def test_a_bad_value_is_refused_naming_it_and_what_is_allowed(value: str) -> None:
    with pytest.raises(BadInputError) as caught:
        serving_threads({THREADS_ENV: value})
    assert caught.value.message.startswith(f"{THREADS_ENV}={value!r}: expected a whole number from 1 to 256")


def test_the_platform_setting_overrides_inherited_library_variables() -> None:
    environ = {THREADS_ENV: "3", "OMP_NUM_THREADS": "16"}
    assert bound_library_threads(environ) == 3
    assert {name: environ[name] for name in LIBRARY_THREAD_VARIABLES} == dict.fromkeys(
        LIBRARY_THREAD_VARIABLES, "3"
    )


@pytest.mark.parametrize("threads", [1, 3])
def test_the_bound_reaches_a_request_thread(threads: int) -> None:
    setup = "from pipelines.serving.threads import bound_library_threads\nbound_library_threads()"
    seen = _threads_in_a_request(setup, **{THREADS_ENV: str(threads)})
    # OpenBLAS never starts more threads than there are cores, whatever it is asked for.
    assert seen == {"openmp": threads, "blas": min(threads, os.cpu_count() or 1)}


def test_why_not_threadpoolctl_a_limit_in_the_main_thread_misses_the_request_threads() -> None:
    """Pins the library behaviour the design rests on: if this ever fails, revisit threads.py."""
    seen = _threads_in_a_request(main_thread="threadpool_limits(1)", OMP_NUM_THREADS="3")
    assert seen["openmp"] == 3


def test_the_server_entrypoint_refuses_a_bad_setting_before_loading_anything() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "pipelines.serving", "--model-dir", "/nonexistent", "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, THREADS_ENV: "0"},
        timeout=60,
    )
    assert ran.returncode == 1
    assert f"{THREADS_ENV}='0': expected a whole number from 1 to 256" in ran.stderr
    assert "Traceback" not in ran.stderr
