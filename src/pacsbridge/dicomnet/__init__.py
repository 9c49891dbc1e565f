"""The DICOM network layer: one place that talks pynetdicom.

Everything above this package sees :class:`peers.Peer`, :class:`peers.LocalAE`, plain results
and the exceptions of :mod:`pacsbridge.errors`; pynetdicom's statuses, association states and
quirks (Nagle's algorithm, the response race of pydicom/pynetdicom#875) are handled here once.
"""
