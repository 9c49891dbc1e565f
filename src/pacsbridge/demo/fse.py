"""The demo's FSE side: a sample CT on the demo PACS, retrieved once the server runs, and the
viewer link printed, as the FSE web app would hand it to a clinician (docs/integration-fse.md).

In a thread of the demo process: the retrieval is an ordinary one (C-FIND, C-MOVE to our
Storage SCP, run by the embedded worker), so the link printed is a real viewer link.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import typer

from pacsbridge.context import Context
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.dicomnet.store import c_store
from pacsbridge.retrievals import request, views
from pacsbridge.retrievals.schemas import RetrievalRequest

log = logging.getLogger(__name__)
ACCESSION = "FSE0001"
FINAL = ("available", "partial", "failed", "not_found", "expired")
WAIT_SECONDS = 120


def sample_study(folder: Path) -> list[Path]:
    """A 20-slice CT of the demo patient, written under ``folder``."""
    study = SampleStudy(
        patient=SamplePatient(name="TEST^TEST", patient_id="97119460"),
        description="TC ENCEFALO (FSE)",
        accession_number=ACCESSION,
        series_count=1,
        instances_per_series=20,
        rows=256,
        columns=256,
    )
    return write_loose(folder, [study], junk=False)


def start(ctx: Context, pacs: Peer, folder: Path, source: str = "demo") -> threading.Thread:
    """Put the sample on the PACS, then retrieve it and print the viewer link (background)."""
    paths = sample_study(folder)
    list(c_store(ctx.local, pacs, paths))
    thread = threading.Thread(
        target=_retrieve_and_print, args=(ctx, source), name="demo-fse", daemon=True
    )
    thread.start()
    return thread


def _retrieve_and_print(ctx: Context, source: str) -> None:
    time.sleep(1)  # let the embedded worker and our Storage SCP start with the server
    row = request.accept(ctx, RetrievalRequest(source=source, accession_numbers=[ACCESSION]))
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        document = views.document(ctx, row.id)
        if document["state"] in FINAL:
            break
        time.sleep(0.5)  # polling our own database for the retrieval's state
    else:
        log.warning("demo retrieval %s did not finish in %d s", row.id, WAIT_SECONDS)
        return
    if "viewer_url" not in document:
        typer.echo(f"\n  Demo FSE retrieval {row.id} ended {document['state']}: no viewer link")
        return
    typer.echo(
        f"\n  Viewer link (FSE retrieval {row.id}, {ACCESSION}):  {document['viewer_url']}\n"
        f"  DICOMweb root of that link:  {document['dicomweb_url']}\n"
    )
