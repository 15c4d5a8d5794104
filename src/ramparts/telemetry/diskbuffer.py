"""A bounded, crash-safe, append-only queue of JSON entries on disk.

The audit shipper's buffer: entries survive the process being killed, are
handed out in batches whose id is on disk before the first send, and are
deleted only once acknowledged.

>>> import tempfile, pathlib
>>> buf = DiskBuffer(pathlib.Path(tempfile.mkdtemp()) / "buf")
>>> buf.append({"n": 1})
True
>>> batch = buf.next_batch()
>>> batch.entries
['{"n":1}']
>>> buf.ack(batch)
>>> buf.next_batch() is None
True

Layout, all in one directory created 0700 (files 0600)::

    00000000000000000001.seg   sealed segment: one record a line
    00000000000000000002.seg   the active segment, appended to
    state.journal              one line per state change: acked cursor + in-flight batch
    buffer.lock                flock'd by the one process that owns the buffer

A record (in segments and in the journal) is ``<crc32 of the JSON, 8 hex>
<compact JSON>\\n``; an overflow marker puts ``!<count>`` between the two. JSON
text never contains a raw newline, so a line is a record; a record torn by a
crash has no newline (and is cut off on reopen) or fails its CRC (and is
skipped and counted).

Durability: :meth:`append` is one ``write(2)`` to an ``O_APPEND`` descriptor and
does not fsync (it runs on the event loop), so an entry survives the process
being killed (it is in the page cache) but not the machine losing power before
the next sync. Before :meth:`next_batch` hands out a new batch, the segments it
covers are fsync'd and then its id and range are appended to the journal and
fdatasync'd, so no batch id is ever sent that the disk does not hold, nor one
that refers to data it does not hold. ``fsync_each_append=True`` trades
throughput for power-loss safety of every entry.

When full (``max_bytes``), the buffer **drops the oldest** sealed segment that no
in-flight batch covers, counts the entries it held, and writes an overflow entry
(from ``overflow_entry``) ahead of the next one, so the gap is itself recorded
in the audit log. Why drop-oldest and not block: :meth:`append` must never block
the request path (an audit server outage must not become a bank outage), and
during an outage the newest entries are the ones that describe what is
happening now. Only if no segment can be dropped is the new entry refused
(``append`` returns False) and counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BufferStatistics",
    "DiskBuffer",
    "DiskBufferError",
    "EntryTooLargeError",
    "PendingBatch",
    "Position",
]

_SEGMENT_SUFFIX = ".seg"
_JOURNAL_FILE = "state.journal"
# Past this size the journal is rewritten as its last line (one rename per ~300 batches).
_JOURNAL_COMPACT_BYTES = 64 * 1024
_LOCK_FILE = "buffer.lock"
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_CRC_LEN = 8  # hex digits of the CRC-32 prefix, then one space


class DiskBufferError(RuntimeError):
    """The buffer directory or its state is unusable (wrong owner, tampered state)."""


class EntryTooLargeError(ValueError):
    """One entry is larger than a segment and can never be buffered."""


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the buffer: segment number and byte offset in it."""

    seq: int
    offset: int


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """Entries handed out under one batch id; the same id and entries on every retry.

    ``entries`` are the JSON texts exactly as buffered, so a request body can be
    assembled without re-serialising them.
    """

    batch_id: str
    entries: list[str]
    start: Position
    end: Position
    corrupt: int = 0


@dataclass(frozen=True, slots=True)
class BufferStatistics:
    """A snapshot of the buffer's counters."""

    appended: int
    dropped: int
    refused: int
    corrupt: int
    disk_bytes: int
    segments: int


@dataclass(slots=True)
class _Segment:
    size: int
    sealed: bool
    fd: int | None = None  # only the active segment keeps an open descriptor
    unsynced: bool = True


@dataclass(slots=True)
class _Counters:
    appended: int = 0
    dropped: int = 0
    refused: int = 0
    corrupt: int = 0
    pending_dropped: int = 0  # dropped but not yet reported by an overflow entry


def _encode(entry: Mapping[str, Any], carried: int | None = None) -> bytes:
    """One record; an overflow marker also carries the count it reports, readable without JSON."""
    text = json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    payload = text.encode()
    if carried is None:
        return b"%08x %s\n" % (zlib.crc32(payload), payload)
    return b"%08x!%d %s\n" % (zlib.crc32(payload), carried, payload)


def _decode(line: bytes) -> str | None:
    """The JSON text of a record, or None if it is torn or corrupt."""
    if len(line) <= _CRC_LEN + 1:
        return None
    mark = line[_CRC_LEN : _CRC_LEN + 1]
    if mark == b" ":
        payload = line[_CRC_LEN + 1 :]
    elif mark == b"!":
        _, _, payload = line.partition(b" ")
    else:
        return None
    try:
        if int(line[:_CRC_LEN], 16) != zlib.crc32(payload):
            return None
        return payload.decode()
    except ValueError:
        return None


def _carried(line: bytes) -> int:
    """The dropped-entry count an overflow marker record reports (0 for an ordinary record)."""
    if line[_CRC_LEN : _CRC_LEN + 1] != b"!":
        return 0
    count, _, _ = line[_CRC_LEN + 1 :].partition(b" ")
    try:
        return int(count)
    except ValueError:
        return 0


def _fsync_directory(directory: Path) -> None:
    """Make a create, rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskBuffer:
    """Bounded on-disk queue; thread-safe; see the module docstring for the policy.

    Args:
        directory: created 0700 if missing; must be owned by this user.
        max_bytes: bound on the segments' total size.
        segment_bytes: size at which a segment is sealed; at most ``max_bytes // 4``
            so that dropping one segment never loses more than a quarter.
        fsync_each_append: fsync after every append (slow; see module docstring).
        overflow_entry: builds the entry recording ``n`` dropped entries.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 64 * 1024 * 1024,
        segment_bytes: int | None = None,
        fsync_each_append: bool = False,
        overflow_entry: Callable[[int], Mapping[str, Any]] | None = None,
    ) -> None:
        segment_bytes = segment_bytes if segment_bytes is not None else max(max_bytes // 16, 4096)
        if segment_bytes <= 0 or max_bytes < 4 * segment_bytes:
            raise ValueError(
                f"disk buffer needs max_bytes >= 4 * segment_bytes, got max_bytes={max_bytes} "
                f"and segment_bytes={segment_bytes}"
            )
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._fsync_each_append = fsync_each_append
        self._overflow_entry = overflow_entry or (lambda n: {"type": "buffer.overflow", "n": n})
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._segments: dict[int, _Segment] = {}
        self._claim: tuple[Position, Position] | None = None
        self._prepare_directory()
        self._lock_fd: int | None = self._lock_directory()
        self._journal_fd: int | None = None
        try:
            self._acked, self._inflight = self._load_state()
            self._journal_fd = self._open_journal()
            self._recover_segments()
            self._active = self._open_segment(max(self._segments, default=0) + 1)
        except BaseException:
            os.close(self._lock_fd)
            if self._journal_fd is not None:
                os.close(self._journal_fd)
            raise

    # -- opening and recovery ------------------------------------------------------------

    def _prepare_directory(self) -> None:
        self.directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        info = self.directory.stat()
        if info.st_uid != os.geteuid():
            raise DiskBufferError(
                f"buffer directory {self.directory} is owned by uid {info.st_uid}, "
                f"not this process ({os.geteuid()})"
            )
        if stat.S_IMODE(info.st_mode) != _DIR_MODE:
            os.chmod(self.directory, _DIR_MODE)
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()

    def _lock_directory(self) -> int:
        """Take an exclusive lock so two processes never share one buffer (the kernel drops
        it when the process dies, so a crashed owner never blocks its successor)."""
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DiskBufferError(
                f"buffer directory {self.directory} is in use by another shipper"
            ) from None
        return fd

    def _load_state(self) -> tuple[Position, dict[str, Any] | None]:
        """The last state line of the journal; a torn last line (no newline) is cut off.

        A torn line was never fsync'd, so no batch id in it was ever sent, and the
        line before it is the true state. A complete line that fails its CRC or has
        the wrong shape is tampering or disk corruption: refuse to guess.
        """
        path = self.directory / _JOURNAL_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Position(0, 0), None
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with path.open("r+b") as fh:
                fh.truncate(keep)
                os.fsync(fh.fileno())
        if keep == 0:
            return Position(0, 0), None
        last = data[: keep - 1].rsplit(b"\n", 1)[-1]
        text = _decode(last)
        if text is None:
            raise DiskBufferError(f"buffer state {path}: last entry fails its checksum")
        try:
            raw = json.loads(text)
            acked = Position(int(raw["acked"][0]), int(raw["acked"][1]))
            inflight = raw.get("inflight")
            if inflight is not None:
                inflight = {
                    "batch_id": str(inflight["batch_id"]),
                    "start": Position(*map(int, inflight["start"])),
                    "end": Position(*map(int, inflight["end"])),
                }
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise DiskBufferError(f"buffer state {path} has an unexpected shape") from exc
        return acked, inflight

    def _open_journal(self) -> int:
        path = self.directory / _JOURNAL_FILE
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        if created:
            _fsync_directory(self.directory)
        return fd

    def _recover_segments(self) -> None:
        for path in sorted(self.directory.glob("*" + _SEGMENT_SUFFIX)):
            try:
                seq = int(path.stem)
            except ValueError:
                continue
            size = path.stat().st_size
            self._segments[seq] = _Segment(size=size, sealed=True)
        if self._segments:
            # Only the last segment can end in a record torn by a crash: cut it off, so the
            # bytes after the last newline cannot be read as part of anything.
            last = max(self._segments)
            path = self._path(last)
            data = path.read_bytes()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                with path.open("r+b") as fh:
                    fh.truncate(keep)
                    os.fsync(fh.fileno())
                self._segments[last].size = keep

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{_SEGMENT_SUFFIX}"

    def _open_segment(self, seq: int) -> int:
        fd = os.open(
            self._path(seq),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
            _FILE_MODE,
        )
        self._segments[seq] = _Segment(size=0, sealed=False, fd=fd)
        return seq

    # -- appending -----------------------------------------------------------------------

    def append(self, entry: Mapping[str, Any]) -> bool:
        """Append one entry; True if buffered, False if refused because nothing could be dropped.

        Raises:
            EntryTooLargeError: the entry alone is larger than a segment.
            TypeError, ValueError: the entry is not JSON-serialisable.
        """
        return self._append(_encode(entry))

    def append_json(self, text: str) -> bool:
        """Append an entry already serialised as one compact JSON object (a rendered log line).

        Saves serialising twice what the log renderer just produced. Raises ValueError
        if ``text`` is not a single-line JSON object text.
        """
        if not text.startswith("{") or not text.endswith("}") or "\n" in text:
            raise ValueError("append_json needs one JSON object on a single line")
        payload = text.encode()
        return self._append(b"%08x %s\n" % (zlib.crc32(payload), payload))

    def _append(self, record: bytes) -> bool:
        if len(record) > self.segment_bytes:
            raise EntryTooLargeError(
                f"buffer entry is {len(record)} bytes, larger than a segment ({self.segment_bytes})"
            )
        with self._lock:
            if self._counters.pending_dropped:
                pending = self._counters.pending_dropped
                marker = _encode(self._overflow_entry(pending), carried=pending)
                if self._make_room(len(marker) + len(record)):
                    self._write(marker)
                    self._counters.pending_dropped = 0
            if not self._make_room(len(record)):
                self._counters.refused += 1
                self._counters.pending_dropped += 1
                return False
            self._write(record)
            self._counters.appended += 1
            return True

    def _write(self, record: bytes) -> None:
        segment = self._segments[self._active]
        if segment.size + len(record) > self.segment_bytes:
            self._seal_active()
            segment = self._segments[self._active]
        assert segment.fd is not None
        os.write(segment.fd, record)
        segment.size += len(record)
        segment.unsynced = True
        if self._fsync_each_append:
            os.fsync(segment.fd)
            segment.unsynced = False

    def _seal_active(self) -> None:
        old = self._segments[self._active]
        assert old.fd is not None
        os.close(old.fd)
        old.fd = None
        old.sealed = True
        self._active = self._open_segment(self._active + 1)

    def _disk_bytes(self) -> int:
        return sum(s.size for s in self._segments.values())

    def _make_room(self, need: int) -> bool:
        """Drop oldest droppable segments until ``need`` more bytes fit; False if they cannot."""
        while self._disk_bytes() + need > self.max_bytes:
            victim = self._oldest_droppable()
            if victim is None:
                return False
            # A dropped overflow marker's count is reported again by the next marker, so
            # the counts that reach the audit log always add up to everything lost.
            lost, carried = self._unacked_records(victim)
            self._counters.dropped += lost
            self._counters.pending_dropped += lost + carried
            self._delete_segment(victim)
        return True

    def _protected(self) -> set[int]:
        """Segments an in-flight or claimed batch covers: their batch id is already promised."""
        keep: set[int] = set()
        ranges = [self._claim] if self._claim else []
        if self._inflight is not None:
            ranges.append((self._inflight["start"], self._inflight["end"]))
        for start, end in ranges:
            keep.update(range(start.seq, end.seq + 1))
        return keep

    def _oldest_droppable(self) -> int | None:
        protected = self._protected()
        for seq in sorted(self._segments):
            if self._segments[seq].sealed and seq not in protected:
                return seq
        return None

    def _unacked_records(self, seq: int) -> tuple[int, int]:
        """(ordinary records, counts carried by overflow markers) not yet acked in ``seq``."""
        if seq < self._acked.seq:
            return 0, 0
        start = self._acked.offset if seq == self._acked.seq else 0
        with self._path(seq).open("rb") as fh:
            fh.seek(start)
            lines = fh.read().splitlines()
        carried = [_carried(line) for line in lines]
        markers = sum(1 for c in carried if c)
        return len(lines) - markers, sum(carried)

    def _delete_segment(self, seq: int) -> None:
        segment = self._segments.pop(seq)
        if segment.fd is not None:  # pragma: no cover - the active segment is never deleted
            os.close(segment.fd)
        with contextlib.suppress(FileNotFoundError):
            self._path(seq).unlink()

    # -- batches -------------------------------------------------------------------------

    def next_batch(
        self, max_entries: int = 500, max_bytes: int = 512 * 1024
    ) -> PendingBatch | None:
        """The in-flight batch if there is one, else a new batch from the acked cursor.

        A new batch's id and range are written to disk (after fsyncing the data it
        covers) before it is returned, so a crash between here and the server's
        acknowledgement re-sends the same id with the same entries. Blocks on
        reads and fsync, but never while holding the lock :meth:`append` needs:
        call it from a worker thread, from one consumer at a time. Returns None
        when nothing is pending.
        """
        with self._lock:
            if self._inflight is not None and self._inflight["start"].seq not in self._segments:
                # Segments are deleted only after their batch is acked, lowest first: the
                # ack reached the disk's segments but not the journal. It was delivered.
                self._acked = self._inflight["end"]
                self._inflight = None
            inflight = self._inflight
            start = inflight["start"] if inflight is not None else self._first_unacked()
            if start is None:
                return None
            # Snapshot the sizes, and claim everything up to the write position so no
            # segment being read can be dropped; the claim narrows to the batch below.
            sizes = {seq: seg.size for seq, seg in self._segments.items() if seq >= start.seq}
            self._claim = (start, Position(self._active, sizes[self._active]))
        try:
            if inflight is not None:
                end = inflight["end"]
                entries, corrupt, _ = self._read_range(sizes, start, end, None, None)
                return PendingBatch(inflight["batch_id"], entries, start, end, corrupt)
            entries, corrupt, end = self._read_range(sizes, start, None, max_entries, max_bytes)
            if end == start:
                return None
            for seq in range(start.seq, end.seq + 1):
                self._fsync_segment(seq)
            batch_id = secrets.token_hex(16)
            with self._lock:
                self._inflight = {"batch_id": batch_id, "start": start, "end": end}
                self._counters.corrupt += corrupt
                state = self._state_bytes()
            try:
                self._write_state(state, durable=True)
            except BaseException:
                with self._lock:  # never hand out an id that is not on disk
                    self._inflight = None
                raise
            return PendingBatch(batch_id, entries, start, end, corrupt)
        finally:
            with self._lock:
                self._claim = None

    def _fsync_segment(self, seq: int) -> None:
        with self._lock:
            segment = self._segments.get(seq)
            if segment is None or not segment.unsynced:
                return
            # Cleared before the fsync: an append racing with it sets the flag again.
            segment.unsynced = False
        try:
            fd = os.open(self._path(seq), os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with self._lock:
                segment.unsynced = True
            raise

    def _first_unacked(self) -> Position | None:
        for seq in sorted(self._segments):
            if seq < self._acked.seq:
                continue
            offset = self._acked.offset if seq == self._acked.seq else 0
            if offset < self._segments[seq].size:
                return Position(seq, offset)
        return None

    def _read_range(
        self,
        sizes: dict[int, int],
        start: Position,
        end: Position | None,
        max_entries: int | None,
        max_bytes: int | None,
    ) -> tuple[list[str], int, Position]:
        """Records from ``start`` up to ``end`` (or the limits); returns (texts, corrupt, end)."""
        entries: list[str] = []
        corrupt = 0
        used = 0
        position = start
        for seq in sorted(s for s in sizes if s >= start.seq):
            if end is not None and seq > end.seq:
                break
            offset = start.offset if seq == start.seq else 0
            stop = end.offset if end is not None and seq == end.seq else sizes[seq]
            # Line by line, so a batch costs what it holds, not the size of its segment.
            with self._path(seq).open("rb") as fh:
                fh.seek(offset)
                while offset < stop:
                    line = fh.readline(stop - offset)
                    if not line.endswith(b"\n"):
                        break  # pragma: no cover - only whole records lie before ``stop``
                    if max_entries is not None and len(entries) >= max_entries:
                        return entries, corrupt, position
                    if max_bytes is not None and entries and used + len(line) > max_bytes:
                        return entries, corrupt, position
                    text = _decode(line[:-1])
                    if text is None:
                        corrupt += 1
                    else:
                        entries.append(text)
                        used += len(line)
                    offset += len(line)
                    position = Position(seq, offset)
        return entries, corrupt, position

    def ack(self, batch: PendingBatch) -> None:
        """Record ``batch`` as delivered and delete the segments it finished; one consumer only."""
        with self._lock:
            if self._inflight is None or self._inflight["batch_id"] != batch.batch_id:
                raise DiskBufferError(f"batch {batch.batch_id} is not the in-flight batch")
            self._acked = batch.end
            self._inflight = None
            # No fsync: if this write is lost in a power cut, the batch is re-sent under
            # its own id and the server answers from its dedupe table; nothing is lost
            # or duplicated. The next batch's state write makes it durable anyway.
            state = self._state_bytes()
        self._write_state(state, durable=False)
        with self._lock:
            for seq in sorted(self._segments):
                segment = self._segments[seq]
                done = seq < batch.end.seq or (
                    seq == batch.end.seq and batch.end.offset >= segment.size
                )
                if done and segment.sealed:
                    self._delete_segment(seq)

    def _state_bytes(self) -> bytes:
        """A journal line for the current cursor and in-flight batch (hold the lock)."""
        state: dict[str, Any] = {"acked": [self._acked.seq, self._acked.offset], "inflight": None}
        if self._inflight is not None:
            state["inflight"] = {
                "batch_id": self._inflight["batch_id"],
                "start": [self._inflight["start"].seq, self._inflight["start"].offset],
                "end": [self._inflight["end"].seq, self._inflight["end"].offset],
            }
        return _encode(state)

    def _write_state(self, line: bytes, *, durable: bool) -> None:
        """Append a state line to the journal; ``durable`` waits for it to reach the disk.

        One ``write`` and one ``fdatasync``, no rename: the batch id costs one disk
        flush. Called only by the one consumer, so journal writes never interleave.
        """
        assert self._journal_fd is not None, "buffer is closed"
        os.write(self._journal_fd, line)
        if durable:
            os.fdatasync(self._journal_fd)
        if os.fstat(self._journal_fd).st_size > _JOURNAL_COMPACT_BYTES:
            self._compact_journal(line)

    def _compact_journal(self, line: bytes) -> None:
        """Replace the journal by its last line: temp file, fsync, rename, fsync the directory."""
        tmp = self.directory / f"{_JOURNAL_FILE}.{secrets.token_hex(4)}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, _FILE_MODE
        )
        try:
            os.write(fd, line)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        os.replace(tmp, self.directory / _JOURNAL_FILE)
        _fsync_directory(self.directory)
        old, self._journal_fd = self._journal_fd, fd
        os.close(old)

    # -- inspection ----------------------------------------------------------------------

    def write_position(self) -> Position:
        """Where the next append will land; everything before it was appended already."""
        with self._lock:
            return Position(self._active, self._segments[self._active].size)

    def acked_position(self) -> Position:
        with self._lock:
            return self._acked

    def is_drained(self, target: Position) -> bool:
        """True when everything appended before ``target`` is acknowledged or dropped."""
        with self._lock:
            if self._inflight is not None:
                return False
            first = self._first_unacked()
            return first is None or first >= target

    def statistics(self) -> BufferStatistics:
        with self._lock:
            c = self._counters
            return BufferStatistics(
                appended=c.appended,
                dropped=c.dropped,
                refused=c.refused,
                corrupt=c.corrupt,
                disk_bytes=self._disk_bytes(),
                segments=len(self._segments),
            )

    def close(self) -> None:
        """Close the active segment and release the directory (data written stays on disk)."""
        with self._lock:
            segment = self._segments.get(self._active)
            if segment is not None and segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
            if self._journal_fd is not None:
                os.close(self._journal_fd)
                self._journal_fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
