"""Merge paziente: ADT^A40 to the PACS's HL7 listener, one per external Patient ID.

Each external Patient ID of the selected studies (MRG-1) is merged into the RIS patient
(PID-3) and needs an AA. Off by configuration: "non configurato". Retried like the store
(PeerUnavailable is retriable; a rejection is permanent and shows the PACS's text).
"""

from __future__ import annotations

from pacsbridge import audit
from pacsbridge.hl7v2 import PatientRef, build_merge, send
from pacsbridge.imports.pipeline.base import Done, Job, Outcome, Skipped
from pacsbridge.imports.pipeline.hl7 import dicom_patient, message_ids, ris_patient


def run(job: Job) -> Outcome:
    endpoint = job.ctx.settings.merge
    if not endpoint.enabled:
        return Skipped()
    target = ris_patient(job.launch)
    sources = _external_patients(job, (target.patient_id, target.issuer))
    for index, source in enumerate(sources):
        ids = message_ids(job.ctx, endpoint, job.import_id, f"M{index}")
        send(
            endpoint.host,
            endpoint.port,
            build_merge(ids, target, source),
            timeout=endpoint.timeout,
            peer="PACS (HL7)",
        )
        _audit(job, target, source)
        job.beat()
    return Done("done.merge", {"count": len(sources)})


def _audit(job: Job, target: PatientRef, source: PatientRef) -> None:
    """``patient.merged``, once the PACS accepted it (an ATNA Patient Record, docs/atna.md)."""
    with job.ctx.sessions.begin() as session:
        audit.record(
            session,
            job.ctx.clock.now(),
            "patient.merged",
            import_id=job.import_id,
            patient_id=target.patient_id,
            issuer=target.issuer,
            merged_patient_id=source.patient_id,
            merged_issuer=source.issuer,
        )


def _external_patients(job: Job, target: tuple[str, str]) -> list:  # noqa: ANN401
    selected = set(job.selected_uids())
    found, seen = [], {target}
    for entry in job.analysis.get("patients", []):
        patient = dicom_patient(entry)
        key = (patient.patient_id, patient.issuer)
        if key in seen or not patient.patient_id:
            continue
        if selected & set(entry.get("study_instance_uids", [])):
            found.append(patient)
            seen.add(key)
    return found
