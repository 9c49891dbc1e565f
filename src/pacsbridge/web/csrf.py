"""CSRF protection for state changes made with the page's session cookie.

The API proper is authenticated by a Bearer header, which a foreign site cannot make a browser
send, so it needs no CSRF token. The operator pages authenticate with an HttpOnly cookie (the
launch token moves from the URL into it at once); every state-changing request made with that
cookie must carry ``X-CSRF-Token`` (or a ``csrf_token`` form field) equal to an HMAC of the
token, which the page embeds and a foreign site cannot compute.
"""

from __future__ import annotations

import hashlib
import hmac

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = "x-csrf-token"


def token_for(launch_token: str) -> str:
    return hmac.new(launch_token.encode(), b"pacsbridge-csrf", hashlib.sha256).hexdigest()


def valid(launch_token: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(token_for(launch_token), presented or "")
