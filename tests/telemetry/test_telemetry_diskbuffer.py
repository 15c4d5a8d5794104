"""The shipper's disk buffer: permissions, crash recovery, batch ids, bounds."""

from __future__ import annotations

import json
import os
import stat
import zlib
from pathlib import Path

import pytest

from ramparts.telemetry.diskbuffer import DiskBuffer, DiskBufferError, EntryTooLargeError


def seqs(batch) -> list[int]:
    return [json.loads(e)["seq"] for e in batch.entries]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


class TestFiles:
    def test_directory_0700_files_0600(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b")
        buf.append({"seq": 1})
        buf.next_batch()
        assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o700
        for path in (tmp_path / "b").iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        buf.close()

    def test_tightens_a_loose_directory(self, tmp_path: Path) -> None:
        (tmp_path / "b").mkdir(mode=0o755)
        os.chmod(tmp_path / "b", 0o755)
        DiskBuffer(tmp_path / "b").close()
        assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o700

    def test_one_owner_at_a_time(self, tmp_path: Path) -> None:
        """A second buffer on the same directory is refused until the first is closed."""
        first = DiskBuffer(tmp_path / "b")
        with pytest.raises(DiskBufferError, match="in use"):
            DiskBuffer(tmp_path / "b")
        first.close()
        DiskBuffer(tmp_path / "b").close()

    def test_tampered_state_is_refused(self, tmp_path: Path) -> None:
        """A complete journal line that fails its checksum or shape is refused, not guessed."""
        DiskBuffer(tmp_path / "b").close()
        journal = tmp_path / "b" / "state.journal"
        journal.write_text('00000000 {"acked":[0,0],"inflight":null}\n')
        with pytest.raises(DiskBufferError, match="checksum"):
            DiskBuffer(tmp_path / "b")
        body = b'{"acked":"x"}'
        journal.write_bytes(b"%08x %s\n" % (zlib.crc32(body), body))
        with pytest.raises(DiskBufferError, match="unexpected shape"):
            DiskBuffer(tmp_path / "b")

    def test_torn_journal_line_falls_back_to_the_previous_state(self, tmp_path: Path) -> None:
        """A state line cut off by a crash was never fsync'd, so the one before it holds."""
        buf = DiskBuffer(tmp_path / "b")
        buf.append({"seq": 0})
        batch = buf.next_batch()
        buf.close()
        with (tmp_path / "b" / "state.journal").open("ab") as fh:
            fh.write(b'1234abcd {"acked":[9,9],"infl')
        reopened = DiskBuffer(tmp_path / "b")
        again = reopened.next_batch()
        assert (again.batch_id, again.entries) == (batch.batch_id, batch.entries)
        reopened.close()

    def test_journal_is_compacted(self, tmp_path: Path) -> None:
        """Thousands of batches leave a small journal whose last line is the state."""
        buf = DiskBuffer(tmp_path / "b")
        for i in range(800):
            buf.append({"seq": i})
            buf.ack(buf.next_batch())
        assert (tmp_path / "b" / "state.journal").stat().st_size <= 64 * 1024 + 200
        buf.append({"seq": 800})
        buf.close()
        reopened = DiskBuffer(tmp_path / "b")
        assert seqs(reopened.next_batch()) == [800]
        reopened.close()

    @pytest.mark.parametrize(("max_bytes", "segment_bytes"), [(1000, 300), (1000, 0)])
    def test_rejects_bounds_that_cannot_work(self, tmp_path, max_bytes, segment_bytes) -> None:
        with pytest.raises(ValueError, match="max_bytes"):
            DiskBuffer(tmp_path / "b", max_bytes=max_bytes, segment_bytes=segment_bytes)

    def test_oversized_entry(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b", max_bytes=16384, segment_bytes=4096)
        with pytest.raises(EntryTooLargeError, match="larger than a segment"):
            buf.append({"pad": "x" * 5000})
        buf.close()

    def test_append_json_takes_rendered_lines(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b")
        assert buf.append_json('{"seq":7,"message":"hi"}')
        for bad in ["[1]", '{"a":1}\n{"b":2}', "", "not json"]:
            with pytest.raises(ValueError, match="one JSON object"):
                buf.append_json(bad)
        assert seqs(buf.next_batch()) == [7]
        buf.close()

    def test_not_json_serialisable(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b")
        with pytest.raises(TypeError):
            buf.append({"when": object()})
        with pytest.raises(ValueError):
            buf.append({"nan": float("nan")})
        buf.close()


class TestBatches:
    def test_batch_limits_and_order(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b")
        for i in range(25):
            buf.append({"seq": i})
        got: list[int] = []
        while (batch := buf.next_batch(max_entries=10)) is not None:
            assert len(batch.entries) <= 10
            got += seqs(batch)
            buf.ack(batch)
        assert got == list(range(25))
        buf.close()

    def test_batch_byte_limit_takes_at_least_one(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b")
        buf.append({"seq": 0, "pad": "x" * 100})
        buf.append({"seq": 1})
        batch = buf.next_batch(max_bytes=10)
        assert seqs(batch) == [0]
        buf.close()

    def test_same_id_until_acked_and_across_reopen(self, tmp_path: Path) -> None:
        """A batch id is on disk before it is returned: a new process gets the same id, entries."""
        buf = DiskBuffer(tmp_path / "b")
        for i in range(5):
            buf.append({"seq": i})
        first = buf.next_batch(max_entries=3)
        buf.append({"seq": 5})
        again = buf.next_batch(max_entries=3)
        assert (again.batch_id, again.entries) == (first.batch_id, first.entries)
        buf.close()

        reopened = DiskBuffer(tmp_path / "b")
        resumed = reopened.next_batch(max_entries=100)
        assert (resumed.batch_id, seqs(resumed)) == (first.batch_id, [0, 1, 2])
        reopened.ack(resumed)
        rest = reopened.next_batch(max_entries=100)
        assert rest.batch_id != first.batch_id
        assert seqs(rest) == [3, 4, 5]
        reopened.close()

    def test_ack_of_a_stale_batch_is_refused(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b")
        buf.append({"seq": 0})
        batch = buf.next_batch()
        buf.ack(batch)
        with pytest.raises(DiskBufferError, match="not the in-flight batch"):
            buf.ack(batch)
        buf.close()

    def test_acked_segments_are_deleted(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b", max_bytes=1 << 20, segment_bytes=1024)
        for i in range(100):
            buf.append({"seq": i, "pad": "y" * 40})
        assert len(segments(tmp_path / "b")) > 3
        while (batch := buf.next_batch(max_entries=1000)) is not None:
            buf.ack(batch)
        assert len(segments(tmp_path / "b")) == 1  # only the active one
        assert buf.statistics().disk_bytes <= 1024
        buf.close()


class TestCrashRecovery:
    def test_torn_tail_is_cut_off(self, tmp_path: Path) -> None:
        """A record half-written when the process died is dropped on reopen; appends continue."""
        buf = DiskBuffer(tmp_path / "b")
        buf.append({"seq": 0})
        buf.append({"seq": 1})
        buf.close()
        (seg,) = segments(tmp_path / "b")
        with seg.open("ab") as fh:
            fh.write(b'0badf00d {"seq": 2, "trunc')
        reopened = DiskBuffer(tmp_path / "b")
        reopened.append({"seq": 3})
        batch = reopened.next_batch()
        assert seqs(batch) == [0, 1, 3]
        assert batch.corrupt == 0
        reopened.close()

    def test_corrupt_record_is_skipped_and_counted(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b")
        for i in range(3):
            buf.append({"seq": i})
        buf.close()
        (seg,) = segments(tmp_path / "b")
        data = bytearray(seg.read_bytes())
        second = data.index(b'"seq":1')
        data[second + 6] = ord("7")  # flip the payload: CRC no longer matches
        seg.write_bytes(bytes(data))
        reopened = DiskBuffer(tmp_path / "b")
        batch = reopened.next_batch()
        assert seqs(batch) == [0, 2]
        assert batch.corrupt == 1
        assert reopened.statistics().corrupt == 1
        reopened.close()

    def test_ack_lost_in_a_power_cut_is_recognised(self, tmp_path: Path) -> None:
        """The journal still names an in-flight batch whose segments the ack already deleted:
        the batch was delivered, so it is taken as acked, not re-sent short."""
        buf = DiskBuffer(tmp_path / "b", max_bytes=1 << 20, segment_bytes=1024)
        for i in range(60):
            buf.append({"seq": i, "pad": "q" * 30})
        batch = buf.next_batch(max_entries=30)
        stale_state = (tmp_path / "b" / "state.journal").read_bytes()
        buf.ack(batch)
        buf.close()
        (tmp_path / "b" / "state.journal").write_bytes(stale_state)  # the ack line was lost
        reopened = DiskBuffer(tmp_path / "b")
        rest = reopened.next_batch(max_entries=1000)
        assert rest.batch_id != batch.batch_id
        assert seqs(rest) == list(range(30, 60))
        reopened.close()

    def test_leftover_temp_files_are_removed(self, tmp_path: Path) -> None:
        DiskBuffer(tmp_path / "b").close()
        (tmp_path / "b" / "state.journal.abcd.tmp").write_text("{}")
        DiskBuffer(tmp_path / "b").close()
        assert not list((tmp_path / "b").glob("*.tmp"))


class TestBound:
    def test_drop_oldest_keeps_disk_bounded_and_counts(self, tmp_path: Path) -> None:
        markers: list[int] = []

        def overflow(n: int) -> dict[str, int]:
            markers.append(n)
            return {"overflow": n}

        buf = DiskBuffer(
            tmp_path / "b", max_bytes=8192, segment_bytes=1024, overflow_entry=overflow
        )
        for i in range(500):
            assert buf.append({"seq": i, "pad": "z" * 30})
            assert buf.statistics().disk_bytes <= 8192
        stats = buf.statistics()
        assert stats.dropped > 0 and stats.refused == 0
        got: list[dict] = []
        while (batch := buf.next_batch(max_entries=1000)) is not None:
            got += [json.loads(e) for e in batch.entries]
            buf.ack(batch)
        real = [e["seq"] for e in got if "seq" in e]
        reported = sum(e["overflow"] for e in got if "overflow" in e)
        assert real[-1] == 499
        assert real == sorted(real)
        assert len(real) + reported == 500
        assert reported == stats.dropped
        buf.close()

    def test_in_flight_batch_is_never_dropped(self, tmp_path: Path) -> None:
        buf = DiskBuffer(tmp_path / "b", max_bytes=8192, segment_bytes=1024)
        for i in range(20):
            buf.append({"seq": i, "pad": "z" * 30})
        inflight = buf.next_batch(max_entries=20)
        for i in range(20, 600):
            buf.append({"seq": i, "pad": "z" * 30})
        assert buf.next_batch().entries == inflight.entries
        assert buf.statistics().dropped > 0
        buf.close()
