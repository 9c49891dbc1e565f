"""The message catalogue: every text a user or an integrator reads, in Italian and English.

Why a catalogue and not literals: the operator UI speaks Italian by default (labels as in the
manual, docs/specifications.md), the API answers carry the same Italian messages, and a
documentation test checks that every key used in code exists here in both languages. Code refers to
keys; only this module (and the templates) hold the Italian words.
"""

from __future__ import annotations

from typing import Any

from pacsbridge.messages_fse import RETRIEVALS

DEFAULT_LANGUAGE = "it"
LANGUAGES = ("it", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    # --- identity verdicts (manual §4.A) -------------------------------------------------
    "identity.match": {"it": "PAZIENTE CORRISPONDE", "en": "PATIENT MATCHES"},
    "identity.name_mismatch": {"it": "NOME NON CORRISPONDE", "en": "NAME DOES NOT MATCH"},
    "identity.name_format_different": {"it": "FORMATO DIVERSO", "en": "DIFFERENT FORMAT"},
    "identity.name_missing": {"it": "NOME ASSENTE", "en": "NAME MISSING"},
    "identity.name_similar": {
        "it": "NOME SIMILE: possibile errore di battitura, verificare",
        "en": "SIMILAR NAME: possible typing error, check",
    },
    "identity.birth_date_mismatch": {
        "it": "DATA NASCITA NON CORRISPONDE",
        "en": "BIRTH DATE DOES NOT MATCH",
    },
    "identity.birth_date_missing": {"it": "DATA NASCITA ASSENTE", "en": "BIRTH DATE MISSING"},
    "identity.sex_mismatch": {"it": "SESSO NON CORRISPONDE", "en": "SEX DOES NOT MATCH"},
    "identity.sex_missing": {"it": "SESSO ASSENTE", "en": "SEX MISSING"},
    "identity.fiscal_code_match": {
        "it": "CODICE FISCALE CORRISPONDE",
        "en": "FISCAL CODE MATCHES",
    },
    "identity.fiscal_code_mismatch": {
        "it": "CODICE FISCALE NON CORRISPONDE",
        "en": "FISCAL CODE DOES NOT MATCH",
    },
    "identity.patient_id_conflict": {
        "it": "STESSO ID PAZIENTE CON NOMI DIVERSI SUL SUPPORTO",
        "en": "SAME PATIENT ID WITH DIFFERENT NAMES ON THE MEDIA",
    },
    # --- studies on the confirmation screen (manual §4.B) --------------------------------
    "study.already_on_pacs": {
        "it": "Già presente su PACS, rimosso da importazione",
        "en": "Already on the PACS, removed from the import",
    },
    "study.conflict_other_patient": {
        "it": "Conflitto: lo Study UID è già sul PACS con un altro paziente ({pacs_patient})",
        "en": "Conflict: the Study UID is on the PACS under another patient ({pacs_patient})",
    },
    "study.partially_on_pacs": {
        "it": "Parzialmente presente su PACS ({on_pacs} di {on_media} immagini)",
        "en": "Partially on the PACS ({on_pacs} of {on_media} instances)",
    },
    # --- problems found in the media -------------------------------------------------------
    "media.dicomdir_missing_file": {
        "it": "File indicato nel DICOMDIR ma assente sul supporto",
        "en": "File listed in the DICOMDIR but missing from the media",
    },
    "media.unreferenced_file": {
        "it": "File non indicato nel DICOMDIR: escluso",
        "en": "File not listed in the DICOMDIR: left out",
    },
    "media.dicomdir_unreadable": {
        "it": "DICOMDIR illeggibile: cerco i file DICOM nelle cartelle",
        "en": "Unreadable DICOMDIR: looking for DICOM files in the folders",
    },
    "media.unreadable_file": {
        "it": "File DICOM illeggibile o troncato: escluso",
        "en": "Unreadable or truncated DICOM file: left out",
    },
    "media.not_dicom": {
        "it": "File non DICOM: ignorato",
        "en": "Not a DICOM file: ignored",
    },
    "media.no_dicom": {
        "it": "Nessun file DICOM trovato nel supporto",
        "en": "No DICOM file found on the media",
    },
    "media.duplicate_instance": {
        "it": "Stessa immagine (SOP Instance UID) presente più volte",
        "en": "Same instance (SOP Instance UID) found more than once",
    },
    "media.missing_uid": {
        "it": "File DICOM senza UID di studio, serie o istanza: escluso",
        "en": "DICOM file without study, series or instance UID: left out",
    },
    "media.invalid_uid": {"it": "UID non valido: file escluso", "en": "Invalid UID: file left out"},
    "document.too_large": {
        "it": "Documento troppo grande: non importato",
        "en": "Document too large: not imported",
    },
    "document.unreadable": {
        "it": "Documento illeggibile o danneggiato: non importato",
        "en": "Unreadable or damaged document: not imported",
    },
    "pacs.unreachable": {
        "it": "PACS non raggiungibile: controllo duplicati non eseguito, riprovare",
        "en": "PACS unreachable: duplicate check not done, try again",
    },
    # --- pipeline phases on the monitor page (manual §5) ---------------------------------
    "phase.verify": {"it": "Verifica Studio", "en": "Study verification"},
    "phase.reconcile": {"it": "Riconciliazione", "en": "Reconciliation"},
    "phase.send": {"it": "Invio al PACS", "en": "Sending to the PACS"},
    "phase.merge": {"it": "Merge paziente", "en": "Patient merge"},
    "phase.notify": {"it": "Invio ordine RIS", "en": "RIS order message"},
    "phase.final": {"it": "Fine procedura", "en": "End of procedure"},
    "state.pending": {"it": "Da Elaborare", "en": "To do"},
    "state.running": {
        "it": "In corso ({attempts} tentativi rimasti)",
        "en": "Running ({attempts} attempts left)",
    },
    "state.retrying": {
        "it": "In attesa di riprovare ({attempts} tentativi rimasti): {reason}",
        "en": "Waiting to retry ({attempts} attempts left): {reason}",
    },
    "state.failed": {"it": "Errore: {reason}", "en": "Error: {reason}"},
    "state.skipped": {"it": "non configurato", "en": "not configured"},
    "done.verify": {"it": "Studio Verificato", "en": "Study verified"},
    "done.reconcile": {
        "it": "Dati paziente dell'ordine RIS applicati",
        "en": "RIS identity applied",
    },
    "done.reconcile_off": {"it": "File inviati come ricevuti", "en": "Files sent as received"},
    "done.send": {"it": "Studio Archiviato ({count} immagini)", "en": "Study archived ({count})"},
    "done.merge": {"it": "Paziente unificato sul PACS", "en": "Patient merged on the PACS"},
    "done.notify": {"it": "Ordine RIS aggiornato", "en": "RIS order updated"},
    "final.completed": {"it": "Elaborazione Ultimata", "en": "Processing completed"},
    "final.cancelled": {
        "it": "Importazione annullata dall'operatore",
        "en": "Import cancelled by the operator",
    },
    "final.running": {"it": "Elaborazione in corso", "en": "Processing"},
    "final.failed": {
        "it": "Elaborazione fallita: {reason} (Id per assistenza: {id})",
        "en": "Processing failed: {reason} (support id: {id})",
    },
    "verify.failed": {
        "it": "Verifica fallita per {count} file: {files}",
        "en": "Verification failed for {count} files: {files}",
    },
    "send.refused": {
        "it": "Il PACS ha rifiutato {count} immagini: {detail}",
        "en": "The PACS refused {count} instances: {detail}",
    },
    "send.not_confirmed": {
        "it": "Il PACS non conferma {count} immagini: nuovo invio",
        "en": "The PACS does not confirm {count} instances: sending again",
    },
    # --- errors (errors.py) ----------------------------------------------------------------
    "error.internal": {
        "it": "Errore interno. Contattare l'assistenza con l'Id per assistenza",
        "en": "Internal error. Contact support with the support id",
    },
    "error.invalid_input": {
        "it": "Mancanza dati / Dati in ingresso non validi",
        "en": "Missing data / invalid input data",
    },
    "error.token": {"it": "Token Not Found or Expired", "en": "Token Not Found or Expired"},
    "error.viewer_link_expired": {
        "it": "Il link per vedere le immagini è scaduto: chiederne uno nuovo dal Fascicolo",
        "en": "The image link has expired: ask the health record for a new one",
    },
    "error.viewer_link_invalid": {
        "it": "Link per vedere le immagini non valido",
        "en": "Invalid image link",
    },
    "error.viewer_not_installed": {
        "it": "Visualizzatore immagini non installato su questo server: avvisare l'assistenza",
        "en": "The image viewer is not installed on this server: call support",
    },
    "error.not_acceptable": {
        "it": "Formato delle immagini richiesto non disponibile",
        "en": "Requested image format not available",
    },
    "error.api_key": {"it": "Chiave API mancante o non valida", "en": "Missing or invalid API key"},
    "error.staff_sign_in": {
        "it": "Nome utente o password non validi, oppure account bloccato: riprovare più tardi",
        "en": "Wrong user name or password, or account locked: try again later",
    },
    "error.directory_unavailable": {
        "it": "Directory non raggiungibile: riprovare più tardi o accedere con un account locale",
        "en": "Directory unreachable: try again later or sign in with a local account",
    },
    "error.staff_session": {
        "it": "Sessione scaduta o assente: accedere di nuovo",
        "en": "Session expired or missing: sign in again",
    },
    "error.staff_forbidden": {
        "it": "Operazione non consentita al proprio ruolo",
        "en": "Your role does not allow this operation",
    },
    "error.csrf": {
        "it": "Richiesta non valida: ricaricare la pagina e riprovare",
        "en": "Invalid request: reload the page and try again",
    },
    "error.not_found": {"it": "Elemento non trovato", "en": "Not found"},
    "error.conflict": {"it": "Operazione non consentita nello stato attuale", "en": "Conflict"},
    "error.request_too_large": {
        "it": "Richiesta troppo grande: al massimo {limit} byte",
        "en": "Request too large: at most {limit} bytes",
    },
    "error.request_timeout": {
        "it": "Richiesta interrotta: dati non ricevuti entro {seconds} secondi",
        "en": "Request interrupted: no data within {seconds} seconds",
    },
    "error.upload_wrong_offset": {
        "it": "Parte del file inviata alla posizione sbagliata: riprendere dal byte {received}",
        "en": "Upload part at the wrong offset: resume from byte {received}",
    },
    "error.identity_not_acknowledged": {
        "it": "Paziente non corrispondente o in formato diverso: confermare esplicitamente",
        "en": "Patient not matching or in a different format: confirm explicitly",
    },
    "error.analysis_failed": {"it": "Analisi fallita: {reason}", "en": "Analysis failed: {reason}"},
    "analysis.crashed": {"it": "errore imprevisto nell'analisi", "en": "unexpected analysis error"},
    "analysis.interrupted": {"it": "interrotta {count} volte", "en": "interrupted {count} times"},
    "final.cancelled_sent": {
        "it": "Importazione annullata: {stored} di {total} immagini già archiviate sul PACS",
        "en": "Import cancelled: {stored} of {total} instances already archived on the PACS",
    },
    "error.media": {"it": "Supporto non leggibile", "en": "Unreadable media"},
    "error.archive_unsafe": {
        "it": "Archivio ZIP non sicuro: {reason}",
        "en": "Unsafe ZIP archive: {reason}",
    },
    "error.archive_too_large": {
        "it": "Archivio ZIP troppo grande: {reason}",
        "en": "ZIP archive too large: {reason}",
    },
    "error.archive_broken": {
        "it": "Archivio ZIP danneggiato o incompleto: {reason}",
        "en": "Damaged or incomplete ZIP archive: {reason}",
    },
    "error.dicom_unreadable": {
        "it": "File DICOM illeggibile o troncato",
        "en": "Unreadable or truncated DICOM file",
    },
    "error.peer": {"it": "Errore di comunicazione con {peer}", "en": "Error talking to {peer}"},
    "error.peer_unavailable": {
        "it": "{peer} non raggiungibile",
        "en": "{peer} unreachable",
    },
    "error.peer_tls": {
        "it": "Connessione TLS con {peer} rifiutata: certificato non valido",
        "en": "TLS connection with {peer} refused: invalid certificate",
    },
    "error.peer_refused": {
        "it": "{peer} ha rifiutato la richiesta",
        "en": "{peer} refused the request",
    },
    "error.move_incomplete": {
        "it": "Recupero incompleto: mancano {missing} immagini",
        "en": "Incomplete retrieval: {missing} instances missing",
    },
    "error.store_not_confirmed": {
        "it": "Il PACS non conferma {missing} immagini inviate",
        "en": "The PACS does not confirm {missing} instances sent",
    },
    "error.verification_failed": {
        "it": "Verifica fallita per {count} file: {files}",
        "en": "Verification failed for {count} files: {files}",
    },
    "error.hl7_rejected": {
        "it": "Messaggio HL7 rifiutato: {reason}",
        "en": "HL7 message rejected: {reason}",
    },
    "error.storage_full": {
        "it": "Spazio su disco esaurito sul server pacsbridge",
        "en": "Disk space exhausted on the pacsbridge server",
    },
    **RETRIEVALS,
}


def text(key: str, lang: str = DEFAULT_LANGUAGE, **params: Any) -> str:
    """The message for ``key`` in ``lang``, with ``{params}`` filled in.

    A missing parameter leaves its placeholder visible rather than raising: a message must never
    be the reason an error page fails.
    """
    entry = CATALOGUE[key]
    template = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
