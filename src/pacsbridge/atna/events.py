"""Which audit event becomes which DICOM audit message (PS3.15 A.5.3), and how: ``BUILDERS``.

The product records what happens through ``pacsbridge.audit.record``; this table maps the kinds
that PS3.15 asks a Secure Node to report to a builder that returns the message's XML. A kind not
in the table sends nothing. A builder reads only the event (its details are written where the
event happens) and the node's own identity (:class:`Node`), so the domains never know ATNA
exists (docs/atna.md lists what is sent when).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pacsbridge.atna import document as doc
from pacsbridge.atna.document import Code, Participant
from pacsbridge.settings import Settings

AUDIT_LOG_USED: Code = ("110101", "DCM", "Audit Log Used")
BEGIN_TRANSFERRING: Code = ("110102", "DCM", "Begin Transferring DICOM Instances")
INSTANCES_ACCESSED: Code = ("110103", "DCM", "DICOM Instances Accessed")
INSTANCES_TRANSFERRED: Code = ("110104", "DCM", "DICOM Instances Transferred")
PATIENT_RECORD: Code = ("110110", "DCM", "Patient Record")
QUERY: Code = ("110112", "DCM", "Query")
USER_AUTHENTICATION: Code = ("110114", "DCM", "User Authentication")
LOGIN: Code = ("110122", "DCM", "Login")
LOGOUT: Code = ("110123", "DCM", "Logout")
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


@dataclass(frozen=True)
class Record:
    """What a builder needs of one audit event (a copy, taken when the event is recorded)."""

    kind: str
    at: datetime
    actor: str = ""
    outcome: str = "ok"
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = "") -> Any:  # noqa: ANN401 - JSON values
        value = self.details.get(key)
        return default if value in (None, "") else value


@dataclass(frozen=True)
class Node:
    """This node as it appears in every message: our AE, our address, the audit source."""

    ae_title: str
    host: str
    source_id: str
    site_id: str
    pacs: Participant
    #: our HL7 application (MSH-3) and the PACS's HL7 listener (MSH-5) of the merge
    hl7: Participant
    merge: Participant

    @classmethod
    def from_settings(cls, settings: Settings) -> Node:
        atna, pacs = settings.atna, settings.pacs
        host = settings.fse.advertised_host or settings.dicom.host
        return cls(
            ae_title=settings.dicom.ae_title,
            host=host,
            source_id=atna.audit_source_id or settings.dicom.ae_title,
            site_id=atna.enterprise_site_id,
            pacs=Participant(pacs.ae_title, False, doc.DESTINATION_ROLE, pacs.host),
            hl7=Participant(settings.hl7.sending_application, True, doc.SOURCE_ROLE, host),
            merge=Participant(
                settings.merge.receiving_application or "PACS",
                False,
                doc.DESTINATION_ROLE,
                settings.merge.host,
            ),
        )

    def us(self, requestor: bool, role: Code | None = None) -> Participant:
        return Participant(self.ae_title, requestor, role, self.host)

    def message(
        self, identification: Any, who: Iterable[Participant], objects: Iterable[Any]
    ) -> bytes:  # noqa: ANN401
        source = doc.audit_source(self.source_id, self.site_id)
        return doc.message(identification, who, source, objects)


def _outcome(record: Record) -> str:
    """ok: success; warning: minor failure; error: serious failure (A.5.1 indicator)."""
    return {"ok": doc.SUCCESS, "warning": doc.MINOR_FAILURE}.get(
        record.outcome, doc.SERIOUS_FAILURE
    )


def _patient_and_studies(record: Record) -> list[Any]:
    """Each study (1..n) with its SOP classes and the accession number, then the patient (1)."""
    objects = []
    studies = record.get("study_instance_uids", []) or [record.get("study_instance_uid")]
    classes = record.get("sop_classes", {})
    accessions = [record.get("accession_number")]
    for uid in [u for u in studies if u]:
        objects.append(
            doc.study(uid, classes.get(uid), accessions, record.get("study_description"))
        )
    if record.get("patient_id"):
        objects.append(_patient(record))
    return objects


def _patient(record: Record) -> Any:  # noqa: ANN401 - an XML element
    return doc.patient(record.get("patient_id"), record.get("issuer"), record.get("patient_name"))


def store_started(record: Record, node: Node) -> bytes:
    """Begin Transferring DICOM Instances (A.5.3.3): we start C-STOREs of an import."""
    identification = doc.event(BEGIN_TRANSFERRING, "E", record.at, doc.SUCCESS)
    who = [node.us(True, doc.SOURCE_ROLE), node.pacs]
    return node.message(identification, who, _patient_and_studies(record))


def store_completed(record: Record, node: Node) -> bytes:
    """DICOM Instances Transferred (A.5.3.7): the import's store to the PACS ended.

    EventActionCode R: A.5.3.7 keeps C and U for a receiver that knows whether it already held
    the instances; an audit source that is not the receiver (we send) shall use R.
    """
    identification = doc.event(
        INSTANCES_TRANSFERRED, "R", record.at, _outcome(record), description=record.message
    )
    who = [node.us(True, doc.SOURCE_ROLE), node.pacs]
    return node.message(identification, who, _patient_and_studies(record))


def _move_participants(record: Record, node: Node) -> list[Participant]:
    """The source PACS (110153) and us (110152, requestor: we issue the C-MOVE)."""
    source = Participant(
        record.get("source_ae_title", "-"), False, doc.SOURCE_ROLE, record.get("source_host")
    )
    return [source, node.us(True, doc.DESTINATION_ROLE)]


def move_started(record: Record, node: Node) -> bytes:
    """Begin Transferring DICOM Instances (A.5.3.3): a C-MOVE of ours is about to leave."""
    identification = doc.event(BEGIN_TRANSFERRING, "E", record.at, doc.SUCCESS)
    return node.message(
        identification, _move_participants(record, node), _patient_and_studies(record)
    )


def moved(record: Record, node: Node) -> bytes:
    """DICOM Instances Transferred (A.5.3.7): a C-MOVE we issued brought a study to us.

    EventActionCode R: we are the receiver, but a study moved again after a partial move
    brings instances we already hold, and the event does not say which; A.5.3.7 asks for R
    from a receiver that does not know whether it held them.
    """
    identification = doc.event(
        INSTANCES_TRANSFERRED, "R", record.at, _outcome(record), description=record.message
    )
    return node.message(
        identification, _move_participants(record, node), _patient_and_studies(record)
    )


def queried(record: Record, node: Node) -> bytes:
    """Query (A.5.3.10): a C-FIND we issued, with the identifier we sent."""
    identification = doc.event(QUERY, "E", record.at, _outcome(record))
    peer = Participant(
        record.get("peer_ae_title", node.pacs.user_id),
        False,
        doc.DESTINATION_ROLE,
        record.get("peer_host", node.pacs.address),
    )
    objects = [doc.query(STUDY_ROOT_FIND, record.get("query"), EXPLICIT_VR_LITTLE_ENDIAN)]
    if record.get("patient_id"):
        objects.append(_patient(record))
    return node.message(identification, [node.us(True, doc.SOURCE_ROLE), peer], objects)


def merged(record: Record, node: Node) -> bytes:
    """Patient Record (A.5.3.11), update: we asked the PACS to merge a patient (ADT^A40)."""
    identification = doc.event(PATIENT_RECORD, "U", record.at, _outcome(record))
    target = _patient(record)
    doc.detail(target, "MergedPatientID", record.get("merged_patient_id"))
    return node.message(identification, [node.hl7, node.merge], [target])


def accessed(record: Record, node: Node) -> bytes | None:
    """DICOM Instances Accessed (A.5.3.6), read: images viewed, or a zip package downloaded."""
    objects = _patient_and_studies(record)
    if not objects:
        return None  # nothing identifies what was seen: PS3.15 asks for the study
    identification = doc.event(INSTANCES_ACCESSED, "R", record.at, _outcome(record))
    person = Participant(record.actor or "-", True, None, record.get("address"))
    return node.message(identification, [person, node.us(False, doc.APPLICATION)], objects)


def audit_log_used(record: Record, node: Node) -> bytes:
    """Audit Log Used (A.5.3.2), read: a staff member exported the audit log.

    Not Export (A.5.3.5), which is about DICOM instances leaving on media or by network: what
    is read here is the audit trail itself. The staff member asked (requestor, with the
    client's address); we are the process that read the log (two participants, as A.5.3.2
    asks when both are known).
    """
    identification = doc.event(AUDIT_LOG_USED, "R", record.at, _outcome(record))
    person = Participant(record.actor or "-", True, None, record.get("address"))
    log = doc.audit_log(record.get("uri", "urn:pacsbridge:audit-log"))
    return node.message(identification, [person, node.us(False, doc.APPLICATION)], [log])


def _authentication(record: Record, node: Node, kind: Code) -> bytes:
    """User Authentication (A.5.3.12): a staff member signs in or out of our pages."""
    failed = record.outcome != "ok"
    identification = doc.event(
        USER_AUTHENTICATION,
        "E",
        record.at,
        doc.MINOR_FAILURE if failed else doc.SUCCESS,
        [kind],
        record.get("reason") if failed else "",
    )
    person = Participant(record.actor or "-", True, None, record.get("address"))
    return node.message(identification, [person, node.us(False, doc.APPLICATION)], [])


def signed_in(record: Record, node: Node) -> bytes:
    return _authentication(record, node, LOGIN)


def signed_out(record: Record, node: Node) -> bytes:
    return _authentication(record, node, LOGOUT)


Builder = Callable[[Record, Node], bytes | None]

#: audit kind → the builder of its DICOM audit message (docs/atna.md)
BUILDERS: dict[str, Builder] = {
    "store.started": store_started,
    "store.completed": store_completed,
    "retrieval.move_started": move_started,
    "retrieval.moved": moved,
    "duplicates.queried": queried,
    "retrieval.queried": queried,
    "retrieval.described": queried,
    "store.queried": queried,
    "patient.merged": merged,
    "images.viewed": accessed,
    "package.downloaded": accessed,
    "staff.signed_in": signed_in,
    "staff.sign_in_failed": signed_in,
    "staff.signed_out": signed_out,
    "audit.exported": audit_log_used,
}
