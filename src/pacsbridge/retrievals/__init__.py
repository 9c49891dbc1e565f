"""FSE on-demand retrieval gateway (the FSE spec).

Flow: request → plan → move → receive → settle → package → expire.

1. ``request``   accept a request: answer from the cache, or queue ``retrievals.retrieve``
2. ``runner``    the task: plan → move → settle, each study under its lease; retries
3. ``plan``      Find Study Metadata: C-FIND STUDY → SERIES → IMAGE, the expected instances
   ``query``     the C-FIND dialogue of every level: answers checked; no IMAGE level; caps
   ``headers``   every spec key present; keys the PACS left empty filled from the files
4. ``move``      C-MOVE to our AE, quiet period, one IMAGE-level ask for the missing;
                 ``IncompleteMove`` when some are still missing
   ``statuses``  C-MOVE statuses → clear errors with Italian explanations
5. ``receiver``  our Storage SCP's handler: admit only what a running retrieval expects
   ``intruders`` who may call (AE title and address); the audit of what is refused
6. ``settle``    what arrived, complete or partial; the retrieval's final state once every
                 study has settled (also for joined requests)
7. ``package``   the zip: ``dicomdir`` + ``readme`` + the files, written once, Range-served
8. ``cache``     layout (names of ours), one entry per study, its folder, disk budget, expiry
   ``lifecycle`` the retrieval and cached-study states, and their one ``move()``
   ``leases``    source slots; ``views`` read models; ``tasks`` jobs
"""
