"""External study import (manual §2–§6): from a RIS launch to the images on the PACS.

Flow, in order (states in ``lifecycle``; docs/lifecycle.md is generated from it):

1. ``launch``        the RIS posts patient and order; a token bound to both, with an expiry
   ``scope``         what a token may read: its own patient (id and issuer) and order only
2. ``upload``        the browser's zip in resumable parts, straight to disk; then ``analysing``
   ``workspace``     the one place that knows where an import's files live
3. ``analysis``      safe unpacking, DICOMDIR or scan, headers, inventory (``media``), then
   ``verdicts``      RIS patient against each DICOM patient (rules in ``identity``), and
   ``duplicates``    C-FIND by Study UID: already on the PACS, in conflict, or unknown
4. ``confirmation``  confirm (with the identity acknowledgement when the patient differs),
                     cancel, recheck; each a compare-and-set ``lifecycle.move``
5. ``pipeline``      the background phases: verify → reconcile → send → merge → notify,
                     under a lease of the job ledger (``jobs.ledger``), with retries
6. ``monitor``       the live progress read model; ``views`` the import document and history
7. ``maintenance``   the reaper, the clean-up of temporary files, the sweep of orphans

``refusals`` audits refused input; ``models`` holds the tables, ``schemas`` the API shapes,
``tasks`` the job entry points the runtime registers.
"""
