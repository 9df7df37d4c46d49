"""The on-disk spool: FIFO order, ack only what was written, the byte bound drops the oldest
(and counts it), and everything survives a reopen (a daemon restart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oss.outputs.spool import Spool


def lines(start: int, n: int) -> list[str]:
    return [f"m,k=v f={i}i {1_700_000_000_000_000_000 + i}" for i in range(start, start + n)]


def drain(spool: Spool, batch: int = 7) -> list[str]:
    out: list[str] = []
    while True:
        b = spool.peek(batch)
        if not b.lines:
            return out
        out.extend(b.lines)
        spool.ack(b.end)


def test_fifo_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1_000_000, segment_bytes=4096)
    spool.append(lines(0, 300))
    spool.append(lines(300, 300))
    assert len(list(tmp_path.glob("*.lp"))) > 2  # really several segments
    assert spool.records == 600
    assert drain(spool) == lines(0, 600)
    assert spool.records == 0 and spool.size == 0
    assert list(tmp_path.glob("*.lp")) == []  # acknowledged segments are deleted


def test_peek_does_not_remove_and_partial_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1_000_000)
    spool.append(lines(0, 10))
    first = spool.peek(4)
    assert spool.peek(4) == first  # a failed write retries the same batch
    spool.ack(first.first + 2)  # only part of it
    assert spool.peek(3).lines == lines(2, 3)
    spool.ack(first.first + 1)  # an old ack is ignored
    assert spool.peek(100).lines == lines(2, 8)


def test_append_after_peek_in_same_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1_000_000)
    spool.append(lines(0, 3))
    b = spool.peek(10)
    spool.append(lines(3, 3))
    spool.ack(b.end)
    assert drain(spool) == lines(3, 3)


def test_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=8192, segment_bytes=4096)
    all_lines = lines(0, 1000)
    for i in range(0, 1000, 50):
        spool.append(all_lines[i : i + 50])
        assert spool.size <= 8192
    kept = drain(spool, batch=100)
    assert spool.dropped + len(kept) == 1000
    assert spool.dropped > 0
    assert kept == all_lines[-len(kept) :]  # the newest survive, in order


def test_single_append_larger_than_bound_keeps_newest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4096)
    spool.append(lines(0, 10))
    big = lines(10, 500)
    spool.append(big)
    kept = drain(spool, batch=1000)
    assert kept == big[-len(kept) :]
    assert spool.dropped == 510 - len(kept)
    assert sum(len(x) + 1 for x in kept) <= 4096


def test_reopen_resumes_at_head(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1_000_000, segment_bytes=4096)
    spool.append(lines(0, 400))
    b = spool.peek(150)
    spool.ack(b.end)
    spool.close()
    again = Spool(tmp_path, max_bytes=1_000_000, segment_bytes=4096)
    assert again.records == 250
    assert again.peek(1).first == 150
    again.append(lines(400, 10))
    assert drain(again) == lines(150, 260)


def test_torn_record_after_crash_is_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1_000_000)
    spool.append(lines(0, 5))
    spool.close()
    segment = next(tmp_path.glob("*.lp"))
    with segment.open("ab") as f:
        f.write(b"m,k=v f=99i 17")  # the crash hit mid-record
    again = Spool(tmp_path, max_bytes=1_000_000)
    assert again.records == 5
    again.append(lines(5, 1))
    assert drain(again) == lines(0, 6)


def test_rejects_newlines(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1_000_000)
    with pytest.raises(ValueError):
        spool.append(["a f=1i 1\nb f=2i 2"])
    assert spool.records == 0
