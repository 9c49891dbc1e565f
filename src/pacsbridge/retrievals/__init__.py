"""FSE on-demand retrieval gateway (the FSE spec).

Flow: request → query → move → receive → package → expire.

1. ``request``   accept a request: answer from the cache, or queue ``retrievals.retrieve``
2. ``runner``    the task: query, link each study to its cache entry, move, finish; retries
3. ``query``     Find Study Metadata: C-FIND STUDY → SERIES → IMAGE; no IMAGE level; caps
   ``headers``   every spec key present; keys the PACS left empty filled from the files
4. ``mover``     one study under its lease (one C-MOVE per study across processes)
5. ``retrieve``  C-MOVE to our AE, quiet period, IMAGE-level retry of the missing
   ``statuses``  C-MOVE statuses → clear errors with Italian explanations
6. ``receiver``  our Storage SCP's handler: admit only what a running retrieval expects
   ``intruders`` who may call (AE title and address); the audit of what is refused
7. ``settle``    the final state once every study has settled (also for joined requests)
8. ``package``   the zip: ``dicomdir`` + ``readme`` + the files, written once, Range-served
9. ``cache``     layout (names of ours), one entry per study, disk budget, expiry
   ``leases``    study lease, source slots, heartbeat; ``views`` read models; ``tasks`` jobs
"""
