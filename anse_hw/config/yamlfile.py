"""Reading a config file without trusting it.

A config file is user input, and the daemon reads it as root at boot.  This
module bounds every way YAML can hurt: only regular files (a FIFO would block
forever, a device would never end), at most `MAX_BYTES`, UTF-8 only, at most
`MAX_DEPTH` levels of nesting (PyYAML's composer recurses), at most
`MAX_VALUES` values once aliases are expanded (an alias bomb is exponential),
no duplicate keys (PyYAML silently keeps the last), no integers too long to
be a setting, and no NaN or infinity anywhere.  Booleans are YAML 1.2's
`true`/`false` only, so `command: on` is the word "on".  Every refusal is a
`YamlProblem` with the line it is about.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, ClassVar

import yaml

from anse_hw import files

#: Far above any robot's config (the annotated examples are a few KiB), and
#: small enough that pure-Python PyYAML parses the worst of it in a quarter of
#: a second here, about a second on a Raspberry Pi 4.
MAX_BYTES = 32 * 1024
MAX_DEPTH = 32
MAX_VALUES = 20_000
#: Digits an integer may have: every setting fits in a few (ports, pins, counts).
MAX_INT_DIGITS = 12
MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(Exception):
    """What is wrong with the file; `line` is 1-based, or None for the whole file."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text, if it is a regular UTF-8 file of at most MAX_BYTES."""
    try:
        return files.read_text(path, MAX_BYTES)
    except files.FileProblem as exc:
        reason = exc.reason
        if reason.startswith("is larger"):
            reason += "; this is not a config file"
        elif "not a regular file" in reason:
            reason += "; give a YAML file"
        raise YamlProblem(reason, exc.line) from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with the limits of this module."""

    # Resolvers are class-level tables: copy before adding to them.
    yaml_implicit_resolvers: ClassVar[dict] = {
        k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_VALUES:
                raise YamlProblem(f"has more than {MAX_VALUES} values; this is not a config file")
            if self._depth > MAX_DEPTH:
                raise YamlProblem(
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark.line + 1,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            key = key_node.value
            if key in seen:
                raise YamlProblem(
                    f"duplicate key '{key}' (first given on line {seen[key]}); "
                    "YAML would silently keep only the last one",
                    key_node.start_mark.line + 1,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(c.isalnum() for c in node.value)
        if digits > MAX_INT_DIGITS:
            raise YamlProblem(
                f"an integer with {digits} digits is out of range for any setting",
                node.start_mark.line + 1,
            )
        return super().construct_yaml_int(node)

    def construct_yaml_str(self, node: yaml.ScalarNode) -> str:
        """A double-quoted "\\ud800" makes a lone surrogate: a string no file
        name, topic or terminal can take (printing it is a traceback)."""
        value = super().construct_yaml_str(node)
        bad = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
        if bad is not None:
            raise YamlProblem(
                f"\\u{ord(bad):04x} is half of a UTF-16 pair, not a character",
                node.start_mark.line + 1,
            )
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise YamlProblem(
                f"{node.value} is not a finite number; NaN and infinity are not allowed",
                node.start_mark.line + 1,
            )
        return value


BOOL_TAG = "tag:yaml.org,2002:bool"
# YAML 1.1 reads on/off/yes/no as booleans; `command: on` and `safe: off` mean
# the words.  Only true and false are booleans here, as in YAML 1.2.
for _first, _resolvers in _BoundedLoader.yaml_implicit_resolvers.items():
    _resolvers[:] = [(tag, regexp) for tag, regexp in _resolvers if tag != BOOL_TAG]
_BoundedLoader.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.1 wants a dot in a float ("1.0e3"); people write 1e3 and mean a number.
_BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:float", _BoundedLoader.construct_yaml_float)
_BoundedLoader.add_constructor("tag:yaml.org,2002:str", _BoundedLoader.construct_yaml_str)


def _expanded_size(root: yaml.Node) -> int:
    """How many values the document has with every alias expanded (memoised, so
    the count itself stays linear in the file even for an alias bomb)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise YamlProblem("a YAML alias refers to itself", node.start_mark.line + 1)
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(id(node))
        sizes[id(node)] = total = min(total, MAX_VALUES + 1)
        return total

    return size(root)


def load(text: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML; return the data and the 1-based line of every key path."""
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        message = f"invalid YAML: character #x{exc.character:04x} is not allowed"
        raise YamlProblem(message, line) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        if _expanded_size(root) > MAX_VALUES:
            raise YamlProblem(
                f"expands to more than {MAX_VALUES} values (YAML aliases?); "
                "this is not a config file"
            )
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise YamlProblem(f"invalid YAML: {exc.problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, _key_lines(root)


def _key_lines(root: yaml.Node) -> dict[tuple, int]:
    """Iterative, not recursive: aliases can make the expanded tree deeper than the text."""
    lines: dict[tuple, int] = {}
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                lines[(*path, key)] = key_node.start_mark.line + 1
                stack.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    return lines
