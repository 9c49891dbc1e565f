"""DICOMweb, read-only (PS3.18): QIDO-RS and WADO-RS over the files of one viewing scope.

Knows files and pydicom, never rows or HTTP: a domain turns its scope (one retrieval's cache,
one import's uploaded media) into a catalogue, and ``web/api/dicomweb.py`` maps requests here.

Flow: token → scope → catalogue → search or retrieve → streamed body.

1. ``tokens``       signed, time-limited viewer links (which scope, until when)
2. ``catalogue``    the instances a scope holds: validated UIDs and our own file paths
3. ``qido``         QIDO-RS: match keys, includefield, limit/offset → pydicom Datasets
4. ``negotiation``  Accept → media type and transfer syntax (as stored, or decoded)
5. ``multipart``    multipart/related bodies streamed from disk in chunks
6. ``metadata``     DICOM JSON via pydicom, bulk data as BulkDataURI
7. ``frames``       one frame read from the file: as stored (encapsulation helpers) or decoded
8. ``rendered``     JPEG/PNG with the confirmation page's windowing and pixel budget
"""
