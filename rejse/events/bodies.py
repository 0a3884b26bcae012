"""Reading an ingestion request body: bounded, and decompressed as a stream when it comes with
`Content-Encoding: gzip` or `deflate` (RudderStack's SDKs gzip every batch, Segment's can).

The size limits apply to the decompressed body. Decompression runs in steps of at most
`STEP` bytes of output, and stops with 413 as soon as the output passes the limit or grows
more than `MAX_COMPRESSION_RATIO` times faster than the input: a zip bomb is refused after a
few kilobytes, never inflated."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from rejse.errors import DomainError

MAX_COMPRESSION_RATIO = 100  # JSON events compress 5-20x; a bomb compresses 1000x
RATIO_FLOOR = 64 * 1024  # the ratio is judged once this much is out (headers skew tiny bodies)
STEP = 64 * 1024  # most output one decompression step may produce

_GZIP = 16 + zlib.MAX_WBITS
_ENCODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


class UnsupportedEncoding(DomainError):
    status_code = 415


def content_encoding(header: str | None) -> str | None:
    """`gzip`, `deflate` or None (no or identity encoding); 415 for anything else, and for
    stacked encodings, which no analytics SDK sends."""
    if header is None:
        return None
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _ENCODINGS:
        return _ENCODINGS[codings[0]]
    raise UnsupportedEncoding(
        "Content-Encoding must be gzip, deflate or identity", field="content-encoding"
    )


def too_large(limit: int, *, after: str = "") -> DomainError:
    return DomainError(
        f"body is larger than {limit // 1024} KB{after}", field="body", status_code=413
    )


async def read_body(chunks: AsyncIterator[bytes], *, encoding: str | None, limit: int) -> bytes:
    """The body (decompressed), at most `limit` bytes; DomainError 400 (corrupt or truncated
    compressed data), 413 (too large or too compressed), 415 (unknown encoding)."""
    coding = content_encoding(encoding)
    if coding is None:
        raw = bytearray()
        async for chunk in chunks:
            raw += chunk
            if len(raw) > limit:
                raise too_large(limit)
        return bytes(raw)
    inflater = _Inflater(coding, limit)
    async for chunk in chunks:
        inflater.feed(chunk)
    return inflater.finish()


def wire_limit(limit: int) -> int:
    """The most compressed bytes a body within `limit` can take (incompressible data grows a
    little: headers and block overhead)."""
    return limit + limit // 100 + 1024


class _Inflater:
    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.out = bytearray()
        self.received = 0
        self.head = b""  # deflate: the first bytes, to tell zlib from raw deflate
        self.d: zlib._Decompress | None = zlib.decompressobj(_GZIP) if coding == "gzip" else None

    def _bad(self) -> DomainError:
        return DomainError(f"the body is not valid {self.coding} data", field="body")

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > wire_limit(self.limit):
            raise too_large(self.limit)
        if self.d is None:  # deflate: zlib-wrapped as HTTP says, or raw as some clients send
            self.head += chunk
            if len(self.head) < 2:
                return
            chunk, self.head = self.head, b""
            zlib_header = chunk[0] & 0x0F == 8 and (chunk[0] << 8 | chunk[1]) % 31 == 0
            self.d = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        self._inflate(chunk)

    def _inflate(self, data: bytes) -> None:
        while data and self.d is not None:
            if self.d.eof:
                if self.coding == "gzip" and data.strip(b"\x00"):
                    self.d = zlib.decompressobj(_GZIP)  # another gzip member follows
                elif data.strip(b"\x00"):
                    raise self._bad()
                else:
                    return
            try:
                piece = self.d.decompress(data, min(STEP, self.limit - len(self.out) + 1))
            except zlib.error:
                raise self._bad() from None
            self.out += piece
            data = self.d.unconsumed_tail or (self.d.unused_data if self.d.eof else b"")
            used = self.received - len(data)
            if len(self.out) > RATIO_FLOOR and len(self.out) > MAX_COMPRESSION_RATIO * used:
                raise DomainError(
                    f"the body expands more than {MAX_COMPRESSION_RATIO} times when decompressed",
                    field="body",
                    status_code=413,
                )
            if len(self.out) > self.limit:
                raise too_large(self.limit, after=" decompressed")

    def finish(self) -> bytes:
        if self.d is None:  # fewer than two bytes arrived
            raise self._bad()
        try:
            rest = self.d.flush()
        except zlib.error:
            raise self._bad() from None
        self.out += rest
        if len(self.out) > self.limit:
            raise too_large(self.limit, after=" decompressed")
        if not self.d.eof:
            raise DomainError(f"the {self.coding} body is truncated", field="body")
        return bytes(self.out)
