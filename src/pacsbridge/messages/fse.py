"""Texts of the retrievals (FSE gateway): key and English source (Italian in the .po).

Texts of the FSE specification (docs/specifications.md) and of the retrieval API
(docs/integration-fse.md); see :mod:`pacsbridge.messages` for why keys.
"""

from __future__ import annotations

from pacsbridge.messages.entry import M_

ENTRIES = (
    M_(
        "retrieval.no_image_level",
        "The PACS does not answer IMAGE-level C-FIND queries: expected instances counted from the "
        "series and the C-MOVE, admitted by study",
    ),
    M_(
        "retrieval.cfind_capped",
        "The PACS capped its {level}-level C-FIND answers ({returned} of {reported}): incomplete "
        "list, instances admitted by study",
    ),
    M_(
        "retrieval.cfind_cap_suspected",
        "Possible silent PACS limit on {level}-level C-FIND answers ({returned} answers, a round "
        "number)",
    ),
    M_(
        "retrieval.cfind_cancelled",
        "The PACS stopped its {level}-level C-FIND answers (status FE00: a result limit "
        "configured on the PACS): instances counted from the series and admitted by study",
    ),
    M_(
        "retrieval.cfind_cap_confirmed",
        "The C-MOVE sent {extra} instances beyond the {listed} the C-FIND listed: the PACS caps "
        "C-FIND answers",
    ),
    M_(
        "retrieval.move_destination_unknown",
        "Move destination unknown (A801): AE not registered on the PACS. Register AE {our_ae} "
        "with host {our_host} and port {our_port} on PACS {peer}",
    ),
    M_(
        "retrieval.move_out_of_resources",
        "PACS {peer} is out of resources for the C-MOVE ({dicom_status}): overloaded or out of "
        "space, trying again later",
    ),
    M_(
        "retrieval.move_identifier_mismatch",
        "PACS {peer} does not accept the C-MOVE request (A900): unsupported keys",
    ),
    M_("retrieval.move_cancelled", "PACS {peer} cancelled the C-MOVE (FE00)"),
    M_("retrieval.move_not_supported", "PACS {peer} does not support Study Root C-MOVE (0122)"),
    M_(
        "retrieval.move_not_authorised",
        "PACS {peer} does not authorise our AE {our_ae} to C-MOVE (0124): enable it on the PACS",
    ),
    M_(
        "retrieval.move_unable_to_process",
        "PACS {peer} was unable to process the C-MOVE ({dicom_status}) and sent no instance. "
        "Likely cause: AE {our_ae} is not registered on the PACS as a destination (host "
        "{our_host}, port {our_port}); otherwise an internal PACS error. Trying again later",
    ),
    M_("retrieval.move_failed", "The C-MOVE failed with status {dicom_status}"),
    M_(
        "retrieval.move_sub_operations_failed",
        "The PACS failed to send us {failed} instances ({dicom_status}): it cannot reach our AE "
        "{our_ae} at {our_host}:{our_port}, or the instances are unavailable",
    ),
    M_(
        "retrieval.move_nothing_arrived",
        "The PACS answered the C-MOVE but no instance arrived: check that AE {our_ae} is "
        "registered on the PACS with host {our_host} and port {our_port}",
    ),
    M_(
        "retrieval.move_timeout",
        "PACS {peer} stopped answering the C-MOVE for {seconds} seconds: trying again later",
    ),
    M_("retrieval.source_busy", "Too many retrievals running from PACS {peer}: trying again later"),
    M_(
        "retrieval.image_retry",
        "Asked again for {asked} missing instances (IMAGE-level C-MOVE): {still_missing} still "
        "missing",
    ),
    M_(
        "retrieval.image_retry_failed",
        "The IMAGE-level C-MOVE of the missing instances failed: {detail}",
    ),
    M_(
        "retrieval.disk_short",
        "Not enough free space on the pacsbridge server for this retrieval: {free_mb} MB free, "
        "{needed_mb} MB needed ({margin_mb} MB margin included). Trying again later; free some "
        "space or shorten the cache retention",
    ),
    M_(
        "retrieval.invalid_uid",
        "Invalid UID in a {level}-level C-FIND answer ({keyword}): answer dropped",
    ),
    M_("retrieval.unknown_source", "Source not configured"),
    M_("package.readme_title", "IMAGE PACKAGE - ELECTRONIC HEALTH RECORD"),
    M_("package.readme_date", "Package date: {date}"),
    M_(
        "package.readme_patient",
        "Patient: {name} - ID {patient_id} (issuer {issuer}) - born {birth_date} - sex {sex}",
    ),
    M_("package.readme_studies", "Studies, {files} instances in all:"),
    M_(
        "package.readme_study",
        "  {number}. {date} {description} - accession number {accession} - {count} instances - "
        "Study Instance UID {uid}",
    ),
    M_(
        "package.readme_how_to_open",
        "Open the DICOMDIR file with a DICOM viewer; the images are in the DICOM folder.",
    ),
    M_(
        "package.readme_partial",
        "PARTIAL RETRIEVAL: {missing} instances the PACS did not send are missing:",
    ),
    M_("package.readme_absent", "STUDIES NOT RETRIEVED: {count}, the PACS did not send them:"),
    M_(
        "package.readme_absent_study",
        "  - {date} - accession number {accession} - Study Instance UID {uid}",
    ),
    M_(
        "package.readme_not_found",
        "ACCESSION NUMBERS WITH NO STUDY: {count}, the PACS has no study with them:",
    ),
    M_("package.readme_not_found_accession", "  - accession number {accession}"),
    M_(
        "retrieval.accession_not_found",
        "No study on PACS {source} with accession number {accession}",
    ),
    M_("package.readme_missing", "  - SOP Instance UID {sop} (series {series})"),
)
