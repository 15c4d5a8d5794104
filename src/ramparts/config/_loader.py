"""Load ``ramparts.yaml`` into a :class:`Topology`, with errors that name file, line and field."""

from __future__ import annotations

import difflib
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ramparts.config import _validate
from ramparts.config._errors import Problem, TopologyError
from ramparts.config._schema import TopologySpec
from ramparts.config._topology import Topology

# A topology is a few hundred lines; anything far larger is a mistake or an attack on the parser.
MAX_TOPOLOGY_BYTES = 1 << 20
DEFAULT_TOPOLOGY = "refbank.yaml"
_DUPLICATE = re.compile(r'found duplicate key "([^"]*)"')


def load_topology(path: str | os.PathLike[str]) -> Topology:
    """Read and validate a topology file. Raises :class:`TopologyError` listing every problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_TOPOLOGY_BYTES:
            raise TopologyError(
                [
                    Problem(
                        str(p), None, "", f"file is {size} bytes; the limit is {MAX_TOPOLOGY_BYTES}"
                    )
                ]
            )
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError([Problem(str(p), None, "", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise TopologyError(
            [Problem(str(p), None, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
        ) from exc
    return parse_topology(text, source=str(p))


def default_topology() -> Topology:
    """The reference bank's topology, shipped with the package."""
    text = resources.files("ramparts.config").joinpath(DEFAULT_TOPOLOGY).read_text(encoding="utf-8")
    return parse_topology(text, source=f"<builtin {DEFAULT_TOPOLOGY}>")


def parse_topology(text: str, *, source: str = "<string>") -> Topology:
    """Validate topology text. ``source`` names it in error messages."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x).replace("\n", " ")
        dup = _DUPLICATE.search(str(exc.problem or ""))
        if dup:
            what = f"duplicate key {dup.group(1)!r}: each name may appear only once in a mapping"
        raise TopologyError([Problem(source, line, "", f"YAML error: {what}")]) from None
    except YAMLError as exc:
        raise TopologyError([Problem(source, None, "", f"YAML error: {exc}")]) from None
    if not isinstance(tree, CommentedMap):
        raise TopologyError(
            [
                Problem(
                    source,
                    1,
                    "",
                    "the topology must be a mapping (version, trust_domain, services, gateway)",
                )
            ]
        )

    try:
        spec = TopologySpec.model_validate(_plain(tree))
    except ValidationError as exc:
        raise TopologyError(
            [_problem_from_pydantic(source, tree, e) for e in exc.errors()]
        ) from None

    problems = [
        Problem(source, _line(tree, loc), _dotted(loc), msg) for loc, msg in _validate.check(spec)
    ]
    if problems:
        raise TopologyError(problems)
    return Topology(source=source, spec=spec, text=text)


def _plain(node: Any) -> Any:
    """ruamel's round-trip types as plain dicts, lists, str and int."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def _line(tree: CommentedMap, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest part of ``loc`` present in the file."""
    node: Any = tree
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem_from_pydantic(source: str, tree: CommentedMap, err: Any) -> Problem:
    # Pydantic adds the model or union member name to some locations; drop those.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = loc[-1]
        siblings = _known_fields(loc[:-1])
        close = difflib.get_close_matches(str(key), siblings, n=1)
        msg = f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        if siblings:
            msg += f" (allowed: {', '.join(siblings)})"
    elif kind == "missing":
        msg = "required field is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return Problem(source, _line(tree, loc), _dotted(loc), msg)


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at ``loc``, for 'did you mean' hints."""
    model: Any = TopologySpec
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            # A key of a dict field (a service name): descend into its value type.
            model = _inner_model(model)
            continue
        model = _inner_model(field.annotation)
    return sorted(model.model_fields) if hasattr(model, "model_fields") else []


def _inner_model(annotation: Any) -> Any:
    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
