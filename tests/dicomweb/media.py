"""A sample CD folder whose files cover what a viewer meets: native, RLE, JPEG baseline,
JPEG 2000, a multi-frame image and a file holding every VR pydicom writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless, generate_uid

from pacsbridge.demo.samples import UID_PREFIX, SampleStudy, make_instance, write_loose

ROWS = COLUMNS = 64


def _study() -> SampleStudy:
    return SampleStudy(series_count=1, instances_per_series=1, rows=ROWS, columns=COLUMNS)


def _instance(study: SampleStudy, series_number: int, number: int = 1) -> Dataset:
    series_uid = generate_uid(UID_PREFIX, [study.study_instance_uid, str(series_number)])
    return make_instance(study, series_uid, series_number, number)


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def gradient(rows: int = ROWS, columns: int = COLUMNS, bits: int = 8) -> np.ndarray:
    top = 255 if bits == 8 else 4095
    values = np.add.outer(np.arange(rows), np.arange(columns)) * (top // (rows + columns))
    return values.astype(np.uint8 if bits == 8 else np.uint16)


def rle(study: SampleStudy, folder: Path, frames: int = 1) -> Path:
    ds = _instance(study, 5 if frames > 1 else 2)
    stack = np.stack([gradient(bits=16) + 100 * f for f in range(frames)])
    ds.PixelData = stack.astype("<u2").tobytes()
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.compress(RLELossless, generate_instance_uid=False)
    return _save(ds, folder / f"RLE{frames}")


def jpeg_baseline(study: SampleStudy, folder: Path) -> tuple[Path, bytes]:
    ds = _instance(study, 3)
    buffer = io.BytesIO()
    Image.fromarray(gradient()).save(buffer, format="JPEG", quality=90)
    codestream = buffer.getvalue()
    _eight_bit(ds)
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    return _save(ds, folder / "JPEG"), codestream


def jpeg2000(study: SampleStudy, folder: Path) -> tuple[Path, bytes]:
    import openjpeg  # a runtime dependency

    ds = _instance(study, 4)
    codestream = openjpeg.encode(gradient(bits=16), bits_stored=12)
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    return _save(ds, folder / "J2K"), codestream


def _eight_bit(ds: Dataset) -> None:
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.WindowCenter, ds.WindowWidth = 128, 256
    ds.RescaleIntercept = 0


def every_vr(study: SampleStudy, folder: Path) -> Path:
    """One native image whose header holds a value of every VR (PS3.5 Table 6.2-1)."""
    ds = _instance(study, 6)
    ds.RetrieveAETitle = "PACSBRIDGE"  # AE
    ds.PatientAge = "050Y"  # AS
    ds.add_new(0x00209165, "AT", [0x00100010, 0x0020000D])  # AT Dimension Index Pointer
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]  # CS
    ds.AcquisitionDate = "20240601"  # DA
    ds.SliceThickness = "1.25"  # DS
    ds.AcquisitionDateTime = "20240601091454.123456"  # DT
    ds.add_new(0x00189306, "FD", 0.75)  # FD Single Collimation Width
    ds.add_new(0x00189328, "FD", [1.5, 2.5])  # FD, VM 2
    ds.add_new(0x00460044, "FL", 3.5)  # FL Pupil Size
    ds.AcquisitionNumber = 7  # IS
    ds.InstitutionName = "OSPEDALE DI PROVA"  # LO
    ds.AdditionalPatientHistory = "Riga uno\r\nRiga due"  # LT
    ds.add_new(0x00091001, "LO", "PRIVATE CREATOR")
    ds.add_new(0x00091002, "OB", b"\x01\x02\x03\x04")  # OB (private, small: inline)
    ds.add_new(0x00660040, "OL", b"\x01\x00\x00\x00\x02\x00\x00\x00")  # OL
    ds.add_new(0x00701A07, "OD", np.array([1.0, 2.0]).tobytes())  # OD
    ds.add_new(0x00640009, "OF", np.array([1.0, 2.0], dtype="<f4").tobytes())  # OF
    ds.add_new(0x00660129, "OV", np.array([1, 2], dtype="<u8").tobytes())  # OV
    ds.add_new(0x00281201, "OW", np.arange(16, dtype="<u2").tobytes())  # OW palette
    ds.ReferringPhysicianName = "BIANCHI^LUCA^^DR"  # PN
    ds.StationName = "CT01"  # SH
    ds.add_new(0x00186020, "SL", -5)  # SL Reference Pixel X0
    ds.add_new(0x00280106, "US", 0)  # US
    ds.add_new(0x00189219, "SS", -3)  # SS Tag Angle Second Axis
    ds.InstitutionAddress = "Via Roma 1, Torino"  # ST
    ds.add_new(0x00720082, "SV", [-(2**40)])  # SV Selector SV Value
    ds.AcquisitionTime = "091454.5"  # TM
    ds.add_new(0x00189196, "UL", 65536)  # UL
    ds.add_new(0x0040A124, "UI", "1.2.3.4")  # UI UID
    ds.add_new(0x00189152, "UC", "lungo " * 20)  # UC Contrast Bolus Agent ... (UC)
    ds.add_new(0x00081190, "UR", "http://example.invalid/retrieve")  # UR
    ds.add_new(0x00720083, "UV", [2**40])  # UV Selector UV Value
    ds.add_new(0x00180015, "CS", "CHEST")  # CS
    ds.add_new(0x00091003, "UN", b"\x00\x01")  # UN
    ds.add_new(0x00400275, "SQ", [_item()])  # SQ Request Attributes Sequence
    ds.add_new(0x00204000, "UT", "Testo lungo " * 50)  # UT Image Comments-like text
    ds.add_new(0x00081199, "SQ", [])  # SQ empty
    return _save(ds, folder / "ALLVR")


def _item() -> Dataset:
    item = Dataset()
    item.ScheduledProcedureStepID = "SPS1"
    item.RequestedProcedureID = "RP1"
    return item


def write_sample_cd(folder: Path) -> dict[str, Path | bytes]:
    """The folder, and what each file must give back."""
    study = _study()
    [native] = write_loose(folder / "NATIVE", [study], junk=False)
    rle_path = rle(study, folder)
    multi = rle(study, folder, frames=3)
    jpeg_path, jpeg_stream = jpeg_baseline(study, folder)
    j2k_path, j2k_stream = jpeg2000(study, folder)
    all_vr = every_vr(study, folder)
    assert dcmread(all_vr).AdditionalPatientHistory
    return {
        "native": native,
        "rle": rle_path,
        "multiframe": multi,
        "jpeg": jpeg_path,
        "jpeg_codestream": jpeg_stream,
        "j2k": j2k_path,
        "j2k_codestream": j2k_stream,
        "all_vr": all_vr,
        "study_uid": study.study_instance_uid.encode(),
    }
