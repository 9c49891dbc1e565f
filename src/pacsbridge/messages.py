"""The message catalogue: every text a user or an integrator reads, in Italian and English.

Why a catalogue and not literals: the operator UI speaks Italian by default (labels as in seed
000), the API answers carry the same Italian messages, and a documentation test checks that every
key used in code exists here in both languages. Code refers to keys; only this module (and the
templates) hold the Italian words.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LANGUAGE = "it"
LANGUAGES = ("it", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    # --- identity verdicts (seed 000 §4.A) -------------------------------------------------
    "identity.match": {"it": "PAZIENTE CORRISPONDE", "en": "PATIENT MATCHES"},
    "identity.name_mismatch": {"it": "NOME NON CORRISPONDE", "en": "NAME DOES NOT MATCH"},
    "identity.name_format_different": {"it": "FORMATO DIVERSO", "en": "DIFFERENT FORMAT"},
    "identity.name_missing": {"it": "NOME ASSENTE", "en": "NAME MISSING"},
    "identity.name_similar": {"it": "nome simile", "en": "similar name"},
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
    # --- studies on the confirmation screen (seed 000 §4.B) --------------------------------
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
    "pacs.unreachable": {
        "it": "PACS non raggiungibile: controllo duplicati non eseguito, riprovare",
        "en": "PACS unreachable: duplicate check not done, try again",
    },
    # --- pipeline phases on the monitor page (seed 000 §5) ---------------------------------
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
    "error.api_key": {"it": "Chiave API mancante o non valida", "en": "Missing or invalid API key"},
    "error.csrf": {
        "it": "Richiesta non valida: ricaricare la pagina e riprovare",
        "en": "Invalid request: reload the page and try again",
    },
    "error.not_found": {"it": "Elemento non trovato", "en": "Not found"},
    "error.conflict": {"it": "Operazione non consentita nello stato attuale", "en": "Conflict"},
    "error.upload_wrong_offset": {
        "it": "Parte del file inviata alla posizione sbagliata: riprendere dal byte {received}",
        "en": "Upload part at the wrong offset: resume from byte {received}",
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
    # --- retrievals (FSE gateway, seed 002) ------------------------------------------------
    "retrieval.no_image_level": {
        "it": "Il PACS non risponde alle query C-FIND a livello IMAGE: immagini attese contate "
        "dalle serie e dal C-MOVE, accettate per studio",
        "en": "The PACS does not answer IMAGE-level C-FIND queries: expected instances counted "
        "from the series and the C-MOVE, admitted by study",
    },
    "retrieval.cfind_capped": {
        "it": "Il PACS ha limitato le risposte C-FIND a livello {level} ({returned} su "
        "{reported}): elenco incompleto, immagini accettate per studio",
        "en": "The PACS capped its {level}-level C-FIND answers ({returned} of {reported}): "
        "incomplete list, instances admitted by study",
    },
    "retrieval.cfind_cap_suspected": {
        "it": "Possibile limite silenzioso del PACS sulle risposte C-FIND a livello {level} "
        "({returned} risposte, numero tondo)",
        "en": "Possible silent PACS limit on {level}-level C-FIND answers ({returned} answers, "
        "a round number)",
    },
    "retrieval.cfind_cancelled": {
        "it": "Il PACS ha interrotto le risposte C-FIND a livello {level} (stato FE00: limite di "
        "risultati configurato sul PACS): immagini contate dalla serie e accettate per studio",
        "en": "The PACS stopped its {level}-level C-FIND answers (status FE00: a result limit "
        "configured on the PACS): instances counted from the series and admitted by study",
    },
    "retrieval.cfind_cap_confirmed": {
        "it": "Il C-MOVE ha inviato {extra} immagini oltre le {listed} elencate dal C-FIND: "
        "il PACS limita le risposte C-FIND",
        "en": "The C-MOVE sent {extra} instances beyond the {listed} the C-FIND listed: the "
        "PACS caps C-FIND answers",
    },
    "retrieval.move_destination_unknown": {
        "it": "Destinazione C-MOVE sconosciuta (A801): AE non registrato sul PACS. Registrare "
        "sul PACS {peer} l'AE {our_ae} con host {our_host} e porta {our_port}",
        "en": "Move destination unknown (A801): AE not registered on the PACS. Register AE "
        "{our_ae} with host {our_host} and port {our_port} on PACS {peer}",
    },
    "retrieval.move_out_of_resources": {
        "it": "Il PACS {peer} non ha risorse per eseguire il C-MOVE ({dicom_status}): "
        "sovraccarico o spazio esaurito, nuovo tentativo più tardi",
        "en": "PACS {peer} is out of resources for the C-MOVE ({dicom_status}): overloaded or "
        "out of space, trying again later",
    },
    "retrieval.move_identifier_mismatch": {
        "it": "Il PACS {peer} non accetta la richiesta C-MOVE (A900): chiavi non supportate",
        "en": "PACS {peer} does not accept the C-MOVE request (A900): unsupported keys",
    },
    "retrieval.move_cancelled": {
        "it": "Il PACS {peer} ha annullato il C-MOVE (FE00)",
        "en": "PACS {peer} cancelled the C-MOVE (FE00)",
    },
    "retrieval.move_not_supported": {
        "it": "Il PACS {peer} non supporta il C-MOVE Study Root (0122)",
        "en": "PACS {peer} does not support Study Root C-MOVE (0122)",
    },
    "retrieval.move_not_authorised": {
        "it": "Il PACS {peer} non autorizza il nostro AE {our_ae} al C-MOVE (0124): "
        "abilitarlo sul PACS",
        "en": "PACS {peer} does not authorise our AE {our_ae} to C-MOVE (0124): enable it on "
        "the PACS",
    },
    "retrieval.move_unable_to_process": {
        "it": "Il PACS {peer} non è riuscito a elaborare il C-MOVE ({dicom_status}) e non ha "
        "inviato immagini. Causa probabile: l'AE {our_ae} non è registrato sul PACS come "
        "destinazione (host {our_host}, porta {our_port}); altrimenti un errore interno del "
        "PACS. Nuovo tentativo più tardi",
        "en": "PACS {peer} was unable to process the C-MOVE ({dicom_status}) and sent no "
        "instance. Likely cause: AE {our_ae} is not registered on the PACS as a destination "
        "(host {our_host}, port {our_port}); otherwise an internal PACS error. Trying again "
        "later",
    },
    "retrieval.move_failed": {
        "it": "Il C-MOVE è fallito con stato {dicom_status}",
        "en": "The C-MOVE failed with status {dicom_status}",
    },
    "retrieval.move_sub_operations_failed": {
        "it": "Il PACS non è riuscito a inviarci {failed} immagini ({dicom_status}): il PACS "
        "non raggiunge il nostro AE {our_ae} su {our_host}:{our_port}, oppure le immagini "
        "non sono disponibili",
        "en": "The PACS failed to send us {failed} instances ({dicom_status}): it cannot reach "
        "our AE {our_ae} at {our_host}:{our_port}, or the instances are unavailable",
    },
    "retrieval.move_nothing_arrived": {
        "it": "Il PACS ha risposto al C-MOVE ma nessuna immagine è arrivata: verificare che "
        "l'AE {our_ae} sia registrato sul PACS con host {our_host} e porta {our_port}",
        "en": "The PACS answered the C-MOVE but no instance arrived: check that AE {our_ae} "
        "is registered on the PACS with host {our_host} and port {our_port}",
    },
    "retrieval.move_timeout": {
        "it": "Il PACS {peer} non ha più risposto al C-MOVE per {seconds} secondi: nuovo "
        "tentativo più tardi",
        "en": "PACS {peer} stopped answering the C-MOVE for {seconds} seconds: trying again later",
    },
    "retrieval.source_busy": {
        "it": "Troppi recuperi in corso dal PACS {peer}: nuovo tentativo più tardi",
        "en": "Too many retrievals running from PACS {peer}: trying again later",
    },
    "retrieval.image_retry": {
        "it": "Richieste di nuovo {asked} immagini mancanti (C-MOVE a livello IMAGE): ne "
        "mancano ancora {still_missing}",
        "en": "Asked again for {asked} missing instances (IMAGE-level C-MOVE): "
        "{still_missing} still missing",
    },
    "retrieval.image_retry_failed": {
        "it": "Il C-MOVE a livello IMAGE delle immagini mancanti non è riuscito: {detail}",
        "en": "The IMAGE-level C-MOVE of the missing instances failed: {detail}",
    },
    "retrieval.unknown_source": {
        "it": "Sorgente non configurata",
        "en": "Source not configured",
    },
    "package.readme_title": {
        "it": "PACCHETTO IMMAGINI - FASCICOLO SANITARIO ELETTRONICO (IMAGE PACKAGE)",
        "en": "IMAGE PACKAGE - ELECTRONIC HEALTH RECORD",
    },
    "package.readme_date": {
        "it": "Data del pacchetto (package date): {date}",
        "en": "Package date: {date}",
    },
    "package.readme_patient": {
        "it": "Paziente (patient): {name} - ID {patient_id} (emesso da/issuer {issuer}) - "
        "nato/a il {birth_date} - sesso {sex}",
        "en": "Patient: {name} - ID {patient_id} (issuer {issuer}) - born {birth_date} - sex {sex}",
    },
    "package.readme_studies": {
        "it": "Studi (studies), {files} immagini in totale:",
        "en": "Studies, {files} instances in all:",
    },
    "package.readme_study": {
        "it": "  {number}. {date} {description} - accession number {accession} - {count} "
        "immagini - Study Instance UID {uid}",
        "en": "  {number}. {date} {description} - accession number {accession} - {count} "
        "instances - Study Instance UID {uid}",
    },
    "package.readme_how_to_open": {
        "it": "Aprire il file DICOMDIR con un visualizzatore DICOM; le immagini sono nella "
        "cartella DICOM (open DICOMDIR with a DICOM viewer).",
        "en": "Open the DICOMDIR file with a DICOM viewer; the images are in the DICOM folder.",
    },
    "package.readme_partial": {
        "it": "RECUPERO PARZIALE (partial retrieval): mancano {missing} immagini non inviate "
        "dal PACS:",
        "en": "PARTIAL RETRIEVAL: {missing} instances the PACS did not send are missing:",
    },
    "package.readme_absent": {
        "it": "STUDI NON RECUPERATI (studies not retrieved): {count}, il PACS non li ha inviati:",
        "en": "STUDIES NOT RETRIEVED: {count}, the PACS did not send them:",
    },
    "package.readme_absent_study": {
        "it": "  - {date} - accession number {accession} - Study Instance UID {uid}",
        "en": "  - {date} - accession number {accession} - Study Instance UID {uid}",
    },
    "package.readme_missing": {
        "it": "  - SOP Instance UID {sop} (serie/series {series})",
        "en": "  - SOP Instance UID {sop} (series {series})",
    },
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
