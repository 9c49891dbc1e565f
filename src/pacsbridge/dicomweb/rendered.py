"""WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.4, §10.4.1.1.5): JPEG or PNG.

Rendering is the confirmation page's: the image's own windowing, and the pixel budget
``imports.thumbnail_max_pixels`` checked in the header and the codestream before any pixel is
decoded (media/thumbnails.py); over the budget the answer is the grey placeholder.
"""

from __future__ import annotations

from pacsbridge.dicomweb.catalogue import Instance, header
from pacsbridge.media.thumbnails import render

THUMBNAIL_SIZE = 128
#: The largest side of a rendered frame without a ``viewport`` parameter.
MAX_RENDERED = 2048
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


def image(
    instance: Instance,
    media_type: str,
    max_pixels: int,
    frame: int | None = None,
    viewport: str | None = None,
    thumbnail: bool = False,
) -> bytes:
    """Frame ``frame`` (from 1; the middle one when None) of the instance as ``media_type``."""
    size = THUMBNAIL_SIZE if thumbnail else _size(instance, viewport)
    index = None if frame is None else frame - 1
    return render(instance.path, size, max_pixels, index=index, image_format=FORMATS[media_type])


def _size(instance: Instance, viewport: str | None) -> int:
    """``viewport=width,height`` (PS3.18 §8.3.5.1.3), else the frame's own size up to a cap."""
    if viewport:
        try:
            width, _, height = viewport.partition(",")
            return max(1, min(max(int(width), int(height or width)), MAX_RENDERED))
        except ValueError:
            pass
    ds = header(instance)
    try:
        return max(1, min(max(int(ds.Rows), int(ds.Columns)), MAX_RENDERED))
    except (AttributeError, TypeError, ValueError):
        return THUMBNAIL_SIZE
