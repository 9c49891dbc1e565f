"""The retrieval (FSE gateway) part of the message catalogue, merged into
:data:`pacsbridge.messages.CATALOGUE` (see that module for why a catalogue).

Texts of the FSE specification (docs/specifications.md) and of the retrieval API
(docs/integration-fse.md), Italian first.
"""

from __future__ import annotations

RETRIEVALS: dict[str, dict[str, str]] = {
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
    "retrieval.disk_short": {
        "it": "Spazio libero insufficiente sul server pacsbridge per questo recupero: "
        "{free_mb} MB liberi, ne servono {needed_mb} (margine di {margin_mb} MB compreso). "
        "Nuovo tentativo più tardi; liberare spazio o ridurre la conservazione della cache",
        "en": "Not enough free space on the pacsbridge server for this retrieval: {free_mb} MB "
        "free, {needed_mb} MB needed ({margin_mb} MB margin included). Trying again later; "
        "free some space or shorten the cache retention",
    },
    "retrieval.invalid_uid": {
        "it": "UID non valido in una risposta C-FIND a livello {level} ({keyword}): risposta "
        "scartata",
        "en": "Invalid UID in a {level}-level C-FIND answer ({keyword}): answer dropped",
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
    "package.readme_not_found": {
        "it": "NUMERI DI ACCETTAZIONE SENZA STUDI (accession numbers with no study): {count}, "
        "il PACS non ha nessuno studio con questi numeri:",
        "en": "ACCESSION NUMBERS WITH NO STUDY: {count}, the PACS has no study with them:",
    },
    "package.readme_not_found_accession": {
        "it": "  - accession number {accession}",
        "en": "  - accession number {accession}",
    },
    "retrieval.accession_not_found": {
        "it": "Nessuno studio sul PACS {source} con numero di accettazione {accession}",
        "en": "No study on PACS {source} with accession number {accession}",
    },
    "package.readme_missing": {
        "it": "  - SOP Instance UID {sop} (serie/series {series})",
        "en": "  - SOP Instance UID {sop} (series {series})",
    },
}
