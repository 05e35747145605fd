"""Who is acting: the name recorded on every registration, approval and promotion.

The first of these wins: an explicit ``--as NAME``, the ``MODELRAIL_USER`` environment
variable (how CI names its bot), ``git config user.email`` (how a person is usually known
in a repository), and finally the operating-system user.
"""

from __future__ import annotations

import getpass
import os
import subprocess

from pipelines.errors import BadInputError

USER_ENV = "MODELRAIL_USER"
MAX_ACTOR_LENGTH = 128


def current_actor(explicit: str | None = None) -> str:
    """The acting person or bot, by the precedence in the module docstring."""
    if explicit is not None:
        return _checked(explicit, "--as")
    from_env = os.environ.get(USER_ENV)
    if from_env:
        return _checked(from_env, USER_ENV)
    email = _git_user_email()
    if email:
        return email
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _checked(name: str, source: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_ACTOR_LENGTH or any(c in cleaned for c in "\n\r\t"):
        raise BadInputError(
            f"{source} = {name!r}: an actor is a non-empty single-line name of at most "
            f"{MAX_ACTOR_LENGTH} characters (e.g. an e-mail address)"
        )
    return cleaned


def _git_user_email() -> str | None:
    try:
        result = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    email = result.stdout.strip()
    return email or None
