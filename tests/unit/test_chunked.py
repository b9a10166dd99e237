"""aws-chunked decoding: the AWS documented example, botocore's own encoder, random chunkings, defects."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import os
from collections.abc import Sequence
from unittest import mock

import pytest
from aiohttp import streams
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, CrtCrc32cChecksum, Sha256Checksum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pails.api.chunked import AwsChunkedDecoder, ChunkSigningContext, read_all
from pails.checksums import b64_checksum
from pails.errors import S3Error
from pails.iam import sigv4

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
EMPTY = hashlib.sha256(b"").hexdigest()

# The worked example of the AWS documentation, "Signature Calculations for the Authorization Header:
# Transferring Payload in Multiple Chunks (Chunked Upload)": PUT of 66560 bytes of 'a' in 64 KiB chunks.
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_CHUNK_SIGS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def signing_key() -> bytes:
    # Written out here rather than taken from pails, so the test is independent of the code under test.
    k = ("AWS4" + SK).encode()
    for part in ("20130524", "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def ctx(seed: str = DOC_SEED) -> ChunkSigningContext:
    return ChunkSigningContext(signing_key(), AMZ_DATE, SCOPE, seed)


def _hmac_hex(sts: str) -> str:
    return hmac.new(signing_key(), sts.encode(), hashlib.sha256).hexdigest()


def split(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Cut data into chunks of the given sizes (cycled), never empty."""
    out: list[bytes] = []
    i = 0
    k = 0
    while i < len(data):
        n = max(1, sizes[k % len(sizes)]) if sizes else len(data)
        out.append(data[i : i + n])
        i += n
        k += 1
    return out


def signed_body(
    data: bytes,
    sizes: Sequence[int] = (65536,),
    *,
    seed: str = DOC_SEED,
    trailers: dict[str, str] | None = None,
    trailer_newline: bytes = b"\r\n",
    final_blank: bool = True,
) -> bytes:
    """An aws-chunked body with chunk signatures, per the AWS spec (independent of pails)."""
    out = io.BytesIO()
    prev = seed
    for chunk in [*split(data, sizes), b""]:
        sts = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", AMZ_DATE, SCOPE, prev, EMPTY, hashlib.sha256(chunk).hexdigest()]
        )
        prev = _hmac_hex(sts)
        out.write(b"%x;chunk-signature=%s\r\n" % (len(chunk), prev.encode()))
        if chunk:
            out.write(chunk + b"\r\n")
    if trailers is None:
        out.write(b"\r\n")
        return out.getvalue()
    canonical = "".join(f"{k}:{v}\n" for k, v in trailers.items())
    sts = "\n".join(
        ["AWS4-HMAC-SHA256-TRAILER", AMZ_DATE, SCOPE, prev, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    for k, v in trailers.items():
        out.write(f"{k}:{v}".encode() + trailer_newline)
    out.write(b"x-amz-trailer-signature:" + _hmac_hex(sts).encode() + trailer_newline)
    if final_blank:
        out.write(trailer_newline)
    return out.getvalue()


def botocore_unsigned_body(data: bytes, chunk_size: int, checksum_cls: type | None, name: str) -> bytes:
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=checksum_cls, checksum_name=name, chunk_size=chunk_size
    )
    result: bytes = wrapper.read()
    return result


def reader_for(body: bytes, feed: Sequence[int] = ()) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=2**16)
    for piece in split(body, feed) if feed else [body]:
        reader.feed_data(piece)
    reader.feed_eof()
    return reader


async def decode(
    body: bytes,
    mode: str,
    *,
    length: int | None,
    trailer: str | None = None,
    signing: ChunkSigningContext | None = None,
    max_piece: int = 256 * 1024,
    feed: Sequence[int] = (),
) -> tuple[bytes, dict[str, str]]:
    decoder = AwsChunkedDecoder(reader_for(body, feed), mode, signing, length, trailer, max_piece=max_piece)
    data = await read_all(decoder)
    assert decoder.done
    return data, decoder.trailers


async def decode_error(body: bytes, mode: str, **kwargs: object) -> S3Error:
    with pytest.raises(S3Error) as e:
        await decode(body, mode, **kwargs)  # type: ignore[arg-type]
    return e.value


# ----------------------------------------------------------------------------- documented example


async def test_aws_documented_example() -> None:
    # The seed signature really is the one of the documented request.
    req = sigv4.SignedRequest(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        {
            "host": "s3.amazonaws.com",
            "x-amz-date": AMZ_DATE,
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "content-encoding": "aws-chunked",
            "content-length": "66824",
            "x-amz-content-sha256": SIGNED,
            "x-amz-decoded-content-length": "66560",
            "authorization": (
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                f"x-amz-decoded-content-length;x-amz-storage-class,Signature={DOC_SEED}"
            ),
        },
    )
    info = sigv4.parse_auth(req)
    assert info is not None and info.signed_chunks
    from datetime import UTC, datetime

    key = sigv4.verify(req, info, SK, now=datetime(2013, 5, 24, tzinfo=UTC), region="us-east-1")
    assert key == signing_key()

    body = (
        b"10000;chunk-signature=" + DOC_CHUNK_SIGS[0].encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
        b"400;chunk-signature=" + DOC_CHUNK_SIGS[1].encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
        b"0;chunk-signature=" + DOC_CHUNK_SIGS[2].encode() + b"\r\n\r\n"
    )
    assert len(body) == 66824
    assert body == signed_body(b"a" * 66560)
    decoder = AwsChunkedDecoder(
        reader_for(body),
        SIGNED,
        signing_key=key,
        amz_date=info.amz_date,
        scope=info.credential_scope,
        seed_signature=info.signature,
        decoded_length=66560,
    )
    assert await read_all(decoder) == b"a" * 66560
    assert decoder.trailers == {}


async def test_tampered_chunks_rejected() -> None:
    body = signed_body(b"a" * 66560)
    flipped = bytearray(body)
    flipped[200] = ord("b")
    err = await decode_error(bytes(flipped), SIGNED, length=66560, signing=ctx())
    assert err.code == "SignatureDoesNotMatch"
    bad_sig = body.replace(DOC_CHUNK_SIGS[1].encode(), DOC_CHUNK_SIGS[0].encode())
    assert (await decode_error(bad_sig, SIGNED, length=66560, signing=ctx())).code == "SignatureDoesNotMatch"
    bad_final = body.replace(DOC_CHUNK_SIGS[2].encode(), DOC_CHUNK_SIGS[1].encode())
    assert (
        await decode_error(bad_final, SIGNED, length=66560, signing=ctx())
    ).code == "SignatureDoesNotMatch"
    wrong_seed = ctx("0" * 64)
    assert (
        await decode_error(body, SIGNED, length=66560, signing=wrong_seed)
    ).code == "SignatureDoesNotMatch"
    no_sig = b"5\r\nhello\r\n0\r\n\r\n"
    assert (await decode_error(no_sig, SIGNED, length=5, signing=ctx())).code == "InvalidRequest"


# ----------------------------------------------------------------------------- botocore unsigned trailer


@pytest.mark.parametrize(
    ("cls", "algorithm"),
    [(Crc32Checksum, "CRC32"), (CrtCrc32cChecksum, "CRC32C"), (Sha256Checksum, "SHA256")],
)
async def test_botocore_unsigned_trailer(cls: type, algorithm: str) -> None:
    data = os.urandom(300_001)
    name = f"x-amz-checksum-{algorithm.lower()}"
    body = botocore_unsigned_body(data, 65536, cls, name)
    out, trailers = await decode(body, UNSIGNED_TRAILER, length=len(data), trailer=name)
    assert out == data
    assert trailers == {name: b64_checksum(algorithm, data)}


async def test_botocore_unsigned_without_checksum_and_empty() -> None:
    body = botocore_unsigned_body(b"xyz", 2, None, "x-amz-checksum-crc32")
    assert await decode(body, UNSIGNED_TRAILER, length=3) == (b"xyz", {})
    body = botocore_unsigned_body(b"", 1024, Crc32Checksum, "x-amz-checksum-crc32")
    out, trailers = await decode(body, UNSIGNED_TRAILER, length=0, trailer="x-amz-checksum-crc32")
    assert out == b"" and trailers == {"x-amz-checksum-crc32": "AAAAAA=="}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=20_000),
    chunk_size=st.integers(min_value=1, max_value=9000),
    feed=st.lists(st.integers(min_value=1, max_value=5000), max_size=5),
    max_piece=st.integers(min_value=1, max_value=70_000),
)
def test_botocore_random_chunkings(data: bytes, chunk_size: int, feed: list[int], max_piece: int) -> None:
    body = botocore_unsigned_body(data, chunk_size, Crc32Checksum, "x-amz-checksum-crc32")
    out, trailers = asyncio.run(
        decode(
            body,
            UNSIGNED_TRAILER,
            length=len(data),
            trailer="x-amz-checksum-crc32",
            feed=feed,
            max_piece=max_piece,
        )
    )
    assert out == data
    assert trailers["x-amz-checksum-crc32"] == b64_checksum("CRC32", data)


# ----------------------------------------------------------------------------- signed, random chunkings


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=20_000),
    sizes=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=5),
    feed=st.lists(st.integers(min_value=1, max_value=5000), max_size=5),
    with_trailer=st.booleans(),
)
def test_signed_random_chunkings(data: bytes, sizes: list[int], feed: list[int], with_trailer: bool) -> None:
    trailers = {"x-amz-checksum-crc32c": b64_checksum("CRC32C", data)} if with_trailer else None
    body = signed_body(data, sizes, trailers=trailers)
    mode = SIGNED_TRAILER if with_trailer else SIGNED
    header = "x-amz-checksum-crc32c" if with_trailer else None
    out, got = asyncio.run(decode(body, mode, length=len(data), trailer=header, signing=ctx(), feed=feed))
    assert out == data
    assert got == (trailers or {})


async def test_signed_trailer_variants() -> None:
    data = os.urandom(70_000)
    trailers = {"x-amz-checksum-crc32": b64_checksum("CRC32", data), "x-amz-checksum-sha256": "abc="}
    for newline in (b"\r\n", b"\n"):
        for final_blank in (True, False):
            body = signed_body(data, trailers=trailers, trailer_newline=newline, final_blank=final_blank)
            out, got = await decode(
                body,
                SIGNED_TRAILER,
                length=len(data),
                trailer="x-amz-checksum-crc32, x-amz-checksum-sha256",
                signing=ctx(),
            )
            assert out == data and got == trailers


async def test_signed_trailer_signature_checked() -> None:
    data = b"hello world"
    good = signed_body(data, trailers={"x-amz-checksum-crc32": b64_checksum("CRC32", data)})
    forged = good.replace(b64_checksum("CRC32", data).encode(), b"AAAAAA==")
    err = await decode_error(forged, SIGNED_TRAILER, length=len(data), signing=ctx())
    assert err.code == "SignatureDoesNotMatch"
    unsigned = good[: good.index(b"x-amz-trailer-signature")] + b"\r\n"
    err = await decode_error(unsigned, SIGNED_TRAILER, length=len(data), signing=ctx())
    assert err.code == "SignatureDoesNotMatch"


async def test_unsigned_trailer_lenient_separators() -> None:
    crc = b64_checksum("CRC32", b"hello")
    for tail in (b"\r\n\r\n", b"\r\n", b"", b"\n\n", b"\n"):
        body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + crc.encode() + tail
        out, trailers = await decode(body, UNSIGNED_TRAILER, length=5, trailer="x-amz-checksum-crc32")
        assert out == b"hello" and trailers == {"x-amz-checksum-crc32": crc}
    body = b"5\r\nhello\r\n0\r\nX-Amz-Checksum-CRC32 : " + crc.encode() + b"\nx-amz-meta-x:1\n\n"
    out, trailers = await decode(body, UNSIGNED_TRAILER, length=5)
    assert trailers == {"x-amz-checksum-crc32": crc, "x-amz-meta-x": "1"}
    # Chunk extensions are ignored in the unsigned mode.
    out, _ = await decode(b"5;foo=bar\r\nhello\r\n0\r\n\r\n", UNSIGNED_TRAILER, length=5)
    assert out == b"hello"


# ----------------------------------------------------------------------------- defects


async def test_truncated_bodies() -> None:
    data = os.urandom(5000)
    body = signed_body(data, (2048,))
    final = body.rindex(b"0;chunk-signature=")
    for cut in sorted({1, 5, 80, 90, 100, 2100, 2200, 4200, len(body) - 100, final, final + 10}):
        err = await decode_error(body[:cut], SIGNED, length=len(data), signing=ctx())
        assert err.code == "IncompleteBody", cut
    unsigned = botocore_unsigned_body(data, 1000, Crc32Checksum, "x-amz-checksum-crc32")
    for cut in (3, 500, 1007, len(unsigned) - 45):
        err = await decode_error(
            unsigned[:cut], UNSIGNED_TRAILER, length=len(data), trailer="x-amz-checksum-crc32"
        )
        assert err.code == "IncompleteBody", cut


async def test_declared_length_mismatch() -> None:
    body = signed_body(b"x" * 100, (30,))
    assert (await decode_error(body, SIGNED, length=101, signing=ctx())).code == "IncompleteBody"
    assert (await decode_error(body, SIGNED, length=99, signing=ctx())).code == "InvalidRequest"
    assert (await decode(body, SIGNED, length=None, signing=ctx()))[0] == b"x" * 100


async def test_missing_declared_trailer() -> None:
    body = botocore_unsigned_body(b"abc", 10, None, "x-amz-checksum-crc32")
    err = await decode_error(body, UNSIGNED_TRAILER, length=3, trailer="x-amz-checksum-crc32")
    assert err.code == "InvalidRequest"
    assert "x-amz-checksum-crc32" in err.message


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXY0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nno-colon-here\r\n\r\n",
        b"1" * 5000 + b"\r\n",
    ],
)
async def test_bad_framing(body: bytes) -> None:
    err = await decode_error(body, UNSIGNED_TRAILER, length=5)
    assert err.code == "InvalidRequest"


async def test_bounded_pieces() -> None:
    data = os.urandom(1024 * 1024)
    body = signed_body(data, (1024 * 1024,))
    decoder = AwsChunkedDecoder(reader_for(body, (100_000,)), SIGNED, ctx(), len(data), max_piece=64 * 1024)
    sizes = [len(p) async for p in decoder.pieces()]
    assert sum(sizes) == len(data)
    assert max(sizes) <= 64 * 1024


async def test_with_aiohttp_stream_reader() -> None:
    data = os.urandom(200_000)
    body = signed_body(data, (65536,), trailers={"x-amz-checksum-crc32": b64_checksum("CRC32", data)})
    protocol = mock.Mock(_reading_paused=False)
    reader = streams.StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    for piece in split(body, (7000, 13, 65536)):
        reader.feed_data(piece)
    reader.feed_eof()
    decoder = AwsChunkedDecoder(reader, SIGNED_TRAILER, ctx(), len(data), "x-amz-checksum-crc32")
    assert await read_all(decoder) == data
    assert decoder.trailers == {"x-amz-checksum-crc32": b64_checksum("CRC32", data)}


async def test_constructor_checks() -> None:
    with pytest.raises(S3Error):
        AwsChunkedDecoder(reader_for(b""), "UNSIGNED-PAYLOAD", None, 0)
    with pytest.raises(ValueError):
        AwsChunkedDecoder(reader_for(b""), SIGNED, None, 0)
