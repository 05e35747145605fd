"""Bounded YAML loading: the one way modelrail reads a YAML file it did not write itself.

Stack files, gate policies and pinned profiles arrive from pull requests, including pull requests
from forks, and CI validates and plans them. YAML aliases let a file of a few lines describe a
structure of billions of nodes (the "billion laughs"): ruamel.yaml shares aliased nodes, but
everything after the parser (``_plain``, pydantic, JSON for the engine, error messages) walks
them expanded. So the composer here counts, while it composes, how many nodes the aliases would
expand to, and refuses a document once that count passes ``MAX_ALIAS_NODES``. The work before the
refusal is bounded by the file's length plus the limit; an alias of a collection that contains it
(a recursive alias) and nesting deeper than ``MAX_DEPTH`` are refused the same way.

It imports ruamel.yaml (about 0.2 s), so callers import it inside the function that loads,
never at module level: ``modelrail --help`` loads no YAML parser. ``infra`` holds it because
``pipelines`` depends on ``infra`` and never the other way round.
"""

from __future__ import annotations

from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

MAX_ALIAS_NODES = 1_000
"""Most nodes all aliases of one document may expand to, counted with everything they contain.

The largest committed file (``stacks/Pulumi.prod.yaml``) has about 120 nodes in all and a service
entry about 40, so sharing a whole entry between two dozen services still fits. The worst a file
can do under it, aliases that each expand to a mapping of unknown keys, is about 450 problems,
which ``config validate`` reports in about the time it takes to accept the prod stack; at 10,000
it was 4,800 problems and most of a second more.
"""

SCALAR_CHARS_PER_NODE = 100
"""A scalar weighs one node per started 100 characters, so aliases of one long string count too."""

MAX_DEPTH = 64
"""Deepest nesting of collections accepted; modelrail's files nest fewer than ten levels."""

YamlType = Literal["rt", "safe"]


class YamlLimitError(YAMLError):
    """A document refused for its alias expansion or nesting, before any of it is expanded.

    A ``YAMLError``, so every ``except YAMLError`` catches it too; the message names the limit,
    the line and the way out, and the reader of the file adds the file's name.
    """

    def __init__(self, message: str, *, limit: int, reached: int, line: int) -> None:
        super().__init__(message)
        self.limit = limit
        """The limit that was passed (nodes of alias expansion, or levels of nesting)."""
        self.reached = reached
        """The count when the loader stopped: at most one alias's expansion past ``limit``."""
        self.line = line
        """The 1-based line of the alias or collection that passed the limit."""


class BoundedYAML(YAML):
    """ruamel's ``YAML`` composing with ``BoundedComposer``, which reads the limit from here."""

    def __init__(self, typ: YamlType, *, max_alias_nodes: int) -> None:
        # The pure-Python parser: ruamel's C parser composes in C, without our composer.
        super().__init__(typ=typ, pure=True)
        self.Composer = BoundedComposer
        self.max_alias_nodes = max_alias_nodes


def bounded_yaml(typ: YamlType = "safe", *, max_alias_nodes: int = MAX_ALIAS_NODES) -> BoundedYAML:
    """A ruamel ``YAML`` of ``typ`` whose loads refuse alias bombs and runaway nesting.

    ``typ="rt"`` keeps comments and style for round-trip edits; ``"safe"`` builds plain Python
    values. Dumping is unchanged.
    """
    return BoundedYAML(typ, max_alias_nodes=max_alias_nodes)


def load_yaml(text: str, *, typ: YamlType = "safe", max_alias_nodes: int = MAX_ALIAS_NODES) -> Any:
    """Parse one YAML document with the bounds of ``bounded_yaml``.

    Raises ``YamlLimitError`` for a document past the bounds, and ruamel's ``YAMLError`` (which
    ``YamlLimitError`` subclasses) for one that is not YAML at all.
    """
    return bounded_yaml(typ, max_alias_nodes=max_alias_nodes).load(text)


def describe_yaml_error(error: Exception) -> str:
    """How a reader states a YAML error after the file's name: refused by a limit, or not YAML."""
    if isinstance(error, YamlLimitError):
        return f"refused: {error}"
    return f"not valid YAML: {error}"


class BoundedComposer(Composer):
    """Composes as ruamel does, keeping the expanded size of every node composed so far.

    An alias adds the expanded size of the node it names; the document is refused as soon as the
    sum passes the loader's ``max_alias_nodes``. Sizes are known for every finished node, so an
    alias of an unfinished one is a recursive alias, refused as well.
    """

    def compose_document(self) -> Any:
        self._sizes: dict[int, int] = {}
        self._expanded = 0
        self._limit = int(getattr(self.loader, "max_alias_nodes", MAX_ALIAS_NODES))
        try:
            return super().compose_document()
        finally:
            self._sizes = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            return self._alias(super().compose_node(parent, index), event.anchor, line)
        if self.depth >= MAX_DEPTH:
            raise YamlLimitError(
                f"collections nest deeper than {MAX_DEPTH} levels on line {line}, the limit of nesting",
                limit=MAX_DEPTH,
                reached=self.depth + 1,
                line=line,
            )
        node = super().compose_node(parent, index)
        sizes = self._sizes
        if isinstance(node, MappingNode):
            size = 1 + sum(sizes[id(key)] + sizes[id(value)] for key, value in node.value)
        elif isinstance(node, SequenceNode):
            size = 1 + sum(sizes[id(item)] for item in node.value)
        elif isinstance(node, ScalarNode):
            size = 1 + len(str(node.value)) // SCALAR_CHARS_PER_NODE
        else:  # pragma: no cover - ruamel composes only these three kinds
            size = 1
        sizes[id(node)] = size
        return node

    def _alias(self, node: Any, anchor: str, line: int) -> Any:
        size = self._sizes.get(id(node))
        if size is None:
            raise YamlLimitError(
                f"alias *{anchor} on line {line} refers to a collection that contains it; "
                "recursive aliases are not accepted, write the value out",
                limit=self._limit,
                reached=self._expanded,
                line=line,
            )
        self._expanded += size
        if self._expanded > self._limit:
            raise YamlLimitError(
                f"the aliases up to *{anchor} on line {line} expand to more than {self._limit} "
                "nodes, the limit of alias expansion; write the values out or share smaller anchors",
                limit=self._limit,
                reached=self._expanded,
                line=line,
            )
        return node
