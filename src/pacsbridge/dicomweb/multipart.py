"""``multipart/related`` bodies (PS3.18 §8.6.1.2, RFC 2387), written as they are sent.

Files go out in chunks of :data:`CHUNK` bytes read from disk, so a 2 GB study costs one chunk
of memory; frames, which the caller holds already, go out one part at a time.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 4 * 1024 * 1024


def boundary() -> str:
    return secrets.token_hex(16)


def content_type(part_type: str, mark: str, syntax: str | None = None) -> str:
    """The body's Content-Type: its parts' type (and syntax), and the boundary."""
    extra = f"; transfer-syntax={syntax}" if syntax else ""
    return f'multipart/related; type="{part_type}"{extra}; boundary={mark}'


def files(paths: Iterable[Path], part_type: str, mark: str) -> Iterator[bytes]:
    """One part per file, read in chunks; a file gone meanwhile (expiry) ends the body."""
    for path in paths:
        yield _head(mark, part_type)
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
        yield b"\r\n"
    yield f"--{mark}--\r\n".encode()


def files_length(paths: Iterable[Path], part_type: str, mark: str) -> int:
    """The exact length of :func:`files`' body (a Content-Length spares the chunked framing)."""
    paths = list(paths)
    each = len(_head(mark, part_type)) + len(b"\r\n")
    closing = len(f"--{mark}--\r\n".encode())
    return sum(p.stat().st_size + each for p in paths) + closing


def parts(bodies: Iterable[tuple[str, bytes]], mark: str) -> Iterator[bytes]:
    """One part per (Content-Type, body), produced one at a time."""
    for part_type, body in bodies:
        yield _head(mark, part_type)
        yield body
        yield b"\r\n"
    yield f"--{mark}--\r\n".encode()


def _head(mark: str, part_type: str) -> bytes:
    return f"--{mark}\r\nContent-Type: {part_type}\r\n\r\n".encode()
