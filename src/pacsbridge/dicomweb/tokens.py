"""Viewer links: a signed, time-limited token that opens one retrieval's or one import's images.

The token is ``<scope><id>.<expiry>.<signature>``: ``r17`` (retrieval 17) or ``i5`` (import 5),
the expiry in seconds since the epoch, and an HMAC-SHA256 of both under the viewer secret,
base64url. Nothing is stored per link: any process that knows the secret checks it, and the
scope and the expiry cannot be changed without breaking the signature. The secret is
``viewer.secret_key``, or else a random key created once in the data folder (mode 0600), so
every process sharing that folder agrees. A link is refused as invalid when its signature does
not match (forged, damaged, another installation's), and as expired when it is genuine but
past its time: the page tells the clinician which, in Italian (docs/integration-fse.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pacsbridge.errors import ViewerLinkExpired, ViewerLinkInvalid

KINDS = {"r": "retrieval", "i": "import"}
_FORMAT = re.compile(r"([ri])([1-9][0-9]{0,18})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
SECRET_FILE = "viewer-secret.key"
MAX_TOKEN = 80


@dataclass(frozen=True)
class Scope:
    """What a token opens: one retrieval or one import."""

    kind: Literal["retrieval", "import"]
    id: int

    @property
    def letter(self) -> str:
        return self.kind[0]


def sign(secret: bytes, scope: Scope, expires_at: datetime) -> str:
    body = f"{scope.letter}{scope.id}.{int(expires_at.timestamp())}"
    return f"{body}.{_mac(secret, body)}"


def verify(secret: bytes, token: str | None, now: datetime) -> Scope:
    """The token's scope; ViewerLinkInvalid or ViewerLinkExpired otherwise."""
    match = _FORMAT.fullmatch(token or "") if token and len(token) <= MAX_TOKEN else None
    if match is None:
        raise ViewerLinkInvalid("not a viewer token")
    letter, number, expiry, signature = match.groups()
    if not hmac.compare_digest(signature, _mac(secret, f"{letter}{number}.{expiry}")):
        raise ViewerLinkInvalid("bad signature")
    if datetime.fromtimestamp(int(expiry), UTC) <= now:
        raise ViewerLinkExpired("link expired")
    return Scope(KINDS[letter], int(number))  # type: ignore[arg-type]


def expiry_of(token: str) -> datetime:
    """When a token (already verified) stops working."""
    return datetime.fromtimestamp(int(token.split(".")[1]), UTC)


def _mac(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, f"pacsbridge-viewer-v1:{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def secret(configured: str, data_dir: Path) -> bytes:
    """The configured key, else the data folder's own random key (created on first use)."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    draft = data_dir / f"{SECRET_FILE}.{secrets.token_hex(4)}.part"
    handle = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as out:
        out.write(secrets.token_hex(32).encode())
    try:
        os.link(draft, path)  # whole or not at all; of two processes, the first one wins
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)
    return path.read_bytes()
