"""YAML trees that keep line numbers (libyaml-backed), and total accessors over them.

Manifests are untrusted input: any field may be missing or of the wrong type,
so every accessor returns a default rather than raising.
"""

from __future__ import annotations

from typing import Any

import yaml

# libyaml parses ~20x faster than a pure-Python parser; fall back when it is absent.
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineMap(dict):  # type: ignore[type-arg]
    """A mapping that remembers the 0-based line of itself, each key and each value."""

    __slots__ = ("key_lines", "line", "value_lines")

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}


class LineSeq(list):  # type: ignore[type-arg]
    """A sequence that remembers the 0-based line of itself and of each item."""

    __slots__ = ("item_lines", "line")

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.item_lines: list[int] = []


class LineLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """YAML 1.1 safe loading (as kubectl's parser) that keeps line numbers."""


def _construct_map(loader: Any, node: Any) -> LineMap:
    loader.flatten_mapping(node)
    out = LineMap()
    out.line = node.start_mark.line
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            key = str(key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line
        out.value_lines[key] = value_node.start_mark.line
    return out


def _construct_seq(loader: Any, node: Any) -> LineSeq:
    out = LineSeq()
    out.line = node.start_mark.line
    for item in node.value:
        out.append(loader.construct_object(item, deep=True))
        out.item_lines.append(item.start_mark.line)
    return out


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
LineLoader.add_constructor("tag:yaml.org,2002:omap", _construct_seq)
# Kubernetes converts YAML to JSON, where a timestamp is a string; "2020-13-45" must not raise.
LineLoader.add_constructor("tag:yaml.org,2002:timestamp", LineLoader.construct_yaml_str)


def get(node: Any, *path: str | int, default: Any = None) -> Any:
    """``node[path[0]][path[1]]...``, or ``default`` when any step is absent or mistyped."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                return default
        elif not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return default if node is None else node


def mapping(node: Any, *path: str | int) -> dict[str, Any]:
    value = get(node, *path)
    return value if isinstance(value, dict) else {}


def seq(node: Any, *path: str | int) -> list[Any]:
    value = get(node, *path)
    return value if isinstance(value, list) else []


def text(node: Any, *path: str | int, default: str = "") -> str:
    value = get(node, *path)
    if value is None or isinstance(value, (dict, list)):
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def labels(node: Any, *path: str | int) -> dict[str, str]:
    """A string-to-string map (labels, annotations, selectors); other entries dropped."""
    return {
        str(k): text(v) for k, v in mapping(node, *path).items() if not isinstance(v, (dict, list))
    }


def line_of(node: Any, key: str | int | None = None, fallback: int = 1) -> int:
    """1-based line of ``node[key]`` (or of ``node`` itself), ``fallback`` when unknown."""
    if key is None:
        return node.line + 1 if isinstance(node, (LineMap, LineSeq)) else fallback
    if isinstance(node, LineMap) and key in node.key_lines:
        return node.key_lines[key] + 1
    if isinstance(node, LineSeq) and isinstance(key, int) and 0 <= key < len(node.item_lines):
        return node.item_lines[key] + 1
    return fallback


def value_line(node: Any, key: str, fallback: int = 1) -> int:
    """1-based line where the *value* of ``node[key]`` starts (a block scalar starts below)."""
    if isinstance(node, LineMap) and key in node.value_lines:
        return node.value_lines[key] + 1
    return fallback
