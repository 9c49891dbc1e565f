"""The operator pages (manual §3-§6), server-rendered with Jinja2 and small ES modules.

Flow: ``/imports/start?token=`` (cookie, clean URL; ``/imports/session`` asks first when
another patient's session is open) → ``/imports`` (patient, history, folder,
zip and upload in the browser) → ``/imports/{id}/confirm`` (CONFERMA IMPORT STUDI) →
``/imports/{id}/monitor`` (phases, live) or ``/imports/{id}/cancelled``. The pages read the
domain's read models; their JavaScript changes state only through the JSON API.
"""

from fastapi import APIRouter

from pacsbridge.web.pages import documents, imports, switch, thumbnails, viewer

router = APIRouter(include_in_schema=False)
router.include_router(imports.router)
router.include_router(switch.router)
router.include_router(thumbnails.router)
router.include_router(documents.router)
router.include_router(viewer.router)

__all__ = ["router"]
