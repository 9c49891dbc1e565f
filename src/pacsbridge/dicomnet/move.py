"""C-MOVE (IHE RAD-16): ask a PACS to send a study, series or instances to a destination AE.

The result carries the final status and sub-operation counts as the PACS reported them; judging
them (a "Success" proves no arrival, counts are 16-bit) is the caller's job, against what
actually reached our Storage SCP. With ``LocalAE.fast_receive`` the request is sent and its
responses read on the calling thread (dicomnet/fast_move.py); pynetdicom otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
)

from pacsbridge.dicomnet.association import associate, raise_no_response, status_of
from pacsbridge.dicomnet.fast_move import FastMove
from pacsbridge.dicomnet.peers import LocalAE, Peer

MODELS = {
    "study": StudyRootQueryRetrieveInformationModelMove,
    "patient": PatientRootQueryRetrieveInformationModelMove,
}


@dataclass
class MoveResult:
    status: int
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    remaining: int | None = None
    failed_sop_instance_uids: list[str] = field(default_factory=list)
    responses: int = 0
    #: Error Comment (0000,0902) of the last response: the PACS's own words, for support
    error_comment: str = ""


def c_move(
    local: LocalAE,
    peer: Peer,
    destination_ae: str,
    identifier: Dataset,
    level: str,
    model: str = "study",
) -> MoveResult:
    """Run one C-MOVE to the end; raise PeerUnavailable when the PACS goes silent or away."""
    identifier.QueryRetrieveLevel = level
    result = MoveResult(status=-1)
    with associate(local, peer, [build_context(MODELS[model])]) as assoc:
        responses: Iterator[tuple[Dataset, Any]] = iter(())
        if local.fast_receive:  # the responses read on this thread (dicomnet/fast_move.py)
            move = FastMove(assoc, MODELS[model], local.dimse_timeout)
            responses = move.responses(identifier, destination_ae)
        first = next(responses, None)
        if first is None:  # not taken over: pynetdicom sends and reads
            responses = assoc.send_c_move(identifier, destination_ae, MODELS[model])
        else:
            responses = itertools.chain([first], responses)
        for status, answer in responses:
            code = status_of(status)
            if code is None:
                raise_no_response(assoc, peer)
            _count(result, status, code)
            if answer is not None and "FailedSOPInstanceUIDList" in answer:
                result.failed_sop_instance_uids = _uids(answer.FailedSOPInstanceUIDList)
            if (code & 0xFF00) != 0xFF00:  # not pending: the final response
                break
    return result


def _count(result: MoveResult, status: Any, code: int) -> None:
    """``status``: a pynetdicom Dataset, or fast_move's dict of the same keywords."""
    result.status = code
    result.responses += 1
    comment = status.get("ErrorComment")
    if comment:
        result.error_comment = str(comment)
    for attr, keyword in (
        ("completed", "NumberOfCompletedSuboperations"),
        ("failed", "NumberOfFailedSuboperations"),
        ("warning", "NumberOfWarningSuboperations"),
        ("remaining", "NumberOfRemainingSuboperations"),
    ):
        value = status.get(keyword)
        if value is not None and value != "":
            setattr(result, attr, int(value))


def _uids(value: object) -> list[str]:
    if isinstance(value, str):
        return [u for u in value.split("\\") if u]
    return [str(u) for u in value]  # type: ignore[attr-defined]
