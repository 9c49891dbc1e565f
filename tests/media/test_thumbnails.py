"""media.thumbnails: windowing, photometric interpretations, compressed syntaxes, failures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, RLELossless

from pacsbridge.errors import UnreadableDicom
from pacsbridge.media.thumbnails import placeholder_png, render_thumbnail

from .helpers import one_instance, save


def pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image)


def ct_image(stored: np.ndarray, **attributes: object) -> Dataset:
    """A 16-bit CT image (rescale -1024, window 40/400 unless overridden) with these values."""
    ds = one_instance(rows=stored.shape[-2], columns=stored.shape[-1])
    ds.BitsStored, ds.HighBit = 16, 15
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = stored.astype("<u2").tobytes()
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def halves(left: int, right: int, rows: int = 16, columns: int = 16) -> np.ndarray:
    values = np.full((rows, columns), left)
    values[:, columns // 2 :] = right
    return values


def test_window_is_applied_and_size_kept(tmp_path):
    # HU 0 sits inside window 40/400: ((0 - 39.5) / 399 + 0.5) * 255 = 102.3; HU 276 is above.
    path = save(ct_image(halves(1024, 1300)), tmp_path / "CT")

    image = pixels(render_thumbnail(path, size=16))

    assert image.shape == (16, 16)
    assert image[8, 2] == 102
    assert image[8, 13] == 255


def test_largest_side_is_the_size_and_aspect_is_kept(tmp_path):
    path = save(ct_image(halves(1024, 1300, rows=64, columns=32)), tmp_path / "CT")

    image = Image.open(io.BytesIO(render_thumbnail(path, size=128)))

    assert image.size == (64, 128)  # width, height
    assert image.mode == "L"


def test_monochrome1_is_inverted(tmp_path):
    mono2 = save(ct_image(halves(1024, 1300)), tmp_path / "M2")
    mono1 = save(
        ct_image(halves(1024, 1300), PhotometricInterpretation="MONOCHROME1"), tmp_path / "M1"
    )

    normal, inverted = (pixels(render_thumbnail(p, size=16)) for p in (mono2, mono1))

    assert normal[8, 2] == 102 and normal[8, 13] == 255
    assert inverted[8, 2] == 153 and inverted[8, 13] == 0


def test_without_window_the_full_range_is_used(tmp_path):
    ds = ct_image(halves(100, 300), WindowCenter=None, WindowWidth=None)
    path = save(ds, tmp_path / "CT")

    image = pixels(render_thumbnail(path, size=16))

    assert (image[8, 2], image[8, 13]) == (0, 255)


def test_voi_lut_sequence_is_applied(tmp_path):
    lut = Dataset()
    lut.add_new("LUTDescriptor", "US", [4, 0, 8])
    lut.add_new("LUTData", "US", [0, 20, 40, 255])
    stored = np.tile(np.array([0, 1, 2, 3]).repeat(4), (16, 1))
    ds = ct_image(
        stored,
        WindowCenter=None,
        WindowWidth=None,
        RescaleSlope=None,
        RescaleIntercept=None,
        VOILUTSequence=[lut],
    )
    path = save(ds, tmp_path / "LUT")

    image = pixels(render_thumbnail(path, size=16))

    assert image[0, [0, 4, 8, 12]].tolist() == [0, 20, 40, 255]


def test_middle_frame_of_a_multiframe_image(tmp_path):
    frames = np.stack([np.full((16, 16), v) for v in (0, 1024, 2000)])  # HU -1024, 0, 976
    ds = ct_image(frames)
    ds.NumberOfFrames = 3
    path = save(ds, tmp_path / "MF")

    image = pixels(render_thumbnail(path, size=16))

    assert set(image.ravel().tolist()) == {102}


def test_rgb_image(tmp_path):
    ds = one_instance(rows=8, columns=16)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        delattr(ds, keyword)
    rgb = np.zeros((8, 16, 3), np.uint8)
    rgb[..., 0] = 255
    rgb[:, 8:] = (0, 0, 255)
    ds.PixelData = rgb.tobytes()
    path = save(ds, tmp_path / "RGB")

    image = pixels(render_thumbnail(path, size=16))

    assert image.shape == (8, 16, 3)
    assert image[4, 2].tolist() == [255, 0, 0]
    assert image[4, 13].tolist() == [0, 0, 255]


def test_palette_colour_image(tmp_path):
    ds = one_instance(rows=8, columns=8)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        delattr(ds, keyword)
    for colour, entries in (("Red", [0, 65535]), ("Green", [0, 0]), ("Blue", [65535, 0])):
        ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [2, 0, 16])
        data = np.array(entries, "<u2").tobytes()
        ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", data)
    ds.PixelData = halves(0, 1, rows=8, columns=8).astype(np.uint8).tobytes()
    path = save(ds, tmp_path / "PAL")

    image = pixels(render_thumbnail(path, size=8))

    assert image[0, 0].tolist() == [0, 0, 255]
    assert image[0, 7].tolist() == [255, 0, 0]


def test_rle_compressed_image_matches_uncompressed(tmp_path):
    ds = ct_image(halves(1024, 1300))
    plain = save(ds, tmp_path / "PLAIN")
    ds.compress(RLELossless)
    rle = save(ds, tmp_path / "RLE")

    assert np.array_equal(
        pixels(render_thumbnail(rle, size=16)), pixels(render_thumbnail(plain, size=16))
    )


def jpeg2000(ds: Dataset, stored: np.ndarray) -> Dataset:
    """JPEG 2000 Lossless encoded with openjpeg directly: pydicom's encoder plugin needs the
    pylibjpeg core package, which is not a dependency."""
    import openjpeg  # a runtime dependency: missing means a broken install, and the test fails

    codestream = openjpeg.encode(stored.astype(np.uint16), bits_stored=16)
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    return ds


def test_jpeg2000_image_matches_uncompressed(tmp_path):
    stored = halves(1024, 1300, rows=64, columns=64)  # openjpeg's defaults need ≥ 32 pixels
    plain = save(ct_image(stored), tmp_path / "PLAIN")
    j2k = save(jpeg2000(ct_image(stored), stored), tmp_path / "J2K")

    expected = pixels(render_thumbnail(plain, size=64))
    assert np.array_equal(pixels(render_thumbnail(j2k, size=64)), expected)
    assert expected[8, 2] == 102


def test_file_without_pixel_data_is_unreadable(tmp_path):
    ds = one_instance()
    del ds.PixelData
    path = save(ds, tmp_path / "SR")

    with pytest.raises(UnreadableDicom):
        render_thumbnail(path)


def test_not_dicom_is_unreadable(tmp_path: Path):
    path = tmp_path / "REPORT.PDF"
    path.write_bytes(b"%PDF-1.4\n" * 50)

    with pytest.raises(UnreadableDicom):
        render_thumbnail(path)


def test_placeholder_is_a_grey_square():
    image = pixels(placeholder_png(48))

    assert image.shape == (48, 48)
    assert set(image.ravel().tolist()) == {128}
