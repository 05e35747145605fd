"""The serving environment: the exact versions the model was trained and packaged with.

The lock lists the installed distribution of every package the serving code imports, and
of everything those need, as ``name==version`` lines. The serving image installs from it, so
a model is served by the library versions that fitted it.
"""

from __future__ import annotations

import platform

SERVING_ROOTS = ("numpy", "pandas", "scikit-learn", "scipy", "skops")
"""What ``pipelines/serving`` imports; the lock is their dependency closure."""


def locked_versions(roots: tuple[str, ...] = SERVING_ROOTS) -> dict[str, str]:
    """Installed version of each distribution in the closure of ``roots`` (normalised names)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    versions: dict[str, str] = {}
    pending = list(roots)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in versions:
            continue
        distribution = metadata.distribution(name)
        versions[name] = distribution.version
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return dict(sorted(versions.items()))


def requirements_lock(versions: dict[str, str]) -> bytes:
    """The lock file's bytes: one ``name==version`` per line, sorted."""
    header = "# The serving environment: pip install -r requirements.lock\n"
    return (header + "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))).encode()


def python_environment() -> dict[str, str]:
    """The interpreter the model was packaged with."""
    return {"implementation": platform.python_implementation(), "version": platform.python_version()}


if __name__ == "__main__":
    # ``python -m pipelines.packaging.environment > docker/requirements.lock`` refreshes the image's lock.
    import sys

    sys.stdout.write(requirements_lock(locked_versions()).decode())
