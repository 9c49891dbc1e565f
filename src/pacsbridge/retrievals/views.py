"""Read models of a retrieval: the state document and the Find Study Metadata answer.

``received_instances`` of a study being moved is counted on disk (live progress while the
C-STOREs arrive); once the move is over it comes from the rows. Metadata is the C-FIND answers
in the DICOM JSON model (PS3.18 F.2): per study the FSE spec §3.1 study keys, per series
SeriesInstanceUID/SeriesNumber/Modality, per image SOPInstanceUID/SOPClassUID/InstanceNumber.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydicom import Dataset
from sqlalchemy import select
from sqlalchemy.orm import Session

from pacsbridge.context import Context
from pacsbridge.errors import NotFoundError, answer
from pacsbridge.messages import DEFAULT_LANGUAGE, render, said
from pacsbridge.retrievals import cache, lifecycle, viewing
from pacsbridge.retrievals.lifecycle import StudyState
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval, RetrievalStudy


def document(ctx: Context, retrieval_id: int, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """``GET /api/v1/retrievals/{id}``: errors and notes said in the reader's ``lang``."""
    with ctx.sessions() as session:
        retrieval = _load(session, retrieval_id)
        studies = [_study(ctx, session, link) for link in retrieval.links]
        return {
            "id": retrieval.id,
            "state": retrieval.state,
            "source": retrieval.source,
            "accession_numbers": retrieval.accession_numbers,
            "patient_id": retrieval.patient_id or None,
            "issuer": retrieval.issuer or None,
            "created_at": retrieval.created_at.isoformat(),
            "finished_at": _iso(retrieval.finished_at),
            "expires_at": _expires_at(retrieval),
            "cache_hit": retrieval.cache_hit,
            "attempts_left": retrieval.attempts_left,
            "expected_instances": sum(s["expected_instances"] for s in studies),
            "received_instances": sum(s["received_instances"] for s in studies),
            "errors": _said(
                _merged(
                    [*retrieval.errors, *_not_found_errors(retrieval)],
                    [e for s in studies for e in s.pop("errors")],
                ),
                lang,
            ),
            "notes": _said([*retrieval.notes, *(n for s in studies for n in s.pop("notes"))], lang),
            "studies": studies,
            **viewing.links(ctx, retrieval),
        }


def not_found_accessions(retrieval: Retrieval) -> list[str]:
    """Accession numbers of a finished request that matched no study (the others were served).

    Only for a request that served something: before it settles a study may still be linked,
    and a request that failed (source down) never learnt which numbers match.
    """
    if not lifecycle.servable(retrieval.state):
        return []
    found = {link.study.accession_number for link in retrieval.links}
    return [a for a in retrieval.accession_numbers if a not in found]


def _not_found_errors(retrieval: Retrieval) -> list[dict[str, Any]]:
    at = _iso(retrieval.finished_at)
    return [
        {
            "code": "accession_not_found",
            **said("retrieval.accession_not_found", source=retrieval.source, accession=a),
            "detail": f"no study with accession number {a}",
            "retriable": False,
            "at": at,
            "accession_number": a,
        }
        for a in not_found_accessions(retrieval)
    ]


def _said(entries: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Stored errors and notes as the API answers them: ``message`` (and ``explanation``) in
    ``lang`` in place of their keys (docs/errors.md)."""
    found = []
    for entry in entries:
        words = answer(entry, lang)
        if "explanation" in entry:
            words["explanation"] = render(entry["explanation"], lang)
        found.append(words)
    return found


def _merged(own: list[dict[str, Any]], of_studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's errors, then its studies' not already listed.

    A request that fails for good hands its last error to the studies it leaves behind
    (``settle.fail``), so the same entry would otherwise show twice.
    """
    seen = {(e.get("code"), e.get("at"), e.get("detail")) for e in own}
    extra = [e for e in of_studies if (e.get("code"), e.get("at"), e.get("detail")) not in seen]
    return [*own, *extra]


def metadata(ctx: Context, retrieval_id: int) -> dict[str, Any]:
    """``GET /api/v1/retrievals/{id}/metadata``: studies → series → instances, DICOM JSON."""
    with ctx.sessions() as session:
        retrieval = _load(session, retrieval_id)
        return {
            "id": retrieval.id,
            "state": retrieval.state,
            "studies": [_study_json(session, link.study) for link in retrieval.links],
        }


def _load(session: Session, retrieval_id: int) -> Retrieval:
    retrieval = session.get(Retrieval, retrieval_id)
    if retrieval is None:
        raise NotFoundError(f"retrieval {retrieval_id}")
    return retrieval


def _study(ctx: Context, session: Session, link: RetrievalStudy) -> dict[str, Any]:
    study = link.study
    ds = Dataset.from_json(study.study_metadata["study"])
    received = study.received_count
    if study.state == StudyState.MOVING:
        received = len(cache.present(cache.study_dir(ctx, study.id)))
    return {
        "study_instance_uid": study.study_instance_uid,
        "accession_number": study.accession_number,
        "patient_id": study.patient_id,
        "issuer": study.issuer or None,
        "patient_name": str(ds.get("PatientName", "") or ""),
        "study_date": str(ds.get("StudyDate", "") or ""),
        "study_description": str(ds.get("StudyDescription", "") or ""),
        "state": study.state,
        "from_cache": link.from_cache,
        "expected_instances": max(study.expected_count, received),
        "received_instances": received,
        "expires_at": _iso(study.expires_at),
        "series": _series_tree(session, study),
        "errors": [{**e, "study_instance_uid": study.study_instance_uid} for e in study.errors],
        "notes": [{**n, "study_instance_uid": study.study_instance_uid} for n in study.notes],
    }


def _series_tree(session: Session, study: CachedStudy) -> list[dict[str, Any]]:
    instances = _instances_by_series(session, study.id)
    tree = []
    for raw in study.study_metadata.get("series") or []:
        ds = Dataset.from_json(raw)
        uid = str(ds.SeriesInstanceUID)
        tree.append(
            {
                "series_instance_uid": uid,
                "series_number": _int(ds.get("SeriesNumber")),
                "modality": str(ds.get("Modality", "") or ""),
                "instances": [
                    {
                        "sop_instance_uid": row.sop_instance_uid,
                        "sop_class_uid": row.sop_class_uid,
                        "instance_number": row.instance_number,
                        "received": row.received,
                    }
                    for row in instances.get(uid, [])
                ],
            }
        )
    return tree


def _study_json(session: Session, study: CachedStudy) -> dict[str, Any]:
    instances = _instances_by_series(session, study.id)
    series = []
    for raw in study.study_metadata.get("series") or []:
        uid = Dataset.from_json(raw).SeriesInstanceUID
        rows = instances.get(str(uid), [])
        series.append({"dataset": raw, "instances": [_instance_json(r) for r in rows]})
    return {"dataset": study.study_metadata["study"], "series": series}


def _instance_json(row: ExpectedInstance) -> dict[str, Any]:
    ds = Dataset()
    ds.SOPClassUID = row.sop_class_uid
    ds.SOPInstanceUID = row.sop_instance_uid
    ds.InstanceNumber = row.instance_number if row.instance_number is not None else ""
    return ds.to_json_dict()


def _instances_by_series(session: Session, study_id: int) -> dict[str, list[ExpectedInstance]]:
    query = select(ExpectedInstance).where(ExpectedInstance.cached_study_id == study_id)
    grouped: dict[str, list[ExpectedInstance]] = defaultdict(list)
    for row in session.scalars(
        query.order_by(ExpectedInstance.instance_number, ExpectedInstance.id)
    ):
        grouped[row.series_instance_uid].append(row)
    return grouped


def _expires_at(retrieval: Retrieval) -> str | None:
    dates = [link.study.expires_at for link in retrieval.links if link.study.expires_at]
    return _iso(min(dates)) if dates else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
