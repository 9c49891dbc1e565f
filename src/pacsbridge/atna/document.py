"""The parts of a DICOM audit message (PS3.15 A.5.1 schema, A.5.2 conventions), as XML elements.

Each function makes one element of ``schema/dicom-audit-message.rng`` with its children in the
schema's order; ``events`` puts them together per message. Codes are (code, system, meaning)
from PS3.16 (DCM) and RFC 3881. Plain ``xml.etree`` is enough to write them; the tests validate
every message against the schema with lxml.
"""

from __future__ import annotations

import base64
import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

Code = tuple[str, str, str]

#: PS3.16 CID 400/401/402 and RFC 3881 codes that our messages use
SOURCE_ROLE: Code = ("110153", "DCM", "Source Role ID")
DESTINATION_ROLE: Code = ("110152", "DCM", "Destination Role ID")
APPLICATION: Code = ("110150", "DCM", "Application")
PATIENT_NUMBER: Code = ("2", "RFC-3881", "Patient Number")
STUDY_UID: Code = ("110180", "DCM", "Study Instance UID")
SOP_CLASS_UID: Code = ("110181", "DCM", "SOP Class UID")
URI: Code = ("12", "RFC-3881", "URI")

#: EventOutcomeIndicator (A.5.1): nominal success, minor, serious and major failure
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE = "0", "4", "8"


@dataclass(frozen=True)
class Participant:
    """An ActiveParticipant: a person or a process; ``address`` is its network access point."""

    user_id: str
    requestor: bool
    role: Code | None = None
    address: str = ""
    user_name: str = ""
    alternative_id: str = ""


def coded(tag: str, code: Code) -> ET.Element:
    value, system, meaning = code
    return ET.Element(tag, {"csd-code": value, "codeSystemName": system, "originalText": meaning})


def event(
    event_id: Code,
    action: str,
    at: datetime,
    outcome: str,
    types: Iterable[Code] = (),
    description: str = "",
) -> ET.Element:
    """EventIdentification; ``at`` is timezone-aware (A.5.2.5: with its UTC offset)."""
    element = ET.Element(
        "EventIdentification",
        {
            "EventActionCode": action,
            "EventDateTime": at.isoformat(),
            "EventOutcomeIndicator": outcome,
        },
    )
    element.append(coded("EventID", event_id))
    for code in types:
        element.append(coded("EventTypeCode", code))
    if description:
        ET.SubElement(element, "EventOutcomeDescription").text = description
    return element


def participant(who: Participant) -> ET.Element:
    attributes = {"UserID": who.user_id or "-"}
    if who.alternative_id:
        attributes["AlternativeUserID"] = who.alternative_id
    if who.user_name:
        attributes["UserName"] = who.user_name
    attributes["UserIsRequestor"] = "true" if who.requestor else "false"
    if who.address:
        attributes["NetworkAccessPointID"] = who.address
        attributes["NetworkAccessPointTypeCode"] = _access_point_type(who.address)
    element = ET.Element("ActiveParticipant", attributes)
    if who.role is not None:
        element.append(coded("RoleIDCode", who.role))
    return element


def _access_point_type(address: str) -> str:
    """RFC 3881: 2 for an IP address, 1 for a machine (DNS) name."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return "1"
    return "2"


def audit_source(source_id: str, site_id: str = "") -> ET.Element:
    attributes = {"AuditSourceID": source_id}
    if site_id:
        attributes = {"AuditEnterpriseSiteID": site_id, **attributes}
    return ET.Element("AuditSourceIdentification", attributes)


def patient(patient_id: str, issuer: str = "", name: str = "") -> ET.Element:
    """Patient (type 1 person, role 1 patient); the ID as HL7 CX, issuer in CX.4 (A.5.2).

    The A.5.1 schema requires a ParticipantObjectName or a ParticipantObjectQuery in every
    participant object; without the patient's name the name repeats the CX identifier
    (docs/atna.md, "Conformance").
    """
    cx = f"{patient_id}^^^{issuer}" if issuer else patient_id
    return _object(cx, "1", "1", PATIENT_NUMBER, name or cx)


def study(
    uid: str,
    sop_classes: Mapping[str, int] | None = None,
    accessions: Iterable[str] = (),
    name: str = "",
) -> ET.Element:
    """Study (type 2 system object, role 3 report), named by ``name`` or its UID (A.5.3.3).

    SOPClass counts and Accession go in ParticipantObjectDescription (A.5.1 schema). A.5.2 makes
    SOPClass required as soon as Accession (or any other description) is present, so without
    the SOP classes the accession number is left out rather than sent without them.
    """
    element = _object(uid, "2", "3", STUDY_UID, name or uid)
    classes = sorted((sop_classes or {}).items())
    if classes:
        description = ET.SubElement(element, "ParticipantObjectDescription")
        for number in accessions:
            if number:
                ET.SubElement(description, "Accession", {"Number": number})
        for sop_class, count in classes:
            ET.SubElement(
                description, "SOPClass", {"UID": sop_class, "NumberOfInstances": str(count)}
            )
    return element


def query(sop_class: str, dataset_b64: str, transfer_syntax: str) -> ET.Element:
    """The SOP Class queried and the query itself (A.5.3.10): base64 of the encoded identifier."""
    element = _object(sop_class, "2", "3", SOP_CLASS_UID)
    ET.SubElement(element, "ParticipantObjectQuery").text = dataset_b64
    detail(element, "TransferSyntax", transfer_syntax)
    return element


def audit_log(uri: str) -> ET.Element:
    """The audit log read (A.5.3.2): a system object, role 13 Security Resource, by its URI."""
    return _object(uri, "2", "13", URI, "Security Audit Log")


def detail(element: ET.Element, kind: str, value: str) -> None:
    """A ParticipantObjectDetail value pair; the value is base64 (RFC 3881 ValuePair)."""
    encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
    ET.SubElement(element, "ParticipantObjectDetail", {"type": kind, "value": encoded})


def _object(object_id: str, type_code: str, role: str, id_type: Code, name: str = "") -> ET.Element:
    """A ParticipantObjectIdentification with its ID type code and, when given, its name.

    Without a name the caller adds the ParticipantObjectQuery next: the schema requires one of
    the two, right after the ID type code.
    """
    element = ET.Element(
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": object_id,
            "ParticipantObjectTypeCode": type_code,
            "ParticipantObjectTypeCodeRole": role,
        },
    )
    element.append(coded("ParticipantObjectIDTypeCode", id_type))
    if name:
        ET.SubElement(element, "ParticipantObjectName").text = name
    return element


def message(
    identification: ET.Element,
    participants: Iterable[Participant],
    source: ET.Element,
    objects: Iterable[ET.Element] = (),
) -> bytes:
    """The whole AuditMessage, UTF-8 with its XML declaration."""
    root = ET.Element("AuditMessage")
    root.append(identification)
    for who in participants:
        root.append(participant(who))
    root.append(source)
    for element in objects:
        root.append(element)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
