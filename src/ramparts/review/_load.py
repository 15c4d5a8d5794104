"""Find the manifests, split them into deployment units, parse them with line numbers.

How units are decided (one model is built per unit; units are never merged):

* A file named on the command line is a unit of its own.
* Every docker-compose file (``docker-compose*.y*ml``, ``compose*.y*ml`` or any
  YAML whose top level is a ``services:`` map of containers) is a unit of its
  own: two compose files in one folder are usually two environments.
* In a directory, a Kubernetes manifest belongs to the unit of its nearest
  enclosing *unit root*: the directory given on the command line, any
  directory holding a ``kustomization.yaml`` (a Kustomize base and each
  overlay are separate), and any directory directly under a folder named
  ``overlays``, ``environments``, ``envs``, ``variants``, ``clusters`` or
  ``stages`` (one folder per environment).
* A multi-document file (Helm ``helm template`` or ``kustomize build``
  output) stays whole inside its unit.

Unrendered Helm templates (files containing ``{{``) are skipped with a note:
render them with ``helm template`` first. ``ramparts.yaml`` is recognised as
the topology, never as a manifest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml import MarkedYAMLError, YAMLError

from ramparts.review._errors import ScanError
from ramparts.review._yamlnode import LineLoader, LineMap

MAX_FILE_BYTES = 32 << 20
VARIANT_PARENTS = frozenset({"overlays", "environments", "envs", "variants", "clusters", "stages"})
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "vendor"})
TOPOLOGY_NAMES = frozenset({"ramparts.yaml", "ramparts.yml"})
_COMPOSE_NAME = re.compile(r"^(docker-)?compose([.-][\w.-]+)?\.ya?ml$")
_DOC_START = re.compile(r"^---(?:\s|$)")
_DOC_END = re.compile(r"^\.\.\.\s*$")
# What building values from a well-formed YAML tree can still raise on hostile input.
_CONSTRUCT_ERRORS = (ValueError, TypeError, RecursionError, OverflowError)


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: its parsed tree (line numbers kept) and where it came from."""

    file: str
    node: LineMap

    @property
    def line(self) -> int:
        return self.node.line + 1


@dataclass
class UnitSource:
    """The documents of one deployment unit, before modelling."""

    name: str
    kind: str  # "kubernetes" or "compose"
    documents: list[Document] = field(default_factory=list)


@dataclass
class LoadResult:
    units: list[UnitSource]
    errors: list[ScanError]
    notes: list[ScanError]
    topologies: list[Path]
    files_read: int


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    """Read every manifest under ``paths`` into deployment units (see the module doc)."""
    units: dict[str, UnitSource] = {}
    errors: list[ScanError] = []
    notes: list[ScanError] = []
    topologies: list[Path] = []
    files_read = 0
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            errors.append(ScanError(str(root), None, "no such file or directory"))
            continue
        if root.is_file():
            files = [(root, str(root))]
        else:
            is_root: dict[Path, bool] = {}
            files = [(p, _unit_root(p, root, is_root)) for p in _walk(root)]
        for path, unit_name in files:
            if path.name in TOPOLOGY_NAMES:
                topologies.append(path)
                continue
            docs = _read_documents(path, errors, notes)
            if docs is None:
                continue
            files_read += 1
            for doc in docs:
                kind = _classify(doc, path)
                if kind == "compose":
                    units.setdefault(doc.file + f"#{doc.line}", UnitSource(doc.file, "compose"))
                    units[doc.file + f"#{doc.line}"].documents.append(doc)
                elif kind == "kubernetes":
                    unit = units.setdefault(unit_name, UnitSource(unit_name, "kubernetes"))
                    unit.documents.extend(_expand_list(doc))
                elif kind == "topology":
                    topologies.append(path)
    return LoadResult(list(units.values()), errors, notes, topologies, files_read)


def _walk(root: Path) -> Iterator[Path]:
    """YAML files under ``root`` in sorted order; hidden folders and Helm chart sources skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        if "Chart.yaml" in filenames and "templates" in dirnames:
            dirnames.remove("templates")  # raw Helm templates: render them first
        for name in sorted(filenames):
            if name.startswith(".") or name in KUSTOMIZATION_FILES:
                continue
            if name.lower().endswith((".yaml", ".yml")):
                yield here / name


def _unit_root(path: Path, root: Path, is_root: dict[Path, bool]) -> str:
    for d in path.parents:
        if d == root or root not in d.parents:
            break
        if d not in is_root:
            is_root[d] = d.parent.name.lower() in VARIANT_PARENTS or any(
                (d / k).is_file() for k in KUSTOMIZATION_FILES
            )
        if is_root[d]:
            return str(d)
    return str(root)


def _read_documents(
    path: Path, errors: list[ScanError], notes: list[ScanError]
) -> list[Document] | None:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            errors.append(ScanError(name, None, f"file is {size} bytes; limit {MAX_FILE_BYTES}"))
            return None
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        errors.append(ScanError(name, None, f"cannot read: {exc.strerror}"))
        return None
    except UnicodeDecodeError as exc:
        errors.append(ScanError(name, None, f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
        return None
    if "{{" in text and re.search(r"\{\{-?\s*[.$\w]", text):
        notes.append(
            ScanError(name, None, "unrendered Helm template skipped; run `helm template` first")
        )
        return None
    return parse_documents(text, name, errors)


def parse_documents(text: str, name: str, errors: list[ScanError]) -> list[Document]:
    """Every document of a YAML stream. A broken document is reported and the rest still load."""
    # Duplicate keys are accepted (the last one wins), as kubectl does.
    try:
        # Fast path: one pass over the whole stream keeps file-wide line numbers.
        nodes = list(yaml.load_all(text, Loader=LineLoader))
    except (YAMLError, *_CONSTRUCT_ERRORS):
        pass
    else:
        return _documents(name, [(0, n) for n in nodes], errors)
    # Slow path: parse document by document so one broken document loses only itself.
    # Padding with newlines keeps the line numbers file-wide.
    parsed: list[tuple[int, Any]] = []
    for offset, chunk in _split(text):
        try:
            node = yaml.load("\n" * offset + chunk, Loader=LineLoader)  # noqa: S506 - safe
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else offset + 1
            what = " ".join(str(x) for x in (exc.context, exc.problem) if x).replace("\n", " ")
            errors.append(ScanError(name, line, f"malformed YAML: {what}"))
            continue
        except YAMLError as exc:
            errors.append(ScanError(name, offset + 1, f"malformed YAML: {exc}"))
            continue
        except _CONSTRUCT_ERRORS as exc:
            what = "nesting too deep" if isinstance(exc, RecursionError) else str(exc)
            errors.append(ScanError(name, offset + 1, f"cannot load document: {what}"))
            continue
        parsed.append((offset, node))
    return _documents(name, parsed, errors)


def _documents(name: str, parsed: list[tuple[int, Any]], errors: list[ScanError]) -> list[Document]:
    out: list[Document] = []
    for offset, node in parsed:
        if isinstance(node, LineMap):
            out.append(Document(name, node))
        elif node is not None:
            errors.append(
                ScanError(name, offset + 1, f"expected a mapping, found {type(node).__name__}")
            )
    return out


def _split(text: str) -> Iterator[tuple[int, str]]:
    """(0-based first line, text) of each document, cut at column-0 ``---`` / ``...`` markers."""
    lines = text.splitlines(keepends=True)
    start = 0
    buf: list[str] = []
    for i, line in enumerate(lines):
        if _DOC_START.match(line):
            if buf:
                yield start, "".join(buf)
            # Keep what follows the marker on its line ("--- # comment" or "--- {a: 1}").
            buf = [" " * 3 + line[3:]]
            start = i
        elif _DOC_END.match(line):
            if buf:
                yield start, "".join(buf)
            buf, start = [], i + 1
        else:
            if not buf:
                start = i
            buf.append(line)
    if buf:
        yield start, "".join(buf)


def _classify(doc: Document, path: Path) -> str | None:
    node = doc.node
    if "apiVersion" in node and "kind" in node:
        return None if str(node.get("kind")) == "Kustomization" else "kubernetes"
    if "trust_domain" in node and "services" in node:
        return "topology"
    services = node.get("services")
    if isinstance(services, dict) and services:
        if _COMPOSE_NAME.match(path.name):
            return "compose"
        if all(isinstance(s, dict) and ("image" in s or "build" in s) for s in services.values()):
            return "compose"
    return None


def _expand_list(doc: Document) -> list[Document]:
    node: Any = doc.node
    if str(node.get("kind", "")).endswith("List") and isinstance(node.get("items"), list):
        return [Document(doc.file, i) for i in node["items"] if isinstance(i, LineMap)]
    return [doc]
