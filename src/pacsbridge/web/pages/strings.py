"""What the pages' JavaScript shows, translated on the server and handed over as JSON.

The msgids are marked with ``N_`` so ``pybabel extract -k N_`` finds them; the JavaScript only
fills ``{placeholders}``. Phase and final texts come from the message catalogue
(``pacsbridge.messages``), the same words the API answers.
"""

from __future__ import annotations

from typing import Any

from pacsbridge.imports.pipeline import PHASES
from pacsbridge.messages import text
from pacsbridge.web.pages import view
from pacsbridge.web.pages.i18n import N_, gettext

UPLOAD = {
    "reading": N_("Reading the chosen files..."),
    "counts": N_("{files} files to send, {size} in all"),
    "modeDicomdir": N_("DICOMDIR found: only the files it lists are sent."),
    "modeScan": N_("No DICOMDIR: the DICOM files found in the folder are sent."),
    "modeBrokenDicomdir": N_("Unreadable DICOMDIR: the DICOM files found in the folder are sent."),
    "missing": N_("{count} files listed in the DICOMDIR are missing from the media."),
    "skipped": N_("{count} files left out (not DICOM: programs, documents, pictures)."),
    "unknown": N_("{count} files without the DICOM marker are sent too: the server decides."),
    "nothing": N_("Nothing to send: no DICOM file found in what was chosen."),
    "patientsTitle": N_("Patients and studies in the DICOMDIR"),
    "patientLine": N_("{name} – ID {id} – born {birth}"),
    "studyLine": N_("{date} {description} – accession number {accession} – {modalities}"),
    "zipping": N_("Compressing ZIP..."),
    "sending": N_("TRANSFERRING THE STUDY..."),
    "progress": N_("{done} of {total} ({percent} %)"),
    "rate": N_("{speed}/s – time left {eta}"),
    "waiting": N_("Waiting for the server's confirmation..."),
    "analysing": N_("The server is analysing the study..."),
    "retrying": N_("Connection lost: new attempt {attempt} of {max} in {seconds} s..."),
    "failedNetwork": N_(
        "Transfer failed: the connection to the server was lost. Check the network and press "
        "“Compress and Send Study” again to resume; if the problem persists, call support "
        "with the support id {id}."
    ),
    "refused": N_("The server refused the study: {reason} (support id {id})"),
    "analysisFailed": N_("Analysis failed: {reason} (support id {id})"),
    "tooLarge": N_("The media is too large to send: {size} (at most {max})."),
}

ACTIONS = {
    "confirming": N_("Confirming the import..."),
    "cancelling": N_("Cancelling the import..."),
    "failed": N_("Operation failed: {reason}"),
    "analysing": N_("The server is analysing the study..."),
}

MONITOR = {
    "timeout": N_(
        "Timeout: no update from the server for {seconds} seconds (since {time}). Call "
        "technical support with the support id {id}."
    ),
    "offline": N_("The server does not answer: new attempt in a few seconds..."),
}


def _translate(table: dict[str, str], lang: str) -> dict[str, str]:
    return {key: gettext(lang, message) for key, message in table.items()}


def upload(lang: str) -> dict[str, str]:
    return _translate(UPLOAD, lang)


def actions(lang: str) -> dict[str, str]:
    return _translate(ACTIONS, lang)


def monitor(lang: str, import_id: int) -> dict[str, Any]:
    """Monitor strings; phase/final texts in ``lang`` with ``{reason}``/``{attempts}`` left open."""
    states = {}
    if lang != "it":  # stored phase messages are Italian; re-say the generic ones
        states = {
            "pending": text("state.pending", lang),
            "skipped": text("state.skipped", lang),
            "running": text("state.running", lang, attempts="{attempts}"),
        }
    finals = {
        state: text(key, lang, reason="{reason}", id=import_id)
        for state, key in {**view.FINAL_KEYS, "running": "final.running"}.items()
    }
    return {
        **_translate(MONITOR, lang),
        "states": states,
        "finals": finals,
        "badges": view.PHASE_BADGES,
        "phases": phase_labels(lang),
        "finalStates": list(view.FINAL_STATES),
    }


def phase_labels(lang: str) -> dict[str, str]:
    return {name: text(f"phase.{name}", lang) for name, _ in PHASES}


def phase_row(phase: dict[str, Any], lang: str) -> dict[str, Any]:
    state = phase["state"]
    message = phase.get("message") or ""
    if lang != "it" and state in ("pending", "skipped"):
        message = text(f"state.{state}", lang)
    elif lang != "it" and state == "running":
        message = text("state.running", lang, attempts=phase.get("attempts_left"))
    return {
        **phase,
        "label": text(f"phase.{phase['phase']}", lang),
        "badge": view.PHASE_BADGES.get(state, "text-bg-secondary"),
        "text": message,
        "started": view.moment(phase.get("started_at")),
        "ended": view.moment(phase.get("ended_at")),
    }


def final_row(progress: dict[str, Any], lang: str) -> dict[str, str]:
    state = progress["state"]
    css = {"completed": "text-bg-success", "failed": "text-bg-danger"}.get(state, "text-bg-primary")
    if state == "cancelled":
        css = "text-bg-secondary"
    return {
        "state": state,
        "css": css,
        "text": view.final_message(state, progress.get("error"), progress["id"], lang),
    }
