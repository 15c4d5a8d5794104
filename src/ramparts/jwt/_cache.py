"""A bounded cache of verification results, keyed by SHA-256 of the token.

A hit skips parsing and the signature check, which is most of the cost of a
verification (RSA in particular). It is safe because:

* the key is a hash of the exact token bytes, so any change is a miss;
* only accepted tokens are stored, and a hit re-checks ``exp``/``nbf``/``iat``
  against the caller's ``now`` (the caller does this, with the issuer's leeway);
* an entry remembers the thumbprint of the key that verified it; when that key
  leaves the issuer's JWKS (removed or rotated out) its entries are dropped,
  and a hit whose key is no longer trusted is treated as a miss;
* it is an LRU bounded by ``max_entries``; oversized tokens never reach it.

Not thread-safe: one cache per event loop.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from ramparts.jwt._claims import VerifiedToken

DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CacheEntry:
    token: VerifiedToken
    thumbprint: str


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """A snapshot of the cache counters."""

    entries: int
    max_entries: int
    hits: int
    misses: int
    evictions: int
    invalidations: int


def token_digest(token: str | bytes) -> bytes:
    """The cache key: SHA-256 of the token bytes."""
    raw = token.encode("utf-8", "surrogatepass") if isinstance(token, str) else token
    return hashlib.sha256(raw).digest()


class VerificationCache:
    """LRU of accepted tokens, invalidated by key removal. See the module docstring."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, CacheEntry] = OrderedDict()
        self._by_thumbprint: dict[str, set[bytes]] = {}
        self._hits = self._misses = self._evictions = self._invalidations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> CacheEntry | None:
        entry = self._entries.get(digest)
        if entry is None:
            self._misses += 1
            return None
        self._entries.move_to_end(digest)
        self._hits += 1
        return entry

    def put(self, digest: bytes, token: VerifiedToken, thumbprint: str) -> None:
        if self.max_entries == 0:
            return
        if digest in self._entries:
            self.discard(digest)
        while len(self._entries) >= self.max_entries:
            oldest, _ = next(iter(self._entries.items()))
            self.discard(oldest)
            self._evictions += 1
        self._entries[digest] = CacheEntry(token, thumbprint)
        self._by_thumbprint.setdefault(thumbprint, set()).add(digest)

    def discard(self, digest: bytes) -> None:
        entry = self._entries.pop(digest, None)
        if entry is None:
            return
        bucket = self._by_thumbprint.get(entry.thumbprint)
        if bucket is not None:
            bucket.discard(digest)
            if not bucket:
                del self._by_thumbprint[entry.thumbprint]

    def forget_keys(self, thumbprints: Iterable[str]) -> int:
        """Drop every entry verified by one of these keys; returns how many."""
        dropped = 0
        for thumbprint in thumbprints:
            for digest in self._by_thumbprint.pop(thumbprint, set()):
                if self._entries.pop(digest, None) is not None:
                    dropped += 1
        self._invalidations += dropped
        return dropped

    def clear(self) -> None:
        self._entries.clear()
        self._by_thumbprint.clear()

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(
            entries=len(self._entries),
            max_entries=self.max_entries,
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            invalidations=self._invalidations,
        )
