"""A source that answers C-MOVE "Success" (0x0000, no failed or warning sub-operation) after
sending fewer instances than its C-FIND listed.

Nothing on our side fails here: the source itself leaves instances out and says all went
well, as PACS do whose C-MOVE skips what it cannot read from its own archive. The source is
an in-process pynetdicom Q/R SCP (``jobs.qr_peer``) that records every C-MOVE it receives:
the level, the SOP Instance UIDs asked for and the instances it really sent. What we check
(docs/integration-fse.md, "Moves"): the gaps are asked again with IMAGE-level C-MOVEs listing
exactly the missing instances, and what still does not come makes the retrieval ``partial``
with the missing SOP Instance UIDs in its API document and its package's README.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydicom import Dataset, dcmread
from pynetdicom import evt

from jobs.qr_peer import PENDING, CountingQRSCP, _storage_contexts

from .conftest import AUTH

SUCCESS = 0x0000


@dataclass(frozen=True)
class SeenMove:
    """One C-MOVE as the source saw it."""

    level: str
    series_uid: str
    asked: tuple[str, ...]  # SOP Instance UIDs named in the identifier (IMAGE level)
    sent: tuple[str, ...]  # what the source really sent, in C-STORE sub-operations


class ShortMovingSource(CountingQRSCP):
    """Leaves ``withheld`` out of its first ``withholding_moves`` C-MOVEs, and says Success.

    It announces as many sub-operations as it sends, so its final response is a plain
    Success with completed = sent and zero failed and warning sub-operations: nothing in the
    C-MOVE's answer tells the gap (PS3.4 C.4.2.1.4: the counts are the SCP's own).
    """

    def __init__(self) -> None:
        self.withheld: set[str] = set()
        self.withholding_moves = 0
        self.seen: list[SeenMove] = []
        super().__init__(ae_title="SHORTPACS")

    def _move(self, event: evt.Event) -> Iterator[Any]:
        asked = event.identifier
        with self._lock:
            self.moves[str(asked.get("StudyInstanceUID", ""))] += 1
            withholding = len(self.seen) < self.withholding_moves
        destination = self.destinations.get(str(event.move_destination).strip())
        if destination is None:
            yield None, None
            return
        matched = self._matching(asked)
        sending = [
            ds for ds in matched if not (withholding and str(ds.SOPInstanceUID) in self.withheld)
        ]
        self._record(asked, sending)
        yield (*destination, {"contexts": _storage_contexts(matched)})
        yield len(sending)
        for ds in sending:
            yield PENDING, ds
        yield SUCCESS, None

    def _record(self, asked: Dataset, sending: list[Dataset]) -> None:
        sops = asked.get("SOPInstanceUID")
        listed = [] if sops is None else [sops] if isinstance(sops, str) else list(sops)
        seen = SeenMove(
            level=str(asked.QueryRetrieveLevel),
            series_uid=str(asked.get("SeriesInstanceUID", "")),
            asked=tuple(sorted(str(s) for s in listed)),
            sent=tuple(sorted(str(ds.SOPInstanceUID) for ds in sending)),
        )
        with self._lock:
            self.seen.append(seen)


@pytest.fixture
def short_source(
    our_scp_address: tuple[str, int],
) -> Iterator[Callable[..., ShortMovingSource]]:
    made: list[ShortMovingSource] = []

    def make() -> ShortMovingSource:
        source = ShortMovingSource()
        source.destinations["PACSBRIDGE"] = our_scp_address
        made.append(source)
        return source

    yield make
    for source in made:
        source.stop()


def _load(source: ShortMovingSource, load_study, withholding_moves: int):  # noqa: ANN001, ANN202
    """A 2 x 3 study on the source; the first instance of each series is withheld."""
    study, paths = load_study(source, series_count=2, instances_per_series=3)
    by_series: dict[str, list[str]] = {}
    for path in paths:
        ds = dcmread(path, stop_before_pixels=True)
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(str(ds.SOPInstanceUID))
    source.withheld = {sorted(sops)[0] for sops in by_series.values()}
    source.withholding_moves = withholding_moves
    return study, paths, by_series, set(source.withheld)


def _series_of(by_series: dict[str, list[str]], sop: str) -> str:
    return next(series for series, sops in by_series.items() if sop in sops)


def test_gaps_of_a_c_move_answered_success_are_asked_again_by_image_level_c_moves(
    make_gateway, load_study, short_source
) -> None:  # noqa: ANN001
    source = short_source()
    study, paths, by_series, withheld = _load(source, load_study, withholding_moves=1)
    gateway = make_gateway(source.peer)

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    first, *retries = source.seen
    assert first.level == "STUDY" and len(first.sent) == len(paths) - len(withheld)
    assert set(first.sent).isdisjoint(withheld)
    # One IMAGE-level C-MOVE per series, naming exactly that series' missing instance.
    assert sorted((m.level, m.series_uid, m.asked) for m in retries) == sorted(
        ("IMAGE", _series_of(by_series, sop), (sop,)) for sop in withheld
    )
    assert {sop for m in retries for sop in m.sent} == withheld  # the gaps, nothing else
    assert source.moves[study.study_instance_uid] == 1 + len(by_series)
    assert document["state"] == "available", document
    assert document["expected_instances"] == document["received_instances"] == len(paths)
    assert document["errors"] == []
    moves = gateway.moves(study.study_instance_uid)
    assert [(m.details["level"], m.code) for m in moves] == [("STUDY", "0x0000")] + [
        ("IMAGE", "0x0000")
    ] * len(by_series)
    assert moves[0].details["failed"] == 0 and moves[0].details["warning"] == 0


def test_gaps_a_source_never_sends_make_the_retrieval_partial_with_their_uids(
    make_gateway, load_study, short_source
) -> None:  # noqa: ANN001
    source = short_source()  # the withheld are never sent, and every answer is "Success"
    study, paths, by_series, withheld = _load(source, load_study, withholding_moves=99)
    gateway = make_gateway(source.peer, fse={"attempts": 3})

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    assert gateway.run_scheduled() == 0  # incomplete is final: no attempt is spent on it

    document = gateway.document(retrieval_id)
    first, *retries = source.seen
    assert first.level == "STUDY" and set(first.sent).isdisjoint(withheld)
    assert sorted(m.asked for m in retries) == sorted((sop,) for sop in withheld)
    assert all(m.level == "IMAGE" and m.sent == () for m in retries)
    assert source.moves[study.study_instance_uid] == 1 + len(by_series)  # asked again once
    assert document["state"] == "partial", document
    assert document["expected_instances"] == len(paths)
    assert document["received_instances"] == len(paths) - len(withheld)
    [error] = document["errors"]
    assert error["code"] == "move_incomplete" and error["retriable"] is False
    assert error["missing_sop_instance_uids"] == sorted(withheld)
    assert error["detail"] == f"{len(withheld)} instances missing after the IMAGE-level C-MOVE"
    [entry] = document["studies"]
    assert entry["state"] == "partial"
    received = {
        i["sop_instance_uid"]: i["received"] for s in entry["series"] for i in s["instances"]
    }
    assert {sop for sop, got in received.items() if not got} == withheld
    retry_note = next(n for n in document["notes"] if n["code"] == "image_retry")
    assert (retry_note["asked"], retry_note["still_missing"]) == (len(withheld), len(withheld))
    package = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert package.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(package.content))
    files = [n for n in archive.namelist() if n.startswith("DICOM/")]
    assert len(files) == len(paths) - len(withheld)
    sent = {str(dcmread(io.BytesIO(archive.read(n))).SOPInstanceUID) for n in files}
    assert sent.isdisjoint(withheld)
    readme = archive.read("README.TXT").decode("ascii")
    assert "RECUPERO PARZIALE" in readme and all(sop in readme for sop in withheld)
    [completed] = gateway.events("retrieval.completed", retrieval_id)
    assert completed.details["state"] == "partial"
