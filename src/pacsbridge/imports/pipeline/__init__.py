"""The import pipeline after "CONFERMA IMPORTAZIONE" (manual §5), in its one true order.

verify (Verifica) → reconcile (Riconciliazione) → send (Invio al PACS) → merge (Merge paziente)
→ notify (Invio ordine RIS); ``runner`` runs them against the ledger: one PhaseRun row each,
attempts left, times, messages. Every phase is idempotent: after a crash it runs again from
what its rows say, never from memory.
"""

from __future__ import annotations

from pacsbridge.imports.pipeline import merge, notify, reconcile, send, verify
from pacsbridge.imports.pipeline.base import Phase

PHASES: tuple[tuple[str, Phase], ...] = (
    ("verify", verify.run),
    ("reconcile", reconcile.run),
    ("send", send.run),
    ("merge", merge.run),
    ("notify", notify.run),
)
