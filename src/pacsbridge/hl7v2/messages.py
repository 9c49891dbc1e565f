"""Build the HL7 v2.5 messages pacsbridge sends, and read the acknowledgements it gets back.

Pure functions: values in, the message out as ``str`` with segments separated by ``\\r``
(HL7 v2.5 ch. 2, message construction rules). Nothing here touches the network; ``mllp.send``
does.

Two messages are built:

- ``build_merge``: ADT^A40^ADT_A39, "merge patient - patient identifier list" (v2.5 ch. 3,
  3.3.40): MSH, EVN, PID (the surviving RIS patient), MRG (the external patient id that
  disappears into it).
- ``build_order_archived``: OMI^O23^OMI_O23, the imaging order message (v2.5 ch. 4), used as a
  filler-side status notification to the RIS. Why OMI and not ORM^O01: ORM is the generic order
  message kept for backward compatibility; OMI is the v2.5 structure made for imaging, and its
  IPC segment carries exactly what the RIS needs to link the images to its order (Accession
  Number, Requested Procedure ID, Study Instance UID), one IPC per study, with no Z-segment.
  The mapping, field by field, is in ``build_order_archived``.

Both set MSH-10 from the caller's control id, so a retry resends the SAME id and the receiver
can discard the duplicate (v2.5 ch. 2, 2.9: the control id is what an ACK's MSA-2 echoes).

Why our own ``escape`` and not ``hl7.util.escape``: python-hl7 0.4.5 also turns every
non-ASCII character into a ``\\Xhh\\`` hex escape (NICOLÒ becomes ``NICOL\\Xd2\\``, which a RIS
shows verbatim) and writes control characters as ``\\X 1\\`` (a formatting bug). We declare
ISO 8859-1 in MSH-18 and send Latin-1 letters as they are; only the delimiters are escaped
(v2.5 2.7.4).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

import hl7  # type: ignore[import-untyped]
from anyascii import anyascii

VERSION = "2.5"
CHARACTER_SET = "8859/1"  # MSH-18, HL7 table 0211: ISO 8859-1 (Latin-1)
MAX_CONTROL_ID = 20  # MSH-10 is ST(20) in v2.5
ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")  # HL7 table 0008
ACCEPTED = ("AA", "CA")  # application accept; commit accept (enhanced mode)
SEXES = ("F", "M", "O", "U", "A", "N")  # HL7 table 0001

#: The code that tells the RIS "images imported from outside, not an examination performed
#: here": it routes the order to no reading and no billing worklist. Local coding system "L"
#: (HL7 table 0396). It is sent in ORC-16 and OBR-4 and as IPC-4 (see build_order_archived).
EXTERNAL_IMPORT = ("EXTIMPORT", "External study import", "L")
INSTANCE_COUNT = ("EXTIMPORT-COUNT", "Instances archived", "L")
STUDY_DESCRIPTION = ("EXTIMPORT-DESC", "Study description", "L")

_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}


@dataclass(frozen=True)
class MessageIds:
    """The MSH values of one message: who sends it to whom, when, with which control id.

    ``control_id`` (MSH-10) is chosen by the caller and kept with the job, so that every
    attempt of the same phase sends the same id.
    """

    control_id: str
    timestamp: datetime
    sending_application: str = "PACSBRIDGE"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    processing_id: str = "P"  # MSH-11, table 0103: P production, T training, D debugging


@dataclass(frozen=True)
class PatientRef:
    """A patient as one system knows it: id within an issuer (assigning authority)."""

    patient_id: str
    issuer: str
    family_name: str
    given_name: str
    birth_date: date | None = None
    sex: str = ""


@dataclass(frozen=True)
class OrderRef:
    """The RIS order the import was launched for."""

    number: str
    accession_number: str
    description: str = ""


@dataclass(frozen=True)
class ArchivedStudy:
    """One study of the import and how many of its instances the PACS now holds."""

    study_instance_uid: str
    instance_count: int
    description: str = ""


@dataclass(frozen=True)
class Ack:
    """What an acknowledgement says (MSA-1, MSA-2, MSA-3 or the ERR text)."""

    code: str
    control_id: str
    text: str = ""

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED


def build_merge(ids: MessageIds, target: PatientRef, source: PatientRef) -> str:
    """ADT^A40: merge the external patient ``source`` into the RIS patient ``target``.

    v2.5 3.3.40: PID identifies the surviving patient, MRG-1 the prior patient identifier
    that is merged away; MRG-7 repeats the prior name so that the receiver can log what it
    merged. EVN-2 (recorded time) is the message time.
    """
    return _message(
        _msh(ids, "ADT^A40^ADT_A39"),
        _segment("EVN", "A40", _ts(ids.timestamp)),
        _pid(target),
        _segment("MRG", _cx(source), "", "", "", "", "", _xpn(source)),
    )


def build_order_archived(
    ids: MessageIds,
    patient: PatientRef,
    order: OrderRef,
    studies: list[ArchivedStudy],
    discontinued_reason: str | None = None,
) -> str:
    """OMI^O23: tell the RIS that the order's images are archived, or that the import stopped.

    Mapping (v2.5 ch. 4, ORC/OBR/IPC; ch. 7, OBX):

    - ORC-1/ORC-5 (tables 0119/0038): ``SC``/``CM`` (status changed, completed) when archived;
      with ``discontinued_reason``: ``OD``/``DC`` (discontinued) if some instances were
      archived, ``OC``/``CA`` (cancelled) if none were. These are filler-side notifications:
      the import fills the order the RIS gave us.
    - ORC-2/OBR-2 and ORC-3/OBR-3: the RIS order number, as placer and filler number: the
      RIS issued it and the import fills it, and RIS interfaces differ in which one they look
      up. ORC-9: the message time.
    - ORC-16, OBR-4 and IPC-4: ``EXTIMPORT`` (external import: no reading, no billing).
      OBR-4 carries the order description as its text. OBR-18 and IPC-1: Accession Number
      (OBR-18 as in IHE RAD's v2.3.1 messages, IPC-1 as in v2.5).
    - NTE after OBR: the reason, when discontinued.
    - Per study k (1-based, in the order given): the k-th IPC (IPC-3 Study Instance UID,
      IPC-2 the order number as Requested Procedure ID) and OBX with sub-id k: the number of
      instances archived (NM) and the study description (ST).

    Raises:
        ValueError: ``studies`` is empty. OMI^O23 needs at least one IPC, and IPC-3 is
            required: for a stopped import, pass the studies it was for, each with the
            instances actually archived (0 when none).
    """
    if not studies:
        raise ValueError("OMI^O23 needs at least one study (IPC is required)")
    control, status = _order_status(studies, discontinued_reason)
    return _message(
        _msh(ids, "OMI^O23^OMI_O23"),
        _pid(patient),
        _orc(ids, order, control, status),
        _obr(order),
        *_notes(discontinued_reason),
        *_observations(studies),
        *(_ipc(order, study) for study in studies),
    )


def read_ack(message: str) -> Ack:
    """Read MSA-1 (acknowledgement code), MSA-2 (the control id it answers) and the text.

    The text is MSA-3 when present, else the ERR segments' user message (ERR-8), HL7 error
    text (ERR-3.2) or v2.3-style code text (ERR-1.4.2) (v2.5 ch. 2, MSA and ERR).

    Raises:
        ValueError: the answer is not an HL7 acknowledgement with a known MSA-1 code.
    """
    parsed = _parse(message)
    code = _get(parsed, "MSA.1")
    if code not in ACK_CODES:
        raise ValueError(f"not an HL7 acknowledgement: MSA-1 is {code!r}")
    return Ack(code, _get(parsed, "MSA.2"), _get(parsed, "MSA.3") or _error_text(parsed))


def escape(value: str) -> str:
    """A value made safe for one HL7 component (v2.5 2.7.4), in Latin-1.

    Delimiters become escape sequences; control characters (a CR would end the segment)
    become spaces; letters outside Latin-1 are transliterated (Romanian Ș becomes S), since
    MSH-18 declares ISO 8859-1 and the RIS could not store them anyway.
    """
    return "".join(_escape_char(char) for char in value)


# --- segments --------------------------------------------------------------------------


def _msh(ids: MessageIds, message_type: str) -> str:
    """MSH (v2.5 ch. 2): MSH-15/16 empty, so original acknowledgement mode applies (2.9)."""
    _check_control_id(ids.control_id)
    fields = [
        escape(ids.sending_application),
        escape(ids.sending_facility),
        escape(ids.receiving_application),
        escape(ids.receiving_facility),
        _ts(ids.timestamp),
        "",
        message_type,
        ids.control_id,
        escape(ids.processing_id),
        VERSION,
        *([""] * 5),
        CHARACTER_SET,
    ]
    return "MSH|^~\\&|" + "|".join(fields)


def _check_control_id(control_id: str) -> None:
    """MSH-10 is echoed verbatim in MSA-2: 1-20 characters, none of them needing escapes."""
    if not 0 < len(control_id) <= MAX_CONTROL_ID or escape(control_id) != control_id:
        raise ValueError(f"MSH-10 must be 1 to {MAX_CONTROL_ID} plain characters")


def _pid(patient: PatientRef) -> str:
    """PID (v2.5 ch. 3): PID-3 id^^^issuer, PID-5 family^given, PID-7 birth date, PID-8 sex."""
    sex = patient.sex.upper() if patient.sex.upper() in SEXES else ""
    birth = patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
    return _segment("PID", "1", "", _cx(patient), "", _xpn(patient), "", birth, sex)


def _orc(ids: MessageIds, order: OrderRef, control: str, status: str) -> str:
    number = _components(order.number)
    fields = ["" for _ in range(16)]
    fields[0:5] = [control, number, number, "", status]
    fields[8] = _ts(ids.timestamp)
    fields[15] = _components(*EXTERNAL_IMPORT)
    return _segment("ORC", *fields)


def _obr(order: OrderRef) -> str:
    number = _components(order.number)
    service = _components(EXTERNAL_IMPORT[0], order.description or EXTERNAL_IMPORT[1], "L")
    fields = ["" for _ in range(18)]
    fields[0:4] = ["1", number, number, service]
    fields[17] = escape(order.accession_number)
    return _segment("OBR", *fields)


def _notes(reason: str | None) -> list[str]:
    """NTE-2 ``L``: the comment comes from the filler (table 0105)."""
    return [_segment("NTE", "1", "L", escape(reason))] if reason else []


def _observations(studies: list[ArchivedStudy]) -> list[str]:
    rows: list[tuple[int, str, tuple[str, str, str], str]] = []
    for k, study in enumerate(studies, start=1):
        rows.append((k, "NM", INSTANCE_COUNT, str(study.instance_count)))
        if study.description:
            rows.append((k, "ST", STUDY_DESCRIPTION, study.description))
    return [_obx(n, *row) for n, row in enumerate(rows, start=1)]


def _obx(set_id: int, sub_id: int, kind: str, code: tuple[str, str, str], value: str) -> str:
    """OBX (v2.5 ch. 7): OBX-4 sub-id links it to the k-th IPC; OBX-11 ``F`` final."""
    code_field = _components(*code)
    fields = [str(set_id), kind, code_field, str(sub_id), escape(value), "", "", "", "", "", "F"]
    return _segment("OBX", *fields)


def _ipc(order: OrderRef, study: ArchivedStudy) -> str:
    """IPC (v2.5 ch. 4): IPC-4 (Scheduled Procedure Step ID) is ``EXTIMPORT``: none exists."""
    return _segment(
        "IPC",
        escape(order.accession_number),
        escape(order.number),
        escape(study.study_instance_uid),
        EXTERNAL_IMPORT[0],
    )


def _order_status(studies: list[ArchivedStudy], reason: str | None) -> tuple[str, str]:
    """ORC-1 and ORC-5 for the outcome (tables 0119 and 0038)."""
    if reason is None:
        return "SC", "CM"
    if any(study.instance_count > 0 for study in studies):
        return "OD", "DC"
    return "OC", "CA"


# --- data types and assembly -------------------------------------------------------------


def _cx(patient: PatientRef) -> str:
    """CX: ID^^^assigning authority (v2.5 ch. 2A)."""
    return _components(patient.patient_id, "", "", patient.issuer)


def _xpn(patient: PatientRef) -> str:
    """XPN: family^given (v2.5 ch. 2A)."""
    return _components(patient.family_name, patient.given_name)


def _ts(moment: datetime) -> str:
    """TS: YYYYMMDDHHMMSS, with the UTC offset when the time is aware (v2.5 ch. 2A)."""
    return moment.strftime("%Y%m%d%H%M%S%z")


def _components(*values: str) -> str:
    return "^".join(escape(value) for value in values).rstrip("^")


def _segment(name: str, *fields: str) -> str:
    return "|".join((name, *fields)).rstrip("|")


def _message(*segments: str) -> str:
    return "\r".join(segments) + "\r"


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if unicodedata.category(char) == "Cc":
        return " "
    return char if ord(char) <= 0xFF else escape(anyascii(char))  # ASCII out: no recursion


# --- reading -----------------------------------------------------------------------------


def _parse(message: str) -> hl7.Message:
    """Parse with python-hl7; some peers end segments with CR LF or LF: accept them too."""
    text = message.replace("\r\n", "\r").replace("\n", "\r")
    try:
        return hl7.parse(text)
    except (hl7.ParseException, IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"not an HL7 message: {exc}") from exc


def _get(parsed: hl7.Message, key: str) -> str:
    """One value by python-hl7 accessor (``"MSA.1"``, ``"ERR.F3.R1.C2"``), unescaped; or ``""``."""
    try:
        return str(parsed[key]).strip()
    except (IndexError, KeyError):
        return ""


def _error_text(parsed: hl7.Message) -> str:
    keys = ("ERR.F8", "ERR.F3.R1.C2", "ERR.F1.R1.C4.S2")  # ERR-8, ERR-3.2, ERR-1.4.2
    return next((text for key in keys if (text := _get(parsed, key))), "")
