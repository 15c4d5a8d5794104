"""KV version 2: versioned secrets with check-and-set, the ``secret/`` mount.

One barrier record per secret path (``kv/<path>``) holds its metadata and its
last ``max_versions`` versions, so a write is one atomic record update.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ramparts.secrets._barrier import Barrier
from ramparts.secrets._errors import InvalidRequest, NotFound

_PREFIX = "kv/"
DEFAULT_MAX_VERSIONS = 10
_SEGMENT = re.compile(r"^[A-Za-z0-9._@+=-]+$")


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_path(path: str, *, allow_folder: bool = False) -> str:
    """Refuse empty, dot and odd segments: a path names exactly one thing."""
    stripped = path.rstrip("/") if allow_folder else path
    segs = stripped.split("/")
    if not stripped or any(s in ("", ".", "..") or not _SEGMENT.match(s) for s in segs):
        raise InvalidRequest(f"invalid secret path {path!r}")
    return stripped


class KVStore:
    def __init__(self, barrier: Barrier, *, clock: Callable[[], float] = time.time) -> None:
        self.barrier = barrier
        self.clock = clock

    def read(self, path: str, version: int | None = None) -> dict[str, Any]:
        rec = self.barrier.get(_PREFIX + check_path(path))
        if rec is None:
            raise NotFound("")
        v = version or rec["current_version"]
        entry = rec["versions"].get(str(v))
        if entry is None:
            raise NotFound("")
        return {"data": entry["data"], "metadata": self._version_meta(v, entry)}

    def write(self, path: str, data: dict[str, Any], cas: int | None = None) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise InvalidRequest("no data provided: 'data' must be a JSON object")
        key = _PREFIX + check_path(path)
        rec = self.barrier.get(key) or {
            "current_version": 0,
            "created_time": self.clock(),
            "max_versions": DEFAULT_MAX_VERSIONS,
            "versions": {},
        }
        if cas is not None and cas != rec["current_version"]:
            raise InvalidRequest("check-and-set parameter did not match the current version")
        v = rec["current_version"] + 1
        entry = {"data": data, "created_time": self.clock()}
        versions = {**rec["versions"], str(v): entry}
        for old in sorted(int(k) for k in versions)[: -rec["max_versions"]]:
            del versions[str(old)]
        rec.update(current_version=v, updated_time=entry["created_time"], versions=versions)
        self.barrier.put(key, rec)
        return self._version_meta(v, entry)

    def list(self, folder: str) -> list[str]:
        base = _PREFIX + check_path(folder, allow_folder=True) + "/"
        keys: set[str] = set()
        for full in self.barrier.list_prefix(base):
            head, sep, _ = full[len(base) :].partition("/")
            keys.add(head + sep)
        if not keys:
            raise NotFound("")
        return sorted(keys)

    @staticmethod
    def _version_meta(version: int, entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "created_time": rfc3339(entry["created_time"]),
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": version,
        }
