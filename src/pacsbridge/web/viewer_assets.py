"""The bundled OHIF Viewer: where its files are, and its page and configuration per link.

OHIF (``@ohif/app``, MIT) is not committed: at set-up ``scripts/install-viewer`` fetches the
pinned package with npm, checks its integrity, copies the built ``dist/`` without what we do
not use (the ONNX runtime, the microscopy viewer, source maps) into ``static/ohif/`` and points
webpack's public path there. At run time nothing is fetched: the page is OHIF's own
``index.html`` with every asset under ``/static/ohif/``, and its configuration (DICOMweb root
``/dicomweb/t/{token}``, router base ``/viewer/{token}``) comes from
``/viewer/{token}/app-config.js``. A missing viewer is a clear 503 page, not a broken one.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from pacsbridge.context import Context
from pacsbridge.dicomweb import tokens
from pacsbridge.errors import ViewerNotInstalled
from pacsbridge.imports import viewing as import_viewing
from pacsbridge.retrievals import viewing as retrieval_viewing
from pacsbridge.web.headers import VIEWER_CSP

OHIF = Path(__file__).parent / "static" / "ohif"
ASSETS = "/static/ohif/"


def installed() -> bool:
    return (OHIF / "index.html").is_file()


def page(request: Request, ctx: Context, token: str, scope: tokens.Scope) -> Response:
    """OHIF's page for this link; without a study in the address, the link's studies."""
    if not installed():
        raise ViewerNotInstalled("static/ohif/index.html missing: run scripts/install-viewer")
    if not request.url.path.rstrip("/").endswith("/viewer") or "StudyInstanceUIDs" not in str(
        request.url.query
    ):
        studies = _studies(ctx, scope)
        return RedirectResponse(
            f"/viewer/{token}/viewer?StudyInstanceUIDs={','.join(studies)}", status_code=303
        )
    html = _index().replace("__PACSBRIDGE_CONFIG__", f"/viewer/{token}/app-config.js")
    return Response(html, media_type="text/html", headers={"Content-Security-Policy": VIEWER_CSP})


def _studies(ctx: Context, scope: tokens.Scope) -> list[str]:
    """The Study Instance UIDs of the scope (our rows' UIDs, valid by construction)."""
    if scope.kind == "retrieval":
        catalogue = retrieval_viewing.catalogue(ctx, scope.id)
    else:
        catalogue = import_viewing.catalogue(ctx, scope.id)
    return list(dict.fromkeys(i.study for i in catalogue.instances))


def config(request: Request, ctx: Context, token: str) -> Response:
    """``window.config`` for OHIF: one DICOMweb data source, this link's root, no study list."""
    root = f"/dicomweb/t/{token}"
    settings = {
        "routerBasename": f"/viewer/{token}",
        "showStudyList": False,
        "extensions": [],
        "modes": [],
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "investigationalUseDialog": {"option": "never"},
        "maxNumberOfWebWorkers": 2,
        "defaultDataSourceName": "pacsbridge",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "pacsbridge",
                "configuration": {
                    "friendlyName": "pacsbridge",
                    "name": "pacsbridge",
                    "wadoUriRoot": root,
                    "qidoRoot": root,
                    "wadoRoot": root,
                    "qidoSupportsIncludeField": False,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "staticWado": False,
                    "singlepart": "bulkdata,video",
                    "bulkDataURI": {"enabled": True},
                    "omitQuotationForMultipartRequest": True,
                },
            }
        ],
    }
    body = f"window.PUBLIC_URL = {json.dumps(ASSETS)};\nwindow.config = {json.dumps(settings)};\n"
    return Response(body, media_type="text/javascript")


@lru_cache(maxsize=1)
def _index() -> str:
    """OHIF's index.html: assets under /static/ohif/, our config script, no inline script and
    no service worker (a closed network gains nothing from one, and it would cache patient
    data in the browser)."""
    html = (OHIF / "index.html").read_text(encoding="utf-8")
    html = re.sub(r"<script>[^<]*</script>", "", html)
    html = re.sub(
        r'<script[^>]*src="/(app-config|init-service-worker)\.js"[^>]*></script>', "", html
    )
    html = re.sub(r'(href|src)="/(?!/)', rf'\1="{ASSETS}', html)
    config = '<script src="__PACSBRIDGE_CONFIG__"></script>'
    return html.replace("</head>", f"{config}</head>", 1)
