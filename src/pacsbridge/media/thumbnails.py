"""PNG previews of DICOM images for the confirmation screen.

The operator decides from the preview whether the medium holds the right study, so it must look
like what a viewer shows: the Modality LUT (rescale) first, then the image's own VOI window or
VOI LUT (PS3.4 N.2), min/max only when the file gives neither. MONOCHROME1 is inverted and
colour images are shown in RGB. Only the representative frame is decoded, straight from the
file, so a 2,000-frame cine loop costs one frame of memory.
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
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

from pacsbridge.errors import UnreadableDicom

COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"})
PLACEHOLDER_GREY = 128

log = logging.getLogger(__name__)


def render_thumbnail(path: Path, size: int = 128) -> bytes:
    """PNG of the middle frame of ``path``, largest side ``size`` pixels, aspect ratio kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd but decodable files still deserve a preview
        ds, frame = _decode(path)
        image = _to_image(ds, frame)
    return _png(_resize(image, size))


def placeholder_png(size: int = 128) -> bytes:
    """A neutral grey square, shown when a preview cannot be rendered."""
    return _placeholder(size)


@lru_cache(maxsize=8)
def _placeholder(size: int) -> bytes:
    return _png(Image.new("L", (size, size), PLACEHOLDER_GREY))


def _decode(path: Path) -> tuple[Dataset, np.ndarray]:
    """The header and the middle frame; UnreadableDicom when either is missing or bad."""
    try:
        ds = dcmread(path, stop_before_pixels=True)
        frames = int(ds.get("NumberOfFrames") or 1)
        frame = pixel_array(path, index=max(frames, 1) // 2)
    except Exception as error:  # pydicom and its decoders raise many kinds on bad input
        log.warning("no preview for %s: %s: %s", path.name, type(error).__name__, error)
        raise UnreadableDicom(f"{path.name}: {type(error).__name__}: {error}") from error
    return ds, frame


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
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
