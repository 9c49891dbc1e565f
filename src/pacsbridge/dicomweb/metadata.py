"""WADO-RS metadata (PS3.18 §10.4.1.1.2): each instance in the DICOM JSON model (PS3.18 F.2).

pydicom writes the JSON (``Dataset.to_json_dict``); nothing here builds DICOM JSON by hand.
Binary values longer than :data:`BULK_THRESHOLD` become a ``BulkDataURI`` (F.2.6) under the
instance's ``bulkdata/`` resource. The header is read without pixel data (the file may hold
gigabytes of it), so the Pixel Data element is put back with a stand-in value that only
tells pydicom its VR and that it is bulk: its URI is what the client gets, never its bytes.
"""

from __future__ import annotations

from typing import Any

from pydicom import Dataset

from pacsbridge.dicomweb.catalogue import Instance, header
from pacsbridge.dicomweb.frames import locate

#: Binary values above this many bytes (base64: 3/4 of it raw) are bulk data, not inline.
BULK_THRESHOLD = 16 * 1024
_STAND_IN = bytes(BULK_THRESHOLD)


def instance_json(instance: Instance, base: str) -> dict[str, Any]:
    """The instance's attributes; ``base`` is the instance's WADO-RS URL."""
    ds = Dataset(header(instance))  # a shallow copy: the cached header stays untouched
    location = locate(instance.path)
    if location is not None:
        ds.add_new(location.tag, location.vr, _STAND_IN)
    return ds.to_json_dict(
        bulk_data_threshold=BULK_THRESHOLD,
        bulk_data_element_handler=lambda element: f"{base}/bulkdata/{element.tag:08X}",
    )


def bulk_value(instance: Instance, tag: int) -> bytes | None:
    """A top-level binary value of the header (not pixel data), None when absent."""
    element = header(instance).get(tag)
    if element is None or not isinstance(element.value, bytes | bytearray):
        return None
    return bytes(element.value)
