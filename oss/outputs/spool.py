"""A bounded, append-only on-disk FIFO of line-protocol records, for when the database is down.

Layout of the directory:

    00000000000000000000.lp   segment: one record per line, named by its first record's number
    00000000000000004096.lp   ...
    head                      number of the oldest record not yet acknowledged

Records are numbered from 0, for ever, across restarts. `peek` returns the oldest records
without removing them; `ack(upto)` removes everything before record `upto` once the caller
has written it, so a crash between a write and its ack replays the batch (at-least-once).

The byte bound counts what is not yet acknowledged. When an append would exceed it, whole
segments are dropped from the old end (and counted): the newest data is what an operator
wants after an outage. Segments are fsync'ed when they are sealed and on `close`.

Not thread-safe and blocking: the owner confines it to one worker thread.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

SUFFIX = ".lp"
HEAD_FILE = "head"
MIN_SEGMENT_BYTES = 4096


@dataclass
class _Segment:
    first: int  # number of its first record
    path: Path
    records: int
    size: int  # bytes

    @property
    def end(self) -> int:
        return self.first + self.records


@dataclass(frozen=True)
class SpoolBatch:
    first: int  # number of lines[0]; ack(first + len(lines)) removes the batch
    lines: list[str]

    @property
    def end(self) -> int:
        return self.first + len(self.lines)


class Spool:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        if max_bytes < MIN_SEGMENT_BYTES:
            raise ValueError(f"spool bound must be at least {MIN_SEGMENT_BYTES} bytes")
        self.directory = directory
        self.max_bytes = max_bytes
        # small against the bound, since dropping happens a whole segment at a time
        self.segment_bytes = segment_bytes or max(MIN_SEGMENT_BYTES, max_bytes // 16)
        self.dropped = 0  # records dropped to respect the bound, since this object was made
        self._segments: deque[_Segment] = deque()
        self._head = 0  # oldest unacknowledged record
        self._head_offset = 0  # its byte offset in the first segment
        self._tail: BinaryIO | None = None  # open for append: the last segment
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # -- state -----------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """Number the next appended record gets."""
        return self._segments[-1].end if self._segments else self._head

    @property
    def records(self) -> int:
        return self.next_seq - self._head

    @property
    def size(self) -> int:
        """Bytes not yet acknowledged."""
        return sum(s.size for s in self._segments) - self._head_offset

    # -- operations ------------------------------------------------------------------------

    def append(self, lines: Sequence[str]) -> int:
        """Append records (no newlines inside); returns how many old records were dropped."""
        encoded = [line.encode() + b"\n" for line in lines]
        for line in lines:
            if "\n" in line:
                raise ValueError("a spool record must not contain a newline")
        dropped_before = self.dropped
        # a single append larger than the bound keeps its newest records
        total = sum(len(b) for b in encoded)
        skip = 0
        while total > self.max_bytes:
            total -= len(encoded[skip])
            skip += 1
        if skip:
            self._drop_all()  # everything older goes too
            self.dropped += skip
            self._head = self.next_seq + skip
            self._head_offset = 0
            self._save_head()
            encoded = encoded[skip:]
        while self._segments and self.size + total > self.max_bytes:
            self._drop_oldest_segment()
        for record in encoded:
            self._write(record)
        if self._tail is not None:
            self._tail.flush()  # visible to peek (page cache); fsync waits for the seal
        return self.dropped - dropped_before

    def peek(self, max_records: int) -> SpoolBatch:
        """The oldest records, at most `max_records`, still kept until `ack`."""
        if self._tail is not None:
            self._tail.flush()
        lines: list[str] = []
        offset = self._head_offset
        for segment in self._segments:
            if len(lines) >= max_records:
                break
            with segment.path.open("rb") as f:
                f.seek(offset)
                while len(lines) < max_records:
                    raw = f.readline()
                    if not raw.endswith(b"\n"):
                        break
                    lines.append(raw[:-1].decode())
            offset = 0
        return SpoolBatch(self._head, lines)

    def ack(self, upto: int) -> None:
        """Remove every record numbered below `upto` (already removed ones are ignored)."""
        upto = min(upto, self.next_seq)
        while self._segments and self._head < upto:
            first = self._segments[0]
            if upto >= first.end:
                self._remove_first_segment()
                continue
            with first.path.open("rb") as f:
                f.seek(self._head_offset)
                for _ in range(upto - self._head):
                    self._head_offset += len(f.readline())
            self._head = upto
        self._head = max(self._head, upto)
        self._save_head()

    def close(self) -> None:
        self._seal()

    # -- internals -------------------------------------------------------------------------

    def _write(self, record: bytes) -> None:
        if self._tail is None:
            seq = self.next_seq
            path = self.directory / f"{seq:020d}{SUFFIX}"
            self._tail = path.open("ab")
            self._segments.append(_Segment(seq, path, 0, 0))
        segment = self._segments[-1]
        self._tail.write(record)
        segment.records += 1
        segment.size += len(record)
        if segment.size >= self.segment_bytes:
            self._seal()

    def _seal(self) -> None:
        """Rotate: make the tail durable and close it; the next append opens a new segment."""
        if self._tail is None:
            return
        self._tail.flush()
        os.fsync(self._tail.fileno())
        self._tail.close()
        self._tail = None
        _fsync_dir(self.directory)

    def _drop_oldest_segment(self) -> None:
        self.dropped += self._segments[0].end - self._head
        self._remove_first_segment()
        self._save_head()

    def _drop_all(self) -> None:
        while self._segments:
            self._drop_oldest_segment()

    def _remove_first_segment(self) -> None:
        segment = self._segments.popleft()
        if not self._segments and self._tail is not None:
            self._tail.close()
            self._tail = None
        segment.path.unlink(missing_ok=True)
        self._head = segment.end
        self._head_offset = 0

    def _save_head(self) -> None:
        # no fsync: a stale head after a crash only replays acknowledged records
        tmp = self.directory / f"{HEAD_FILE}.tmp"
        tmp.write_text(str(self._head))
        tmp.replace(self.directory / HEAD_FILE)

    def _load(self) -> None:
        head_file = self.directory / HEAD_FILE
        head = int(head_file.read_text().strip() or 0) if head_file.exists() else 0
        found = sorted(self.directory.glob(f"*{SUFFIX}"), key=lambda p: int(p.stem))
        for path in found:
            first, size, records = int(path.stem), 0, 0
            with path.open("rb") as f:
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break  # a torn last record from a crash: cut it off
                    size += len(raw)
                    records += 1
            if path.stat().st_size != size:
                with path.open("r+b") as f:
                    f.truncate(size)
            if first + records <= head or records == 0:
                path.unlink()
                continue
            self._segments.append(_Segment(first, path, records, size))
        self._head = max(head, self._segments[0].first) if self._segments else head
        if self._segments:
            with self._segments[0].path.open("rb") as f:
                for _ in range(self._head - self._segments[0].first):
                    self._head_offset += len(f.readline())
            log.info("spool holds %d records (%d bytes) to replay", self.records, self.size)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
