"""media.thumbnails under a pixel budget: a small RLE file declaring a huge frame is not decoded.

The attack: 1 MB of RLE (PS3.5 Annex G) that declares 8000 x 8000 pixels. Decoding it and
windowing it in floating point took 1.2 GB of server memory for one preview. The preview is
rendered here in a child process, whose peak resident memory is what the test measures.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from pacsbridge.media.codestream import declared_size
from pacsbridge.media.thumbnails import placeholder_png, render_thumbnail

from .helpers import one_instance, save

SIDE = 8000
#: Growth of the child's peak RSS allowed while it renders one preview.
MAX_GROWTH_MB = 60


def rle_constant_frame(rows: int, columns: int, value: int = 200) -> bytes:
    """One 8-bit RLE frame (PS3.5 G.3) of a constant value, row by row, in runs of 128."""
    runs, rest = divmod(columns, 128)
    row = bytes([257 - 128, value]) * runs + (bytes([257 - rest, value]) if rest else b"")
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + bytes(56)
    return header + row * rows


def rle_image(path: Path, rows: int, columns: int) -> Path:
    """An 8-bit MONOCHROME2 RLE Lossless file whose pixel data are a few bytes per row."""
    ds = one_instance(rows=rows, columns=columns)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.PixelData = encapsulate([rle_constant_frame(rows, columns)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    return save(ds, path)


CHILD = """
import json, resource, sys
from pathlib import Path
from pacsbridge.media.thumbnails import render_thumbnail
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
png = render_thumbnail(Path(sys.argv[1]), size=128)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
Path(sys.argv[2]).write_bytes(png)
print(json.dumps({"growth_kb": after - before}))
"""


def render_in_child(path: Path, out: Path) -> int:
    """Peak RSS growth (kB, Linux) of a fresh interpreter while it renders ``path``."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["growth_kb"]


def test_small_rle_file_declaring_8000_by_8000_gets_a_placeholder_in_little_memory(tmp_path):
    path = rle_image(tmp_path / "BOMB", SIDE, SIDE)
    assert path.stat().st_size < 1_100_000  # about 1 MB on disk

    growth_kb = render_in_child(path, tmp_path / "out.png")

    assert (tmp_path / "out.png").read_bytes() == placeholder_png()
    assert growth_kb < MAX_GROWTH_MB * 1024, f"peak memory grew by {growth_kb // 1024} MB"


def test_frame_within_the_budget_is_still_rendered(tmp_path):
    path = rle_image(tmp_path / "SMALL", 300, 200)

    png = render_thumbnail(path, size=64, max_pixels=300 * 200)

    assert png != placeholder_png() and png.startswith(b"\x89PNG")


def test_frame_one_pixel_over_the_budget_is_not_decoded(tmp_path):
    path = rle_image(tmp_path / "OVER", 300, 200)

    assert render_thumbnail(path, size=128, max_pixels=300 * 200 - 1) == placeholder_png()


def test_large_frame_under_the_budget_is_thinned_before_windowing(tmp_path):
    # 4000 x 3000 is a mammography-sized frame: rendered, and the float pipeline never sees it
    # whole (the child's peak stays near the decoded 12 MB, not 8 bytes per pixel on top).
    path = rle_image(tmp_path / "MAMMO", 4000, 3000)

    growth_kb = render_in_child(path, tmp_path / "out.png")

    png = (tmp_path / "out.png").read_bytes()
    assert png != placeholder_png()
    assert np.asarray(Image.open(io.BytesIO(png))).shape == (128, 96)
    assert growth_kb < MAX_GROWTH_MB * 1024, f"peak memory grew by {growth_kb // 1024} MB"


def lying_jpeg2000(path: Path, rows: int, columns: int, real: int) -> Path:
    """A ``rows`` x ``columns`` header around a JPEG 2000 codestream of ``real`` x ``real``."""
    from openjpeg import encode

    codestream = encode(np.zeros((real, real), dtype=np.uint8), photometric_interpretation=0)
    ds = one_instance(rows=rows, columns=columns)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    return save(ds, path)


def test_jpeg2000_codestream_larger_than_its_header_is_not_decoded(tmp_path):
    # Measured before the codestream check: 378 MB of peak memory for these 252 bytes.
    path = lying_jpeg2000(tmp_path / "LIE", 64, 64, real=SIDE)
    assert path.stat().st_size < 4096

    growth_kb = render_in_child(path, tmp_path / "out.png")

    assert (tmp_path / "out.png").read_bytes() == placeholder_png()
    assert growth_kb < MAX_GROWTH_MB * 1024, f"peak memory grew by {growth_kb // 1024} MB"


def test_codestream_sizes_are_read_from_jpeg_and_jpeg2000_headers():
    sof0 = b"\xff\xd8\xff\xe0\x00\x04AB\xff\xc0\x00\x0b\x08" + struct.pack(">HH", 7000, 9000)
    siz = b"\xff\x4f\xff\x51\x00\x29\x00\x00" + struct.pack(">4L", 9000, 7000, 0, 0)

    assert declared_size(sof0 + b"\x01\x01\x11\x00") == (7000, 9000)
    assert declared_size(siz + bytes(24)) == (7000, 9000)
    assert declared_size(b"\xff\xd8\xff\xda\x00\x02") is None  # a scan before any frame
    assert declared_size(b"not a codestream") is None


def test_deflated_file_gets_a_placeholder_without_being_inflated(tmp_path):
    ds = one_instance(rows=64, columns=64)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = save(ds, tmp_path / "DEFLATED")

    assert render_thumbnail(path, size=64) == placeholder_png(64)
