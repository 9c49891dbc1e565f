"""The one exception tree of pacsbridge.

Every error carries a stable ``code`` (documented in docs/errors.md, checked by a test), the
key and parameters of its message in :mod:`pacsbridge.messages`, and a ``retriable`` flag that
the job ledger uses to decide between "N tentativi rimasti" and a permanent failure.

Errors carry keys, never words: :meth:`PacsbridgeError.stored` is what the database and the
audit keep (``code``, ``key``, ``params``, ``detail``, ``retriable``); :func:`answer` renders a
stored error in the reader's language at the edge, in the API's shape ``{code, message, detail,
retriable, ...}`` (docs/errors.md).

::

    PacsbridgeError
    ├── InputError            422  invalid launch/API data, with the list of bad fields
    ├── AuthError             401  "Token Not Found or Expired"
    │   ├── ApiKeyError            missing or wrong RIS/FSE API key
    │   ├── StaffSignInFailed      wrong staff user name or password, or account locked
    │   ├── StaffSessionMissing    no live staff session behind the cookie
    │   ├── ViewerLinkExpired      a viewer link (DICOMweb token) past its time limit
    │   └── ViewerLinkInvalid      a viewer link that is not one of ours (forged, damaged)
    ├── StaffForbidden        403  the staff member's role does not allow it
    ├── CsrfError             403  state change from a page without its CSRF token
    ├── NotFoundError         404  no such import or retrieval (within the caller's scope)
    ├── NotAcceptable         406  no representation the DICOMweb client accepts
    ├── ViewerNotInstalled    503  the OHIF Viewer files are missing from this installation
    ├── DirectoryUnavailable  503  the staff directory (AD, OpenLDAP) does not answer
    ├── RequestTooLarge       413  a request body over its limit (refused before parsing)
    ├── RequestTimeout        408  a request body that stopped arriving
    ├── ConflictError         409  illegal state change
    │   ├── WrongOffset            upload part at the wrong offset
    │   └── IdentityNotAcknowledged  confirm of a differing patient without the acknowledgement
    ├── MediaError            422  what the uploaded media cannot give us
    │   ├── UnsafeArchive          zip-slip, links, encryption, overlapping entries
    │   ├── ArchiveTooLarge        size, entry count or compression-ratio cap exceeded
    │   ├── BrokenArchive          not a zip, truncated, CRC error
    │   ├── UnreadableDicom        a file that does not parse as DICOM
    │   └── VerificationFailed     a file fails the pipeline's full verification
    ├── PeerError                  a DICOM or HL7 peer
    │   ├── PeerUnavailable   [retriable]  connection refused, timeout, association aborted
    │   │   └── PeerTimeout        no response while waiting for one (same code: a finer type)
    │   ├── PeerRefused       [permanent]  association rejected, failure status
    │   │   └── PeerTlsRefused     a DICOM TLS certificate refused (theirs by us, or ours)
    │   ├── IncompleteMove    [permanent]  instances still missing after the move's second ask
    │   ├── StoreNotConfirmed [retriable]  the PACS does not list every instance sent
    │   └── Hl7Rejected       [permanent]  AE/AR acknowledgement
    ├── StorageFull           [retriable]  disk high-water mark reached
    └── AnalysisFailed        [permanent]  the analysis crashed or was interrupted too often

Library exceptions are translated into this tree at the boundary, once per library
(``dicomnet.association`` for pynetdicom, ``media.archive`` for zipfile, ``hl7v2.mllp`` for hl7).
Operating-system errors are translated by :func:`from_os_error`, the one place that knows which
of them mean something to a user (a full disk).
"""

from __future__ import annotations

import errno
from typing import Any, ClassVar

from pacsbridge import messages


class PacsbridgeError(Exception):
    """Base of every error pacsbridge raises on purpose."""

    code: ClassVar[str] = "internal_error"
    message_key: ClassVar[str] = "error.internal"
    http_status: ClassVar[int] = 500
    retriable: ClassVar[bool] = False

    def __init__(self, detail: str = "", **params: Any) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.params = params

    def said(self) -> dict[str, Any]:
        """The message as stored: key and parameters, rendered only where it is read."""
        return messages.said(self.message_key, **self.params)

    def stored(self) -> dict[str, Any]:
        """The error as the database, the audit and phase results keep it (no words)."""
        return {
            "code": self.code,
            **self.said(),
            "detail": self.detail,
            "retriable": self.retriable,
        }

    def as_dict(self, lang: str = messages.DEFAULT_LANGUAGE) -> dict[str, Any]:
        """The shape of API answers and the error page, the message in ``lang``."""
        return answer(self.stored(), lang)


class InputError(PacsbridgeError):
    code = "invalid_input"
    message_key = "error.invalid_input"
    http_status = 422

    def __init__(self, detail: str = "", fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.fields = fields or []

    def stored(self) -> dict[str, Any]:
        return {**super().stored(), "fields": self.fields}


class AuthError(PacsbridgeError):
    code = "token_not_found_or_expired"
    message_key = "error.token"
    http_status = 401


class ApiKeyError(AuthError):
    code = "api_key_invalid"
    message_key = "error.api_key"


class StaffSignInFailed(AuthError):
    """One answer for every failed staff sign-in: the audit log records the real reason."""

    code = "staff_sign_in_failed"
    message_key = "error.staff_sign_in"


class StaffSessionMissing(AuthError):
    code = "staff_session_missing"
    message_key = "error.staff_session"


class StaffForbidden(PacsbridgeError):
    code = "staff_forbidden"
    message_key = "error.staff_forbidden"
    http_status = 403


class ViewerLinkExpired(AuthError):
    code = "viewer_link_expired"
    message_key = "error.viewer_link_expired"


class ViewerLinkInvalid(AuthError):
    code = "viewer_link_invalid"
    message_key = "error.viewer_link_invalid"


class NotAcceptable(PacsbridgeError):
    """PS3.18 §8.7.3: a WADO-RS request none of whose Accept entries can be served."""

    code = "not_acceptable"
    message_key = "error.not_acceptable"
    http_status = 406


class ViewerNotInstalled(PacsbridgeError):
    code = "viewer_not_installed"
    message_key = "error.viewer_not_installed"
    http_status = 503


class DirectoryUnavailable(PacsbridgeError):
    """The staff directory did not answer, or refused our service account (docs/staff.md).

    Not a :class:`StaffSignInFailed`: the person's password may be right, and saying the
    directory is down tells a guesser nothing about it; local accounts still sign in.
    """

    code = "directory_unavailable"
    message_key = "error.directory_unavailable"
    http_status = 503
    retriable = True


class CsrfError(PacsbridgeError):
    code = "csrf_failed"
    message_key = "error.csrf"
    http_status = 403


class NotFoundError(PacsbridgeError):
    code = "not_found"
    message_key = "error.not_found"
    http_status = 404


class RequestTooLarge(PacsbridgeError):
    code = "request_too_large"
    message_key = "error.request_too_large"
    http_status = 413


class RequestTimeout(PacsbridgeError):
    code = "request_timeout"
    message_key = "error.request_timeout"
    http_status = 408


class ConflictError(PacsbridgeError):
    code = "conflict"
    message_key = "error.conflict"
    http_status = 409


class StudyNotSendable(ConflictError):
    """A confirmed study the duplicate check did not clear (same code as any conflict)."""

    message_key = "error.study_not_sendable"


class DocumentGone(ConflictError):
    """A ticked document that is no longer in the import's files."""

    message_key = "error.document_gone"


class WrongOffset(ConflictError):
    code = "upload_wrong_offset"
    message_key = "error.upload_wrong_offset"

    def stored(self) -> dict[str, Any]:
        return {**super().stored(), "received_bytes": self.params.get("received")}


class IdentityNotAcknowledged(ConflictError):
    code = "identity_not_acknowledged"
    message_key = "error.identity_not_acknowledged"


class MediaError(PacsbridgeError):
    code = "media_error"
    message_key = "error.media"
    http_status = 422


class UnsafeArchive(MediaError):
    code = "archive_unsafe"
    message_key = "error.archive_unsafe"


class ArchiveTooLarge(MediaError):
    code = "archive_too_large"
    message_key = "error.archive_too_large"


class BrokenArchive(MediaError):
    code = "archive_broken"
    message_key = "error.archive_broken"


class UnreadableDicom(MediaError):
    code = "dicom_unreadable"
    message_key = "error.dicom_unreadable"


class PeerError(PacsbridgeError):
    code = "peer_error"
    message_key = "error.peer"
    http_status = 502


class PeerUnavailable(PeerError):
    code = "peer_unavailable"
    message_key = "error.peer_unavailable"
    retriable = True


class PeerTimeout(PeerUnavailable):
    """No response came: the DIMSE timeout passed, or the link dropped while we waited.

    Raised by ``dicomnet`` so that a caller tells a silent peer from an unreachable one by
    type, never by reading the message. It keeps its parent's code: to the operator and the
    FSE both are "peer unavailable"; the explanation a caller adds says which.
    """


class PeerRefused(PeerError):
    code = "peer_refused"
    message_key = "error.peer_refused"


class PeerTlsRefused(PeerRefused):
    """DICOM TLS failed on a certificate: the peer's was not trusted, or it refused ours.

    Permanent: only a new certificate or trusted CA helps (docs/pacs-setup.md, "DICOM TLS");
    the detail says whose certificate and why, in OpenSSL's words.
    """

    code = "peer_tls_refused"
    message_key = "error.peer_tls"


class IncompleteMove(PeerError):
    """A source sent fewer instances than its C-FIND listed, even when asked for the gaps.

    Permanent for the attempt: the move already asked again for what was missing (one
    IMAGE-level C-MOVE per series), so the study is served ``partial`` with the missing UIDs
    instead of retried; a later request for the study moves it again (docs/integration-fse.md).
    """

    code = "move_incomplete"
    message_key = "error.move_incomplete"


class StoreNotConfirmed(PeerError):
    code = "store_not_confirmed"
    message_key = "error.store_not_confirmed"
    retriable = True


class VerificationFailed(MediaError):
    code = "verification_failed"
    message_key = "error.verification_failed"


class Hl7Rejected(PeerError):
    code = "hl7_rejected"
    message_key = "error.hl7_rejected"


class StorageFull(PacsbridgeError):
    code = "storage_full"
    message_key = "error.storage_full"
    http_status = 507
    retriable = True


class AnalysisFailed(PacsbridgeError):
    code = "analysis_failed"
    message_key = "error.analysis_failed"


def answer(stored: dict[str, Any] | None, lang: str = messages.DEFAULT_LANGUAGE) -> dict[str, Any]:
    """A stored error as readers get it: ``{code, message, detail, retriable, ...}``, the
    message in ``lang`` (an error stored before keys keeps its words)."""
    stored = dict(stored or {})
    key, params = stored.pop("key", None), stored.pop("params", None)
    words = messages.render({"key": key, "params": params or {}}, lang) if key else ""
    first = {"code": stored.pop("code", PacsbridgeError.code)}
    if "fields" in stored:  # a field's error may be a catalogue message too
        stored["fields"] = [_field(f, lang) for f in stored["fields"]]
    return {**first, "message": words or str(stored.pop("message", "")), **stored}


def _field(field: dict[str, Any], lang: str) -> dict[str, Any]:
    error = field.get("error")
    return {**field, "error": messages.render(error, lang)} if messages.is_said(error) else field


def disk_full(error: BaseException | None) -> bool:
    """ENOSPC (or EDQUOT) anywhere in the chain: pydicom re-raises write errors without errno."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


def from_os_error(error: BaseException) -> PacsbridgeError | None:
    """Ours as they are; a full disk as :class:`StorageFull`; None for anything else.

    Only the exception's type is kept in the detail: an OS error's text holds file paths, and a
    path from the media may hold a patient's name (docs/logging.md).
    """
    if isinstance(error, PacsbridgeError):
        return error
    if disk_full(error):
        return StorageFull(type(error).__name__)
    return None


def all_error_classes() -> list[type[PacsbridgeError]]:
    """One class per code, for the documentation test and docs/errors.md.

    A subclass that keeps its parent's code (``PeerTimeout``) is a finer type for callers,
    not another code, so it is not listed again.
    """
    found: list[type[PacsbridgeError]] = []
    stack: list[type[PacsbridgeError]] = [PacsbridgeError]
    while stack:
        cls = stack.pop()
        if cls is PacsbridgeError or "code" in vars(cls):
            found.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.code)
