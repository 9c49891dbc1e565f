"""Patient-identity verdicts: is this patient on the media the patient of the RIS order?

Manual §4.A (docs/specifications.md). Pure functions, table-tested, 100 % branch coverage: a false
"match" attaches a study to the wrong patient, the worst bug this product can have, so every rule is
written down in its module and every edge has a row in ``tests/identity``.

The flow, in order (``check_patient``):

1. ``person_name``  DICOM PN → family, given, middle (alphabetic group; prefix, suffix dropped);
   the two normal forms: case and whitespace folded, or transliterated (anyascii) to tokens.
2. ``name_check``   match / format_different / mismatch / missing; the "nome simile" hint.
3. ``demographics`` birth date and sex: match / mismatch / missing (never match on a gap).
4. ``fiscal_code``  codice fiscale on the media (stdnum) against the RIS: match / mismatch /
   absent.
5. ``verdict``      the checks combined into match / format_different / mismatch, with the
   message keys (``identity.*`` in :mod:`pacsbridge.messages`) in display order.

Usage::

    from pacsbridge.identity import DicomPatient, RisPatient, check_patient

    result = check_patient(RisPatient("ROSSI", "MARIO", date(1974, 1, 1), "M"),
                           DicomPatient("ROSSI^MARIO", "19740101", "M"))
    result.verdict        # "match"
    result.message_keys   # ("identity.match",)
"""

from __future__ import annotations

from pacsbridge.identity.verdict import DicomPatient, PatientVerdict, RisPatient, check_patient

__all__ = ["DicomPatient", "PatientVerdict", "RisPatient", "check_patient"]
