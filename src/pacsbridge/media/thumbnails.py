"""PNG previews of DICOM images for the confirmation screen.

The operator decides from the preview whether the medium holds the right study, so it must look
like what a viewer shows: the Modality LUT (rescale) first, then the image's own VOI window or
VOI LUT (PS3.4 N.2), min/max only when the file gives neither. MONOCHROME1 is inverted and
colour images are shown in RGB. Only the representative frame is decoded, straight from the
file, so a 2,000-frame cine loop costs one frame of memory.

A preview never costs more than a budget. A few kilobytes of RLE or JPEG can declare a frame
of 8000 x 8000 pixels, and decoding plus windowing in floating point would take gigabytes.
So Rows x Columns of the frame is read from the header first, before any pixel is touched:
over ``max_pixels``, or without a usable size, the answer is the grey placeholder. Under it,
the decoded frame is thinned to a few times the preview size before the windowing arithmetic,
so the float copies stay small whatever the frame's size. Pillow's decompression-bomb
warning is an error here, for codestreams that claim more pixels than their header.
"""

from __future__ import annotations

import io
import logging
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, RLELossless

from pacsbridge.errors import UnreadableDicom
from pacsbridge.media import codestream

#: Frames larger than this (Rows x Columns) are not decoded for a preview.
DEFAULT_MAX_PIXELS = 40_000_000
#: The frame is thinned to at most this many times the preview size before windowing.
OVERSAMPLING = 4
COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"})
PLACEHOLDER_GREY = 128

log = logging.getLogger(__name__)


def render_thumbnail(path: Path, size: int = 128, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """PNG of the middle frame of ``path``, largest side ``size`` pixels, aspect ratio kept.

    The placeholder when the frame is over ``max_pixels`` (it is then never decoded);
    UnreadableDicom when the file or its pixels cannot be read.
    """
    return render(path, size, max_pixels)


def render(
    path: Path,
    size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    index: int | None = None,
    image_format: str = "PNG",
) -> bytes:
    """Frame ``index`` (the middle one when None) as PNG or JPEG, largest side ``size``.

    The same windowing and the same pixel budget as the confirmation page's previews, for the
    DICOMweb ``/rendered`` and ``/thumbnail`` resources (PS3.18 §10.4.1.1.4).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd but decodable files still deserve a preview
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        ds = _header(path)
        frame_index = _middle(ds) if index is None else index
        if not (
            within_budget(ds, max_pixels) and _codestream_within(path, ds, max_pixels, frame_index)
        ):
            log.warning("no preview: frame over the pixel budget of %d", max_pixels)
            return _encoded(Image.new("L", (size, size), PLACEHOLDER_GREY), image_format)
        frame = _thinned(_decode(path, frame_index), size)
        image = _to_image(ds, frame)
    return _encoded(_resize(image, size), image_format)


def within_budget(ds: Dataset, max_pixels: int) -> bool:
    """True when the header declares a frame size of at most ``max_pixels``."""
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        return False
    return rows > 0 and columns > 0 and rows * columns <= max_pixels


def _codestream_within(path: Path, ds: Dataset, max_pixels: int, index: int) -> bool:
    """For JPEG and JPEG 2000, the size the codestream itself declares is within the budget.

    A deflated file is never previewed: pydicom inflates the whole data set in memory first.
    """
    syntax = _syntax(ds)
    if syntax == DeflatedExplicitVRLittleEndian:
        return False
    if syntax is None or not syntax.is_encapsulated or syntax == RLELossless:
        return True
    try:
        declared = codestream.frame_size(path, index, _frames(ds))
    except Exception:  # a codestream we cannot read is a codestream we do not decode
        return False
    return declared is not None and declared[0] * declared[1] <= max_pixels


def _syntax(ds: Dataset) -> UID | None:
    meta = getattr(ds, "file_meta", None)
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(value)) if value else None


def _frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _middle(ds: Dataset) -> int:
    return _frames(ds) // 2


def placeholder_png(size: int = 128) -> bytes:
    """A neutral grey square, shown when a preview cannot be rendered."""
    return _placeholder(size)


@lru_cache(maxsize=8)
def _placeholder(size: int) -> bytes:
    return _png(Image.new("L", (size, size), PLACEHOLDER_GREY))


def _header(path: Path) -> Dataset:
    """Everything but the pixel data; UnreadableDicom when it cannot be parsed.

    A deflated data set is not read at all (pydicom would inflate all of it in memory): only
    its file meta, which is enough for :func:`_codestream_within` to refuse it.
    """
    try:
        meta = read_file_meta_info(path)
        if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            ds = Dataset()
            ds.file_meta = meta
            ds.Rows = ds.Columns = 1
            return ds
        return dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises many kinds on bad input
        raise _unreadable(error) from error


def _decode(path: Path, index: int) -> np.ndarray:
    """One frame; UnreadableDicom when it is missing or bad."""
    try:
        return pixel_array(path, index=index)
    except Exception as error:  # pydicom and its decoders raise many kinds on bad input
        raise _unreadable(error) from error


def _unreadable(error: Exception) -> UnreadableDicom:
    """Logged by type only: a file's name or a value from it may carry patient data."""
    log.warning("no preview: %s", type(error).__name__)
    return UnreadableDicom(f"{type(error).__name__}: {error}")


def _thinned(frame: np.ndarray, size: int) -> np.ndarray:
    """Every n-th row and column, so the longest side stays within OVERSAMPLING x size.

    A view, not a copy: the float arithmetic of windowing then runs on the small array.
    Lanczos resampling of the thinned frame still gives a faithful preview.
    """
    longest = max(frame.shape[0], frame.shape[1])
    step = max(1, longest // (OVERSAMPLING * size))
    return frame[::step, ::step] if step > 1 else frame


def _to_image(ds: Dataset, frame: np.ndarray) -> Image.Image:
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        return _rgb(apply_color_lut(frame, ds))
    if frame.ndim == 3 or photometric in COLOUR:
        return _rgb(frame)
    grey = _windowed(ds, frame)
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey
    return Image.fromarray(np.round(grey * 255).astype(np.uint8))


def _rgb(frame: np.ndarray) -> Image.Image:
    """pydicom already gives RGB (YBR converted); deeper samples are scaled down to 8 bits."""
    if frame.dtype != np.uint8:
        frame = _stretch(frame.astype(np.float64))
        frame = np.round(frame * 255).astype(np.uint8)
    return Image.fromarray(frame)


# --- greyscale pipeline: values in 0..1 ------------------------------------------------------


def _windowed(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    values = apply_modality_lut(frame, ds).astype(np.float64)
    window = _window(ds)
    if window is not None:
        return _apply_window(values, *window, _voi_function(ds))
    if ds.get("VOILUTSequence"):
        return _apply_voi_sequence(values, ds)
    return _stretch(values)


def _window(ds: Dataset) -> tuple[float, float] | None:
    """The first Window Center/Width pair, when it is usable."""
    try:
        center, width = (_first_number(ds.get(k)) for k in ("WindowCenter", "WindowWidth"))
    except (TypeError, ValueError):
        return None
    if center is None or width is None or width <= 0:
        return None
    return center, width


def _first_number(value: object) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if value else None
    return None if value is None or value == "" else float(value)  # type: ignore[arg-type]


def _voi_function(ds: Dataset) -> str:
    return str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()


def _apply_window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT) and C.11.2.1.3.1 (SIGMOID)."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if width < 1:
        width = 1.0
    if width == 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _apply_voi_sequence(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """A VOI LUT maps to 0..2^n-1, n from its descriptor; pydicom does the lookup."""
    item = ds.VOILUTSequence[0]
    bits = int(item.LUTDescriptor[2])
    mapped = apply_voi_lut(values.astype(np.int64), ds, prefer_lut=True)
    return np.clip(mapped.astype(np.float64) / float(2**bits - 1), 0.0, 1.0)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values, dtype=np.float64)
    return (values - low) / (high - low)


# --- output ----------------------------------------------------------------------------------


def _resize(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    scale = size / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(target, Image.Resampling.LANCZOS)


def _png(image: Image.Image) -> bytes:
    return _encoded(image, "PNG")


def _encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()
