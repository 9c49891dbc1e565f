"""The operator's preview of an uploaded CD through dicomweb-client: frames of every syntax,
metadata of every VR, rendered images, and the preview's scope."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

from .media import write_sample_cd

OCTET_ANY = (("application/octet-stream", "*"),)
UNCOMPRESSED = (("application/octet-stream", "1.2.840.10008.1.2.1"),)


@pytest.fixture
def cd(upload_media, tmp_path):  # noqa: ANN001, ANN201
    expected = write_sample_cd(tmp_path / "cd")
    return upload_media(tmp_path / "cd"), expected


def _uids(path: Path) -> tuple[str, str, str]:
    ds = dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _even(codestream: bytes) -> bytes:
    """Encapsulation pads a frame to an even length (PS3.5 A.4)."""
    return codestream + b"\x00" * (len(codestream) % 2)


def test_compressed_frames_come_as_stored_when_the_client_accepts_their_syntax(cd) -> None:  # noqa: ANN001
    scope, expected = cd
    client = scope.client()

    [jpeg] = client.retrieve_instance_frames(
        *_uids(expected["jpeg"]), [1], media_types=(("image/jpeg", JPEGBaseline8Bit),)
    )
    assert jpeg == _even(expected["jpeg_codestream"])
    [j2k] = client.retrieve_instance_frames(
        *_uids(expected["j2k"]), [1], media_types=(("image/jp2", JPEG2000Lossless),)
    )
    assert j2k == _even(expected["j2k_codestream"])
    [rle] = client.retrieve_instance_frames(*_uids(expected["rle"]), [1], media_types=OCTET_ANY)
    stored = dcmread(expected["rle"])
    assert rle == next(generate_frames(stored.PixelData, number_of_frames=1))


def test_compressed_frames_are_decoded_when_the_client_asks_for_uncompressed(cd) -> None:  # noqa: ANN001
    scope, expected = cd
    client = scope.client()
    for name in ("rle", "jpeg", "j2k", "native"):
        [frame] = client.retrieve_instance_frames(
            *_uids(expected[name]), [1], media_types=UNCOMPRESSED
        )
        decoded = pixel_array(str(expected[name]), index=0)
        assert frame == decoded.astype(decoded.dtype.newbyteorder("<")).tobytes(), name


def test_frames_of_a_multiframe_image_are_the_ones_asked_for(cd) -> None:  # noqa: ANN001
    scope, expected = cd
    client = scope.client()
    uids = _uids(expected["multiframe"])
    stored = dcmread(expected["multiframe"])
    originals = list(generate_frames(stored.PixelData, number_of_frames=3))

    assert client.retrieve_instance_frames(*uids, [3, 1], media_types=OCTET_ANY) == [
        originals[2],
        originals[0],
    ]
    [second] = client.retrieve_instance_frames(*uids, [2], media_types=UNCOMPRESSED)
    assert second == pixel_array(str(expected["multiframe"]), index=1).astype("<u2").tobytes()
    url = f"{scope.root}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}/frames/4"
    assert httpx.get(url).status_code == 404


def test_a_syntax_the_file_is_not_in_is_not_acceptable(cd) -> None:  # noqa: ANN001
    scope, expected = cd
    study, series, sop = _uids(expected["jpeg"])
    url = f"{scope.root}/studies/{study}/series/{series}/instances/{sop}/frames/1"
    answer = httpx.get(url, headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert answer.status_code == 406
    assert answer.json()["error"]["code"] == "not_acceptable"
    rle_accept = f'multipart/related; type="image/x-dicom-rle"; transfer-syntax={RLELossless}'
    assert httpx.get(url, headers={"Accept": rle_accept}).status_code == 406


def test_metadata_of_every_vr_round_trips_through_dicom_json(cd) -> None:  # noqa: ANN001
    scope, expected = cd
    client = scope.client()
    item = client.retrieve_instance_metadata(*_uids(expected["all_vr"]))
    original = dcmread(expected["all_vr"])

    vrs = {element.VR for element in original.iterall()}
    assert {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB"} <= vrs
    assert {"OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM"} <= vrs
    assert {"UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"} <= vrs
    received = Dataset.from_json({k: v for k, v in item.items() if k != "7FE00010"})
    del original.PixelData
    for element in original:
        assert received[element.tag] == element, element.keyword or element.tag
    assert set(received.keys()) == set(original.keys())


def test_rendered_and_thumbnail_are_images_of_the_frame(cd) -> None:  # noqa: ANN001
    scope, expected = cd
    client = scope.client()
    uids = _uids(expected["j2k"])

    jpeg = client.retrieve_instance_rendered(*uids, media_types=("image/jpeg",))
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (64, 64)
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels[-1, -1] - pixels[0, 0] > 100  # the gradient: dark corner to bright corner
    png = client.retrieve_instance_rendered(*uids, media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    study, series, sop = uids
    thumbnail = httpx.get(f"{scope.root}/studies/{study}/series/{series}/thumbnail")
    assert thumbnail.status_code == 200
    assert Image.open(io.BytesIO(thumbnail.content)).size == (128, 128)


def test_rendering_keeps_the_pixel_budget(upload_media, tmp_path) -> None:  # noqa: ANN001
    expected = write_sample_cd(tmp_path / "cd")
    scope = upload_media(tmp_path / "cd")
    scope.server.context.settings.imports.thumbnail_max_pixels = 100  # 64 x 64 is over it
    study, series, sop = _uids(expected["native"])
    url = f"{scope.root}/studies/{study}/series/{series}/instances/{sop}/rendered"
    image = Image.open(io.BytesIO(httpx.get(url, headers={"Accept": "image/png"}).content))
    assert set(np.asarray(image.convert("L")).ravel().tolist()) == {128}  # the grey placeholder


def test_the_preview_link_opens_its_import_only(cd, upload_media, tmp_path) -> None:  # noqa: ANN001
    scope, expected = cd
    [study] = scope.client().search_for_studies()
    assert study["0020000D"]["Value"] == [expected["study_uid"].decode()]
    assert len(scope.client().search_for_instances(expected["study_uid"].decode())) == 6
    assert scope.token.startswith("i")
