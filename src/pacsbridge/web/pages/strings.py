"""What the pages' JavaScript shows, translated on the server and handed over as JSON.

The msgids are marked with ``N_`` so ``pybabel extract -k N_`` finds them; the JavaScript only
fills ``{placeholders}``. Phase and final texts come from the message catalogue
(``pacsbridge.messages``), the same words the API answers; the phases' messages arrive already
said in the page's language in the progress JSON (``imports.monitor``).
"""

from __future__ import annotations

from typing import Any

from pacsbridge.imports.lifecycle import ImportState, PhaseState
from pacsbridge.imports.pipeline import PHASES
from pacsbridge.messages import text
from pacsbridge.web.pages import view
from pacsbridge.web.pages.i18n import N_, gettext

#: Manual §6, "Token Not Found or Expired": what to do, not the server's words.
TOKEN_EXPIRED = N_(
    "The session of this import has expired (Token Not Found or Expired): close this window "
    "and start the import again from the RIS."
)

UPLOAD = {
    "reading": N_("Reading the chosen files..."),
    "counts": N_("{files} files to send, {size} in all"),
    "modeDicomdir": N_("DICOMDIR found: only the files it lists are sent."),
    "modeScan": N_("No DICOMDIR: the DICOM files found in the folder are sent."),
    "modeBrokenDicomdir": N_("Unreadable DICOMDIR: the DICOM files found in the folder are sent."),
    "modeUnresolvedDicomdir": N_(
        "The DICOMDIR's paths do not match the files (files chosen without their folders): "
        "the DICOM files themselves are sent, without the DICOMDIR."
    ),
    "severalMedia": N_(
        "The chosen folder holds {count} media ({media}): one import sends one. Choose which "
        "one to send now:"
    ),
    "leftOut": N_("Left out: {media} (another medium: import it afterwards, on its own)."),
    "missing": N_("{count} files listed in the DICOMDIR are missing from the media."),
    "skipped": N_("{count} files left out (not DICOM: programs, web pages, other files)."),
    "documents": N_(
        "{count} documents (PDF, pictures) sent too: choose on the confirmation screen which "
        "ones to import; none is imported unless ticked."
    ),
    "unknown": N_("{count} files without the DICOM marker are sent too: the server decides."),
    "nothing": N_("Nothing to send: no DICOM file found in what was chosen."),
    "patientsTitle": N_("Patients and studies in the DICOMDIR"),
    "patientLine": N_("{name} – ID {id} – {birth}"),
    "born": N_("born {date}"),
    "noBirthDate": N_("birth date not present"),
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
    "tokenExpired": TOKEN_EXPIRED,
}

ACTIONS = {
    "confirming": N_("Confirming the import..."),
    "cancelling": N_("Cancelling the import..."),
    "failed": N_("Operation failed: {reason}"),
    "analysing": N_("The server is analysing the study..."),
    "rechecking": N_("Checking the PACS again..."),
    "recheckFailed": N_("The check could not be repeated: {reason}"),
    "tokenExpired": TOKEN_EXPIRED,
}

MONITOR = {
    "timeout": N_(
        "Timeout: no update from the server for {seconds} seconds (since {time}). Call "
        "technical support with the support id {id}."
    ),
    "offline": N_("The server does not answer: new attempt in a few seconds..."),
    "tokenExpired": TOKEN_EXPIRED,
}

#: The closing text under the phases, one per state: the window may be closed only while the
#: work goes on by itself or once it is over (manual §5, §6 "Errore" and "Timeout").
CLOSING = {
    "running": N_(
        "Import process running. This window may be closed: the process goes on in the background"
    ),
    "completed": N_("Import completed: the study is on the PACS. This window may be closed"),
    "failed": N_("Import failed: nothing more will happen by itself. Call technical support"),
    "cancelled": N_(
        "Import cancelled: the temporary files have been deleted. This window may be closed"
    ),
    "timeout": N_(
        "No news from the server: do not start the import again, call technical support at once"
    ),
}
CLOSING_CSS = {
    "running": "alert-info",
    "completed": "alert-success",
    "failed": "alert-danger",
    "cancelled": "alert-secondary",
    "timeout": "alert-warning",
}

#: What the audit log's codes mean to an operator (the codes stay in the database and the API).
EVENTS = {
    "launch.created": N_("Launched from the RIS"),
    "import.created": N_("Import created"),
    "images.viewed": N_("Images viewed"),
    "upload.started": N_("Transfer started"),
    "upload.completed": N_("Transfer completed"),
    "upload.refused": N_("Transfer refused"),
    "analysis.started": N_("Analysis started"),
    "analysis.completed": N_("Analysis completed"),
    "analysis.failed": N_("Analysis failed"),
    "analysis.problem": N_("Problem on the media"),
    "analysis.repeated": N_("PACS check repeated"),
    "duplicates.found": N_("Study already on the PACS"),
    "duplicates.conflict": N_("Study UID on the PACS under another patient"),
    "duplicates.partial": N_("Study partially on the PACS"),
    "duplicates.unreachable": N_("PACS unreachable"),
    "duplicates.queried": N_("PACS asked about the study (duplicate check)"),
    "identity.acknowledged": N_("Different patient confirmed by the operator"),
    "import.confirmed": N_("Import confirmed"),
    "documents.added": N_("Documents of the media added to the study"),
    "import.cancelled": N_("Import cancelled"),
    "import.failed": N_("Import failed"),
    "import.completed": N_("Import completed"),
    "phase.started": N_("Phase started"),
    "phase.completed": N_("Phase completed"),
    "phase.failed": N_("Phase failed"),
    "phase.retry": N_("Phase to be retried"),
    "phase.skipped": N_("Phase not configured"),
    "phase.cancelled": N_("Phase stopped by the cancel"),
    "store.started": N_("Sending to the PACS started"),
    "store.completed": N_("Sending to the PACS completed"),
    "store.queried": N_("PACS asked to list the study's images (confirmation)"),
    "store.transcoded": N_("Images converted for the PACS"),
    "patient.merged": N_("The PACS merged the patient (ADT^A40)"),
    "files.deleted": N_("Temporary files deleted"),
    "ris.discontinued": N_("RIS told: import not done"),
    "support.retried": N_("Phase started again by support"),
    "support.aborted": N_("Import aborted by support"),
    "support.rechecked": N_("PACS check repeated by support"),
}
OUTCOMES = {"ok": N_("done"), "error": N_("error")}

#: Phase states whose attempts left mean something: the phase runs or will be tried again.
ATTEMPT_STATES = (PhaseState.RUNNING, PhaseState.RETRYING)


def _translate(table: dict[str, str], lang: str) -> dict[str, str]:
    return {key: gettext(lang, message) for key, message in table.items()}


def upload(lang: str) -> dict[str, str]:
    return _translate(UPLOAD, lang)


def actions(lang: str) -> dict[str, str]:
    return _translate(ACTIONS, lang)


def monitor(lang: str, import_id: int) -> dict[str, Any]:
    """Monitor strings; final texts in ``lang`` with ``{reason}`` left open (phases arrive said)."""
    finals = {
        state: text(key, lang, reason="{reason}", id=import_id)
        for state, key in {**view.FINAL_KEYS, "running": "final.running"}.items()
    }
    return {
        **_translate(MONITOR, lang),
        "finals": finals,
        "badges": view.PHASE_BADGES,
        "phases": phase_labels(lang),
        "finalStates": list(view.FINAL_STATES),
        "attemptStates": list(ATTEMPT_STATES),
        "closing": _translate(CLOSING, lang),
        "closingCss": CLOSING_CSS,
        "events": _translate(EVENTS, lang),
        "outcomes": _translate(OUTCOMES, lang),
    }


def phase_labels(lang: str) -> dict[str, str]:
    return {name: text(f"phase.{name}", lang) for name, _ in PHASES}


def phase_text(phase: dict[str, Any], lang: str) -> str:
    """The state cell: the phase's message, said in ``lang`` by ``imports.monitor``; a waiting
    phase without one says "Da Elaborare"."""
    if not phase.get("message") and phase["state"] == PhaseState.PENDING:
        return text("state.pending", lang)
    return str(phase.get("message") or "")


def phase_row(phase: dict[str, Any], lang: str) -> dict[str, Any]:
    state = phase["state"]
    return {
        **phase,
        "label": text(f"phase.{phase['phase']}", lang),
        "badge": view.PHASE_BADGES.get(state, "text-bg-secondary"),
        "text": phase_text(phase, lang),
        "attempts": phase.get("attempts_left") if state in ATTEMPT_STATES else None,
        "started": view.moment(phase.get("started_at")),
        "ended": view.moment(phase.get("ended_at")),
    }


def final_row(progress: dict[str, Any], lang: str) -> dict[str, str]:
    state = progress["state"]
    css = {ImportState.COMPLETED: "text-bg-success", ImportState.FAILED: "text-bg-danger"}.get(
        state, "text-bg-primary"
    )
    if state == ImportState.CANCELLED:
        css = "text-bg-secondary"
    return {
        "state": state,
        "css": css,
        "text": view.final_message(state, progress.get("error"), progress["id"], lang),
    }


def closing(state: str, lang: str) -> dict[str, str]:
    """The closing text and its colour for an import in ``state``."""
    key = state if state in CLOSING else "running"
    return {"text": gettext(lang, CLOSING[key]), "css": CLOSING_CSS[key], "state": key}


def event_row(event: dict[str, Any], lang: str) -> dict[str, Any]:
    """An audit event as the operator reads it: what happened and how it went, in words."""
    kind, outcome = event.get("kind", ""), event.get("outcome") or ""
    return {
        **event,
        "label": gettext(lang, EVENTS[kind]) if kind in EVENTS else kind,
        "outcome_label": gettext(lang, OUTCOMES[outcome]) if outcome in OUTCOMES else outcome,
    }
