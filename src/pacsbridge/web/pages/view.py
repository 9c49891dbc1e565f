"""Presentation of the read models: dates as operators write them, gravity, badges, names.

Pure functions over the documents of ``imports.views`` and ``imports.monitor``; the templates
only lay them out. Every value stays a plain string: Jinja's autoescape does the escaping.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from pacsbridge.imports import lifecycle
from pacsbridge.imports.lifecycle import PacsStatus, PhaseState
from pacsbridge.imports.views import STUDY_MESSAGES, specific
from pacsbridge.messages import CATALOGUE, text
from pacsbridge.web.pages.i18n import N_, gettext

#: Verification message key → Bootstrap colour (manual §4.A: "styled by gravity").
GRAVITY = {
    "identity.match": "success",
    "identity.fiscal_code_match": "success",
    "identity.name_format_different": "warning",
    # a warning, never reassurance: it sits under a red "NOME NON CORRISPONDE"
    "identity.name_similar": "warning",
}
STUDY_GRAVITY = {"present": "warning", "partial": "warning", "conflict": "danger"}

#: The five badges of "Importazioni Precedenti" (manual §3.B): colour and label msgid.
BADGES = {
    "request_created": ("text-bg-secondary", N_("Request created")),
    "waiting": ("text-bg-warning", N_("Waiting for processing")),
    "in_progress": ("text-bg-primary", N_("In progress")),
    "completed": ("text-bg-success", N_("Completed / OK")),
    "failed": ("text-bg-danger", N_("Error")),
    # not one of the manual's five: a cancel is the operator's choice, not a failure
    "cancelled": ("text-bg-secondary", N_("Cancelled")),
}

PHASE_BADGES = {
    PhaseState.PENDING: "text-bg-secondary",
    PhaseState.RUNNING: "text-bg-primary",
    PhaseState.RETRYING: "text-bg-warning",
    PhaseState.COMPLETED: "text-bg-success",
    PhaseState.SKIPPED: "text-bg-light border",
    PhaseState.FAILED: "text-bg-danger",
    PhaseState.CANCELLED: "text-bg-secondary",
}
FINAL_KEYS = {
    "completed": "final.completed",
    "failed": "final.failed",
    "cancelled": "final.cancelled",
}
FINAL_STATES = tuple(sorted(lifecycle.FINAL))


def day(value: str | date | None) -> str:
    """ISO date → ``31/12/2024``; empty when absent."""
    if not value:
        return ""
    parsed = value if isinstance(value, date) else _parse_date(value)
    return parsed.strftime("%d/%m/%Y") if parsed else str(value)


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def moment(value: str | None) -> str:
    """ISO timestamp (UTC) → local ``31/12/2024 09:14:54``."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%d/%m/%Y %H:%M:%S")
    except ValueError:
        return value


def age(birth: str | date | None, today: date) -> int | None:
    born = birth if isinstance(birth, date) else _parse_date(birth or "")
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def size(value: int) -> str:
    """Bytes as an operator reads them: ``1,2 MB``."""
    amount, unit = float(value), "B"
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            break
        amount /= 1024
    return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}".replace(".", ",")


def person_name(value: str | None) -> str:
    """DICOM PN (``CERRI^SIMONE``, maybe with ``=`` groups) → ``CERRI SIMONE``."""
    alphabetic = (value or "").split("=")[0]
    return " ".join(part.strip() for part in alphabetic.split("^") if part.strip())


def message(key: str, lang: str, **params: Any) -> str:
    return text(key, lang, **params) if key in CATALOGUE else key


def patient_messages(patient: dict[str, Any], lang: str) -> list[dict[str, str]]:
    """The verification messages of one DICOM patient, each with its colour."""
    keys = patient.get("message_keys") or []
    found = [{"text": message(k, lang), "gravity": GRAVITY.get(k, "danger")} for k in keys]
    hint_keys = patient.get("hint_keys")
    if hint_keys is None:  # analysed before the keys were stored: the Italian words
        hints = [{"text": h, "gravity": "warning"} for h in patient.get("hints", [])]
    else:
        hints = [
            {"text": message(k, lang), "gravity": GRAVITY.get(k, "warning")} for k in hint_keys
        ]
    return found + hints


def is_full_match(patients: list[dict[str, Any]]) -> bool:
    """True only when every DICOM patient matches: anything else changes the buttons."""
    return bool(patients) and all(p.get("verdict") == "match" for p in patients)


def discrepancies(patients: list[dict[str, Any]], lang: str) -> list[str]:
    """What the second confirmation dialog repeats: each patient's non-matching messages."""
    lines = []
    for patient in patients:
        bad = [m["text"] for m in patient_messages(patient, lang) if m["gravity"] != "success"]
        if patient.get("verdict") != "match" and bad:
            lines.append(f"{person_name(patient.get('name'))}: {', '.join(bad)}")
    return lines


def study_messages(study: dict[str, Any], lang: str) -> list[dict[str, str]]:
    status = study.get("pacs_status", "unknown")
    key = STUDY_MESSAGES.get(status)
    if key is None:
        return []
    params = {
        "pacs_patient": person_name(study.get("pacs_patient", "")),  # TEST^TEST → TEST TEST
        "on_pacs": study.get("on_pacs", "?"),
        "on_media": study.get("instance_count"),
    }
    words = text(key, lang, **params)
    if status == "unknown" and specific(study.get("pacs_error")):
        words = study["pacs_error"]["message"]  # a refused TLS certificate, in ``lang`` already
    return [{"text": words, "gravity": STUDY_GRAVITY.get(status, "danger")}]


#: A series key: what the thumbnail route accepts in place of a Series Instance UID.
SERIES_KEY_PATTERN = r"^[0-9a-f]{16}$"


def series_key(study_uid: object, series_uid: object) -> str:
    """Our name for a series in URLs and cache files: 16 hex digits of a SHA-256.

    Pages address a series by the import id and this key, never by the Series Instance UID,
    so nothing a medium writes can reach an address or a file name. Study and series UIDs
    are both hashed because a Series Instance UID alone need not be unique on a hostile medium.
    """
    text = f"{study_uid or ''}\x00{series_uid or ''}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def selectable(study: dict[str, Any]) -> bool:
    """Studies the operator may send: the same answer confirmation.py enforces."""
    return lifecycle.sendable(study.get("pacs_status", PacsStatus.UNKNOWN))


def badge(name: str, lang: str) -> dict[str, str]:
    css, label = BADGES.get(name, BADGES["in_progress"])
    return {"css": css, "label": gettext(lang, label)}


def problem_messages(problems: list[dict[str, Any]], lang: str) -> list[str]:
    return [
        " – ".join(filter(None, [message(p.get("code", ""), lang), p.get("file") or ""]))
        for p in problems
    ]


def final_message(state: str, error: dict[str, Any] | None, import_id: int, lang: str) -> str:
    """The final text; ``error`` as the read models give it (its message in ``lang``)."""
    reason = (error or {}).get("message", "")
    return text(FINAL_KEYS.get(state, "final.running"), lang, reason=reason, id=import_id)
