"""The volume file format: records, header validation, scanning, torn-tail recovery, sidecars."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pails.data import volume as vf
from pails.limits import CHECKSUM_BLOCK

VOL = 7


def make_volume(directory: Path, records: list[bytes], vol_id: int = VOL) -> list[int]:
    """A volume file holding the given records; returns their offsets."""
    offsets = []
    pos = vf.FILE_HEADER.size
    with open(vf.volume_path(directory, vol_id), "wb") as f:
        f.write(vf.file_header(vol_id))
        for rec in records:
            offsets.append(pos)
            f.write(rec)
            pos += len(rec)
    return offsets


def cid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def test_header_round_trip_and_validation() -> None:
    raw = vf.pack_header(vf.KIND_PUT, cid(1), 123456, 3 * CHECKSUM_BLOCK + 1, 4, 8, 0)
    rec = vf.unpack_header(raw, 1000)
    assert rec == vf.Record(1000, vf.KIND_PUT, cid(1), 123456, 3 * CHECKSUM_BLOCK + 1, 4, 8, 0)
    assert rec.data_off == 1000 + vf.HEADER_SIZE + 32
    assert rec.size == vf.HEADER_SIZE + 32 + 3 * CHECKSUM_BLOCK + 1
    for i in range(len(raw)):  # any flipped byte is caught (magic or crc)
        bad = bytearray(raw)
        bad[i] ^= 0x40
        assert vf.unpack_header(bytes(bad), 0) is None, i
    assert vf.unpack_header(raw[:-1], 0) is None
    assert vf.unpack_header(bytes(vf.HEADER_SIZE), 0) is None
    # well-formed crc but inconsistent fields
    assert vf.unpack_header(vf.pack_header(vf.KIND_PUT, cid(1), 1, 10, 2, 2, 0), 0) is None
    assert vf.unpack_header(vf.pack_header(vf.KIND_PUT, cid(1), 1, 10, 1, 0, 0), 0) is None
    assert vf.unpack_header(vf.pack_header(vf.KIND_TOMBSTONE, cid(1), 1, 10, 1, 1, 3), 0) is None
    assert vf.unpack_header(vf.pack_header(9, cid(1), 1, 0, 0, 0, 0), 0) is None


@pytest.mark.parametrize(
    "size", [0, 1, CHECKSUM_BLOCK - 1, CHECKSUM_BLOCK, CHECKSUM_BLOCK + 1, 3 * CHECKSUM_BLOCK]
)
def test_put_record_layout(size: int) -> None:
    data = os.urandom(size)
    rec_bytes = vf.put_record(cid(5), 42, data)
    rec = vf.unpack_header(rec_bytes, 0)
    assert rec is not None
    assert rec.length == size and rec.nblocks == vf.nblocks_for(size) == rec.slots
    assert len(rec_bytes) == rec.size
    assert rec_bytes[rec.data_off :] == data
    table = struct.unpack(f"<{rec.nblocks}I", rec_bytes[vf.HEADER_SIZE : rec.data_off])
    blocks = [data[i : i + CHECKSUM_BLOCK] for i in range(0, size, CHECKSUM_BLOCK)]
    assert list(table) == [vf.crc32c(b) for b in blocks]


def test_stream_head_reserves_a_full_table() -> None:
    head = vf.stream_head(cid(1), 1, CHECKSUM_BLOCK + 5, [11, 22])
    assert len(head) == vf.HEADER_SIZE + 4 * vf.STREAM_SLOTS
    rec = vf.unpack_header(head, 0)
    assert rec is not None and rec.nblocks == 2 and rec.slots == vf.STREAM_SLOTS
    assert struct.unpack("<8I", head[vf.HEADER_SIZE :]) == (11, 22, 0, 0, 0, 0, 0, 0)


def test_crc32c_matches_known_vector_for_all_buffer_types() -> None:
    assert vf.crc32c(b"123456789") == 0xE3069283
    assert vf.crc32c(bytearray(b"123456789")) == 0xE3069283
    assert vf.crc32c(memoryview(b"x123456789")[1:]) == 0xE3069283


def test_scan_reads_every_record_kind(tmp_path: Path) -> None:
    recs = [
        vf.put_record(cid(1), 10, b"hello"),
        vf.tombstone_record(cid(9), 99, 3),
        vf.put_record(cid(2), 20, os.urandom(CHECKSUM_BLOCK + 1)),
        vf.retire_record(4, 30),
        vf.put_record(cid(3), 30, b""),
    ]
    offsets = make_volume(tmp_path, recs)
    lv = vf.load_volume(tmp_path, VOL)
    assert [r.off for r in lv.records] == offsets
    assert [r.kind for r in lv.records] == [1, 2, 1, 3, 1]
    assert lv.records[1].chunk_id == cid(9) and lv.records[1].aux == 3 and lv.records[1].wtime_us == 99
    assert lv.records[3].aux == 4
    assert lv.size == offsets[-1] + len(recs[-1]) and lv.truncated == 0 and lv.covered == 0


def _three_puts(tmp_path: Path) -> tuple[list[bytes], list[int]]:
    recs = [vf.put_record(cid(i), i, os.urandom(1000 * i)) for i in (1, 2, 3)]
    return recs, make_volume(tmp_path, recs)


def _file_size(directory: Path) -> int:
    return vf.volume_path(directory, VOL).stat().st_size


@pytest.mark.parametrize("cut", [1, vf.HEADER_SIZE - 1, vf.HEADER_SIZE, vf.HEADER_SIZE + 5, -1])
def test_torn_last_record_is_truncated(tmp_path: Path, cut: int) -> None:
    recs, offsets = _three_puts(tmp_path)
    end = offsets[2] + (cut if cut > 0 else len(recs[2]) + cut)
    os.truncate(vf.volume_path(tmp_path, VOL), end)
    lv = vf.load_volume(tmp_path, VOL)
    assert [r.chunk_id for r in lv.records] == [cid(1), cid(2)]
    assert lv.size == offsets[2] == _file_size(tmp_path)
    assert lv.truncated == end - offsets[2]


def test_bad_header_crc_truncates_from_there(tmp_path: Path) -> None:
    _recs, offsets = _three_puts(tmp_path)
    path = vf.volume_path(tmp_path, VOL)
    with open(path, "r+b") as f:
        f.seek(offsets[2] + 20)
        f.write(b"\xff")
    lv = vf.load_volume(tmp_path, VOL)
    assert len(lv.records) == 2 and _file_size(tmp_path) == offsets[2]


def test_bad_data_crc_in_the_last_records_is_truncated(tmp_path: Path) -> None:
    _recs, offsets = _three_puts(tmp_path)
    path = vf.volume_path(tmp_path, VOL)
    with open(path, "r+b") as f:  # header intact, data never reached the disk
        f.seek(offsets[1] + vf.HEADER_SIZE + 4)
        f.write(bytes(2000))
        f.seek(offsets[2] + vf.HEADER_SIZE + 4)
        f.write(bytes(3000))
    lv = vf.load_volume(tmp_path, VOL)
    assert [r.chunk_id for r in lv.records] == [cid(1)]
    assert _file_size(tmp_path) == offsets[1]


def test_zero_header_of_an_unfinished_stream_is_rejected(tmp_path: Path) -> None:
    recs, offsets = _three_puts(tmp_path)
    end = offsets[2] + len(recs[2])
    with open(vf.volume_path(tmp_path, VOL), "r+b") as f:  # a streamed record: data, header not yet
        f.seek(end + vf.HEADER_SIZE + 4 * vf.STREAM_SLOTS)
        f.write(os.urandom(CHECKSUM_BLOCK))
    lv = vf.load_volume(tmp_path, VOL)
    assert len(lv.records) == 3 and _file_size(tmp_path) == end


def test_without_repair_nothing_is_touched(tmp_path: Path) -> None:
    _recs, offsets = _three_puts(tmp_path)
    os.truncate(vf.volume_path(tmp_path, VOL), offsets[2] + 10)
    lv = vf.load_volume(tmp_path, VOL, repair=False)
    assert len(lv.records) == 2 and _file_size(tmp_path) == offsets[2] + 10


def test_empty_and_headerless_volumes(tmp_path: Path) -> None:
    vf.volume_path(tmp_path, VOL).write_bytes(b"PAIL")  # created, header torn
    lv = vf.load_volume(tmp_path, VOL)
    assert lv.records == [] and lv.size == vf.FILE_HEADER.size
    assert vf.volume_path(tmp_path, VOL).read_bytes() == vf.file_header(VOL)
    vf.volume_path(tmp_path, 8).write_bytes(b"NOTAVOLUME" * 10)
    with pytest.raises(vf.VolumeError):
        vf.load_volume(tmp_path, 8)


def test_sidecar_covers_a_prefix_and_the_rest_is_scanned(tmp_path: Path) -> None:
    _recs, offsets = _three_puts(tmp_path)
    first = vf.load_volume(tmp_path, VOL)
    vf.write_idx(tmp_path, VOL, first.size, first.records)
    extra = vf.put_record(cid(4), 4, b"more")
    with open(vf.volume_path(tmp_path, VOL), "ab") as f:
        f.write(extra)
        f.write(b"\x00" * 7)  # torn tail after the sidecar's coverage
    lv = vf.load_volume(tmp_path, VOL)
    assert lv.covered == first.size
    assert [r.chunk_id for r in lv.records] == [cid(1), cid(2), cid(3), cid(4)]
    assert _file_size(tmp_path) == first.size + len(extra)
    # The sidecar is trusted: the data of covered records is not re-read.
    with open(vf.volume_path(tmp_path, VOL), "r+b") as f:
        f.seek(offsets[0])
        f.write(bytes(vf.HEADER_SIZE))
    assert len(vf.load_volume(tmp_path, VOL).records) == 4


def test_damaged_or_foreign_sidecar_is_ignored(tmp_path: Path) -> None:
    _recs, _offsets = _three_puts(tmp_path)
    lv = vf.load_volume(tmp_path, VOL)
    vf.write_idx(tmp_path, VOL, lv.size, lv.records)
    data = bytearray(vf.idx_path(tmp_path, VOL).read_bytes())
    data[30] ^= 1
    vf.idx_path(tmp_path, VOL).write_bytes(bytes(data))
    again = vf.load_volume(tmp_path, VOL)
    assert again.covered == 0 and len(again.records) == 3
    vf.write_idx(tmp_path, VOL + 1, lv.size, lv.records)
    os.replace(vf.idx_path(tmp_path, VOL + 1), vf.idx_path(tmp_path, VOL))
    assert vf.load_volume(tmp_path, VOL).covered == 0
    vf.write_idx(tmp_path, VOL, lv.size + 100, lv.records)  # claims more than the file holds
    assert vf.load_volume(tmp_path, VOL).covered == 0


def test_idx_encoding_round_trip() -> None:
    records = [
        vf.Record(16, vf.KIND_PUT, cid(1), 5, 10, 1, 1, 0),
        vf.Record(82, vf.KIND_TOMBSTONE, cid(2), 6, 0, 0, 0, 3),
    ]
    assert vf.decode_idx(vf.encode_idx(VOL, 134, records), VOL) == (134, records)
    assert vf.decode_idx(vf.encode_idx(VOL, 134, records), VOL + 1) is None
    assert vf.decode_idx(b"short", VOL) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=6), cut=st.integers(0, 20000))
def test_any_cut_keeps_exactly_the_whole_records(tmp_path: Path, sizes: list[int], cut: int) -> None:
    directory = tmp_path / f"h{len(sizes)}-{cut}-{sum(sizes)}"
    directory.mkdir(exist_ok=True)
    recs = [vf.put_record(cid(i), i, os.urandom(n)) for i, n in enumerate(sizes)]
    offsets = make_volume(directory, recs)
    total = offsets[-1] + len(recs[-1])
    end = min(total, vf.FILE_HEADER.size + cut)
    os.truncate(vf.volume_path(directory, VOL), end)
    lv = vf.load_volume(directory, VOL)
    whole = [i for i, off in enumerate(offsets) if off + len(recs[i]) <= end]
    assert [r.chunk_id for r in lv.records] == [cid(i) for i in whole]
    assert lv.size == (offsets[whole[-1]] + len(recs[whole[-1]]) if whole else vf.FILE_HEADER.size)
    assert vf.volume_path(directory, VOL).stat().st_size == lv.size
