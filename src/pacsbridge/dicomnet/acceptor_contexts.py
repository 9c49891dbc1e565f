"""Per-association copies of our Storage SCP's presentation contexts, made cheap.

pynetdicom 3.0.4 gives every accepted connection a ``copy.deepcopy`` of the server's supported
contexts (``AssociationServer.contexts``). Ours are every storage SOP class with every transfer
syntax (we keep what a source sends byte for byte): 170 contexts and some 6,000 ``UID``
objects, which deep-copy one by one through ``__reduce_ex__``: 37-90 ms per association,
most of our association set-up against DCMTK ``storescp`` (docs/engineering-notes.md).
A ``UID`` is a ``str``, immutable, so a copy may share it; only the lists need copying.
A candidate upstream patch (``PresentationContext.__deepcopy__``); pynetdicom is pinned.
"""

from __future__ import annotations

from typing import Any

from pynetdicom.presentation import PresentationContext


class SharedUidContext(PresentationContext):
    """A presentation context whose deep copy shares its (immutable) UIDs."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedUidContext:
        copy = SharedUidContext.__new__(SharedUidContext)
        copy.__dict__.update(self.__dict__)
        copy._transfer_syntax = list(self._transfer_syntax)
        return copy


def sharing_uids(contexts: list[PresentationContext]) -> list[PresentationContext]:
    """The same contexts, as :class:`SharedUidContext` (cheap to copy per association)."""
    light = []
    for context in contexts:
        copy = SharedUidContext.__new__(SharedUidContext)
        copy.__dict__.update(context.__dict__)
        copy._transfer_syntax = list(context._transfer_syntax)
        light.append(copy)
    return light
