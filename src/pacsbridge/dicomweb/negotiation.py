"""Content negotiation of WADO-RS through ``Accept`` (PS3.18 §8.7): which media type, which syntax.

Frames: a compressed frame is served as stored when the client accepts its syntax (its image
media type, or ``application/octet-stream`` with ``transfer-syntax=*`` or that syntax), and
decoded to Explicit VR Little Endian when the client asks for uncompressed. Instances are
served byte for byte as stored: ``transfer-syntax`` absent, ``*`` or the stored one; another
syntax is a 406 (we do not transcode whole instances). Entries are tried by ``q``, then in the
order given.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from pacsbridge.errors import NotAcceptable

OCTET = "application/octet-stream"
DICOM = "application/dicom"
ANY = ("*/*", "*", "multipart/related")
#: PS3.18 Table 8.7.3-2: image media types of frames and the syntaxes each may carry
#: (the first is the default when ``transfer-syntax`` is absent).
IMAGE_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": (
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
    ),
    "image/jls": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "image/jp2": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "image/jpx": ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"),
    "image/x-dicom-rle": (RLELossless,),
    "video/mpeg2": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "video/mp4": ("1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103"),
}
UNCOMPRESSED = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})


@dataclass(frozen=True)
class Entry:
    """One media range of an Accept header."""

    media_type: str
    syntax: str | None
    quality: float


@dataclass(frozen=True)
class FrameAnswer:
    """How to answer a frame request: the part's media type, its syntax, decode or not."""

    media_type: str
    syntax: str
    decode: bool

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; transfer-syntax={self.syntax}"


def parse(accept: str | None) -> list[Entry]:
    """The entries of ``accept``, best first; a multipart range stands for its ``type``."""
    entries = []
    for position, raw in enumerate((accept or "*/*").split(",")):
        media, params = _split(raw)
        if not media:
            continue
        inner = params.get("type") if media == "multipart/related" else None
        quality = _quality(params.get("q"))
        entries.append(
            (-quality, position, Entry(inner or media, params.get("transfer-syntax"), quality))
        )
    return [entry for _q, _p, entry in sorted(entries)]


def _split(raw: str) -> tuple[str, dict[str, str]]:
    media, *rest = (part.strip() for part in raw.split(";"))
    params = {}
    for item in rest:
        name, _, value = item.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return media.lower(), params


def _quality(raw: str | None) -> float:
    try:
        return float(raw) if raw is not None else 1.0
    except ValueError:
        return 0.0


def frame_answer(accept: str | None, stored: UID) -> FrameAnswer:
    """The first acceptable way to send frames of a file in syntax ``stored``."""
    native = not stored.is_encapsulated
    for entry in parse(accept):
        if entry.quality <= 0:
            continue
        answer = _frame_entry(entry, stored, native)
        if answer is not None:
            return answer
    raise NotAcceptable(f"frames are {stored}; accepted: {accept}")


def _frame_entry(entry: Entry, stored: UID, native: bool) -> FrameAnswer | None:
    as_stored = FrameAnswer(
        OCTET if native else _media_type_of(stored), _native_or(stored), decode=False
    )
    if entry.media_type in ANY:
        return as_stored if entry.syntax in (None, "*") else None
    if entry.media_type == OCTET:
        return _octet(entry.syntax, stored, native, as_stored)
    allowed = IMAGE_TYPES.get(entry.media_type, ())
    wanted = entry.syntax or (allowed[0] if allowed else None)
    if str(stored) in allowed and wanted in ("*", str(stored)):
        return FrameAnswer(entry.media_type, str(stored), decode=False)
    return None


def _octet(syntax: str | None, stored: UID, native: bool, as_stored: FrameAnswer):  # noqa: ANN202
    if syntax == "*" or syntax == str(stored):
        return FrameAnswer(OCTET, as_stored.syntax, decode=False)
    if syntax is None or syntax in UNCOMPRESSED:
        decode = not (native and stored.is_little_endian)
        return FrameAnswer(OCTET, str(ExplicitVRLittleEndian), decode=decode)
    return None


def _native_or(stored: UID) -> str:
    """Native little-endian frames are the same bytes in every such syntax."""
    if not stored.is_encapsulated and stored.is_little_endian:
        return str(ExplicitVRLittleEndian)
    return str(stored)


def _media_type_of(stored: UID) -> str:
    for media_type, syntaxes in IMAGE_TYPES.items():
        if str(stored) in syntaxes:
            return media_type
    return OCTET


def instance_syntax_ok(accept: str | None, stored: list[str]) -> None:
    """NotAcceptable unless some entry takes application/dicom in every stored syntax."""
    for entry in parse(accept):
        if entry.quality <= 0 or entry.media_type not in (DICOM, *ANY):
            continue
        if entry.syntax in (None, "*") or all(s == entry.syntax for s in stored):
            return
    raise NotAcceptable(f"instances are served as stored; accepted: {accept}")


def choose(accept: str | None, offered: tuple[str, ...]) -> str:
    """The first of ``offered`` media types the client takes (for metadata and rendered)."""
    for entry in parse(accept):
        if entry.quality <= 0:
            continue
        if entry.media_type in ANY or entry.media_type == "image/*":
            return offered[0]
        if entry.media_type in offered:
            return entry.media_type
    raise NotAcceptable(f"offered: {', '.join(offered)}; accepted: {accept}")
