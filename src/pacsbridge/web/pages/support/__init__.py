"""The support console at ``/support/`` (docs/support.md): Italian first, English second.

For the hospital's support desk and the PACS administrators, signed in with a staff account
(docs/staff.md): ``auth`` (Accedi, Esci) → ``imports`` (find by "Id per assistenza", read,
retry, abort, recheck) → ``retrievals`` (list, retry, purge) → ``sources`` (C-ECHO, pause,
resume) → ``export`` (the audit log as CSV or JSON). Domain logic lives in the domains
(imports/support.py, retrievals/support.py, retrievals/pauses.py, operations/sources.py).
"""

from fastapi import APIRouter, FastAPI

from pacsbridge.web.pages.support import auth, export, imports, retrievals, sources

router = APIRouter(include_in_schema=False)
for module in (auth, imports, retrievals, sources, export):
    router.include_router(module.router)


def install(app: FastAPI) -> None:
    """The console's routes and its redirect to "Accedi" for visits without a session."""
    app.add_exception_handler(auth.SignInRequired, auth.redirect_to_sign_in)
    app.include_router(router)


__all__ = ["install", "router"]
