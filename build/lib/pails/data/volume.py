"""The on-disk volume format: append-only files of checksummed records, plus an `.idx` sidecar.

A volume file is a 16-byte file header followed by records, back to back::

    file header   b"PAILSVOL" | u32 format version | u32 volume id
    record        header (HEADER.size bytes) | crc table (4 * slots bytes) | data (length bytes)

The record header holds the magic, the kind (put, tombstone, retire), the 16-byte chunk id, the write
time (unix microseconds), the data length, the number of checksum blocks, the number of crc-table slots
reserved, an auxiliary volume id and, last, a CRC32C of the header itself. The crc table holds one
CRC32C per CHECKSUM_BLOCK of data; a streamed record reserves the slots of a full chunk (it does not
know its length when it starts) and leaves the unused ones zero.

- put: the chunk's bytes.
- tombstone: the chunk `chunk_id` written at `wtime_us` was deleted; `aux` names the volume that held
  it, so the tombstone can be dropped once that volume is gone. It kills every put of the same
  (chunk id, write time), wherever compaction has copied it.
- retire: volume `aux` was compacted away; its live records were copied before this record was
  written and made durable. On open, a retired volume that still exists is deleted.

A record is written header-last (streamed) or in one write (small), so a record cut by a crash has a
zero or torn header, or a length past the end of file, or data that fails its block CRC: `load_volume`
finds such a torn tail and truncates it.

The sidecar `<id>.idx` lists (offset, header) of every record in the first `covered` bytes of the
volume, which were made durable before the sidecar was written; loading a volume reads it instead of
the file and scans only the bytes after `covered`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import google_crc32c

from pails.limits import CHECKSUM_BLOCK, CHUNK_SIZE

log = logging.getLogger(__name__)

FILE_MAGIC = b"PAILSVOL"
FILE_VERSION = 1
FILE_HEADER = struct.Struct("<8sII")
RECORD_MAGIC = b"PLR1"
# magic, kind, flags, slots, chunk id, write time (us), length, nblocks, aux volume id, header crc
HEADER = struct.Struct("<4sBBH16sQQIII")
HEADER_SIZE = HEADER.size
CRC = struct.Struct("<I")
KIND_PUT = 1
KIND_TOMBSTONE = 2
KIND_RETIRE = 3
STREAM_SLOTS = CHUNK_SIZE // CHECKSUM_BLOCK
"""crc-table slots a streamed record reserves (enough for a full chunk)."""
MAX_RECORD_LENGTH = 1 << 32

IDX_MAGIC = b"PAILSIDX"
IDX_HEADER = struct.Struct("<8sIIQI")  # magic, version, volume id, covered bytes, record count
IDX_ENTRY = struct.Struct("<Q")  # the record's offset; its HEADER bytes follow
SCAN_WINDOW = 4 * 1024 * 1024


class VolumeError(Exception):
    """A volume file is not a Pails volume (bad file header): refuse to touch it."""


def now_us() -> int:
    return time.time_ns() // 1000


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


try:  # awscrt's CRC32C takes any buffer without a copy and is several times faster (~70 GB/s)
    from awscrt.checksums import crc32c as _aws_crc32c
except ImportError:  # pragma: no cover
    _aws_crc32c = None


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC32C (Castagnoli) of a buffer."""
    if _aws_crc32c is not None:
        return int(_aws_crc32c(data))
    if not isinstance(data, bytes):
        data = bytes(data)  # google_crc32c accepts only bytes
    return int(google_crc32c.value(data))


def nblocks_for(length: int) -> int:
    return -(-length // CHECKSUM_BLOCK)


class Record(NamedTuple):
    """One record as found in a volume; `off` is where its header starts."""

    off: int
    kind: int
    chunk_id: bytes
    wtime_us: int
    length: int
    nblocks: int
    slots: int
    aux: int

    @property
    def data_off(self) -> int:
        return self.off + HEADER_SIZE + 4 * self.slots

    @property
    def size(self) -> int:
        return HEADER_SIZE + 4 * self.slots + self.length

    @property
    def end(self) -> int:
        return self.off + self.size


def volume_path(directory: Path, vol_id: int) -> Path:
    return directory / f"{vol_id:08d}.vol"


def idx_path(directory: Path, vol_id: int) -> Path:
    return directory / f"{vol_id:08d}.idx"


def file_header(vol_id: int) -> bytes:
    return FILE_HEADER.pack(FILE_MAGIC, FILE_VERSION, vol_id)


# Records ------------------------------------------------------------------------------------------


def pack_header(
    kind: int, chunk_id: bytes, wtime_us: int, length: int, nblocks: int, slots: int, aux: int
) -> bytes:
    body = HEADER.pack(RECORD_MAGIC, kind, 0, slots, chunk_id, wtime_us, length, nblocks, aux, 0)
    body = body[:-4]
    return body + CRC.pack(crc32c(body))


def unpack_header(buf: bytes | memoryview, off: int) -> Record | None:
    """Parse and validate a record header; None if it is not a well-formed header."""
    raw = bytes(buf[:HEADER_SIZE])
    if len(raw) < HEADER_SIZE or raw[:4] != RECORD_MAGIC:
        return None
    _magic, kind, flags, slots, chunk_id, wtime_us, length, nblocks, aux, hcrc = HEADER.unpack(raw)
    if hcrc != crc32c(raw[:-4]) or flags != 0:
        return None
    if kind == KIND_PUT:
        if length >= MAX_RECORD_LENGTH or nblocks != nblocks_for(length) or slots < nblocks:
            return None
    elif kind in (KIND_TOMBSTONE, KIND_RETIRE):
        if length or nblocks or slots:
            return None
    else:
        return None
    return Record(off, kind, chunk_id, wtime_us, length, nblocks, slots, aux)


def block_crcs(data: bytes | bytearray | memoryview) -> list[int]:
    view = memoryview(data)
    return [crc32c(view[i : i + CHECKSUM_BLOCK]) for i in range(0, len(view), CHECKSUM_BLOCK)]


def put_record(chunk_id: bytes, wtime_us: int, data: bytes | bytearray | memoryview) -> bytes:
    """A complete put record (header, crc table, data) for a chunk written in one piece."""
    crcs = block_crcs(data)
    n = len(crcs)
    header = pack_header(KIND_PUT, chunk_id, wtime_us, len(data), n, n, 0)
    return b"".join((header, struct.pack(f"<{n}I", *crcs), data))


def stream_head(chunk_id: bytes, wtime_us: int, length: int, crcs: list[int]) -> bytes:
    """Header plus full crc table (STREAM_SLOTS slots) of a streamed record, written last."""
    n = len(crcs)
    header = pack_header(KIND_PUT, chunk_id, wtime_us, length, n, STREAM_SLOTS, 0)
    table = struct.pack(f"<{n}I", *crcs) + bytes(4 * (STREAM_SLOTS - n))
    return header + table


def tombstone_record(chunk_id: bytes, wtime_us: int, vol_id: int) -> bytes:
    return pack_header(KIND_TOMBSTONE, chunk_id, wtime_us, 0, 0, 0, vol_id)


def retire_record(vol_id: int, wtime_us: int) -> bytes:
    return pack_header(KIND_RETIRE, bytes(16), wtime_us, 0, 0, 0, vol_id)


# I/O helpers --------------------------------------------------------------------------------------


def pread_exact(fd: int, n: int, off: int) -> bytes:
    """pread n bytes (fewer only at end of file)."""
    data = os.pread(fd, n, off)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = os.pread(fd, n - got, off + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, off: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, off)
        view = view[n:]
        off += n


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_volume_file(directory: Path, vol_id: int) -> int:
    """Create a new volume file with its header, durable (file and directory entry); return an fd."""
    path = volume_path(directory, vol_id)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        pwrite_all(fd, file_header(vol_id), 0)
        os.fdatasync(fd)
        fsync_dir(directory)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd


def verify_record(fd: int, rec: Record) -> bool:
    """True if every block of a put record matches its CRC (reads the whole record)."""
    if rec.kind != KIND_PUT:
        return True
    table = pread_exact(fd, 4 * rec.nblocks, rec.off + HEADER_SIZE)
    if len(table) != 4 * rec.nblocks:
        return False
    crcs = struct.unpack(f"<{rec.nblocks}I", table)
    for k, want in enumerate(crcs):
        n = min(CHECKSUM_BLOCK, rec.length - k * CHECKSUM_BLOCK)
        block = pread_exact(fd, n, rec.data_off + k * CHECKSUM_BLOCK)
        if len(block) != n or crc32c(block) != want:
            return False
    return True


def scan_records(fd: int, start: int, end: int) -> tuple[list[Record], int]:
    """Walk headers from `start`; stop at the first invalid header or a record past `end`.

    Returns the records and the offset where the valid chain ends.
    """
    records: list[Record] = []
    pos = start
    win_off = start
    win = b""
    while pos + HEADER_SIZE <= end:
        rel = pos - win_off
        if rel < 0 or rel + HEADER_SIZE > len(win):
            win_off = pos
            win = pread_exact(fd, min(SCAN_WINDOW, end - pos), pos)
            rel = 0
        rec = unpack_header(memoryview(win)[rel : rel + HEADER_SIZE], pos)
        if rec is None or rec.end > end:
            break
        records.append(rec)
        pos = rec.end
    return records, pos


# The .idx sidecar ---------------------------------------------------------------------------------


def encode_idx(vol_id: int, covered: int, records: list[Record]) -> bytes:
    parts = [IDX_HEADER.pack(IDX_MAGIC, FILE_VERSION, vol_id, covered, len(records))]
    for r in records:
        parts.append(IDX_ENTRY.pack(r.off))
        parts.append(pack_header(r.kind, r.chunk_id, r.wtime_us, r.length, r.nblocks, r.slots, r.aux))
    body = b"".join(parts)
    return body + CRC.pack(crc32c(body))


def decode_idx(data: bytes, vol_id: int) -> tuple[int, list[Record]] | None:
    """(covered bytes, records) from a sidecar, or None if it is damaged or for another volume."""
    if len(data) < IDX_HEADER.size + CRC.size:
        return None
    body, (want,) = data[:-4], CRC.unpack(data[-4:])
    if crc32c(body) != want:
        return None
    magic, version, vid, covered, count = IDX_HEADER.unpack_from(body, 0)
    step = IDX_ENTRY.size + HEADER_SIZE
    if magic != IDX_MAGIC or version != FILE_VERSION or vid != vol_id:
        return None
    if len(body) != IDX_HEADER.size + count * step:
        return None
    records: list[Record] = []
    view = memoryview(body)
    pos = IDX_HEADER.size
    for _ in range(count):
        (off,) = IDX_ENTRY.unpack_from(body, pos)
        rec = unpack_header(view[pos + IDX_ENTRY.size : pos + step], off)
        if rec is None:
            return None
        records.append(rec)
        pos += step
    return covered, records


def write_idx(directory: Path, vol_id: int, covered: int, records: list[Record]) -> None:
    """Atomically (tmp + fsync + rename) write the sidecar. The volume must be durable up to covered."""
    final = idx_path(directory, vol_id)
    tmp = final.with_suffix(".idx.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pwrite_all(fd, encode_idx(vol_id, covered, records), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)


def read_idx(directory: Path, vol_id: int, file_size: int) -> tuple[int, list[Record]] | None:
    try:
        data = idx_path(directory, vol_id).read_bytes()
    except FileNotFoundError:
        return None
    got = decode_idx(data, vol_id)
    if got is None or got[0] > file_size or got[0] < FILE_HEADER.size:
        log.warning("ignoring damaged or stale index sidecar of volume %d", vol_id)
        return None
    return got


# Loading and recovery -----------------------------------------------------------------------------


@dataclass(slots=True)
class LoadedVolume:
    vol_id: int
    records: list[Record]
    size: int
    truncated: int  # bytes of torn tail removed
    covered: int  # bytes covered by a valid .idx sidecar


def load_volume(directory: Path, vol_id: int, *, repair: bool = True) -> LoadedVolume:
    """Read a volume's records (sidecar prefix + header scan of the rest).

    With repair, a torn tail is truncated: the scan stops at the first invalid header or a record
    running past the end of file, and trailing put records whose data fails its CRC are dropped.
    """
    path = volume_path(directory, vol_id)
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size < FILE_HEADER.size:
            # Created but its header never reached the disk: nothing was ever stored in it.
            if repair:
                os.ftruncate(fd, 0)
                pwrite_all(fd, file_header(vol_id), 0)
                os.fdatasync(fd)
            return LoadedVolume(vol_id, [], FILE_HEADER.size, size, 0)
        magic, version, vid = FILE_HEADER.unpack(pread_exact(fd, FILE_HEADER.size, 0))
        if magic != FILE_MAGIC or version != FILE_VERSION or vid != vol_id:
            raise VolumeError(f"{path} is not a Pails volume {vol_id}")
        indexed = read_idx(directory, vol_id, size)
        covered, records = indexed if indexed is not None else (FILE_HEADER.size, [])
        tail, end = scan_records(fd, covered, size)
        if repair:
            while tail and not verify_record(fd, tail[-1]):
                end = tail.pop().off
        records.extend(tail)
        truncated = size - end
        if truncated and repair:
            log.warning("volume %d: truncating %d bytes of torn tail at offset %d", vol_id, truncated, end)
            os.ftruncate(fd, end)
            os.fdatasync(fd)
        return LoadedVolume(vol_id, records, end, truncated, covered if indexed is not None else 0)
    finally:
        os.close(fd)


def iter_volume_ids(directory: Path) -> Iterator[int]:
    for p in directory.glob("*.vol"):
        if p.stem.isdigit():
            yield int(p.stem)


# In-memory state of an open volume ----------------------------------------------------------------


class Loc(NamedTuple):
    """Where a live chunk's record is: volume, record offset, data offset, data length, write time."""

    vol: int
    off: int
    data_off: int
    length: int
    wtime_us: int

    @property
    def record_size(self) -> int:
        return self.data_off - self.off + self.length

    @property
    def table_off(self) -> int:
        return self.off + HEADER_SIZE

    @property
    def slots(self) -> int:
        return (self.data_off - self.off - HEADER_SIZE) // 4


def loc_of(vol_id: int, rec: Record) -> Loc:
    return Loc(vol_id, rec.off, rec.data_off, rec.length, rec.wtime_us)


WRITABLE = "writable"
SEALED = "sealed"
RETIRED = "retired"


class Volume:
    """An open volume file and its accounting. Mutated on the event loop only, except the sync
    generations (`synced_gen` is written by the syncer thread)."""

    __slots__ = (
        "fd",
        "id",
        "indexed_to",
        "leased",
        "live",
        "pins",
        "seal_task",
        "size",
        "state",
        "synced_gen",
        "tomb_live",
        "write_gen",
    )

    def __init__(self, vol_id: int, fd: int, size: int, *, indexed_to: int = 0) -> None:
        self.id = vol_id
        self.fd = fd
        self.size = size  # logical end: the next record is written here
        self.live = 0  # bytes of live put records
        self.tomb_live = 0  # bytes of tombstone/retire records still needed
        self.state = WRITABLE
        self.leased = False  # owned by one streaming writer, the compactor, or the shared appender
        self.pins = 0  # readers and sync waiters using fd; the fd is closed at 0 once retired
        self.write_gen = 0
        self.synced_gen = 0
        self.indexed_to = indexed_to  # bytes covered by the .idx sidecar
        self.seal_task: asyncio.Task[None] | None = None

    @property
    def garbage(self) -> int:
        return max(0, self.size - FILE_HEADER.size - self.live - self.tomb_live)

    def garbage_ratio(self) -> float:
        return self.garbage / self.size if self.size else 0.0

    def pin(self) -> None:
        self.pins += 1

    def unpin(self) -> None:
        self.pins -= 1
        if self.pins == 0 and self.state == RETIRED:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
