"""Read one YAML file the platform is given (a gate policy, a pinned schema, a service contract).

Every such file is read the same way: as UTF-8, through the bounded loader (``infra.yamlio``:
alias bombs and deep nesting refused before expansion), and any failure is ``BadInputError``
naming the kind of file, its path and what went wrong. Validating the document is the caller's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError


def read_yaml_file(path: Path, what: str) -> Any:
    """The parsed document of ``path``; ``what`` names the file in messages (``policy file``)."""
    from ruamel.yaml.error import YAMLError

    from infra.yamlio import YamlLimitError, load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{what} {path} cannot be read: {error}") from None
    try:
        return load_yaml(text)
    except YamlLimitError as error:
        raise BadInputError(f"{what} {path} is refused: {error}") from None
    except YAMLError as error:
        raise BadInputError(f"{what} {path} is not valid YAML: {error}") from None
